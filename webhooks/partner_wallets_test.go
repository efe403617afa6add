package webhooks_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"storegate"
	"storegate/internal/gatewaytest"
	"storegate/webhooks"
)

// swordForCrystals has the partner sell the Starter Sword for 500 CRYSTALS,
// the currency the catalog's crystals_100 grants, and tax German users 19%
// (a country rate, which never applies to a virtual currency).
func swordForCrystals(p *webhooks.PartnerSource) {
	p.Pricing.Prices = map[string]map[string]int64{"starter_sword": {"CRYSTALS": 500}}
	p.Pricing.Taxes.Countries = map[string]int64{"DE": 190_000}
}

func TestPartner_OrderInCrystals_PaymentDebitsOnce_CancelCreditsBackOnce(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", swordForCrystals))
	// 300 bought on Steam and 400 on Epic: the debit drains Steam first,
	// as a game server's spend would, and the credit back restores each.
	g.Grant(t, "steam.seed", storegate.PlatformSteam, gatewaytest.Crystals(300))
	g.Grant(t, "epic.seed", storegate.PlatformEpic, gatewaytest.Crystals(400))

	var o gatewaytest.OrderAnswer
	body := fmt.Sprintf(`{"user_token":%q,"currency":"CRYSTALS","items":[{"sku":"starter_sword","quantity":1}]}`, g.UserTokenIn(t, "player-1", "DE"))
	if s := g.Partner(t, "POST", "/orders", body, &o); s != 200 {
		t.Fatalf("orders: %d %+v", s, o)
	}
	if o.Currency != "CRYSTALS" || o.Price.Currency != "CRYSTALS" || o.Price.Amount != "500" || o.Price.AmountWithoutTax != "500" ||
		o.Price.Tax.Percent != "0" || o.Price.Tax.Amount != "0" || len(o.Items) != 1 || o.Items[0].UnitPrice != "500" {
		t.Fatalf("order = %+v, want 500 CRYSTALS in whole units, untaxed", o)
	}
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 700 {
		t.Fatalf("CRYSTALS = %d after the order, want 700: an order debits nothing", got)
	}

	var first, again struct {
		PaymentID int64 `json:"payment_id"`
	}
	pay := gatewaytest.PayBody(o.OrderID, "player-1", "500", "CRYSTALS", "bank-vc-1")
	if s := g.Partner(t, "POST", "/payments", pay, &first); s != 200 || first.PaymentID == 0 {
		t.Fatalf("pay: %d %+v", s, first)
	}
	if s := g.Partner(t, "POST", "/payments", pay, &again); s != 200 || again.PaymentID != first.PaymentID {
		t.Fatalf("repeated pay: %d %+v, want 200 and payment %d", s, again, first.PaymentID)
	}
	g.Drain(t)
	if s := g.Partner(t, "POST", "/payments", pay, &again); s != 200 || again.PaymentID != first.PaymentID {
		t.Fatalf("pay repeated after the grant: %d %+v", s, again)
	}
	steam, epic := g.PlatformBalance(t, "player-1", "CRYSTALS", storegate.PlatformSteam), g.PlatformBalance(t, "player-1", "CRYSTALS", storegate.PlatformEpic)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 200 || steam != 0 || epic != 200 {
		t.Fatalf("CRYSTALS = %d (Steam %d, Epic %d) after three notifications, want one debit: 200 (0, 200)", got, steam, epic)
	}
	if !slices.Contains(g.Items(t, "player-1"), "starter_sword×1") {
		t.Fatalf("items = %v, want the sword", g.Items(t, "player-1"))
	}

	// The history shows the spend, with the order's reference.
	status, hist := g.Call(t, "GET", "/admin/v1/players/player-1/transactions?kind=spend", gatewaytest.AdminToken, "", "")
	entries, _ := hist["entries"].([]any)
	var spent []string
	for _, e := range entries {
		m := e.(map[string]any)
		spent = append(spent, fmt.Sprint(m["platform"], " ", m["amount"], " ", m["order_ref"], " ", m["source"]))
	}
	ref := fmt.Sprint("partner order ", o.OrderID)
	if want := []string{"Steam -300 " + ref + " bank", "Epic -200 " + ref + " bank"}; status != 200 || !reflect.DeepEqual(spent, want) {
		t.Fatalf("spends = %d %v, want %v", status, spent, want)
	}

	cancel := fmt.Sprintf(`{"payment_id":%d}`, first.PaymentID)
	if s := g.Partner(t, "POST", "/cancellations", cancel, nil); s != 200 {
		t.Fatalf("cancel: %d", s)
	}
	g.Drain(t)
	steam, epic = g.PlatformBalance(t, "player-1", "CRYSTALS", storegate.PlatformSteam), g.PlatformBalance(t, "player-1", "CRYSTALS", storegate.PlatformEpic)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 700 || steam != 300 || epic != 400 {
		t.Fatalf("CRYSTALS = %d (Steam %d, Epic %d) after the cancel, want 700 (300, 400)", got, steam, epic)
	}
	if slices.Contains(g.Items(t, "player-1"), "starter_sword×1") {
		t.Fatalf("items = %v after the cancel, want the sword revoked", g.Items(t, "player-1"))
	}
	before := g.Everything(t)
	var e gatewaytest.ErrorAnswer
	if s := g.Partner(t, "POST", "/cancellations", cancel, &e); s != 409 || e.Error.Code != "CONFLICT" {
		t.Fatalf("second cancel: %d %+v", s, e)
	}
	g.Drain(t)
	gatewaytest.SameRows(t, before, g.Everything(t))
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 700 {
		t.Fatalf("CRYSTALS = %d after a second cancel, want 700: credited back once", got)
	}
}

