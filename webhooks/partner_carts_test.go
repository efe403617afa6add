package webhooks_test

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"storegate/internal/gatewaytest"
	"storegate/webhooks"
)

// cartAnswer is a cart as the cart routes answer it.
type cartAnswer struct {
	PlayerID string             `json:"player_id"`
	Currency string             `json:"currency"`
	Items    []gatewaytest.Line `json:"items"`
	Price    *gatewaytest.Price `json:"price"`
}

// partnerCall sends a request to partner "bank", authenticated by auth;
// token, when set, goes in the X-User-Token header.
func partnerCall(t *testing.T, g *gatewaytest.Gateway, auth, method, path, token, body string, out any) int {
	t.Helper()
	req := gatewaytest.JSONRequest(method, "/partners/bank"+path, body)
	if token != "" {
		req.Header.Set("X-User-Token", token)
	}
	if auth == "basic" {
		gatewaytest.Basic(req, "bank", gatewaytest.PartnerKey)
	} else {
		g.Standard(t, req, gatewaytest.PartnerSecret, body)
	}
	return g.Exchange(t, req, out)
}

// lines writes a cart's or an order's lines as "sku×quantity amount", a
// bonus marked "+".
func lines(ls []gatewaytest.Line) []string {
	out := []string{}
	for _, l := range ls {
		s := fmt.Sprintf("%s×%d %s", l.SKU, l.Quantity, l.Amount)
		if l.Bonus {
			s = "+" + s
		}
		out = append(out, s)
	}
	return out
}

