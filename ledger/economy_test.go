package ledger_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/ledger"
)

// fakeRevoker is a hand-written custom revocation service.
type fakeRevoker struct {
	mu     sync.Mutex
	answer func(ledger.CustomRequest) (ledger.CustomAnswer, error)
	calls  []ledger.CustomRequest
}

func (f *fakeRevoker) Revoke(_ context.Context, r ledger.CustomRequest) (ledger.CustomAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r)
	return f.answer(r)
}

func answering(status, reason string, custom map[string]string) *fakeRevoker {
	return &fakeRevoker{answer: func(ledger.CustomRequest) (ledger.CustomAnswer, error) {
		return ledger.CustomAnswer{Status: status, Reason: reason, CustomRevocation: custom}, nil
	}}
}

func spend(key string, amount int64) ledger.Spend {
	return ledger.Spend{PlayerID: "p1", Currency: "CRYSTALS", Amount: amount, Key: key, Reason: "buy a hat"}
}

func history(t *testing.T, l *ledger.Ledger, player string) []ledger.Entry {
	t.Helper()
	es, _, err := l.History(context.Background(), player, ledger.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// A currency pack bought on Epic, spent, then charged back.
// Under each currency strategy the chargeback has its documented outcome,
// spending is refused exactly when the total is negative, a later purchase
// restores the wallet, and the history tells the whole story.
func TestEpicCurrencyPack_ChargebackUnderEachStrategy(t *testing.T) {
	tests := []struct {
		name   string
		rules  ledger.Rules
		status string // of the chargeback's revocation
		// balance after the chargeback; whether a spend is then refused;
		// balance after the later purchase (and a spend of 10).
		afterChargeback int64
		blocked         bool
		final           int64
		reason          string // in the failed or skipped entry
		skipped         bool
	}{
		{name: "allow_negative (default)", rules: ledger.Rules{},
			status: ledger.StatusSuccess, afterChargeback: -80, blocked: true, final: 10},
		{name: "fail_if_negative", rules: ledger.Rules{Currency: ledger.CurrencyFailIfNegative},
			status: ledger.StatusFail, afterChargeback: 20, blocked: false, final: 110,
			reason: "the CRYSTALS balance on Epic is 20: taking back 100 would leave it at -80, below 0"},
		{name: "custom says SUCCESS", rules: ledger.Rules{Currency: ledger.StrategyCustom, Custom: answering("SUCCESS", "", map[string]string{"case": "42"})},
			status: ledger.StatusSuccess, afterChargeback: -80, blocked: true, final: 10},
		{name: "custom says FAIL", rules: ledger.Rules{Currency: ledger.StrategyCustom, Custom: answering("FAIL", "goodwill: keep it", nil)},
			status: ledger.StatusFail, afterChargeback: 20, blocked: false, final: 110,
			reason: "custom revocation service: goodwill: keep it"},
		{name: "custom handled it itself", rules: ledger.Rules{Currency: ledger.StrategyCustom, Custom: answering("SUCCESS", "", map[string]string{"action": "none"})},
			status: ledger.StatusSuccess, afterChargeback: 20, blocked: false, final: 110,
			reason: "handled by the custom revocation service", skipped: true},
	}
	for _, be := range backends() {
		for _, tc := range tests {
			t.Run(be.name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				l, _, clock := newLedger(t, be, ledger.Config{Revocation: tc.rules})
				buy := fulfill("epic.order.1", "p1", storegate.PlatformEpic, coins("CRYSTALS", 100))
				buy.OrderRef = "epic entitlement E1"
				if _, err := l.Fulfill(ctx, buy); err != nil {
					t.Fatal(err)
				}
				clock.Advance(time.Minute)
				if _, err := l.Spend(ctx, spend("s1", 80)); err != nil {
					t.Fatalf("spend 80 of 100: %v", err)
				}
				clock.Advance(time.Minute)
				cb := revoke("epic.order.1.revoke", "p1", storegate.PlatformEpic, "epic.order.1")
				cb.Reason = "chargeback"
				res, err := l.Revoke(ctx, cb)
				if err != nil {
					t.Fatal(err)
				}
				rev := res.Revocation
				if rev == nil || rev.Status != tc.status || rev.Source != "IAP" || rev.TransactionID != "epic.order.1" || rev.Reason != "chargeback" {
					t.Fatalf("revocation = %+v, want status %s, source IAP, transaction epic.order.1, reason chargeback", rev, tc.status)
				}
				ir := rev.ItemRevocations[0]
				if ir.ItemID != "CRYSTALS" || ir.ItemType != storegate.ItemCurrency || ir.Quantity != 100 || ir.Skipped != tc.skipped || ir.Reason != tc.reason {
					t.Errorf("item revocation = %+v, want CRYSTALS ×100, skipped %v, reason %q", ir, tc.skipped, tc.reason)
				}
				if tc.status == ledger.StatusFail && (len(rev.StateInfo.FailedList) != 1 || rev.StateInfo.FailedList[0].Error != tc.reason) {
					t.Errorf("failed list = %+v, want the currency with its reason", rev.StateInfo.FailedList)
				}
				if got := balances(t, l, "p1")["CRYSTALS"]; got != tc.afterChargeback {
					t.Fatalf("balance after the chargeback = %d, want %d", got, tc.afterChargeback)
				}
				ws, _ := l.Wallets(ctx, "p1")
				if ws[0].SpendingBlocked != tc.blocked {
					t.Errorf("spending_blocked = %v, want %v", ws[0].SpendingBlocked, tc.blocked)
				}
				before := len(history(t, l, "p1"))
				_, err = l.Spend(ctx, spend("s2", 10))
				if tc.blocked {
					if got := storegate.ErrorCode(err); got != storegate.CodeInsufficientFunds || !strings.Contains(err.Error(), "negative") {
						t.Fatalf("spend with a negative total: err = %v, want INSUFFICIENT_FUNDS about the negative balance", err)
					}
					if got := len(history(t, l, "p1")); got != before {
						t.Errorf("a refused spend wrote %d entries", got-before)
					}
				} else if err != nil {
					t.Fatalf("spend with a positive total: %v", err)
				}
				clock.Advance(time.Minute)
				if _, err := l.Fulfill(ctx, fulfill("epic.order.2", "p1", storegate.PlatformEpic, coins("CRYSTALS", 100))); err != nil {
					t.Fatal(err)
				}
				if tc.blocked {
					if _, err := l.Spend(ctx, spend("s2", 10)); err != nil {
						t.Fatalf("the same spend after the purchase restored the wallet: %v", err)
					}
				}
				if got := balances(t, l, "p1")["CRYSTALS"]; got != tc.final {
					t.Errorf("final balance = %d, want %d", got, tc.final)
				}
				if tc.name != "allow_negative (default)" {
					return
				}
				// The history tells the story, entry by entry.
				hist := history(t, l, "p1")
				var got []string
				for _, e := range hist {
					got = append(got, fmt.Sprintf("%s %s %+d → %d (total %d) %s", e.Kind, e.Platform, e.Amount, e.BalanceAfter, e.TotalAfter, e.Reason))
				}
				want := []string{
					"fulfill Epic +100 → 100 (total 100) fulfill",
					"spend Epic -80 → 20 (total 20) buy a hat",
					"revoke Epic -100 → -80 (total -80) chargeback",
					"fulfill Epic +100 → 20 (total 20) fulfill",
					"spend Epic -10 → 10 (total 10) buy a hat",
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("history:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if hist[2].Reverses == nil || *hist[2].Reverses != hist[0].ID {
					t.Errorf("the claw-back reverses %v, want the purchase's entry %d", hist[2].Reverses, hist[0].ID)
				}
				if hist[0].TransactionID != "epic.order.1" || hist[0].OrderRef != "epic entitlement E1" || hist[0].Source != "xsolla" {
					t.Errorf("purchase entry = %+v, want its transaction, order and sender", hist[0])
				}
				if hist[1].TransactionID != "spend/p1/s1" || hist[1].Source != "game" || !hist[1].CreatedAt.Equal(start.Add(time.Minute)) {
					t.Errorf("spend entry = %+v", hist[1])
				}
			})
		}
	}
}

// The custom strategy is asked once per revoke with request ids stable
// across retries, and a replay asks nothing.
func TestRevoke_CustomServiceOutageRetriesWithTheSameRequestIDs(t *testing.T) {
	ctx := context.Background()
	down := true
	svc := &fakeRevoker{}
	svc.answer = func(ledger.CustomRequest) (ledger.CustomAnswer, error) {
		if down {
			return ledger.CustomAnswer{}, fmt.Errorf("connection refused")
		}
		return ledger.CustomAnswer{Status: "SUCCESS"}, nil
	}
	l, _ := openLedger(t, ledger.Config{Revocation: ledger.Rules{Currency: ledger.StrategyCustom, Custom: svc}})
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformEpic, coins("CRYSTALS", 100), item("sword", storegate.ItemDurable, 1))); err != nil {
		t.Fatal(err)
	}
	rv := revoke("t1.revoke", "p1", storegate.PlatformEpic, "t1")
	out := l.Deliver(ctx, rv)
	if out.Verdict != storegate.VerdictRetry || out.Deferred || out.Code != "CUSTOM_REVOCATION" {
		t.Fatalf("delivery with the service down = %+v, want a retry coded CUSTOM_REVOCATION", out)
	}
	if got := balances(t, l, "p1")["CRYSTALS"]; got != 100 {
		t.Fatalf("balance after a failed attempt = %d, want 100 (nothing taken)", got)
	}
	if got := entitlements(t, l, "p1", false)["sword"]; got != "active" {
		t.Fatalf("sword after a failed attempt is %q, want active", got)
	}
	down = false
	if out := l.Deliver(ctx, rv); out.Verdict != storegate.VerdictDone {
		t.Fatalf("delivery with the service up = %+v", out)
	}
	l.Deliver(ctx, rv) // a replay asks nothing
	if got, want := len(svc.calls), 2; got != want {
		t.Fatalf("service called %d times, want %d (one failed, one answered, none for the replay)", got, want)
	}
	if svc.calls[0].RequestID != svc.calls[1].RequestID || svc.calls[0].RequestID != "t1.revoke/0/0" {
		t.Errorf("request ids %q and %q, want both t1.revoke/0/0", svc.calls[0].RequestID, svc.calls[1].RequestID)
	}
	c := svc.calls[1]
	if c.EntryType != "CURRENCY" || c.Quantity != 100 || c.UserID != "p1" || c.Namespace != "storegate" ||
		c.Currency == nil || c.Currency.CurrencyCode != "CRYSTALS" || c.Currency.BalanceOrigin != "Epic" || c.Platform != storegate.PlatformEpic {
		t.Errorf("request = %+v", c)
	}
	if got, want := balances(t, l, "p1")["CRYSTALS"], int64(0); got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
	if got := entitlements(t, l, "p1", true)["sword"]; got != "revoked" {
		t.Errorf("sword is %q, want revoked by the default durable rule", got)
	}
}
