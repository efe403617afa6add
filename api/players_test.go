package api_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"storegate"
	"storegate/adapters/connectors"
	"storegate/api"
	"storegate/internal/gatewaytest"
	"storegate/mapping"
)

type fulfillAnswer struct {
	Since      *time.Time `json:"since"`
	Fulfilled  []fulfilled
	ClawedBack []fulfilled `json:"clawed_back"`
	Recorded   []fulfilled
	Failed     []fulfilled
	Unchanged  int
}

type fulfilled struct {
	TransactionID string `json:"transaction_id"`
	Event         string
	Status        string
	Reason        string
	Items         []struct {
		SKU      string
		Quantity int64
	}
}

func fulfillOrders(t testing.TB, g *gatewaytest.Gateway, player, platform string, out any) int {
	t.Helper()
	req := gatewaytest.JSONRequest(http.MethodPost, "/v1/players/"+player+"/fulfill-orders", `{"platform":"`+platform+`"}`)
	req.Header.Set("Authorization", "Bearer "+g.PlayerToken(t, player, gatewaytest.PlayerKey))
	return g.Exchange(t, req, out)
}

func epicOrder(typ, entitlement string) mapping.StoreEvent {
	return mapping.StoreEvent{Type: typ, Platform: "epic", PlayerID: "player-1", Order: mapping.StoreOrder{EntitlementID: entitlement},
		Items: []mapping.StoreItem{{ProductID: "epic-crystals-100", Quantity: 1}}}
}

func TestFulfillOrders_TwiceGrantsOnce_ChargebackOnTheNextCallClawsBack(t *testing.T) {
	clockNow := time.Now // replaced below: the simulator stamps with the gateway's clock
	sim := connectors.NewSimulator(func() time.Time { return clockNow() })
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores(), gatewaytest.WithFulfill(map[string]api.OrderConnector{"epic": sim}))
	clockNow = g.Clock.Now
	sim.Put(epicOrder("purchase", "E1"))

	var first, second fulfillAnswer
	if s := fulfillOrders(t, g, "player-1", "epic", &first); s != 200 {
		t.Fatalf("first call: %d", s)
	}
	if len(first.Fulfilled) != 1 || first.Fulfilled[0].TransactionID != "epic.studio.E1" || first.Since != nil ||
		first.Fulfilled[0].Items[0].SKU != "crystals_100" {
		t.Fatalf("first call = %+v, want E1 fulfilled with crystals_100, no cursor yet", first)
	}
	g.Drain(t)
	g.Clock.Advance(time.Minute)
	if s := fulfillOrders(t, g, "player-1", "epic", &second); s != 200 {
		t.Fatalf("second call: %d", s)
	}
	if len(second.Fulfilled) != 0 || second.Since == nil {
		t.Fatalf("second call = %+v, want nothing new, asked since the first run", second)
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Fatalf("CRYSTALS = %d after two calls, want 100", got)
	}

	g.Spend(t, "player-1", storegate.PlatformEpic, "CRYSTALS", 60)
	g.Clock.Advance(time.Hour)
	sim.Put(epicOrder("chargeback", "E1"))
	var third fulfillAnswer
	if s := fulfillOrders(t, g, "player-1", "epic", &third); s != 200 {
		t.Fatalf("third call: %d", s)
	}
	if len(third.ClawedBack) != 1 || third.ClawedBack[0].TransactionID != "epic.studio.E1" || len(third.Fulfilled) != 0 {
		t.Fatalf("third call = %+v, want E1 clawed back", third)
	}
	g.Drain(t)
	if got := g.PlatformBalance(t, "player-1", "CRYSTALS", storegate.PlatformEpic); got != -60 {
		t.Fatalf("Epic CRYSTALS after the claw-back = %d, want -60", got)
	}
	var fourth fulfillAnswer
	fulfillOrders(t, g, "player-1", "epic", &fourth)
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != -60 || len(fourth.ClawedBack) != 0 {
		t.Fatalf("after a fourth call: CRYSTALS = %d, answer %+v; want -60 and nothing new", got, fourth)
	}
}

