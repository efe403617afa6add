package console_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"storegate"
	"storegate/internal/gatewaytest"
	"storegate/webhooks"
)

// paidAndRefunded gives player-1 order 1001 (granted) and order 1002
// (granted, then canceled and clawed back), and player-2 order 2001.
func paidAndRefunded(t testing.TB, g *gatewaytest.Gateway) {
	t.Helper()
	for _, body := range []string{
		gatewaytest.OrderPaid(1001, "player-1", "crystals_100", "potion"),
		gatewaytest.OrderPaid(1002, "player-1", "crystals_100"),
		gatewaytest.OrderCanceled(1002, "player-1"),
		gatewaytest.OrderPaid(2001, "player-2", "crystals_100*3"),
	} {
		if resp := g.Post(t, "xs", body); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("webhook: %d", resp.StatusCode)
		}
		g.Drain(t)
	}
}

// A player is found by id, by an order's or a command's transaction id, by
// the sender's bare order id and by the order reference, each leading
// straight to the player's page.
func TestSearch_FindsThePlayer(t *testing.T) {
	g := consoleGateway(t)
	paidAndRefunded(t, g)
	c := newClient(t, g)
	c.signIn("alice")
	for _, q := range []string{"player-1", "xsolla.xs.order.1001", "xsolla.xs.order.1002.revoke", "1002", "order 1001", " 1001 "} {
		wantRedirect(t, c.get("/console/search?q="+url.QueryEscape(q)), "/console/players/player-1")
	}
	p := c.get("/console/search?q=" + url.QueryEscape("no-such-order"))
	if p.StatusCode != http.StatusOK || !strings.Contains(p.Body, `id="nothing"`) {
		t.Fatalf("search for nothing: %d\n%s", p.StatusCode, p.Body)
	}
}

// The player page shows each balance as text, whether spending is
// blocked, entitlements with their uses, every order's timeline with the
// sender and the answer given, the revocation with its items, and the
// ledger; nothing of another player.
func TestPlayerPage_ShowsThePlayerAndNoOneElse(t *testing.T) {
	g := consoleGateway(t)
	paidAndRefunded(t, g)
	c := newClient(t, g)
	c.signIn("alice")
	p := c.get("/console/players/player-1")
	if p.StatusCode != http.StatusOK {
		t.Fatalf("player page: %d\n%s", p.StatusCode, p.Body)
	}
	text := plain(p.Body)
	for _, want := range []string{
		"CRYSTALS 100 Xsolla: 100 allowed",                  // the wallet: 200 granted, 100 clawed back
		"potion consumable Xsolla 3 3 0 active",             // an entitlement with its uses
		"xsolla.xs.order.1002 revoked From xs , order 1002", // the refunded order
		"received order_canceled answered 204",              // a step with the answer given
		"revoked revoke order_canceled",
		"granted fulfill",
		"xsolla.xs.order.1002.revoke SUCCESS · REVOKED", // the revocation
		"CRYSTALS crystals_100 100 allow_negative SUCCESS",
		"revoke CRYSTALS Xsolla -100 100 100 order_canceled", // the ledger, newest first
		"fulfill CRYSTALS Xsolla +100 100 100 fulfill",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q:\n%s", want, text)
		}
	}
	for _, other := range []string{"player-2", "2001", "300"} {
		if strings.Contains(p.Body, other) {
			t.Errorf("player-1's page shows %q, of player-2", other)
		}
	}
	if strings.Contains(p.Body, "<script") {
		t.Error("the page has a script")
	}
}

var tags = regexp.MustCompile(`<[^>]*>`)

// plain is a page's text as a reader sees it: no tags, spaces collapsed.
func plain(page string) string {
	return strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(page, " "))), " ")
}

// An order a partner sold for crystals shows on the player's page as the
// spend that paid for it, with the order's reference, and after its
// cancellation as the credit that gave it back.
func TestPlayerPage_ShowsAnOrderPaidFromTheWallet(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithConsole(),
		gatewaytest.WithPartner("basic", func(p *webhooks.PartnerSource) {
			p.Pricing.Prices = map[string]map[string]int64{"starter_sword": {"CRYSTALS": 500}}
		}))
	g.Grant(t, "steam.seed", storegate.PlatformSteam, gatewaytest.Crystals(700))
	o := g.CreateOrder(t, "player-1", "CRYSTALS", `[{"sku":"starter_sword","quantity":1}]`)
	var paid struct {
		PaymentID int64 `json:"payment_id"`
	}
	if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", "500", "CRYSTALS", "bank-1"), &paid); s != 200 {
		t.Fatalf("pay: %d", s)
	}
	if s := g.Partner(t, "POST", "/cancellations", fmt.Sprintf(`{"payment_id":%d}`, paid.PaymentID), nil); s != 200 {
		t.Fatalf("cancel: %d", s)
	}
	g.Drain(t)
	c := newClient(t, g)
	c.signIn("alice")
	text := plain(c.get("/console/players/player-1").Body)
	ref := fmt.Sprint("partner order ", o.OrderID)
	for _, want := range []string{
		"spend CRYSTALS Steam -500 200 200 payment, " + ref + " bank",
		"revoke CRYSTALS Steam +500 700 700 payment_cancelled, " + ref + " bank",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q:\n%s", want, text)
		}
	}
}