func TestPartnerCart_FillChangeOrderPay_TaxAndBonusGrantedOnce_CancelRevokes(t *testing.T) {
	for _, auth := range []string{"basic", "standard"} {
		t.Run(auth, func(t *testing.T) {
			g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner(auth, taxesAndBonus))
			call := func(method, path, token, body string, out any) int {
				t.Helper()
				return partnerCall(t, g, auth, method, path, token, body, out)
			}
			var token struct{ Token string }
			if s := call("POST", "/users/token", "", `{"user":{"id":"player-1","email":"a@b.c","country":"DE"}}`, &token); s != 200 {
				t.Fatalf("users/token: %d", s)
			}
			tok := token.Token
			var cart cartAnswer
			if s := call("GET", "/cart", tok, "", &cart); s != 200 || cart.PlayerID != "player-1" || len(cart.Items) != 0 || cart.Price != nil {
				t.Fatalf("a cart never filled: %d %+v, want 200, empty, no price", s, cart)
			}
			for _, step := range []struct {
				method, path, body string
				lines              []string
				amount, tax        string
			}{
				{"PUT", "/cart", `{"user_token":"` + tok + `","currency":"USD","items":[{"sku":"crystals_100","quantity":1}]}`,
					[]string{"crystals_100×1 1.99"}, "2.37", "0.38"},
				// 3.98 reaches the 3.00 of the promotion: a free sword.
				{"PUT", "/cart/items/crystals_100", `{"user_token":"` + tok + `","quantity":2}`,
					[]string{"crystals_100×2 3.98", "+starter_sword×1 0.00"}, "4.74", "0.76"},
				{"PUT", "/cart/items/starter_sword", `{"user_token":"` + tok + `","quantity":1}`,
					[]string{"crystals_100×2 3.98", "starter_sword×1 4.99", "+starter_sword×1 0.00"}, "10.67", "1.70"},
				{"DELETE", "/cart/items/starter_sword", "", []string{"crystals_100×2 3.98", "+starter_sword×1 0.00"}, "4.74", "0.76"},
				{"DELETE", "/cart/items/starter_sword", "", []string{"crystals_100×2 3.98", "+starter_sword×1 0.00"}, "4.74", "0.76"},
				{"GET", "/cart", "", []string{"crystals_100×2 3.98", "+starter_sword×1 0.00"}, "4.74", "0.76"},
			} {
				header := ""
				if step.body == "" {
					header = tok
				}
				cart = cartAnswer{}
				if s := call(step.method, step.path, header, step.body, &cart); s != 200 || cart.Price == nil {
					t.Fatalf("%s %s: %d %+v", step.method, step.path, s, cart)
				}
				if got := lines(cart.Items); !reflect.DeepEqual(got, step.lines) || cart.Price.Amount != step.amount ||
					cart.Price.Tax.Amount != step.tax || cart.Price.Tax.Percent != "19" || cart.Currency != "USD" {
					t.Fatalf("%s %s: lines %v, price %+v; want %v, %s with tax %s at 19%%", step.method, step.path, got, *cart.Price, step.lines, step.amount, step.tax)
				}
			}

			var o gatewaytest.OrderAnswer
			if s := call("POST", "/cart/order", "", `{"user_token":"`+tok+`"}`, &o); s != 200 || o.OrderID == 0 || o.Status != "created" {
				t.Fatalf("order of the cart: %d %+v", s, o)
			}
			if got := lines(o.Items); !reflect.DeepEqual(got, []string{"crystals_100×2 3.98", "+starter_sword×1 0.00"}) ||
				!reflect.DeepEqual(o.Price, *cart.Price) {
				t.Fatalf("order: lines %v, price %+v; want the cart's, %+v", got, o.Price, *cart.Price)
			}
			cart = cartAnswer{}
			if s := call("GET", "/cart", tok, "", &cart); s != 200 || len(cart.Items) != 0 || cart.Price == nil || cart.Price.Amount != "0.00" {
				t.Fatalf("cart after the order: %d %+v, want empty", s, cart)
			}
			before := g.Everything(t)
			var e gatewaytest.ErrorAnswer
			if s := call("POST", "/cart/order", "", `{"user_token":"`+tok+`"}`, &e); s != 409 || e.Error.Code != "CONFLICT" {
				t.Fatalf("order of the emptied cart: %d %+v, want 409 CONFLICT", s, e)
			}
			if s := call("POST", "/payments", "", gatewaytest.PayBody(o.OrderID, "player-1", "3.98", "USD", "no-tax"), &e); s != 422 ||
				e.Error.Code != "INCORRECT_AMOUNT" {
				t.Fatalf("payment without the tax: %d %+v, want 422 INCORRECT_AMOUNT", s, e)
			}
			gatewaytest.SameRows(t, before, g.Everything(t))

			var first, again struct {
				PaymentID int64 `json:"payment_id"`
			}
			pay := gatewaytest.PayBody(o.OrderID, "player-1", "4.74", "USD", "bank-1")
			if s := call("POST", "/payments", "", pay, &first); s != 200 {
				t.Fatalf("payment with the tax: %d", s)
			}
			if s := call("POST", "/payments", "", pay, &again); s != 200 || again.PaymentID != first.PaymentID {
				t.Fatalf("the same payment again: %d %+v, want %d", s, again, first.PaymentID)
			}
			g.Drain(t)
			if got, items := g.Balance(t, "player-1", "CRYSTALS"), g.Items(t, "player-1"); got != 200 || !reflect.DeepEqual(items, []string{"starter_sword×1"}) {
				t.Fatalf("after paying: CRYSTALS %d, items %v; want 200 and the bonus sword once", got, items)
			}
			if s := call("POST", "/cancellations", "", fmt.Sprintf(`{"payment_id":%d}`, first.PaymentID), nil); s != 200 {
				t.Fatalf("cancel: %d", s)
			}
			g.Drain(t)
			if got, items := g.Balance(t, "player-1", "CRYSTALS"), g.Items(t, "player-1"); got != 0 || len(items) != 0 {
				t.Fatalf("after the cancel: CRYSTALS %d, items %v; want 0 and no sword", got, items)
			}
			tracked := g.Orders(t, "player-1")[fmt.Sprint("partner.bank.order.", o.OrderID)]
			want := []string{"created/order_created", "received/payment", "granted/fulfill", "received/cancellation", "revoked/revoke"}
			if !reflect.DeepEqual(tracked.Steps(), want) {
				t.Fatalf("tracked order = %v, want %v", tracked.Steps(), want)
			}
		})
	}
}

