package webhooks_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"storegate"
	"storegate/internal/gatewaytest"
)

func steamEvent(typ, orderid, player string) string {
	return fmt.Sprintf(`{"type":%q,"platform":"steam","player_id":%q,"order":{"orderid":%q,"transid":"9001"},"items":[{"product_id":"1001","quantity":1}]}`,
		typ, player, orderid)
}

type storeAck struct {
	Status        string `json:"status"`
	Event         string `json:"event"`
	TransactionID string `json:"transaction_id"`
	Effect        string `json:"effect"`
}

func TestStores_EpicChargebackAfterSpendingDrivesTheWalletNegative(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores())
	var ack storeAck
	if s := g.StoreEvent(t, gatewaytest.EpicEvent("purchase", "E1", "player-1"), &ack); s != 200 || ack.Effect != "grant" || ack.TransactionID != "epic.studio.E1" {
		t.Fatalf("purchase: %d %+v", s, ack)
	}
	g.Drain(t)
	g.Spend(t, "player-1", storegate.PlatformEpic, "CRYSTALS", 80)
	if got := g.PlatformBalance(t, "player-1", "CRYSTALS", storegate.PlatformEpic); got != 20 {
		t.Fatalf("Epic CRYSTALS after spending 80 = %d, want 20", got)
	}
	if s := g.StoreEvent(t, gatewaytest.EpicEvent("chargeback", "E1", "player-1"), &ack); s != 200 || ack.Effect != "claw_back" {
		t.Fatalf("chargeback: %d %+v", s, ack)
	}
	g.Drain(t)
	if got := g.PlatformBalance(t, "player-1", "CRYSTALS", storegate.PlatformEpic); got != -80 {
		t.Fatalf("Epic CRYSTALS after the chargeback = %d, want -80 (the spent currency clawed back)", got)
	}
	// The same chargeback again, and a return of the same order: clawed back once.
	var again storeAck
	if s := g.StoreEvent(t, gatewaytest.EpicEvent("chargeback", "E1", "player-1"), &again); s != 200 || again != ack {
		t.Fatalf("repeated chargeback: %d %+v, want the first answer %+v", s, again, ack)
	}
	if s := g.StoreEvent(t, gatewaytest.EpicEvent("return", "E1", "player-1"), nil); s != 200 {
		t.Fatalf("return: %d", s)
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != -80 {
		t.Fatalf("CRYSTALS = %d after a repeated chargeback and a return, want still -80", got)
	}
	o := g.Orders(t, "player-1")["epic.studio.E1"]
	want := []string{"received/purchase", "granted/fulfill", "received/chargeback", "revoked/revoke", "received/return"}
	if o.Status != "revoked" || o.Platform != "Epic" || !reflect.DeepEqual(o.Steps(), want) {
		t.Fatalf("tracked order = %s %s %v, want revoked on Epic %v", o.Status, o.Platform, o.Steps(), want)
	}
}

func TestStores_SteamRefundAfterConsumptionIsRecordedNotClawedBack(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores())
	if s := g.StoreEvent(t, steamEvent("purchase", "5550001", "player-1"), nil); s != 200 {
		t.Fatalf("purchase: %d", s)
	}
	g.Drain(t)
	g.Spend(t, "player-1", storegate.PlatformSteam, "CRYSTALS", 100) // consumed
	var ack storeAck
	if s := g.StoreEvent(t, steamEvent("refund", "5550001", "player-1"), &ack); s != 200 || ack.Effect != "record" || ack.TransactionID != "steam.studio.5550001" {
		t.Fatalf("refund: %d %+v, want 200 record", s, ack)
	}
	g.Drain(t)
	if got := g.PlatformBalance(t, "player-1", "CRYSTALS", storegate.PlatformSteam); got != 0 {
		t.Fatalf("Steam CRYSTALS after the refund = %d, want 0: nothing clawed back", got)
	}
	var revokes int
	if err := g.DB.QueryRow(t.Context(), `SELECT COUNT(*) FROM outbox WHERE kind = 'revoke'`).Scan(&revokes); err != nil || revokes != 0 {
		t.Fatalf("revokes queued = %d (%v), want 0", revokes, err)
	}
	var stored int
	if err := g.DB.QueryRow(t.Context(), `SELECT COUNT(*) FROM inbox WHERE source = 'studio' AND type = 'refund'`).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("refund events stored = %d (%v), want 1 (recorded)", stored, err)
	}
	o := g.Orders(t, "player-1")["steam.studio.5550001"]
	if o.Status != "refunded" || !strings.Contains(o.History[len(o.History)-1].Reason, "does not support claw-back") {
		t.Fatalf("tracked order = %s %+v, want refunded with the reason", o.Status, o.History)
	}
	// Twitch likewise: a drop's refund is recorded.
	twitch := `{"type":"refund","platform":"twitch","player_id":"player-1","order":{"entitlement_id":"tw-1"},"items":[{"product_id":"drop-crystals-100","quantity":1}]}`
	if s := g.StoreEvent(t, twitch, &ack); s != 200 || ack.Effect != "record" {
		t.Fatalf("twitch refund: %d %+v", s, ack)
	}
}