// With the dispatcher running, the answer says what was applied.
func TestFulfillOrders_AnswersGrantedWhenTheGrantLands(t *testing.T) {
	sim := connectors.NewSimulator(nil)
	sim.Put(epicOrder("purchase", "E2"))
	var d dispatcherRef
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores(), gatewaytest.WithFulfill(map[string]api.OrderConnector{"epic": sim}),
		func(c *gatewaytest.Config) {
			c.APIDeps.FulfillOrders.Wait = 10 * time.Second
			c.APIDeps.Notify = d.notify
		})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.set(g.Dispatcher.Notify)
	go func() { g.Dispatcher.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	var ans fulfillAnswer
	if s := fulfillOrders(t, g, "player-1", "epic", &ans); s != 200 || len(ans.Fulfilled) != 1 || ans.Fulfilled[0].Status != "granted" {
		t.Fatalf("answer = %d %+v, want E2 granted", s, ans)
	}
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Fatalf("CRYSTALS = %d, want 100 by the time of the answer", got)
	}
}

// dispatcherRef lets the harness's Notify reach a dispatcher built after it.
type dispatcherRef struct{ fn func() }

func (d *dispatcherRef) set(fn func()) { d.fn = fn }
func (d *dispatcherRef) notify() {
	if d.fn != nil {
		d.fn()
	}
}

func TestFulfillOrders_ProxiedAndPulledOrdersShareOneGrant(t *testing.T) {
	sim := connectors.NewSimulator(nil)
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores(), gatewaytest.WithFulfill(map[string]api.OrderConnector{"epic": sim}))
	g.StoreEvent(t, gatewaytest.EpicEvent("purchase", "E3", "player-1"), nil)
	sim.Put(epicOrder("purchase", "E3"))
	var ans fulfillAnswer
	fulfillOrders(t, g, "player-1", "epic", &ans)
	g.Drain(t)
	if ans.Unchanged != 1 || len(ans.Fulfilled) != 0 || g.Balance(t, "player-1", "CRYSTALS") != 100 {
		t.Fatalf("answer %+v, CRYSTALS %d; want the pulled order seen as the proxied one, 100", ans, g.Balance(t, "player-1", "CRYSTALS"))
	}
}

// An order first seen already charged back was never granted: on Epic it is
// granted and clawed back (the history tells both); on Steam it is recorded
// and never granted.
func TestFulfillOrders_FirstSeenRefunded(t *testing.T) {
	epic, steam := connectors.NewSimulator(nil), connectors.NewSimulator(nil)
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores(), gatewaytest.WithFulfill(map[string]api.OrderConnector{"epic": epic, "steam": steam}))
	epic.Put(epicOrder("chargeback", "E4"))
	steam.Put(mapping.StoreEvent{Type: "refund", Platform: "steam", PlayerID: "player-1", Order: mapping.StoreOrder{OrderID: "77"},
		Items: []mapping.StoreItem{{ProductID: "1001", Quantity: 1}}})
	var a, b fulfillAnswer
	fulfillOrders(t, g, "player-1", "epic", &a)
	fulfillOrders(t, g, "player-1", "steam", &b)
	g.Drain(t)
	if len(a.ClawedBack) != 1 || len(b.Recorded) != 1 || b.Recorded[0].Status != "refunded" {
		t.Fatalf("epic %+v, steam %+v", a, b)
	}
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 0 {
		t.Fatalf("CRYSTALS = %d, want 0", got)
	}
	o := g.Orders(t, "player-1")
	if e := o["epic.studio.E4"]; e.Status != "revoked" {
		t.Fatalf("epic order = %s %v", e.Status, e.Steps())
	}
	if s := o["steam.studio.77"]; s.Status != "refunded" || !reflect.DeepEqual(s.Steps(), []string{"refunded/refund"}) {
		t.Fatalf("steam order = %s %v", s.Status, s.Steps())
	}
}

