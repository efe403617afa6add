package webhooks_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"storegate/internal/gatewaytest"
	"storegate/mapping"
	"storegate/webhooks"
)

func TestPartner_PayTwiceGrantsOnceWithOnePaymentID_CancelRevokes_SecondCancel409(t *testing.T) {
	for _, auth := range []string{"basic", "standard"} {
		t.Run(auth, func(t *testing.T) {
			g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner(auth))
			send := func(method, path, body string, out any) int {
				req := gatewaytest.JSONRequest(method, "/partners/bank"+path, body)
				if auth == "basic" {
					gatewaytest.Basic(req, "bank", gatewaytest.PartnerKey)
				} else {
					g.Standard(t, req, gatewaytest.PartnerSecret, body)
				}
				return g.Exchange(t, req, out)
			}
			var tok struct{ Token string }
			if s := send("POST", "/users/token", `{"user":{"id":"player-1","email":"a@b.c"}}`, &tok); s != 200 {
				t.Fatalf("users/token: %d", s)
			}
			var o gatewaytest.OrderAnswer
			if s := send("POST", "/orders", `{"user_token":"`+tok.Token+`","currency":"USD","items":[{"sku":"crystals_100","quantity":2}]}`, &o); s != 200 {
				t.Fatalf("orders: %d", s)
			}
			if o.Status != "created" || o.Price.Amount != "3.98" || o.PlayerID != "player-1" {
				t.Fatalf("order = %+v, want created, 3.98 for player-1", o)
			}

			var first, second struct {
				PaymentID int64 `json:"payment_id"`
			}
			pay := gatewaytest.PayBody(o.OrderID, "player-1", "3.98", "USD", "bank-txn-1")
			if s := send("POST", "/payments", pay, &first); s != 200 || first.PaymentID == 0 {
				t.Fatalf("pay: status %d, %+v", s, first)
			}
			if s := send("POST", "/payments", pay, &second); s != 200 || second.PaymentID != first.PaymentID {
				t.Fatalf("repeated pay: status %d, payment_id %d, want 200 and %d", s, second.PaymentID, first.PaymentID)
			}
			// Another payment of the paid order (another partner transaction).
			var e gatewaytest.ErrorAnswer
			if s := send("POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", "3.98", "USD", "bank-txn-2"), &e); s != 409 || e.Error.Code != "CONFLICT" {
				t.Fatalf("second payment of a paid order: %d %+v, want 409 CONFLICT", s, e)
			}
			g.Drain(t)
			if got := g.Balance(t, "player-1", "CRYSTALS"); got != 200 {
				t.Fatalf("CRYSTALS = %d after pay twice, want 200 (one grant of 2 × 100)", got)
			}
			var looked gatewaytest.OrderAnswer
			if s := send("GET", fmt.Sprint("/orders/", o.OrderID), "", &looked); s != 200 || looked.Status != "paid" || looked.PaymentID != first.PaymentID {
				t.Fatalf("lookup after pay: %d %+v", s, looked)
			}

			cancel := fmt.Sprintf(`{"payment_id":%d}`, first.PaymentID)
			if s := send("POST", "/cancellations", cancel, nil); s != 200 {
				t.Fatalf("cancel: %d", s)
			}
			g.Drain(t)
			if got := g.Balance(t, "player-1", "CRYSTALS"); got != 0 {
				t.Fatalf("CRYSTALS = %d after the cancel, want 0", got)
			}
			before := g.Everything(t)
			if s := send("POST", "/cancellations", cancel, &e); s != 409 || e.Error.Code != "CONFLICT" {
				t.Fatalf("second cancel: %d %+v, want 409 CONFLICT", s, e)
			}
			gatewaytest.SameRows(t, before, g.Everything(t))
			if s := send("POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", "3.98", "USD", "bank-txn-3"), &e); s != 409 {
				t.Fatalf("pay of a cancelled order: %d, want 409", s)
			}
			if s := send("GET", fmt.Sprint("/orders/", o.OrderID), "", &looked); s != 200 || looked.Status != "cancelled" {
				t.Fatalf("lookup after cancel: %d %+v", s, looked)
			}
			tracked := g.Orders(t, "player-1")[fmt.Sprint("partner.bank.order.", o.OrderID)]
			want := []string{"created/order_created", "received/payment", "granted/fulfill", "received/cancellation", "revoked/revoke"}
			if tracked.Status != "revoked" || !reflect.DeepEqual(tracked.Steps(), want) {
				t.Fatalf("tracked order = %s %v, want revoked %v", tracked.Status, tracked.Steps(), want)
			}
		})
	}
}