// An order made directly and one made from a cart of the same items cost
// the same: one pricing.
func TestPartnerCart_OrdersFromTheCartAndDirectPriceAlike(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", taxesAndBonus, func(p *webhooks.PartnerSource) {
		p.Pricing.Discounts = map[string]int64{"crystals_100": 10}
	}))
	items := `[{"sku":"crystals_100","quantity":3},{"sku":"starter_sword","quantity":1}]`
	for _, country := range []string{"DE", ""} {
		tok := g.UserTokenIn(t, "player-1", country)
		var direct, fromCart gatewaytest.OrderAnswer
		if s := g.Partner(t, "POST", "/orders", `{"user_token":"`+tok+`","currency":"USD","items":`+items+`}`, &direct); s != 200 {
			t.Fatalf("direct order: %d", s)
		}
		if s := g.Partner(t, "PUT", "/cart", `{"user_token":"`+tok+`","currency":"USD","items":`+items+`}`, nil); s != 200 {
			t.Fatalf("fill: %d", s)
		}
		if s := g.Partner(t, "POST", "/cart/order", `{"user_token":"`+tok+`"}`, &fromCart); s != 200 {
			t.Fatalf("cart order: %d", s)
		}
		if !reflect.DeepEqual(direct.Price, fromCart.Price) || !reflect.DeepEqual(direct.Items, fromCart.Items) || direct.Price.AmountWithoutDiscount == direct.Price.AmountWithoutTax {
			t.Fatalf("country %q: direct %+v %v, from the cart %+v %v; want the same, discounted", country, direct.Price, lines(direct.Items), fromCart.Price, lines(fromCart.Items))
		}
	}
}

