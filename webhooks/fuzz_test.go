package webhooks_test

import (
	"net/http"
	"testing"

	"storegate/internal/gatewaytest"
)

// FuzzXsollaWebhook sends arbitrary, correctly signed bodies: the gateway must
// never panic or answer 5xx, and whatever it refuses leaves nothing behind.
func FuzzXsollaWebhook(f *testing.F) {
	for _, seed := range []string{
		gatewaytest.OrderPaid(1, "player-1", "crystals_100"),
		gatewaytest.OrderCanceled(1, "player-1"),
		`{"notification_type":"user_validation","user":{"id":"player-1"}}`,
		`{"notification_type":"partial_refund","user":{"id":"player-1"},"transaction":{"id":1},"items":[{"sku":"potion","quantity":2}]}`,
		`{"notification_type":"create_external_transaction","order_id":3,"user":{"external_id":"player-1"}}`,
		`{"notification_type":1}`, `[]`, `null`, `{"notification_type":"order_paid","items":[{"sku":"crystals_100","quantity":1e300}]}`,
	} {
		f.Add(seed)
	}
	g := gatewaytest.New(f)
	f.Fuzz(func(t *testing.T, body string) {
		before := g.Rows(t)
		resp := g.Post(t, "xs", body)
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for %q", resp.StatusCode, body)
		}
		if resp.StatusCode >= 400 && g.Rows(t) != before {
			t.Fatalf("refused with %d but stored rows for %q", resp.StatusCode, body)
		}
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK && resp.StatusCode < 400 {
			t.Fatalf("unexpected status %d", resp.StatusCode)
		}
	})
}