func TestPartner_ConcurrentPaymentsOfOneOrderGrantOnce(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic"))
	o := g.CreateOrder(t, "player-1", "USD", `[{"sku":"crystals_100","quantity":1}]`)
	const n = 20
	statuses := make(chan int, n)
	for i := range n {
		go func() {
			// Half repeat one notification, half are other transactions.
			statuses <- g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", "1.99", "USD", fmt.Sprint("txn-", i%2*i)), nil)
		}()
	}
	counts := map[int]int{}
	for range n {
		counts[<-statuses]++
	}
	if counts[200]+counts[409] != n || counts[200] < 1 {
		t.Fatalf("answers = %v, want only 200 (one payment and its repeats) and 409", counts)
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Fatalf("CRYSTALS = %d, want 100", got)
	}
}

func TestPartner_PayFromOutsideTheRegisteredAddressesStoresNothing(t *testing.T) {
	trust := func(c *gatewaytest.Config) { c.Server.TrustedProxies = gatewaytest.ThisMachine }
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic"), trust)
	o := g.CreateOrder(t, "player-1", "USD", `[{"sku":"crystals_100","quantity":1}]`)
	before := g.Everything(t)
	for _, addr := range []string{"203.0.113.9", "0.0.0.0, 203.0.113.9"} {
		req := gatewaytest.Basic(gatewaytest.JSONRequest("POST", "/partners/bank/payments", gatewaytest.PayBody(o.OrderID, "player-1", "1.99", "USD", "t1")), "bank", gatewaytest.PartnerKey)
		req.Header.Set("X-Forwarded-For", addr)
		var e gatewaytest.ErrorAnswer
		if s := g.Exchange(t, req, &e); s != 403 || e.Error.Code != "INVALID_CLIENT_IP" {
			t.Fatalf("pay from %s: %d %+v, want 403 INVALID_CLIENT_IP", addr, s, e)
		}
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
	// A partner configured without addresses is refused everything.
	g2 := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", func(p *webhooks.PartnerSource) { p.AllowIPs = nil }))
	if s := g2.Partner(t, "GET", "/catalog", "", nil); s != 403 {
		t.Fatalf("partner without registered addresses: %d, want 403", s)
	}
}

func TestPartner_AmountOrCurrencyDifferingFromTheOrderIs422(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic"))
	o := g.CreateOrder(t, "player-1", "USD", `[{"sku":"crystals_100","quantity":1}]`)
	before := g.Everything(t)
	for _, tc := range []struct {
		name, amount, currency, field string
	}{
		{"less", "1.98", "USD", "payment.amount"},
		{"more", "2", "USD", "payment.amount"},
		{"fraction of a cent", "1.991", "USD", "payment.amount"},
		{"other currency", "1.99", "EUR", "payment.currency"},
	} {
		var e gatewaytest.ErrorAnswer
		if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", tc.amount, tc.currency, "t-"+strings.ReplaceAll(tc.name, " ", "-")), &e); s != 422 ||
			e.Error.Code != "INCORRECT_AMOUNT" || !reflect.DeepEqual(e.Error.Fields, []string{tc.field}) {
			t.Fatalf("%s: %d %+v, want 422 INCORRECT_AMOUNT on %s", tc.name, s, e, tc.field)
		}
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
	// The same amount written differently is the same amount.
	if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", "199e-2", "USD", "t-ok"), nil); s != 200 {
		t.Fatalf("199e-2 USD for a 1.99 USD order: %d, want 200", s)
	}
}

func TestPartner_PricesDiscountsAndCatalog(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", func(p *webhooks.PartnerSource) {
		p.Pricing.Currencies = []string{"USD", "EUR"}
		p.Pricing.Prices = map[string]map[string]int64{"starter_sword": {"EUR": 450}}
		p.Pricing.Discounts = map[string]int64{"*": 10, "starter_sword": 0}
	}))
	var cat struct {
		Items []struct {
			SKU    string `json:"sku"`
			Prices []struct {
				Currency, Amount, AmountWithoutDiscount string
			} `json:"prices"`
		} `json:"items"`
	}
	if s := g.Partner(t, "GET", "/catalog?currency=EUR", "", &cat); s != 200 {
		t.Fatalf("catalog: %d", s)
	}
	got := map[string]string{}
	for _, it := range cat.Items {
		for _, p := range it.Prices {
			got[it.SKU+" "+p.Currency] = p.Amount
		}
	}
	if want := map[string]string{"crystals_100 EUR": "1.70", "starter_sword EUR": "4.50"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("EUR catalog = %v, want %v (10%% off crystals, the partner's own sword price)", got, want)
	}
	o := g.CreateOrder(t, "player-1", "USD", `[{"sku":"crystals_100","quantity":3},{"sku":"starter_sword","quantity":1}]`)
	// 3 × 1.99 = 5.97, less 10% (0.597 → 0.60) = 5.37; the sword 4.99 has no discount.
	if o.Price.Amount != "10.36" || o.Price.AmountWithoutDiscount != "10.96" || o.Items[0].Amount != "5.37" || o.Items[0].DiscountPercent != 10 {
		t.Fatalf("order price = %+v, items %+v", o.Price, o.Items)
	}
}