func TestStores_ChargebackReversedRegrantsOnceInAnyOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []string
	}{
		{"in order", []string{"purchase", "chargeback", "chargeback_reversed"}},
		{"reversal without the chargeback", []string{"purchase", "chargeback_reversed"}},
		{"reversal first", []string{"chargeback_reversed", "purchase", "chargeback"}},
		{"everything twice", []string{"purchase", "chargeback", "chargeback_reversed", "purchase", "chargeback", "chargeback_reversed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores())
			for _, typ := range tc.order {
				if s := g.StoreEvent(t, gatewaytest.EpicEvent(typ, "E7", "player-1"), nil); s != 200 {
					t.Fatalf("%s: %d", typ, s)
				}
				g.Drain(t)
			}
			g.Clock.Advance(3600e9) // past any deferred revoke's backoff
			g.Drain(t)
			if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
				t.Fatalf("CRYSTALS = %d, want 100: the player owns the order once", got)
			}
		})
	}
}

func TestStores_PlatformIdentities(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores())
	for _, tc := range []struct {
		body, id string
	}{
		{`{"type":"purchase","platform":"xbox","player_id":"player-2","order":{"order_id":"7f0c-11","line_item_id":"L-2"},"items":[{"product_id":"9NCRYSTALS100","quantity":1}]}`, "xbox.studio.7f0c-11.L-2"},
		{`{"type":"purchase","platform":"playstation","player_id":"player-2","order":{"entitlement_id":"EP9000-CUSA1_00-X"},"items":[{"product_id":"PS-CRYSTALS-100","quantity":1}]}`, "playstation.studio.EP9000-CUSA1_00-X"},
		{`{"type":"purchase","platform":"twitch","player_id":"player-2","order":{"entitlement_id":"tw-9"},"items":[{"product_id":"drop-crystals-100","quantity":2}]}`, "twitch.studio.tw-9"},
		{`{"type":"purchase","platform":"steam","player_id":"player-2","order":{"orderid":"18446744073709551615"},"items":[{"product_id":"1001","quantity":1},{"product_id":"2001","quantity":1}]}`, "steam.studio.18446744073709551615"},
	} {
		var ack storeAck
		if s := g.StoreEvent(t, tc.body, &ack); s != 200 || ack.TransactionID != tc.id {
			t.Fatalf("%s: %d %+v, want transaction %s", tc.body, s, ack, tc.id)
		}
	}
	g.Drain(t)
	if got := g.Balance(t, "player-2", "CRYSTALS"); got != 500 {
		t.Fatalf("CRYSTALS = %d, want 500 (100 xbox + 100 playstation + 200 twitch + 100 steam)", got)
	}
	if got := g.Items(t, "player-2"); !reflect.DeepEqual(got, []string{"starter_sword×1"}) {
		t.Fatalf("items = %v", got)
	}
	// An Xbox claw-back revokes the Xbox line only.
	if s := g.StoreEvent(t, `{"type":"refund","platform":"xbox","player_id":"player-2","order":{"order_id":"7f0c-11","line_item_id":"L-2"},"items":[{"product_id":"9NCRYSTALS100","quantity":1}]}`, nil); s != 200 {
		t.Fatalf("xbox refund: %d", s)
	}
	g.Drain(t)
	if got := g.PlatformBalance(t, "player-2", "CRYSTALS", storegate.PlatformXbox); got != 0 {
		t.Fatalf("Xbox CRYSTALS after the refund = %d, want 0", got)
	}
	if got := g.Balance(t, "player-2", "CRYSTALS"); got != 400 {
		t.Fatalf("CRYSTALS = %d, want 400", got)
	}
}

// A claw-back does not need the products mapped any more: a refund must
// never be lost to a catalog change.
func TestStores_RefundOfAProductNoLongerInTheCatalogStillClawsBack(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores())
	g.StoreEvent(t, gatewaytest.EpicEvent("purchase", "E9", "player-1"), nil)
	g.Drain(t)
	refund := strings.Replace(gatewaytest.EpicEvent("refund", "E9", "player-1"), "epic-crystals-100", "epic-retired-product", 1)
	if s := g.StoreEvent(t, refund, nil); s != 200 {
		t.Fatalf("refund naming a retired product: %d", s)
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 0 {
		t.Fatalf("CRYSTALS = %d, want 0", got)
	}
}

