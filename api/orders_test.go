package api_test

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"storegate/internal/gatewaytest"
)

// Xsolla orders are tracked like every other order: the store records each
// step with the write that causes it, so the Xsolla handler needs no code.
func TestOrders_XsollaOrderHistory(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithCommerce())
	g.Post(t, "xs", gatewaytest.OrderPaid(1001, "player-1", "crystals_100"))
	g.Post(t, "xs", gatewaytest.OrderPaid(1001, "player-1", "crystals_100")) // a duplicate adds nothing
	g.Drain(t)
	g.Post(t, "xs", gatewaytest.OrderCanceled(1001, "player-1"))
	g.Drain(t)
	o := g.Orders(t, "player-1")["xsolla.xs.order.1001"]
	want := []string{"received/order_paid", "granted/fulfill", "received/order_canceled", "revoked/revoke"}
	if o.Status != "revoked" || o.Platform != "Xsolla" || o.Ref != "order 1001" || !reflect.DeepEqual(o.Steps(), want) {
		t.Fatalf("order = %+v %v, want revoked, %v", o, o.Steps(), want)
	}
}

// A command that can never succeed marks its order failed, with why.
func TestOrders_DeadLetterMarksTheOrderFailed(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithCommerce())
	deadLetter(t, g, 2002, "player-1")
	o := g.Orders(t, "player-1")["xsolla.xs.order.2002"]
	last := o.History[len(o.History)-1]
	if o.Status != "failed" || last.Status != "failed" || !strings.Contains(last.Reason, "30343") {
		t.Fatalf("order = %s %+v, want failed with the dead letter's reason", o.Status, o.History)
	}
}

func TestOrders_AdminRoute(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce())
	for _, tc := range []struct {
		auth, query string
		status      int
	}{
		{"", "", 401},
		{"Bearer wrong-token-0123456789", "", 401},
		{"Bearer " + gatewaytest.AdminToken, "?limit=0", 400},
		{"Bearer " + gatewaytest.AdminToken, "?limit=501", 400},
		{"Bearer " + gatewaytest.AdminToken, "?limit=abc", 400},
		{"Bearer " + gatewaytest.AdminToken, "?limit=5", 200},
	} {
		req := httptest.NewRequest(http.MethodGet, "/admin/v1/players/player-1/orders"+tc.query, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		var ans struct {
			Orders []gatewaytest.Order `json:"orders"`
		}
		if s := g.Exchange(t, req, &ans); s != tc.status || (s == 200 && ans.Orders == nil) {
			t.Fatalf("%q %q: %d %+v, want %d", tc.auth, tc.query, s, ans, tc.status)
		}
	}
}