func TestPartner_TokenAndOrderChecks(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic"))
	var e gatewaytest.ErrorAnswer
	if s := g.Partner(t, "POST", "/users/token", `{"user":{"id":"stranger","email":"s@example.org"}}`, &e); s != 400 || e.Error.Code != "INVALID_USER" {
		t.Fatalf("token for an unknown player: %d %+v, want 400 INVALID_USER", s, e)
	}
	// Digital Distribution Hub's rules: the e-mail always, the player id a string or null.
	if s := g.Partner(t, "POST", "/users/token", `{"user":{"id":"player-1"}}`, &e); s != 400 || e.Error.Fields[0] != "user.email" {
		t.Fatalf("token without an e-mail: %d %+v, want 400 naming user.email", s, e)
	}
	var buyer struct{ Token string }
	if s := g.Partner(t, "POST", "/users/token", `{"user":{"id":null,"email":"buyer@example.org"}}`, &buyer); s != 200 || buyer.Token == "" {
		t.Fatalf("token for a buyer known by e-mail only: %d %+v, want 200 with a token", s, buyer)
	}
	if s := g.Partner(t, "POST", "/orders", `{"user_token":"`+buyer.Token+`","currency":"USD","items":[{"sku":"crystals_100","quantity":1}]}`, &e); s != 403 ||
		e.Error.Code != "FORBIDDEN" || e.Error.Fields[0] != "user_token" {
		t.Fatalf("in-game items for a buyer without a player id: %d %+v, want 403 naming user_token", s, e)
	}
	tok := g.UserToken(t, "player-1")
	// A token is short-lived.
	g.Clock.Advance(16 * time.Minute)
	if s := g.Partner(t, "POST", "/orders", `{"user_token":"`+tok+`","currency":"USD","items":[{"sku":"crystals_100","quantity":1}]}`, &e); s != 401 ||
		e.Error.Code != "UNAUTHORIZED" || e.Error.Fields[0] != "user_token" {
		t.Fatalf("order with an expired token: %d %+v", s, e)
	}
	// Another partner's token (another key) is refused.
	forged := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", func(p *webhooks.PartnerSource) {
		p.TokenKeys = [][]byte{webhooks.PartnerTokenKey("another-partner-key-0123")}
	})).UserToken(t, "player-1")
	if s := g.Partner(t, "POST", "/orders", `{"user_token":"`+forged+`","currency":"USD","items":[{"sku":"crystals_100","quantity":1}]}`, &e); s != 401 {
		t.Fatalf("order with a token signed by another key: %d, want 401", s)
	}
	o := g.CreateOrder(t, "player-1", "USD", `[{"sku":"crystals_100","quantity":1}]`)
	if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-2", "1.99", "USD", "t"), &e); s != 400 || e.Error.Code != "INVALID_USER" {
		t.Fatalf("pay naming another user: %d %+v, want 400 INVALID_USER", s, e)
	}
	if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID+100, "player-1", "1.99", "USD", "t"), &e); s != 404 || e.Error.Fields[0] != "purchase.order_id" {
		t.Fatalf("pay of an unknown order: %d %+v, want 404 on purchase.order_id", s, e)
	}
	if s := g.Partner(t, "POST", "/cancellations", `{"payment_id":987654}`, &e); s != 404 || e.Error.Fields[0] != "payment_id" {
		t.Fatalf("cancel of an unknown payment: %d %+v, want 404", s, e)
	}
	if s := g.Partner(t, "GET", "/orders/987654", "", &e); s != 404 {
		t.Fatalf("lookup of an unknown order: %d, want 404", s)
	}
	// Wrong credentials.
	for _, cred := range [][2]string{{"bank", "wrong-key"}, {"other", gatewaytest.PartnerKey}, {"bank", ""}} {
		req := gatewaytest.Basic(gatewaytest.JSONRequest("GET", "/partners/bank/catalog", ""), cred[0], cred[1])
		if s := g.Exchange(t, req, &e); s != 401 || e.Error.Code != "UNAUTHORIZED" {
			t.Fatalf("credentials %v: %d %+v, want 401", cred, s, e)
		}
	}
	if s := g.Exchange(t, gatewaytest.JSONRequest("GET", "/partners/nobody/catalog", ""), &e); s != 404 {
		t.Fatalf("unknown partner: %d", s)
	}
}

