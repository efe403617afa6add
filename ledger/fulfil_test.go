package ledger_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"storegate"
	"storegate/ledger"
	"storegate/store"
)

// fulfilBatch is a batch of fulfilments as the store hands one over: the
// same wallet twice, another platform's part of the same currency, an item,
// another player, and a fulfilment applied before (f0).
func fulfilBatch() []storegate.Command {
	sword := item("sword", storegate.ItemDurable, 1)
	return []storegate.Command{
		fulfil("f1", "p1", storegate.PlatformSteam, coins("CRYSTALS", 100)),
		fulfil("f2", "p1", storegate.PlatformEpic, coins("CRYSTALS", 50), sword),
		fulfil("f0", "p1", storegate.PlatformSteam, coins("CRYSTALS", 5)),
		fulfil("f3", "p2", storegate.PlatformXsolla, coins("GOLD", 10), coins("CRYSTALS", 1)),
		fulfil("f4", "p1", storegate.PlatformSteam, coins("CRYSTALS", 30)),
	}
}

// state is what support and replays see of a player after fulfilments.
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

// A batch applied at once (DeliverTxMany, the store's path for the grants
// of a batch of accepts and the dispatcher's for a chunk) leaves exactly
// what the same fulfilments applied one by one leave: balances, histories
// with each entry's balance and total after it, entitlements, and the
// results replays answer; the fulfilment applied before changes nothing.
func TestDeliverTxMany_SameAsOneByOne(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			cs := fulfilBatch()
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
			err := db.Write(ctx, func(ctx context.Context, tx *store.Tx) error {
				if out := many.DeliverTxMany(ctx, tx, cs); out.Verdict != storegate.VerdictDone {
					t.Errorf("DeliverTxMany = %+v, want done", out)
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
			if got := balances(t, many, "p1")["CRYSTALS"]; got != 185 {
				t.Errorf("p1 has %d CRYSTALS, want 185 (5 before, then 100, 50, 30)", got)
			}
		})
	}
}

// A batch with a command the ledger cannot apply is not done, and the
// store's undo of the write leaves nothing of any of its fulfilments.
func TestDeliverTxMany_NotDoneLeavesNothing(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			l, db, _ := newLedger(t, be, ledger.Config{})
			bad := fulfil("f9", "p1", storegate.PlatformSteam, storegate.Line{SKU: "nothing", Quantity: 1, Grants: []storegate.Grant{{}}})
			cs := append(fulfilBatch(), bad)
			undo := errors.New("undo")
			var out storegate.Outcome
			err := db.Write(ctx, func(ctx context.Context, tx *store.Tx) error {
				out = l.DeliverTxMany(ctx, tx, cs)
				return undo
			})
			if !errors.Is(err, undo) {
				t.Fatalf("write = %v", err)
			}
			if out.Verdict != storegate.VerdictDead || out.Code != string(storegate.CodeInvalidParameter) {
				t.Errorf("DeliverTxMany = %+v, want dead %s", out, storegate.CodeInvalidParameter)
			}
			for _, p := range []string{"p1", "p2"} {
				if got := balances(t, l, p); len(got) != 0 {
					t.Errorf("%s has wallets %v after the undone batch", p, got)
				}
			}
		})
	}
}
