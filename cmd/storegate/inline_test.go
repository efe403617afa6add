package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"storegate"
	"storegate/signing"
)

// With the embedded ledger as target, a grant commits with the webhook that
// owes it: the wallet shows it as soon as the 204 is back, with no
// dispatcher running (NewGateway starts none), and a refund's claw-back
// likewise. With delivery turned off in the process, both wait in the outbox.
func TestGateway_LedgerGrantCommitsWithItsWebhook(t *testing.T) {
	const secret, admin = "inline-xsolla-secret", "inline-admin-token-0123"
	for _, disabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("dispatch disabled=%v", disabled), func(t *testing.T) {
			g := testGateway(t, fmt.Sprintf(`
admin: {tokens: [%q]}
dispatch: {disabled: %v}
sources:
  - {name: xs, kind: xsolla, secrets: [%q], target: ledger, allow_ips: ["0.0.0.0"]}
targets:
  - {name: ledger, kind: ledger, player_pattern: "^p[0-9]+$"}
catalog:
  - {sku: crystals_100, type: coin, currency: CRYSTALS, amount: 100}
`, admin, disabled, secret), nil)
			post := func(body string) {
				t.Helper()
				req := httptest.NewRequest(http.MethodPost, "/webhooks/xsolla/xs", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", signing.XsollaSignature([]byte(body), secret))
				resp, err := g.App.Test(req, -1)
				if err != nil || resp.StatusCode != 204 {
					t.Fatalf("POST %.40s: %v %v", body, resp.StatusCode, err)
				}
			}
			balance := func() int64 {
				t.Helper()
				req := httptest.NewRequest(http.MethodGet, "/admin/v1/players/p7/wallets", nil)
				req.Header.Set("Authorization", "Bearer "+admin)
				resp, err := g.App.Test(req, -1)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("wallets: %v %v", resp.StatusCode, err)
				}
				var out struct{ Wallets []struct{ Balance int64 } }
				json.NewDecoder(resp.Body).Decode(&out)
				if len(out.Wallets) == 0 {
					return 0
				}
				return out.Wallets[0].Balance
			}
			state := func(id string) storegate.State {
				t.Helper()
				ci, err := g.DB.Command(context.Background(), id)
				if err != nil {
					t.Fatalf("command %s: %v", id, err)
				}
				return ci.State
			}
			grant, revoke := "xsolla.xs.order.41", "xsolla.xs.order.41.revoke"

			post(`{"notification_type":"order_paid","order":{"id":41},"user":{"external_id":"p7"},"items":[{"sku":"crystals_100","quantity":1}]}`)
			want, wantState := int64(100), storegate.StateDone
			if disabled {
				want, wantState = 0, storegate.StatePending
			}
			if got := balance(); got != want {
				t.Fatalf("CRYSTALS = %d right after the 204, want %d", got, want)
			}
			if got := state(grant); got != wantState {
				t.Fatalf("grant is %s, want %s", got, wantState)
			}

			post(`{"notification_type":"order_canceled","order":{"id":41,"status":"canceled"},"user":{"external_id":"p7"},"items":[{"sku":"crystals_100","quantity":1}]}`)
			if got := balance(); got != 0 {
				t.Fatalf("CRYSTALS = %d right after the cancel's 204, want 0", got)
			}
			if got := state(revoke); got != wantState {
				t.Fatalf("revoke is %s, want %s", got, wantState)
			}
			// Deliveries at accept count in the dispatch metrics like any other.
			scrape := httptest.NewRecorder()
			g.metricsServer().Handler.ServeHTTP(scrape, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			raw := scrape.Body.Bytes()
			line := `storegate_dispatch_total{target="ledger",verdict="done"} 2`
			if got := strings.Contains(string(raw), line+"\n"); got == disabled {
				t.Fatalf("/metrics has %q: %v, want %v", line, got, !disabled)
			}
		})
	}
}