// Every refusal of the cart routes says what is wrong and changes nothing:
// no row anywhere, and the cart as it was.
func TestPartnerCart_RefusalsStoreNothing(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic", func(p *webhooks.PartnerSource) {
		p.Pricing.Currencies = []string{"USD", "EUR"}
	}))
	expired := g.UserToken(t, "player-1")
	g.Clock.Advance(16 * time.Minute)
	tok := g.UserToken(t, "player-1")
	fresh := g.UserToken(t, "player-2") // a player whose cart was never filled
	var buyer struct{ Token string }
	if s := g.Partner(t, "POST", "/users/token", `{"user":{"id":null,"email":"buyer@example.org"}}`, &buyer); s != 200 {
		t.Fatalf("buyer token: %d", s)
	}
	if s := g.Partner(t, "PUT", "/cart", `{"user_token":"`+tok+`","currency":"USD","items":[{"sku":"crystals_100","quantity":1}]}`, nil); s != 200 {
		t.Fatalf("fill: %d", s)
	}
	var was cartAnswer
	g.Exchange(t, cartRequest("GET", "/cart", tok, ""), &was)
	before := g.Everything(t)
	withToken := func(tk, rest string) string { return `{"user_token":"` + tk + `"` + rest + `}` }
	for _, tc := range []struct {
		name, method, path, header, body string
		status                           int
		code                             string
		fields                           []string
	}{
		{"no token header", "GET", "/cart", "", "", 401, "UNAUTHORIZED", []string{"X-User-Token"}},
		{"a token in the URL is not read", "GET", "/cart?user_token=" + tok, "", "", 401, "UNAUTHORIZED", []string{"X-User-Token"}},
		{"an expired token", "DELETE", "/cart/items/crystals_100", expired, "", 401, "UNAUTHORIZED", []string{"X-User-Token"}},
		{"a buyer reads", "GET", "/cart", buyer.Token, "", 403, "FORBIDDEN", []string{"X-User-Token"}},
		{"a buyer fills", "PUT", "/cart", "", withToken(buyer.Token, `,"currency":"USD","items":[{"sku":"crystals_100","quantity":1}]`), 403, "FORBIDDEN", []string{"user_token"}},
		{"a buyer orders", "POST", "/cart/order", "", withToken(buyer.Token, ""), 403, "FORBIDDEN", []string{"user_token"}},
		{"a write's token is in its body", "PUT", "/cart/items/crystals_100", tok, `{"quantity":2}`, 400, "INVALID_PARAMETER", []string{"user_token"}},
		{"a sku twice", "PUT", "/cart", "", withToken(tok, `,"currency":"USD","items":[{"sku":"crystals_100","quantity":1},{"sku":"crystals_100","quantity":2}]`), 400, "INVALID_PARAMETER", []string{"items.1.sku"}},
		{"an unknown sku", "PUT", "/cart", "", withToken(tok, `,"currency":"USD","items":[{"sku":"ghost","quantity":1}]`), 400, "INVALID_PARAMETER", []string{"items.0.sku"}},
		{"a currency not sold", "PUT", "/cart", "", withToken(tok, `,"currency":"JPY","items":[]`), 400, "INVALID_PARAMETER", []string{"currency"}},
		{"a sku without a price in the currency", "PUT", "/cart", "", withToken(tok, `,"currency":"EUR","items":[{"sku":"starter_sword","quantity":1}]`), 400, "INVALID_PARAMETER", []string{"items.0.sku"}},
		{"quantity 0 in a fill", "PUT", "/cart", "", withToken(tok, `,"currency":"USD","items":[{"sku":"crystals_100","quantity":0}]`), 400, "INVALID_PARAMETER", []string{"items.0.quantity"}},
		{"an unknown sku's quantity", "PUT", "/cart/items/ghost", "", withToken(tok, `,"quantity":1`), 400, "INVALID_PARAMETER", []string{"sku"}},
		{"a sku without a price", "PUT", "/cart/items/potion", "", withToken(tok, `,"quantity":1`), 400, "INVALID_PARAMETER", []string{"sku"}},
		{"a negative quantity", "PUT", "/cart/items/crystals_100", "", withToken(tok, `,"quantity":-1`), 400, "INVALID_PARAMETER", []string{"quantity"}},
		{"a currency the cart's items lack", "PUT", "/cart/items/crystals_100", "", withToken(tok, `,"quantity":1,"currency":"JPY"`), 400, "INVALID_PARAMETER", []string{"currency"}},
		{"a first item without a currency", "PUT", "/cart/items/crystals_100", "", withToken(fresh, `,"quantity":1`), 400, "INVALID_PARAMETER", []string{"currency"}},
		{"an order of a cart never filled", "POST", "/cart/order", "", withToken(fresh, ""), 409, "CONFLICT", nil},
		{"not JSON", "PUT", "/cart", "", `{`, 400, "INVALID_PARAMETER", nil},
	} {
		var e gatewaytest.ErrorAnswer
		s := g.Exchange(t, cartRequest(tc.method, tc.path, tc.header, tc.body), &e)
		if s != tc.status || e.Error.Code != tc.code || (tc.fields != nil && !reflect.DeepEqual(e.Error.Fields, tc.fields)) {
			t.Errorf("%s: %d %s %v (%s), want %d %s %v", tc.name, s, e.Error.Code, e.Error.Fields, e.Error.Message, tc.status, tc.code, tc.fields)
		}
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
	var now cartAnswer
	if g.Exchange(t, cartRequest("GET", "/cart", tok, ""), &now); !reflect.DeepEqual(now, was) {
		t.Fatalf("cart after the refusals = %+v, want %+v", now, was)
	}
}

func cartRequest(method, path, token, body string) *http.Request {
	req := gatewaytest.Basic(gatewaytest.JSONRequest(method, "/partners/bank"+path, body), "bank", gatewaytest.PartnerKey)
	if token != "" {
		req.Header.Set("X-User-Token", token)
	}
	return req
}
