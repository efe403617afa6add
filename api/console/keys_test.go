package console_test

import (
	"net/http"
	"strings"
	"testing"

	"storegate/internal/gatewaytest"
)

// The player page lists the player's game keys, each masked but for its
// last four characters, revoked ones marked; the whole key is nowhere on
// the page.
func TestPlayerPage_KeysMasked(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithCommerce(),
		gatewaytest.WithGameKeys(), gatewaytest.WithConsole())
	g.ImportKeys(t, "GAME-KEY-SECRET-7Q2X", "GAME-KEY-SECRET-9Z4W")
	for _, body := range []string{
		gatewaytest.OrderPaid(3001, "player-1", gatewaytest.KeySKU),
		gatewaytest.OrderPaid(3002, "player-1", gatewaytest.KeySKU),
		gatewaytest.OrderCanceled(3002, "player-1"),
	} {
		if resp := g.Post(t, "xs", body); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("webhook: %d", resp.StatusCode)
		}
		g.Drain(t)
	}
	c := newClient(t, g)
	c.signIn("alice")
	p := c.get("/console/players/player-1")
	if p.StatusCode != http.StatusOK {
		t.Fatalf("player page: %d\n%s", p.StatusCode, p.Body)
	}
	i := strings.Index(p.Body, `<section id="keys">`)
	if i < 0 {
		t.Fatalf("no keys section:\n%s", p.Body)
	}
	keys := p.Body[i:]
	for _, want := range []string{"····7Q2X", "····9Z4W", "xsolla.xs.order.3001", "xsolla.xs.order.3002", ">active<", ">revoked<", gatewaytest.KeySKU} {
		if !strings.Contains(keys, want) {
			t.Errorf("keys section lacks %q:\n%s", want, keys)
		}
	}
	if strings.Contains(p.Body, "SECRET") {
		t.Errorf("the page shows a whole key:\n%s", p.Body)
	}
}
