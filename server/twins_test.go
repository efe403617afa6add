package server_test

import (
	"net/http"
	"strings"
	"testing"

	"storegate/adapters/connectors"
	"storegate/api"
	"storegate/internal/gatewaytest"
)

// TestEveryRoute_RefusesCaseTwins sends, on every route that takes a body,
// a valid body plus a key that differs from a declared one only in case:
// Go's decoder would read it, the schema never saw it. Each answer is 400
// naming the key, and nothing is stored.
func TestEveryRoute_RefusesCaseTwins(t *testing.T) {
	sim := connectors.NewSimulator(nil)
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithCommerce(), gatewaytest.WithPartner("basic"), gatewaytest.WithStores(),
		gatewaytest.WithFulfill(map[string]api.OrderConnector{"epic": sim}), gatewaytest.WithGame)
	token := g.UserToken(t, "player-1")
	order := g.CreateOrder(t, "player-1", "USD", `[{"sku":"crystals_100","quantity":1}]`)
	partner := func(path string) func(string) *http.Request {
		return func(body string) *http.Request {
			return gatewaytest.Basic(gatewaytest.JSONRequest("POST", "/partners/bank"+path, body), "bank", gatewaytest.PartnerKey)
		}
	}
	bearer := func(method, path, token string) func(string) *http.Request {
		return func(body string) *http.Request {
			req := gatewaytest.JSONRequest(method, path, body)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Idempotency-Key", "twin-key")
			return req
		}
	}
	for _, tc := range []struct {
		route string
		req   func(body string) *http.Request
		body  string // valid
		twin  string // a key to add, and the value to give it
	}{
		{"partner user token", partner("/users/token"), `{"user":{"id":"player-1","email":"a@b.c"}}`, `"USER":{"id":"player-2","email":"a@b.c"}`},
		{"partner user token, nested", partner("/users/token"), `{"user":{"id":"player-1","email":"a@b.c","ID":"player-2"}}`, ``},
		{"partner order", partner("/orders"), `{"user_token":"` + token + `","currency":"USD","items":[{"sku":"crystals_100","quantity":1}]}`,
			`"Items":[{"sku":"crystals_100","quantity":1000}]`},
		{"partner payment", partner("/payments"), gatewaytest.PayBody(order.OrderID, "player-1", "1.99", "USD", "twin"), `"Purchase":{"order_id":1}`},
		{"partner cancellation", partner("/cancellations"), `{"payment_id":1}`, `"Payment_ID":2`},
		{"store event", func(body string) *http.Request {
			return g.Standard(t, gatewaytest.JSONRequest("POST", "/stores/studio/events", body), gatewaytest.StoresSecret, body)
		}, gatewaytest.EpicEvent("purchase", "ent-twin", "player-1"), `"Player_Id":"player-2"`},
		{"fulfill orders", func(body string) *http.Request {
			req := gatewaytest.JSONRequest("POST", "/v1/players/player-1/fulfill-orders", body)
			req.Header.Set("Authorization", "Bearer "+g.PlayerToken(t, "player-1", gatewaytest.PlayerKey))
			return req
		}, `{"platform":"epic"}`, `"PLATFORM":"steam"`},
		{"admin adjustment", bearer("POST", "/admin/v1/players/player-1/wallets/CRYSTALS/adjustments", gatewaytest.AdminToken),
			`{"amount":5,"reason":"goodwill","actor":"alice"}`, `"Amount":5000000`},
		{"admin attributes", bearer("PUT", "/admin/v1/players/player-1/attributes", gatewaytest.AdminToken), `{"attributes":{"level":3}}`,
			`"Attributes":{"level":99}`},
		{"game-server spend", bearer("POST", "/v1/players/player-1/wallets/CRYSTALS/spend", gatewaytest.GameToken), `{"amount":1,"reason":"hat"}`,
			`"AMOUNT":-5`},
		{"game-server consume", bearer("POST", "/v1/players/player-1/entitlements/e1/consume", gatewaytest.GameToken), `{"use_count":1}`,
			`"Use_Count":3`},
		{"dead letter replay", bearer("POST", "/admin/v1/deadletters/c1/replay", gatewaytest.AdminToken), `{"by":"alice"}`, `"BY":"mallory"`},
		{"dead letter discard", bearer("POST", "/admin/v1/deadletters/c1/discard", gatewaytest.AdminToken), `{"by":"alice","reason":"x"}`, `"Reason":"y"`},
		{"dead letters replay", bearer("POST", "/admin/v1/deadletters/replay", gatewaytest.AdminToken), `{"by":"alice","all":true}`, `"ALL":false`},
	} {
		t.Run(tc.route, func(t *testing.T) {
			body := tc.body
			field := "user.ID"
			if tc.twin != "" {
				body = strings.TrimSuffix(tc.body, "}") + "," + tc.twin + "}"
				field = strings.Trim(strings.SplitN(tc.twin, ":", 2)[0], `"`)
			}
			before := g.Everything(t)
			var e gatewaytest.ErrorAnswer
			if status := g.Exchange(t, tc.req(body), &e); status != 400 || e.Error.Code != "INVALID_PARAMETER" ||
				len(e.Error.Fields) != 1 || e.Error.Fields[0] != field {
				t.Fatalf("answer = %d %+v, want 400 INVALID_PARAMETER naming %s", status, e.Error, field)
			}
			gatewaytest.SameRows(t, before, g.Everything(t))
		})
	}
	if attrs, _ := g.Ledger.UserAttributes(t.Context(), "player-1"); attrs != nil {
		t.Errorf("attributes set by a refused request: %s", attrs)
	}
}
