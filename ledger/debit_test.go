package ledger_test

import (
	"context"
	"testing"

	"storegate"
	"storegate/ledger"
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
