package api_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/internal/gatewaytest"
	"storegate/ledger"
	"storegate/mapping"
)

// revocationCatalog sells, on Epic, SKUs with and without a revocation
// action of their own.
var revocationCatalog = []mapping.SKU{
	{SKU: "crystals_100", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100, Products: map[string]string{"epic": "epic-crystals-100"}},
	{SKU: "crystals_gift", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100, Revocation: storegate.RevokeNone,
		Products: map[string]string{"epic": "epic-crystals-gift"}},
	{SKU: "crystals_strict", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100, Revocation: storegate.RevokeFailIfNegative,
		Products: map[string]string{"epic": "epic-crystals-strict"}},
	{SKU: "starter_sword", Type: storegate.ItemDurable, Products: map[string]string{"epic": "epic-sword"}},
	{SKU: "promo_pack", Type: storegate.ItemBundle, Revocation: storegate.RevokeNone, Products: map[string]string{"epic": "epic-promo"},
		Contents: []mapping.Content{{SKU: "crystals_100"}, {SKU: "starter_sword"}}},
}

func epicStoreEvent(typ, entitlement, player, product string) string {
	return fmt.Sprintf(`{"type":%q,"platform":"epic","player_id":%q,"order":{"entitlement_id":%q},"items":[{"product_id":%q,"quantity":1}]}`,
		typ, player, entitlement, product)
}

// Each revocation option through the real server: an Epic purchase, a
// spend of 80 when the case asks, the chargeback a store proxy sends, and
// what support then sees. An entry's action is its order's (the source's
// override), else its item's (the catalog's), else the ledger target's rule
// for its kind.
func TestRevocation_OptionsThroughTheServer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rules    ledger.Rules
		product  string
		spend    bool
		strategy string // of the first item revoked (a bundle's first content)
		status   string
		skipped  bool
		crystals int64 // the balance after the chargeback
		sword    bool  // the sword is still held
	}{
		{name: "type default allow_negative", product: "epic-crystals-100", spend: true,
			strategy: "allow_negative", status: "SUCCESS", crystals: -80},
		{name: "type default currency none", rules: ledger.Rules{Currency: storegate.RevokeNone}, product: "epic-crystals-100", spend: true,
			strategy: "none", status: "SUCCESS", skipped: true, crystals: 20},
		{name: "item none over the type default", product: "epic-crystals-gift",
			strategy: "none", status: "SUCCESS", skipped: true, crystals: 100},
		{name: "item fail_if_negative over the type default", product: "epic-crystals-strict", spend: true,
			strategy: "fail_if_negative", status: "FAIL", crystals: 20},
		{name: "order over the item", rules: ledger.Rules{Sources: map[string]ledger.SourceRules{"studio": {Currency: storegate.RevokeAllowNegative}}},
			product: "epic-crystals-gift", spend: true, strategy: "allow_negative", status: "SUCCESS", crystals: -80},
		{name: "order none over the type default", rules: ledger.Rules{Sources: map[string]ledger.SourceRules{"studio": {Currency: storegate.RevokeNone}}},
			product: "epic-crystals-100", strategy: "none", status: "SUCCESS", skipped: true, crystals: 100},
		{name: "another source's override does not apply", rules: ledger.Rules{Sources: map[string]ledger.SourceRules{"other": {Currency: storegate.RevokeNone}}},
			product: "epic-crystals-100", strategy: "allow_negative", status: "SUCCESS", crystals: 0},
		{name: "type default durable revoke", product: "epic-sword",
			strategy: "revoke", status: "SUCCESS"},
		{name: "type default durable none", rules: ledger.Rules{Durable: storegate.RevokeNone}, product: "epic-sword",
			strategy: "none", status: "SUCCESS", skipped: true, sword: true},
		{name: "bundle none for its contents", product: "epic-promo",
			strategy: "none", status: "SUCCESS", skipped: true, crystals: 100, sword: true},
		{name: "order over a bundle's action", rules: ledger.Rules{Sources: map[string]ledger.SourceRules{"studio": {Currency: storegate.RevokeAllowNegative}}},
			product: "epic-promo", strategy: "allow_negative", status: "SUCCESS", crystals: 0, sword: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gatewaytest.New(t, gatewaytest.WithRevocation(tc.rules), gatewaytest.WithCatalog(revocationCatalog...),
				gatewaytest.WithStores(), gatewaytest.WithGame)
			if s := g.StoreEvent(t, epicStoreEvent("purchase", "ent-1", "player-1", tc.product), nil); s != 200 {
				t.Fatalf("purchase: status %d", s)
			}
			g.Drain(t)
			if tc.spend {
				if s, body := g.Call(t, "POST", spendPath, gatewaytest.GameToken, "hat", `{"amount":80,"platform":"Epic"}`); s != 200 {
					t.Fatalf("spend = %d %v", s, body)
				}
			}
			if s := g.StoreEvent(t, epicStoreEvent("chargeback", "ent-1", "player-1", tc.product), nil); s != 200 {
				t.Fatalf("chargeback: status %d", s)
			}
			g.Drain(t)

			_, revs := g.Call(t, "GET", "/admin/v1/players/player-1/revocations", gatewaytest.AdminToken, "", "")
			list, _ := revs["revocations"].([]any)
			if len(list) != 1 {
				t.Fatalf("revocations = %v, want one", revs)
			}
			rec := list[0].(map[string]any)
			item := rec["item_revocations"].([]any)[0].(map[string]any)
			if children, ok := item["item_revocations"].([]any); ok {
				item = children[0].(map[string]any)
			}
			if item["strategy"] != tc.strategy || item["skipped"] != tc.skipped || rec["status"] != tc.status {
				t.Errorf("record status %v, first entry %v; want strategy %s, skipped %v, status %s", rec["status"], item, tc.strategy, tc.skipped, tc.status)
			}
			if got := g.Balance(t, "player-1", "CRYSTALS"); got != tc.crystals {
				t.Errorf("CRYSTALS = %d, want %d", got, tc.crystals)
			}
			held := false
			for _, it := range g.Items(t, "player-1") {
				held = held || strings.HasPrefix(it, "starter_sword")
			}
			if held != tc.sword {
				t.Errorf("sword held = %v, want %v (items %v)", held, tc.sword, g.Items(t, "player-1"))
			}
		})
	}
}

