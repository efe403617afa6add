package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"storegate/internal/gatewaytest"
)

// The health page shows each target's breaker, backlog, oldest pending
// command, dead letters and last error, each source's backlog and last
// refusal, and the rates of the last minutes.
func TestHealth_SourcesAndTargets(t *testing.T) {
	g := consoleGateway(t)
	g.Health.Sample()
	g.DeadLetter(t, 4001, "player-1")
	g.Clock.Advance(time.Minute)
	for i, body := range []string{gatewaytest.OrderPaid(4002, "player-1", "potion"), gatewaytest.OrderPaid(4003, "player-2", "potion")} {
		if resp := g.Post(t, "xs", body); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("order %d: %d", i, resp.StatusCode)
		}
	}
	req := gatewaytest.SignedRequest("xs", gatewaytest.OrderPaid(4004, "player-1", "potion"))
	req.Header.Set("Authorization", "Signature "+strings.Repeat("0", 40))
	if resp := g.Do(t, req); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad signature: %d", resp.StatusCode)
	}
	g.Metrics.BreakerChanged("ledger", "closed", "open")
	g.Clock.Advance(30 * time.Second)
	g.Health.Sample()

	c := newClient(t, g)
	c.signIn("alice")
	p := c.get("/console/health")
	text := plain(p.Body)
	for _, want := range []string{
		// open, 2 pending since the second minute, 1 dead letter and its error; no delivery yet.
		"ledger open 2 2026-11-01 12:01:00Z 1 dead http=404 code=30343: AGS answered 404: Item of sku [crystals_100] does not exist (2026-11-01 12:00:00Z) 0 · 0 · 0 · 0 · 0",
		"xs 2 2026-11-01 12:01:00Z answered HTTP 400 ×1 (2026-11-01 12:01:30Z) 0 · 0 · 0 · 0 · 4",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the health page does not show %q:\n%s", want, text)
		}
	}
}