func TestFulfillOrders_UnprocessableOrderIsReportedAndRetried(t *testing.T) {
	sim := connectors.NewSimulator(nil)
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores(), gatewaytest.WithFulfill(map[string]api.OrderConnector{"epic": sim}))
	sim.Put(epicOrder("purchase", "E5"))
	bad := epicOrder("purchase", "E6")
	bad.Items[0].ProductID = "epic-unmapped"
	sim.Put(bad)
	var a, b fulfillAnswer
	fulfillOrders(t, g, "player-1", "epic", &a)
	if len(a.Fulfilled) != 1 || len(a.Failed) != 1 || a.Failed[0].TransactionID != "epic.studio.E6" {
		t.Fatalf("answer = %+v, want E5 fulfilled and E6 failed", a)
	}
	// The cursor did not move: the next run asks for everything again.
	g.Clock.Advance(time.Minute)
	fulfillOrders(t, g, "player-1", "epic", &b)
	if b.Since != nil || b.Unchanged != 1 || len(b.Failed) != 1 {
		t.Fatalf("next call = %+v, want all orders asked again (no cursor), E6 failed again", b)
	}
	if o := g.Orders(t, "player-1")["epic.studio.E6"]; o.Status != "failed" || o.History[0].Reason == "" {
		t.Fatalf("E6 tracked = %s %+v, want failed with why", o.Status, o.History)
	}
}

func TestFulfillOrders_Refusals(t *testing.T) {
	sim := connectors.NewSimulator(nil)
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores(), gatewaytest.WithFulfill(map[string]api.OrderConnector{"epic": sim}))
	sim.Put(epicOrder("purchase", "E1"))
	before := g.Everything(t)
	for _, tc := range []struct {
		name, body, token, ctype string
		status                   int
		code                     string
	}{
		{"no token", `{"platform":"epic"}`, "-", "", 401, "UNAUTHORIZED"},
		{"token signed with another key", `{"platform":"epic"}`, g.PlayerToken(t, "player-1", "another-key-0123456789abcdef012345"), "", 401, "UNAUTHORIZED"},
		{"another player's token", `{"platform":"epic"}`, g.PlayerToken(t, "player-2", gatewaytest.PlayerKey), "", 403, "FORBIDDEN"},
		{"no platform", `{}`, "", "", 400, "INVALID_PARAMETER"},
		{"unknown platform", `{"platform":"gog"}`, "", "", 400, "INVALID_PARAMETER"},
		{"no connector", `{"platform":"steam"}`, "", "", 400, "INVALID_PARAMETER"},
		{"extra field", `{"platform":"epic","since":"2020-01-01T00:00:00Z"}`, "", "", 400, "INVALID_PARAMETER"},
		{"not JSON", `platform=epic`, "", "", 400, "INVALID_PARAMETER"},
		{"form", `platform=epic`, "", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"},
	} {
		req := gatewaytest.JSONRequest(http.MethodPost, "/v1/players/player-1/fulfill-orders", tc.body)
		switch tc.token {
		case "":
			req.Header.Set("Authorization", "Bearer "+g.PlayerToken(t, "player-1", gatewaytest.PlayerKey))
		case "-":
		default:
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		var e gatewaytest.ErrorAnswer
		if s := g.Exchange(t, req, &e); s != tc.status || e.Error.Code != tc.code {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, s, e, tc.status, tc.code)
		}
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
	if sim.Calls() != 0 {
		t.Fatalf("the connector was asked %d times by refused requests", sim.Calls())
	}
	// The platform is down: 503, nothing stored, the cursor stays.
	sim.Err = errors.New("platform down")
	var e gatewaytest.ErrorAnswer
	if s := fulfillOrders(t, g, "player-1", "epic", &e); s != 503 || e.Error.Code != "SERVICE_UNAVAILABLE" {
		t.Fatalf("connector down: %d %+v", s, e)
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
	// Not configured at all.
	if s := fulfillOrders(t, gatewaytest.New(t, gatewaytest.WithCommerce()), "player-1", "epic", &e); s != 404 {
		t.Fatalf("without Fulfill Orders: %d, want 404", s)
	}
}