func TestStores_BadEventsStoreNothing(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores())
	before := g.Everything(t)
	good := gatewaytest.EpicEvent("purchase", "E1", "player-1")
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
		fields     []string
	}{
		{"not JSON", `{`, 400, "INVALID_PARAMETER", nil},
		{"no type", `{"platform":"epic"}`, 400, "INVALID_PARAMETER", []string{"type"}},
		{"unknown type", strings.Replace(good, `"purchase"`, `"gift"`, 1), 400, "INVALID_PARAMETER", []string{"type"}},
		{"unknown platform", strings.Replace(good, `"epic"`, `"gog"`, 1), 400, "INVALID_PARAMETER", []string{"platform"}},
		{"steam without orderid", `{"type":"purchase","platform":"steam","player_id":"player-1","order":{"transid":"1"},"items":[{"product_id":"1001","quantity":1}]}`, 400, "INVALID_PARAMETER", []string{"order.orderid"}},
		{"steam orderid as a fraction", `{"type":"purchase","platform":"steam","player_id":"player-1","order":{"orderid":12.5},"items":[{"product_id":"1001","quantity":1}]}`, 400, "INVALID_PARAMETER", []string{"order.orderid"}},
		{"xbox without line item", `{"type":"purchase","platform":"xbox","player_id":"player-1","order":{"order_id":"o"},"items":[{"product_id":"9NCRYSTALS100","quantity":1}]}`, 400, "INVALID_PARAMETER", []string{"order.line_item_id"}},
		{"epic with two items", strings.Replace(good, `"items":[`, `"items":[{"product_id":"epic-sword","quantity":1},`, 1), 400, "INVALID_PARAMETER", []string{"items"}},
		{"entitlement id with a dot", strings.Replace(good, `"E1"`, `"E.1"`, 1), 400, "INVALID_PARAMETER", []string{"order.entitlement_id"}},
		{"unknown field", strings.Replace(good, `"player_id"`, `"player":"x","player_id"`, 1), 400, "INVALID_PARAMETER", []string{"player"}},
		{"no items", strings.Replace(good, `[{"product_id":"epic-crystals-100","quantity":1}]`, `[]`, 1), 400, "INVALID_PARAMETER", []string{"items"}},
		{"zero quantity", strings.Replace(good, `"quantity":1`, `"quantity":0`, 1), 400, "INVALID_PARAMETER", []string{"items.0.quantity"}},
		{"unknown product", strings.Replace(good, "epic-crystals-100", "epic-ghost", 1), 400, "INVALID_PARAMETER", []string{"items.0.product_id"}},
		{"product of another platform", strings.Replace(good, "epic-crystals-100", "1001", 1), 400, "INVALID_PARAMETER", []string{"items.0.product_id"}},
		{"unknown player", strings.Replace(good, "player-1", "stranger", 1), 400, "INVALID_USER", []string{"player_id"}},
	} {
		var e gatewaytest.ErrorAnswer
		s := g.StoreEvent(t, tc.body, &e)
		if s != tc.status || e.Error.Code != tc.code || (tc.fields != nil && !reflect.DeepEqual(e.Error.Fields, tc.fields)) {
			t.Errorf("%s: %d %s %v (%s), want %d %s %v", tc.name, s, e.Error.Code, e.Error.Fields, e.Error.Message, tc.status, tc.code, tc.fields)
		}
	}
	// Signature and content type.
	req := gatewaytest.JSONRequest("POST", "/stores/studio/events", good)
	g.Standard(t, req, gatewaytest.PartnerSecret, good)
	var e gatewaytest.ErrorAnswer
	if s := g.Exchange(t, req, &e); s != 401 || e.Error.Code != "INVALID_SIGNATURE" {
		t.Fatalf("wrong secret: %d %+v", s, e)
	}
	req = g.Standard(t, gatewaytest.JSONRequest("POST", "/stores/studio/events", good), gatewaytest.StoresSecret, good)
	req.Header.Set("Content-Type", "text/plain")
	if s := g.Exchange(t, req, &e); s != 415 {
		t.Fatalf("text/plain: %d", s)
	}
	if s := g.Exchange(t, gatewaytest.JSONRequest("POST", "/stores/elsewhere/events", good), &e); s != 404 {
		t.Fatalf("unknown source: %d", s)
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
}

func TestStores_PlatformNotEnabledForTheSource(t *testing.T) {
	only := func(c *gatewaytest.Config) { c.WebhooksDeps.Stores[0].Platforms = []string{"steam"} }
	g := gatewaytest.New(t, gatewaytest.WithCommerce(), gatewaytest.WithStores(), only)
	var e gatewaytest.ErrorAnswer
	if s := g.StoreEvent(t, gatewaytest.EpicEvent("purchase", "E1", "player-1"), &e); s != 400 || e.Error.Fields[0] != "platform" {
		t.Fatalf("epic event to a steam-only source: %d %+v", s, e)
	}
}