// The record carries AGS's fields (namespace, items, the entitlement and
// credit revocation summaries) beside storegate's own, and the revocation
// history reads across players: one record by its id, and every record with
// the per-player route's filters and pages.
func TestRevocation_HistoryAcrossPlayers(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithCatalog(revocationCatalog...), gatewaytest.WithStores())
	for _, p := range []struct{ player, ent, product string }{
		{"player-1", "ent-1", "epic-crystals-100"}, {"player-2", "ent-2", "epic-sword"}, {"player-2", "ent-3", "epic-crystals-strict"},
	} {
		g.StoreEvent(t, epicStoreEvent("purchase", p.ent, p.player, p.product), nil)
		g.Drain(t)
		g.Clock.Advance(time.Second)
	}
	// Nothing spent: every revoke succeeds but the third, which finds the
	// balance spent by a manual debit first.
	if s, body := g.Call(t, "POST", "/admin/v1/players/player-2/wallets/CRYSTALS/adjustments", gatewaytest.AdminToken, "debit-1",
		`{"amount":-50,"reason":"test","actor":"alice","platform":"Epic","allow_negative":true}`); s != 201 {
		t.Fatalf("adjustment = %d %v", s, body)
	}
	for _, p := range []struct{ player, ent, product string }{
		{"player-1", "ent-1", "epic-crystals-100"}, {"player-2", "ent-2", "epic-sword"}, {"player-2", "ent-3", "epic-crystals-strict"},
	} {
		g.StoreEvent(t, epicStoreEvent("refund", p.ent, p.player, p.product), nil)
		g.Drain(t)
		g.Clock.Advance(time.Second)
	}

	status, rec := g.Call(t, "GET", "/admin/v1/revocations/"+url.PathEscape("epic.studio.ent-1.revoke"), gatewaytest.AdminToken, "", "")
	if status != 200 || rec["id"] != "epic.studio.ent-1.revoke" || rec["player_id"] != "player-1" || rec["namespace"] != "storegate" ||
		rec["sender"] != "studio" || rec["state"] != "REVOKED" {
		t.Fatalf("by id = %d %v", status, rec)
	}
	items := rec["items"].([]any)
	credits := rec["credit_revocations"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["sku"] != "crystals_100" || len(credits) != 1 ||
		credits[0].(map[string]any)["amount"] != 100.0 || credits[0].(map[string]any)["revocation_strategy"] != "allow_negative" {
		t.Errorf("items %v, credit revocations %v", items, credits)
	}
	_, sword := g.Call(t, "GET", "/admin/v1/revocations/epic.studio.ent-2.revoke", gatewaytest.AdminToken, "", "")
	if ents := sword["entitlement_revocations"].([]any); len(ents) != 1 || ents[0].(map[string]any)["item_sku"] != "starter_sword" ||
		ents[0].(map[string]any)["revocation_strategy"] != "revoke" {
		t.Errorf("entitlement revocations = %v", sword["entitlement_revocations"])
	}
	if status, body := g.Call(t, "GET", "/admin/v1/revocations/no-such-revoke", gatewaytest.AdminToken, "", ""); status != 404 || gatewaytest.ErrCode(body) != "NOT_FOUND" {
		t.Errorf("unknown id = %d %v, want 404 NOT_FOUND", status, body)
	}
	if status, _ := g.Call(t, "GET", "/admin/v1/revocations", "", "", ""); status != 401 {
		t.Errorf("without the admin token = %d, want 401", status)
	}

	ids := func(body map[string]any) []string {
		var out []string
		for _, r := range body["revocations"].([]any) {
			out = append(out, r.(map[string]any)["id"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
		next  any
	}{
		{"", []string{"epic.studio.ent-3.revoke", "epic.studio.ent-2.revoke", "epic.studio.ent-1.revoke"}, nil},
		{"?status=FAIL", []string{"epic.studio.ent-3.revoke"}, nil},
		{"?status=SUCCESS&source=IAP", []string{"epic.studio.ent-1.revoke"}, nil},
		{"?source=DLC", []string{"epic.studio.ent-2.revoke"}, nil},
		{"?transaction_id=epic.studio.ent-2", []string{"epic.studio.ent-2.revoke"}, nil},
		{"?limit=2", []string{"epic.studio.ent-3.revoke", "epic.studio.ent-2.revoke"}, 2.0},
		{"?limit=2&offset=2", []string{"epic.studio.ent-1.revoke"}, nil},
		{"?until=" + url.QueryEscape(gatewaytest.Start.Add(4*time.Second).Format(time.RFC3339)), []string{"epic.studio.ent-1.revoke"}, nil},
	} {
		t.Run("list"+tc.query, func(t *testing.T) {
			status, body := g.Call(t, "GET", "/admin/v1/revocations"+tc.query, gatewaytest.AdminToken, "", "")
			if status != 200 || fmt.Sprint(ids(body)) != fmt.Sprint(tc.want) || body["next_offset"] != tc.next {
				t.Errorf("= %d %v, want %v next_offset %v", status, body, tc.want, tc.next)
			}
			if _, ok := body["player_id"]; ok {
				t.Errorf("a listing across players names a player: %v", body)
			}
		})
	}
	for _, q := range []string{"?status=OK", "?source=STORE", "?limit=x", "?since=yesterday"} {
		if status, body := g.Call(t, "GET", "/admin/v1/revocations"+q, gatewaytest.AdminToken, "", ""); status != 400 {
			t.Errorf("%s = %d %v, want 400", q, status, body)
		}
	}
}