func TestPartner_StandardSignatureRefusals(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("standard"))
	body := `{"user":{"id":"player-1"}}`
	for _, tc := range []struct {
		name string
		sign func(*http.Request)
	}{
		{"unsigned", func(*http.Request) {}},
		{"wrong secret", func(r *http.Request) { g.Standard(t, r, gatewaytest.StoresSecret, body) }},
		{"other body", func(r *http.Request) { g.Standard(t, r, gatewaytest.PartnerSecret, body+" ") }},
		{"stale", func(r *http.Request) {
			g.Standard(t, r, gatewaytest.PartnerSecret, body)
			r.Header.Set("webhook-timestamp", fmt.Sprint(g.Clock.Now().Add(-time.Hour).Unix()))
		}},
	} {
		req := gatewaytest.JSONRequest("POST", "/partners/bank/users/token", body)
		tc.sign(req)
		var e gatewaytest.ErrorAnswer
		if s := g.Exchange(t, req, &e); s != 401 || e.Error.Code != "INVALID_SIGNATURE" {
			t.Fatalf("%s: %d %+v, want 401 INVALID_SIGNATURE", tc.name, s, e)
		}
	}
}

// Every partner route with a body refuses bad bodies with its documented
// error and stores nothing.
func TestPartner_BadBodiesStoreNothing(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic"))
	o := g.CreateOrder(t, "player-1", "USD", `[{"sku":"crystals_100","quantity":1}]`)
	tok := g.UserToken(t, "player-1")
	before := g.Everything(t)
	for _, tc := range []struct {
		path, body, ctype string
		status            int
		code              string
		fields            []string
	}{
		{"/users/token", `{"user":{}}`, "", 400, "INVALID_PARAMETER", []string{"user.email"}},
		{"/users/token", `{"user":{"id":"player-1","email":"not an address"}}`, "", 400, "INVALID_PARAMETER", []string{"user.email"}},
		{"/users/token", `not json`, "", 400, "INVALID_PARAMETER", nil},
		{"/users/token", `{"user":{"id":"player-1"}}`, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", nil},
		{"/orders", `{"currency":"USD","items":[{"sku":"crystals_100","quantity":1}]}`, "", 400, "INVALID_PARAMETER", []string{"user_token"}},
		{"/orders", `{"user_token":"` + tok + `","currency":"usd","items":[{"sku":"crystals_100","quantity":1}]}`, "", 400, "INVALID_PARAMETER", []string{"currency"}},
		{"/orders", `{"user_token":"` + tok + `","currency":"USD","items":[]}`, "", 400, "INVALID_PARAMETER", []string{"items"}},
		{"/orders", `{"user_token":"` + tok + `","currency":"USD","items":[{"sku":"ghost","quantity":1}]}`, "", 400, "INVALID_PARAMETER", []string{"items.0.sku"}},
		{"/orders", `{"user_token":"` + tok + `","currency":"USD","items":[{"sku":"potion","quantity":1}]}`, "", 400, "INVALID_PARAMETER", []string{"items.0.sku"}},
		{"/orders", `{"user_token":"` + tok + `","currency":"JPY","items":[{"sku":"crystals_100","quantity":1}]}`, "", 400, "INVALID_PARAMETER", []string{"items.0.sku"}},
		{"/orders", `{"user_token":"` + tok + `","currency":"USD","items":[{"sku":"crystals_100","quantity":0}]}`, "", 400, "INVALID_PARAMETER", []string{"items.0.quantity"}},
		{"/payments", `{"payment":{"geotype_id":1,"amount":1.99,"currency":"USD","ps_transaction_id":"x"},"user":{"id":"player-1"}}`, "", 400, "INVALID_PARAMETER", []string{"purchase"}},
		{"/payments", strings.Replace(gatewaytest.PayBody(o.OrderID, "player-1", "1.99", "USD", "x"), `"amount":1.99`, `"amount":"1.99"`, 1), "", 400, "INVALID_PARAMETER", []string{"payment.amount"}},
		{"/payments", strings.Replace(gatewaytest.PayBody(o.OrderID, "player-1", "1.99", "USD", "x"), `"amount":1.99`, `"amount":-1.99`, 1), "", 400, "INVALID_PARAMETER", []string{"payment.amount"}},
		{"/payments", gatewaytest.PayBody(o.OrderID, "player-1", "1.99", "USD", "has space"), "", 400, "INVALID_PARAMETER", []string{"payment.ps_transaction_id"}},
		{"/payments", `[]`, "", 400, "INVALID_PARAMETER", nil},
		{"/cancellations", `{"payment_id":"one"}`, "", 400, "INVALID_PARAMETER", []string{"payment_id"}},
		{"/cancellations", `{}`, "", 400, "INVALID_PARAMETER", []string{"payment_id"}},
		{"/cancellations", `{"payment_id":1}`, "application/xml", 415, "UNSUPPORTED_MEDIA_TYPE", nil},
	} {
		req := gatewaytest.Basic(gatewaytest.JSONRequest("POST", "/partners/bank"+tc.path, tc.body), "bank", gatewaytest.PartnerKey)
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		var e gatewaytest.ErrorAnswer
		s := g.Exchange(t, req, &e)
		if s != tc.status || e.Error.Code != tc.code || (tc.fields != nil && !reflect.DeepEqual(e.Error.Fields, tc.fields)) {
			t.Errorf("%s %s: %d %s %v (%s), want %d %s %v", tc.path, tc.body, s, e.Error.Code, e.Error.Fields, e.Error.Message, tc.status, tc.code, tc.fields)
		}
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
	if s := g.Partner(t, "GET", "/catalog?currency=dollars", "", nil); s != 400 {
		t.Fatalf("catalog?currency=dollars: %d, want 400", s)
	}
}

// taxesAndBonus is a partner price list with taxes by country and by
// currency, and a free sword for orders of 3.00 USD or more.
func taxesAndBonus(p *webhooks.PartnerSource) {
	p.Pricing.Taxes = mapping.PartnerTaxes{Countries: map[string]int64{"DE": 190_000}, Currencies: map[string]int64{"USD": 100_000}}
	p.Pricing.Bonuses = []mapping.PartnerBonus{{SKU: "starter_sword", Quantity: 1, MinAmount: map[string]int64{"USD": 300}}}
}

func TestPartner_OrderWithTaxAndBonus_PaidAtTheTaxedAmountOnce_CancelRevokesTheBonus(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", taxesAndBonus))
	var o gatewaytest.OrderAnswer
	body := `{"user_token":"` + g.UserTokenIn(t, "player-1", "de") + `","currency":"USD","items":[{"sku":"crystals_100","quantity":2}]}`
	if s := g.Partner(t, "POST", "/orders", body, &o); s != 200 {
		t.Fatalf("orders: %d", s)
	}
	// 2 × 1.99 = 3.98 reaches 3.00: the sword is added; 19% of 3.98 (0.7562) is 0.76.
	if o.Price.Amount != "4.74" || o.Price.AmountWithoutTax != "3.98" || o.Price.AmountWithoutDiscount != "3.98" ||
		o.Price.Tax.Percent != "19" || o.Price.Tax.Amount != "0.76" {
		t.Fatalf("price = %+v, want 3.98 + 19%% (0.76) = 4.74", o.Price)
	}
	if len(o.Items) != 2 || !o.Items[1].Bonus || o.Items[1].SKU != "starter_sword" || o.Items[1].Amount != "0.00" || o.Items[0].Bonus {
		t.Fatalf("items = %+v, want the crystals and a free bonus sword", o.Items)
	}
	var looked gatewaytest.OrderAnswer
	if s := g.Partner(t, "GET", fmt.Sprint("/orders/", o.OrderID), "", &looked); s != 200 || !reflect.DeepEqual(looked.Price, o.Price) || !reflect.DeepEqual(looked.Items, o.Items) {
		t.Fatalf("lookup: %d %+v, want the price and items answered at creation", s, looked)
	}

	before := g.Everything(t)
	var e gatewaytest.ErrorAnswer
	if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", "3.98", "USD", "no-tax"), &e); s != 422 ||
		e.Error.Code != "INCORRECT_AMOUNT" || e.Error.Message != "amount differs from the order's (4.74 USD)" {
		t.Fatalf("payment without the tax: %d %+v, want 422 INCORRECT_AMOUNT naming 4.74 USD", s, e)
	}
	gatewaytest.SameRows(t, before, g.Everything(t))

	var paid struct {
		PaymentID int64 `json:"payment_id"`
	}
	for range 2 { // the same notification twice grants once
		if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", "474e-2", "USD", "with-tax"), &paid); s != 200 {
			t.Fatalf("payment with the tax: %d", s)
		}
	}
	g.Drain(t)
	if got, items := g.Balance(t, "player-1", "CRYSTALS"), g.Items(t, "player-1"); got != 200 || !reflect.DeepEqual(items, []string{"starter_sword×1"}) {
		t.Fatalf("after paying: CRYSTALS %d, items %v; want 200 and one bonus sword", got, items)
	}
	if s := g.Partner(t, "POST", "/cancellations", fmt.Sprintf(`{"payment_id":%d}`, paid.PaymentID), nil); s != 200 {
		t.Fatalf("cancel: %d", s)
	}
	g.Drain(t)
	if got, items := g.Balance(t, "player-1", "CRYSTALS"), g.Items(t, "player-1"); got != 0 || len(items) != 0 {
		t.Fatalf("after the cancel: CRYSTALS %d, items %v; want 0 and no sword", got, items)
	}
}

func TestPartner_TaxRateByCountryElseCurrency(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", taxesAndBonus))
	for _, tc := range []struct {
		country, currency, percent, tax, amount string
	}{
		{"DE", "USD", "19", "0.38", "2.37"},
		{"FR", "USD", "10", "0.20", "2.19"}, // no rate for FR: the currency's
		{"", "USD", "10", "0.20", "2.19"},
		{"DE", "EUR", "19", "0.36", "2.25"},
		{"", "EUR", "0", "0.00", "1.89"},
	} {
		var o gatewaytest.OrderAnswer
		body := `{"user_token":"` + g.UserTokenIn(t, "player-1", tc.country) + `","currency":"` + tc.currency + `","items":[{"sku":"crystals_100","quantity":1}]}`
		if s := g.Partner(t, "POST", "/orders", body, &o); s != 200 {
			t.Fatalf("%s %s: %d", tc.country, tc.currency, s)
		}
		if o.Price.Tax.Percent != tc.percent || o.Price.Tax.Amount != tc.tax || o.Price.Amount != tc.amount {
			t.Errorf("country %q, %s: price %+v, want %s%% = %s, %s in all", tc.country, tc.currency, o.Price, tc.percent, tc.tax, tc.amount)
		}
	}
}
