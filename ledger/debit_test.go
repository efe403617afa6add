package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"storegate"
	"storegate/internal/fakeclock"
	"storegate/internal/pgtest"
	"storegate/ledger"
	"storegate/store"
	"storegate/store/engine"
)

// A partner's payment in CRYSTALS: the hold debits the wallet once (a
// second hold and the grant find it taken), a hold the wallet cannot cover
// debits nothing, and the revoke of the order credits the debit back once,
// on the platforms it was taken from.
func TestHold_DebitsOnceAndTheRevokeCreditsItBackOnce(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			l, db, _ := newLedger(t, be, ledger.Config{})
			hold := func(c storegate.Command) error {
				return db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error { return l.Hold(ctx, tx, []storegate.Command{c}) })
			}
			for _, seed := range []storegate.Command{
				fulfill("steam.1", "p1", storegate.PlatformSteam, coins("CRYSTALS", 300)),
				fulfill("epic.1", "p1", storegate.PlatformEpic, coins("CRYSTALS", 400)),
			} {
				if _, err := l.Fulfill(ctx, seed); err != nil {
					t.Fatal(err)
				}
			}
			c := fulfill("partner.p.order.1", "p1", storegate.PlatformOther, item("sword", storegate.ItemDurable, 1))
			c.Debit = &storegate.Debit{Currency: "CRYSTALS", Amount: 500}
			for range 2 {
				if err := hold(c); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.Fulfill(ctx, c); err != nil {
				t.Fatal(err)
			}
			if got := balances(t, l, "p1")["CRYSTALS"]; got != 200 {
				t.Fatalf("CRYSTALS = %d after two holds and the grant, want 200", got)
			}
			short := fulfill("partner.p.order.2", "p1", storegate.PlatformOther, item("sword", storegate.ItemDurable, 1))
			short.Debit = &storegate.Debit{Currency: "CRYSTALS", Amount: 201}
			if err := hold(short); storegate.ErrorCode(err) != storegate.CodeInsufficientFunds {
				t.Fatalf("short hold: %v, want INSUFFICIENT_FUNDS", err)
			}
			if got := balances(t, l, "p1")["CRYSTALS"]; got != 200 {
				t.Fatalf("CRYSTALS = %d after a refused hold, want 200", got)
			}
			for _, id := range []string{"partner.p.order.1.revoke", "partner.p.order.1.revoke", "partner.p.order.1.revoke2"} {
				if _, err := l.Revoke(ctx, revoke(id, "p1", storegate.PlatformOther, c.ID)); err != nil {
					t.Fatal(err)
				}
			}
			ws, err := l.Wallets(ctx, "p1")
			if err != nil || len(ws) != 1 || ws[0].Balance != 700 ||
				ws[0].Platforms[0] != (ledger.PlatformBalance{Platform: storegate.PlatformSteam, Balance: 300}) ||
				ws[0].Platforms[1] != (ledger.PlatformBalance{Platform: storegate.PlatformEpic, Balance: 400}) {
				t.Fatalf("wallets after the revokes = %+v %v, want Steam 300 and Epic 400 again", ws, err)
			}
		})
	}
}

// Two replicas on one PostgreSQL database hold partner payments for one
// player at once, each payment twice (once on each replica), while a game
// server spends from the same wallet: every debit is taken at most once, the
// wallet never covers more than it holds, and no balance goes negative.
func TestHold_TwoReplicasDebitEachPaymentOnceAndNeverOverdraw(t *testing.T) {
	dsn := pgtest.DSN(t)
	const orders, price = 30, 30
	ctx := context.Background()
	type replica struct {
		l  *ledger.Ledger
		db *store.DB
	}
	var rs []replica
	for range 2 {
		db := openStore(t, dsn, fakeclock.New(start))
		l, err := ledger.New(db, ledger.Config{})
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, replica{l, db})
	}
	for _, seed := range []storegate.Command{
		fulfill("steam.1", "p1", storegate.PlatformSteam, coins("CRYSTALS", 250)),
		fulfill("epic.1", "p1", storegate.PlatformEpic, coins("CRYSTALS", 250)),
	} {
		if _, err := rs[0].l.Fulfill(ctx, seed); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make([][2]error, orders)
	for i := range orders {
		c := fulfill(fmt.Sprint("partner.p.order.", i), "p1", storegate.PlatformOther, item("sword", storegate.ItemDurable, 1))
		c.Debit = &storegate.Debit{Currency: "CRYSTALS", Amount: price}
		for k, r := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				errs[i][k] = r.db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error { return r.l.Hold(ctx, tx, []storegate.Command{c}) })
			}()
		}
	}
	close(gate)
	wg.Wait()
	for i, e := range errs {
		for _, err := range e {
			if err != nil && storegate.ErrorCode(err) != storegate.CodeInsufficientFunds {
				t.Errorf("order %d: %v", i, err)
			}
		}
	}
	var debits, entries int64
	if err := rs[0].db.QueryRow(ctx, `SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'spend'`).Scan(&debits); err != nil {
		t.Fatal(err)
	}
	if err := rs[0].db.QueryRow(ctx, `SELECT CAST(-COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_entries WHERE kind = 'spend'`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	b := balances(t, rs[1].l, "p1")
	if debits != 500/price || entries != debits*price || b["CRYSTALS"] != 500-entries || b["CRYSTALS/Steam"] < 0 || b["CRYSTALS/Epic"] < 0 {
		t.Errorf("%d debits of %d CRYSTALS, %d taken by entries, wallets %v: want %d debits and 500 - taken left", debits, price, entries, b, 500/price)
	}
	// Each order held on both replicas agrees: paid on both or refused on both.
	for i, e := range errs {
		if (e[0] == nil) != (e[1] == nil) {
			t.Errorf("order %d: replica A %v, replica B %v", i, e[0], e[1])
		}
	}
}

// A partner's cancellation can reach the ledger before the grant (the
// dispatcher on PostgreSQL claims them apart): the revoke waits for the
// grant, and once both are applied the debit is credited back once, however
// often the revoke is delivered again.
func TestHold_CancelBeforeTheGrantCreditsBackOnceTheGrantIsApplied(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			l, db, _ := newLedger(t, be, ledger.Config{})
			if _, err := l.Fulfill(ctx, fulfill("steam.1", "p1", storegate.PlatformSteam, coins("CRYSTALS", 300))); err != nil {
				t.Fatal(err)
			}
			c := fulfill("partner.p.order.1", "p1", storegate.PlatformOther, item("sword", storegate.ItemDurable, 1))
			c.Debit = &storegate.Debit{Currency: "CRYSTALS", Amount: 120}
			if err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error { return l.Hold(ctx, tx, []storegate.Command{c}) }); err != nil {
				t.Fatal(err)
			}
			rv := revoke("partner.p.order.1.revoke", "p1", storegate.PlatformOther, c.ID)
			if _, err := l.Revoke(ctx, rv); !errors.Is(err, ledger.ErrNotGranted) {
				t.Fatalf("revoke before the grant: %v, want ErrNotGranted", err)
			}
			if got := balances(t, l, "p1")["CRYSTALS"]; got != 180 {
				t.Fatalf("CRYSTALS = %d after a revoke that waits, want 180", got)
			}
			if _, err := l.Fulfill(ctx, c); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := l.Revoke(ctx, rv); err != nil {
					t.Fatal(err)
				}
			}
			if got := balances(t, l, "p1"); got["CRYSTALS"] != 300 || got["CRYSTALS/Steam"] != 300 {
				t.Fatalf("wallets = %v after the cancel, want 300 on Steam", got)
			}
		})
	}
}