func TestPartner_OrderInCrystalsTheWalletCannotCover(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", swordForCrystals))
	g.Grant(t, "steam.seed", storegate.PlatformSteam, gatewaytest.Crystals(100))
	tok := g.UserToken(t, "player-1")
	order := fmt.Sprintf(`{"user_token":%q,"currency":"CRYSTALS","items":[{"sku":"starter_sword","quantity":1}]}`, tok)
	cart := fmt.Sprintf(`{"user_token":%q,"currency":"CRYSTALS","items":[{"sku":"starter_sword","quantity":1}]}`, tok)
	if s := g.Partner(t, "PUT", "/cart", cart, nil); s != 200 {
		t.Fatalf("fill the cart: %d", s)
	}

	// When it is made, an order the wallet cannot cover is refused.
	before := g.Everything(t)
	for _, tc := range []struct{ path, body string }{
		{"/orders", order},
		{"/cart/order", fmt.Sprintf(`{"user_token":%q}`, tok)},
	} {
		var e gatewaytest.ErrorAnswer
		if s := g.Partner(t, "POST", tc.path, tc.body, &e); s != 409 || e.Error.Code != "INSUFFICIENT_FUNDS" || !reflect.DeepEqual(e.Error.Fields, []string{"currency"}) {
			t.Fatalf("%s with 100 CRYSTALS: %d %+v, want 409 INSUFFICIENT_FUNDS on currency", tc.path, s, e)
		}
	}
	gatewaytest.SameRows(t, before, g.Everything(t))

	// When it is paid, a balance spent since refuses the payment, storing
	// nothing; the order stays created, and pays once the wallet covers it.
	g.Grant(t, "steam.more", storegate.PlatformSteam, gatewaytest.Crystals(400))
	var o gatewaytest.OrderAnswer
	if s := g.Partner(t, "POST", "/orders", order, &o); s != 200 {
		t.Fatalf("orders with 500 CRYSTALS: %d", s)
	}
	g.Spend(t, "player-1", storegate.PlatformSteam, "CRYSTALS", 1)
	before = g.Everything(t)
	pay := gatewaytest.PayBody(o.OrderID, "player-1", "500", "CRYSTALS", "bank-vc-2")
	var e gatewaytest.ErrorAnswer
	if s := g.Partner(t, "POST", "/payments", pay, &e); s != 409 || e.Error.Code != "INSUFFICIENT_FUNDS" {
		t.Fatalf("pay with 499 CRYSTALS: %d %+v, want 409 INSUFFICIENT_FUNDS", s, e)
	}
	for _, bad := range []struct{ amount, currency, field string }{
		{"499", "CRYSTALS", "payment.amount"},
		{"500.5", "CRYSTALS", "payment.amount"},
		{"5.00", "USD", "payment.currency"},
	} {
		body := gatewaytest.PayBody(o.OrderID, "player-1", bad.amount, bad.currency, "bank-vc-3")
		if s := g.Partner(t, "POST", "/payments", body, &e); s != 422 || !reflect.DeepEqual(e.Error.Fields, []string{bad.field}) {
			t.Fatalf("pay %s %s: %d %+v, want 422 on %s", bad.amount, bad.currency, s, e, bad.field)
		}
	}
	g.Drain(t)
	gatewaytest.SameRows(t, before, g.Everything(t))
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 499 || slices.Contains(g.Items(t, "player-1"), "starter_sword×1") {
		t.Fatalf("CRYSTALS = %d, items %v after a refused payment, want 499 and no sword", got, g.Items(t, "player-1"))
	}
	var looked gatewaytest.OrderAnswer
	if s := g.Partner(t, "GET", fmt.Sprint("/orders/", o.OrderID), "", &looked); s != 200 || looked.Status != "created" {
		t.Fatalf("order after a refused payment: %d %+v", s, looked)
	}
	g.Grant(t, "steam.last", storegate.PlatformSteam, gatewaytest.Crystals(1))
	if s := g.Partner(t, "POST", "/payments", pay, nil); s != 200 {
		t.Fatalf("pay once covered: %d", s)
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 0 || !slices.Contains(g.Items(t, "player-1"), "starter_sword×1") {
		t.Fatalf("CRYSTALS = %d, items %v, want 0 and the sword", got, g.Items(t, "player-1"))
	}
}

// An order a full discount makes free is paid with an amount of 0, in money
// or in a virtual currency, and granted once; it debits nothing. An amount
// of 0 for an order that costs something is refused.
func TestPartner_FreeOrdersArePaidWithZero(t *testing.T) {
	free := func(p *webhooks.PartnerSource) {
		swordForCrystals(p)
		p.Pricing.Discounts = map[string]int64{"starter_sword": 100}
	}
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", free))
	for i, currency := range []string{"USD", "CRYSTALS"} {
		player := fmt.Sprintf("player-%d", i+1)
		var o gatewaytest.OrderAnswer
		body := fmt.Sprintf(`{"user_token":%q,"currency":%q,"items":[{"sku":"starter_sword","quantity":1}]}`, g.UserToken(t, player), currency)
		amount := map[string]string{"USD": "0.00", "CRYSTALS": "0"}[currency]
		if s := g.Partner(t, "POST", "/orders", body, &o); s != 200 || o.Price.Amount != amount {
			t.Fatalf("%s order: %d %+v, want a price of %s", currency, s, o, amount)
		}
		var paid struct {
			PaymentID int64 `json:"payment_id"`
		}
		if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, player, amount, currency, "bank-free-"+currency), &paid); s != 200 || paid.PaymentID == 0 {
			t.Fatalf("%s pay 0: %d %+v", currency, s, paid)
		}
		g.Drain(t)
		if got := g.Items(t, player); !slices.Contains(got, "starter_sword×1") {
			t.Errorf("%s: %s holds %v, want the sword once", currency, player, got)
		}
		if got := g.Balance(t, player, "CRYSTALS"); got != 0 {
			t.Errorf("%s: CRYSTALS = %d, want nothing debited", currency, got)
		}
	}

	var o gatewaytest.OrderAnswer
	body := fmt.Sprintf(`{"user_token":%q,"currency":"USD","items":[{"sku":"crystals_100","quantity":1}]}`, g.UserToken(t, "player-2"))
	if s := g.Partner(t, "POST", "/orders", body, &o); s != 200 || o.Price.Amount == "0.00" {
		t.Fatalf("order: %d %+v", s, o)
	}
	var refused gatewaytest.ErrorAnswer
	if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-2", "0", "USD", "bank-zero"), &refused); s != 422 || refused.Error.Code != "INCORRECT_AMOUNT" {
		t.Errorf("pay 0 for %s USD: %d %+v, want 422 INCORRECT_AMOUNT", o.Price.Amount, s, refused)
	}
}
