package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"storegate"
	"storegate/ledger"
	"storegate/store/engine"
)

// fulfillBatch is a batch of fulfillments as the store hands one over: the
// same wallet twice, another platform's part of the same currency, an item,
// another player, and a fulfillment applied before (f0).
func fulfillBatch() []storegate.Command {
	sword := item("sword", storegate.ItemDurable, 1)
	return []storegate.Command{
		fulfill("f1", "p1", storegate.PlatformSteam, coins("CRYSTALS", 100)),
		fulfill("f2", "p1", storegate.PlatformEpic, coins("CRYSTALS", 50), sword),
		fulfill("f0", "p1", storegate.PlatformSteam, coins("CRYSTALS", 5)),
		fulfill("f3", "p2", storegate.PlatformXsolla, coins("GOLD", 10), coins("CRYSTALS", 1)),
		fulfill("f4", "p1", storegate.PlatformSteam, coins("CRYSTALS", 30)),
	}
}

// entryFigures is a history as "platform amount balance_after total_after".
func entryFigures(es []ledger.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprint(e.Platform, " ", e.Amount, " ", e.BalanceAfter, " ", e.TotalAfter))
	}
	return out
}

// state is what support and replays see of a player after fulfillments.
type state struct {
	Balances     map[string]int64
	Entitlements map[string]string
	History      []ledger.Entry
	Replays      []ledger.Result
}

func stateOf(t *testing.T, l *ledger.Ledger, player string, cs []storegate.Command) state {
	t.Helper()
	ctx := context.Background()
	hist, _, err := l.History(ctx, player, ledger.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range hist {
		hist[i].ID = 0 // numbered across players: compared by order instead
	}
	s := state{Balances: balances(t, l, player), Entitlements: entitlements(t, l, player, true), History: hist}
	for _, c := range cs {
		if c.PlayerID != player {
			continue
		}
		r, err := l.Fulfill(ctx, c) // a replay: the stored result
		if err != nil {
			t.Fatal(err)
		}
		s.Replays = append(s.Replays, r)
	}
	return s
}

// A batch applied at once (Apply, the store's path for the grants
// of a batch of accepts and the dispatcher's for a chunk) leaves exactly
// what the same fulfillments applied one by one leave: balances, histories
// with each entry's balance and total after it, entitlements, and the
// results replays answer; the fulfillment applied before, and a second copy
// of one in the batch, change nothing.
func TestApply_SameAsOneByOne(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			cs := fulfillBatch()
			cs = append(cs, cs[0]) // a second copy of f1 in the same batch
			one, _, _ := newLedger(t, be, ledger.Config{})
			many, db, _ := newLedger(t, be, ledger.Config{})
			for _, l := range []*ledger.Ledger{one, many} {
				if _, err := l.Fulfill(ctx, cs[2]); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range cs {
				if _, err := one.Fulfill(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
				if out := many.Apply(ctx, tx, cs); out.Verdict != storegate.VerdictDone {
					t.Errorf("Apply = %+v, want done", out)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"p1", "p2"} {
				got, want := stateOf(t, many, p, cs), stateOf(t, one, p, cs)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s at once:\n%+v\none by one:\n%+v", p, got, want)
				}
			}
			// The figures themselves, not only their agreement: each entry's
			// platform balance and total across platforms after it.
			hist, _, err := many.History(ctx, "p1", ledger.HistoryQuery{Currency: "CRYSTALS"})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"Steam 5 5 5", "Steam 100 105 105", "Epic 50 50 155", "Steam 30 135 185"}
			if got := entryFigures(hist); !reflect.DeepEqual(got, want) {
				t.Errorf("p1's CRYSTALS history = %q, want %q", got, want)
			}
		})
	}
}

// A batch the caller undoes leaves nothing: a batch with a command the
// ledger cannot apply is not done (its verdict says why), and a batch done
// but undone with the rest of its write leaves no wallet, no entitlement,
// and no player the ledger believes exists.
func TestApply_UndoneLeavesNothing(t *testing.T) {
	bad := fulfill("f9", "p1", storegate.PlatformSteam, storegate.Line{SKU: "nothing", Quantity: 1, Grants: []storegate.Grant{{}}})
	cases := []struct {
		name    string
		batch   []storegate.Command
		verdict storegate.Verdict
	}{
		{"a command it cannot apply", append(fulfillBatch(), bad), storegate.VerdictDead},
		{"done, then undone by the caller", fulfillBatch(), storegate.VerdictDone},
	}
	for _, be := range backends() {
		for _, tc := range cases {
			t.Run(be.name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				l, db, _ := newLedger(t, be, ledger.Config{})
				undo := errors.New("undo")
				var out storegate.Outcome
				err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
					out = l.Apply(ctx, tx, tc.batch)
					return undo
				})
				if !errors.Is(err, undo) {
					t.Fatalf("write = %v", err)
				}
				if out.Verdict != tc.verdict {
					t.Errorf("Apply = %+v, want %s", out, tc.verdict)
				}
				for _, p := range []string{"p1", "p2"} {
					if got := balances(t, l, p); len(got) != 0 {
						t.Errorf("%s has wallets %v after the undone batch", p, got)
					}
					if got := entitlements(t, l, p, true); len(got) != 0 {
						t.Errorf("%s has entitlements %v after the undone batch", p, got)
					}
					// The ledger remembers the players it granted only once
					// the grant commits.
					if ok, err := l.UserExists(ctx, p); err != nil || ok {
						t.Errorf("%s exists after the undone batch (%v)", p, err)
					}
				}
			})
		}
	}
}
