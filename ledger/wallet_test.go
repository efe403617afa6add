package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"storegate"
	"storegate/ledger"
	"storegate/store"
)

// rowCount counts every row an economy write can leave behind.
func rowCount(t *testing.T, db *store.DB) int {
	t.Helper()
	total := 0
	for _, table := range []string{"ledger_entries", "ledger_transactions", "ledger_revocations", "ledger_players"} {
		var n int
		if err := db.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	// Balances and use counts change in place: count them too.
	for _, q := range []string{"SELECT COALESCE(SUM(balance), 0) FROM ledger_wallets", "SELECT COALESCE(SUM(use_count), 0) FROM ledger_entitlements"} {
		var sum int64
		if err := db.QueryRow(context.Background(), q).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		total += int(sum) * 1000
	}
	return total
}

// fund gives p1 CRYSTALS on several platforms.
func fund(t *testing.T, l *ledger.Ledger, amounts map[storegate.Platform]int64) {
	t.Helper()
	for p, n := range amounts {
		if _, err := l.Fulfill(context.Background(), fulfill("fund."+string(p), "p1", p, coins("CRYSTALS", n))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSpend_DebitsInSpendOrderOrOnePlatform(t *testing.T) {
	funds := map[storegate.Platform]int64{storegate.PlatformSystem: 10, storegate.PlatformSteam: 20, storegate.PlatformXsolla: 30, storegate.PlatformEpic: 50}
	tests := []struct {
		name    string
		order   []storegate.Platform
		spend   ledger.Spend
		debits  string
		balance int64
		code    storegate.Code
	}{
		{name: "across platforms, default order: unrefundable first",
			spend: spend("k", 45), debits: "[System:-10 Steam:-20 Xsolla:-15]", balance: 65},
		{name: "across platforms, configured order",
			order: []storegate.Platform{storegate.PlatformEpic}, spend: spend("k", 55), debits: "[Epic:-50 System:-5]", balance: 55},
		{name: "everything", spend: spend("k", 110), debits: "[System:-10 Steam:-20 Xsolla:-30 Epic:-50]", balance: 0},
		{name: "more than the total", spend: spend("k", 111), code: storegate.CodeInsufficientFunds},
		{name: "one platform", spend: ledger.Spend{PlayerID: "p1", Currency: "CRYSTALS", Amount: 20, Platform: storegate.PlatformSteam, Key: "k"},
			debits: "[Steam:-20]", balance: 90},
		{name: "more than one platform holds", spend: ledger.Spend{PlayerID: "p1", Currency: "CRYSTALS", Amount: 21, Platform: storegate.PlatformSteam, Key: "k"},
			code: storegate.CodeInsufficientFunds},
		{name: "a currency the player lacks", spend: ledger.Spend{PlayerID: "p1", Currency: "GOLD", Amount: 1, Key: "k"}, code: storegate.CodeInsufficientFunds},
		{name: "zero", spend: spend("k", 0), code: storegate.CodeInvalidParameter},
		{name: "negative", spend: spend("k", -5), code: storegate.CodeInvalidParameter},
		{name: "no key", spend: spend("", 5), code: storegate.CodeInvalidParameter},
		{name: "key with a slash", spend: spend("a/b", 5), code: storegate.CodeInvalidParameter},
		{name: "unknown platform", spend: ledger.Spend{PlayerID: "p1", Currency: "CRYSTALS", Amount: 1, Platform: "Nintendo", Key: "k"}, code: storegate.CodeInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, db := openLedger(t, ledger.Config{SpendOrder: tc.order})
			fund(t, l, funds)
			rows := rowCount(t, db)
			res, err := l.Spend(context.Background(), tc.spend)
			if tc.code != "" {
				if got := storegate.ErrorCode(err); got != tc.code {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
				if got := rowCount(t, db); got != rows {
					t.Errorf("a refused spend changed the store (%d → %d)", rows, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range res.Debits {
				got = append(got, fmt.Sprintf("%s:%d", d.Platform, d.Amount))
			}
			if fmt.Sprint(got) != tc.debits || res.Balance != tc.balance {
				t.Errorf("debits %v, balance %d; want %s, %d", got, res.Balance, tc.debits, tc.balance)
			}
			if b := balances(t, l, "p1")["CRYSTALS"]; b != tc.balance {
				t.Errorf("wallet total = %d, want %d", b, tc.balance)
			}
		})
	}
}

func TestSpend_NegativeTotalBlocksEvenAFundedPlatform(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	fund(t, l, map[storegate.Platform]int64{storegate.PlatformSteam: 40})
	if _, err := l.Fulfill(ctx, fulfill("e1", "p1", storegate.PlatformEpic, coins("CRYSTALS", 100))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Spend(ctx, ledger.Spend{PlayerID: "p1", Currency: "CRYSTALS", Amount: 100, Platform: storegate.PlatformEpic, Key: "k1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Revoke(ctx, revoke("e1.revoke", "p1", storegate.PlatformEpic, "e1")); err != nil {
		t.Fatal(err)
	}
	// Steam 40, Epic -100: the total is -60.
	_, err := l.Spend(ctx, ledger.Spend{PlayerID: "p1", Currency: "CRYSTALS", Amount: 10, Platform: storegate.PlatformSteam, Key: "k2"})
	if storegate.ErrorCode(err) != storegate.CodeInsufficientFunds {
		t.Fatalf("spend on Steam with a negative total: err = %v, want INSUFFICIENT_FUNDS", err)
	}
}

func TestSpend_IdempotencyKeyTakesEffectOnce(t *testing.T) {
	ctx := context.Background()
	l, db := openLedger(t, ledger.Config{})
	fund(t, l, map[storegate.Platform]int64{storegate.PlatformSteam: 100})
	first, err := l.Spend(ctx, spend("k1", 30))
	if err != nil || first.Replayed {
		t.Fatalf("first spend: %+v, %v", first, err)
	}
	rows := rowCount(t, db)
	again, err := l.Spend(ctx, spend("k1", 30))
	if err != nil || !again.Replayed || fmt.Sprint(again.Debits) != fmt.Sprint(first.Debits) || again.Balance != first.Balance {
		t.Fatalf("repeat = %+v (err %v), want the first result replayed", again, err)
	}
	if _, err := l.Spend(ctx, spend("k1", 31)); storegate.ErrorCode(err) != storegate.CodeConflict {
		t.Fatalf("same key, other amount: err = %v, want CONFLICT", err)
	}
	if got := rowCount(t, db); got != rows {
		t.Errorf("the repeat and the conflict changed the store")
	}
	// Keys are per player.
	if _, err := l.Spend(ctx, ledger.Spend{PlayerID: "p2", Currency: "CRYSTALS", Amount: 30, Key: "k1"}); storegate.ErrorCode(err) != storegate.CodeInsufficientFunds {
		t.Fatalf("another player's spend with the same key: err = %v, want its own INSUFFICIENT_FUNDS", err)
	}
	if got := balances(t, l, "p1")["CRYSTALS"]; got != 70 {
		t.Errorf("balance = %d, want 70", got)
	}
}

func TestAdjust_GrantsAndDebitsWithAuditTrail(t *testing.T) {
	ctx := context.Background()
	l, db := openLedger(t, ledger.Config{})
	grant := ledger.Adjustment{PlayerID: "p9", Currency: "CRYSTALS", Amount: 500, Reason: "outage 2026-11-01", Actor: "alice@support", Key: "inc-7"}
	res, err := l.Adjust(ctx, grant)
	if err != nil {
		t.Fatal(err)
	}
	if res.Platform != storegate.PlatformSystem || res.BalanceAfter != 500 || res.Balance != 500 || res.Replayed {
		t.Errorf("adjustment = %+v, want 500 on System", res)
	}
	if ok, _ := l.UserExists(ctx, "p9"); !ok {
		t.Error("an adjusted player does not exist")
	}
	again, err := l.Adjust(ctx, grant)
	if err != nil || !again.Replayed || again.EntryID != res.EntryID {
		t.Fatalf("repeat = %+v (err %v), want a replay", again, err)
	}
	e := history(t, l, "p9")
	if len(e) != 1 || e[0].Kind != "adjustment" || e[0].Actor != "alice@support" || e[0].Reason != "outage 2026-11-01" || e[0].Source != "admin" {
		t.Fatalf("history = %+v, want one adjustment by alice", e)
	}
	rows := rowCount(t, db)
	tests := []struct {
		name string
		adj  ledger.Adjustment
		code storegate.Code
	}{
		{"debit below zero", ledger.Adjustment{PlayerID: "p9", Currency: "CRYSTALS", Amount: -501, Reason: "r", Actor: "a", Key: "d1"}, storegate.CodeInsufficientFunds},
		{"no reason", ledger.Adjustment{PlayerID: "p9", Currency: "CRYSTALS", Amount: 1, Actor: "a", Key: "d2"}, storegate.CodeInvalidParameter},
		{"no actor", ledger.Adjustment{PlayerID: "p9", Currency: "CRYSTALS", Amount: 1, Reason: "r", Key: "d3"}, storegate.CodeInvalidParameter},
		{"zero", ledger.Adjustment{PlayerID: "p9", Currency: "CRYSTALS", Reason: "r", Actor: "a", Key: "d4"}, storegate.CodeInvalidParameter},
		{"same key, other request", ledger.Adjustment{PlayerID: "p9", Currency: "CRYSTALS", Amount: 5, Reason: "r", Actor: "a", Key: "inc-7"}, storegate.CodeConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Adjust(ctx, tc.adj); storegate.ErrorCode(err) != tc.code {
				t.Errorf("err = %v, want %s", err, tc.code)
			}
		})
	}
	if got := rowCount(t, db); got != rows {
		t.Errorf("refused adjustments changed the store")
	}
	res, err = l.Adjust(ctx, ledger.Adjustment{PlayerID: "p9", Currency: "CRYSTALS", Amount: -501, Reason: "fraud", Actor: "bob", Key: "d5", AllowNegative: true})
	if err != nil || res.BalanceAfter != -1 {
		t.Fatalf("deliberate debit below zero = %+v (err %v), want balance -1", res, err)
	}
}
