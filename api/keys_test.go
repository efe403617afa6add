package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"storegate"
	"storegate/internal/gatewaytest"
	"storegate/mapping"
	"storegate/webhooks"
)

func TestKeys_ImportAndCount(t *testing.T) {
	var logs bytes.Buffer
	g := gatewaytest.New(t, gatewaytest.WithLog(&logs), gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")),
		gatewaytest.WithCommerce(), gatewaytest.WithGameKeys())
	path := "/admin/v1/keys/" + gatewaytest.KeySKU
	tests := []struct {
		name, method, path, token, body string
		status                          int
		want                            map[string]any
		code                            string
	}{
		{"import three", "POST", path, gatewaytest.AdminToken, `{"keys":["SECRET-KEY-0001","SECRET-KEY-0002","SECRET-KEY-0003"]}`, 200,
			map[string]any{"sku": gatewaytest.KeySKU, "added": 3.0, "duplicate": 0.0, "available": 3.0}, ""},
		{"one again, one new", "POST", path, gatewaytest.AdminToken, `{"keys":["SECRET-KEY-0003","SECRET-KEY-0004"]}`, 200,
			map[string]any{"added": 1.0, "duplicate": 1.0, "available": 4.0}, ""},
		{"the counts", "GET", path, gatewaytest.AdminToken, "", 200,
			map[string]any{"sku": gatewaytest.KeySKU, "available": 4.0, "assigned": 0.0, "revoked": 0.0}, ""},
		{"a key with a space", "POST", path, gatewaytest.AdminToken, `{"keys":["SECRET KEY-0005"]}`, 400, nil, "INVALID_PARAMETER"},
		{"no keys", "POST", path, gatewaytest.AdminToken, `{"keys":[]}`, 400, nil, "INVALID_PARAMETER"},
		{"a SKU that is no game key", "POST", "/admin/v1/keys/crystals_100", gatewaytest.AdminToken, `{"keys":["K-1"]}`, 404, nil, "NOT_FOUND"},
		{"an unknown SKU", "GET", "/admin/v1/keys/nope", gatewaytest.AdminToken, "", 404, nil, "NOT_FOUND"},
		{"no admin token", "POST", path, "", `{"keys":["K-1"]}`, 401, nil, "UNAUTHORIZED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := g.Call(t, tt.method, tt.path, tt.token, "", tt.body)
			if status != tt.status || gatewaytest.ErrCode(out) != tt.code {
				t.Fatalf("%d %v, want %d %s", status, out, tt.status, tt.code)
			}
			for k, v := range tt.want {
				if out[k] != v {
					t.Errorf("%s = %v, want %v (answer %v)", k, out[k], v, out)
				}
			}
			if _, echoed := out["keys"]; echoed {
				t.Errorf("the answer echoes the keys: %v", out)
			}
			if strings.Contains(toJSON(out), "SECRET") {
				t.Errorf("the answer holds a key: %v", out)
			}
		})
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("a key was logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "game keys imported") {
		t.Errorf("the import was not logged:\n%s", logs.String())
	}
}

func TestKeys_WithoutLedger404(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithGameKeys(), func(c *gatewaytest.Config) { c.APIDeps.Keys = nil })
	status, out := g.Call(t, http.MethodGet, "/admin/v1/keys/"+gatewaytest.KeySKU, gatewaytest.AdminToken, "", "")
	if status != 404 || gatewaytest.ErrCode(out) != "NOT_FOUND" {
		t.Fatalf("%d %v", status, out)
	}
}

func toJSON(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// keysGateway is a gateway selling KeySKU through Xsolla (source xs), a
// partner (bank) and a store proxy (studio), with three keys imported.
func keysGateway(t *testing.T) *gatewaytest.Gateway {
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithCommerce(),
		gatewaytest.WithPartner("basic"), gatewaytest.WithStores(), gatewaytest.WithGameKeys())
	g.ImportKeys(t, "KEY-0001-AAAA", "KEY-0002-BBBB", "KEY-0003-CCCC")
	return g
}

type keyAnswer struct {
	SKU, Key, Status string
}

type payAnswer struct {
	PaymentID int64       `json:"payment_id"`
	Keys      []keyAnswer `json:"keys"`
}

// pool reads KeySKU's counts as "available/assigned/revoked".
func pool(t *testing.T, g *gatewaytest.Gateway) string {
	t.Helper()
	status, out := g.Call(t, http.MethodGet, "/admin/v1/keys/"+gatewaytest.KeySKU, gatewaytest.AdminToken, "", "")
	if status != 200 {
		t.Fatalf("pool: %d %v", status, out)
	}
	return fmt.Sprintf("%v/%v/%v", out["available"], out["assigned"], out["revoked"])
}

// entitledKeys are a player's game_key entitlements' keys, by status.
func entitledKeys(t *testing.T, g *gatewaytest.Gateway, player string) map[string]string {
	t.Helper()
	status, out := g.Call(t, http.MethodGet, "/admin/v1/players/"+player+"/entitlements?status=all", gatewaytest.AdminToken, "", "")
	if status != 200 {
		t.Fatalf("entitlements: %d %v", status, out)
	}
	keys := map[string]string{}
	for _, e := range out["entitlements"].([]any) {
		e := e.(map[string]any)
		if e["type"] == "game_key" {
			keys[e["key"].(string)] = e["status"].(string)
		}
	}
	return keys
}

// A partner: three orders take three different keys, in the payment's
// answer, the order route and the entitlements; a fourth order is refused
// before payment; a cancelled payment revokes its key, which is never
// handed out again.
func TestKeys_Partner(t *testing.T) {
	g := keysGateway(t)
	order := `[{"sku":"` + gatewaytest.KeySKU + `","quantity":1}]`
	given := map[string]bool{}
	var payments []int64
	var orders []int64
	for i := range 3 {
		o := g.CreateOrder(t, "player-1", "USD", order)
		var paid payAnswer
		if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", "19.99", "USD", fmt.Sprint("bank-", i)), &paid); s != 200 {
			t.Fatalf("pay %d: %d", i, s)
		}
		if len(paid.Keys) != 1 || paid.Keys[0].SKU != gatewaytest.KeySKU || paid.Keys[0].Status != "active" || given[paid.Keys[0].Key] {
			t.Fatalf("payment %d answered keys %+v (given before: %v)", i, paid.Keys, given)
		}
		given[paid.Keys[0].Key] = true
		// The same notification again: the same payment, the same key.
		var again payAnswer
		g.Partner(t, "POST", "/payments", gatewaytest.PayBody(o.OrderID, "player-1", "19.99", "USD", fmt.Sprint("bank-", i)), &again)
		if again.PaymentID != paid.PaymentID || fmt.Sprint(again.Keys) != fmt.Sprint(paid.Keys) {
			t.Fatalf("repeat answered %+v, first %+v", again, paid)
		}
		var looked struct {
			Status string      `json:"status"`
			Keys   []keyAnswer `json:"keys"`
		}
		if s := g.Partner(t, "GET", fmt.Sprint("/orders/", o.OrderID), "", &looked); s != 200 || looked.Status != "paid" ||
			fmt.Sprint(looked.Keys) != fmt.Sprint(paid.Keys) {
			t.Fatalf("order route: %d %+v, want the payment's keys %+v", s, looked, paid.Keys)
		}
		payments, orders = append(payments, paid.PaymentID), append(orders, o.OrderID)
	}
	g.Drain(t)
	if got := entitledKeys(t, g, "player-1"); len(got) != 3 {
		t.Fatalf("entitlements carry keys %v, want the 3 given", got)
	}
	if got := pool(t, g); got != "0/3/0" {
		t.Errorf("pool %s, want 0/3/0", got)
	}

	var refused gatewaytest.ErrorAnswer
	body := fmt.Sprintf(`{"user_token":%q,"currency":"USD","items":%s}`, g.UserToken(t, "player-1"), order)
	if s := g.Partner(t, "POST", "/orders", body, &refused); s != 409 || refused.Error.Code != "OUT_OF_STOCK" ||
		fmt.Sprint(refused.Error.Fields) != "[items.0.sku]" {
		t.Fatalf("a fourth order: %d %+v, want 409 OUT_OF_STOCK on items.0.sku", s, refused)
	}

	if s := g.Partner(t, "POST", "/cancellations", fmt.Sprintf(`{"payment_id":%d}`, payments[0]), nil); s != 200 {
		t.Fatalf("cancel: %d", s)
	}
	g.Drain(t)
	var cancelled struct {
		Status string      `json:"status"`
		Keys   []keyAnswer `json:"keys"`
	}
	g.Partner(t, "GET", fmt.Sprint("/orders/", orders[0]), "", &cancelled)
	if cancelled.Status != "cancelled" || len(cancelled.Keys) != 1 || cancelled.Keys[0].Status != "revoked" {
		t.Fatalf("cancelled order: %+v", cancelled)
	}
	if got := entitledKeys(t, g, "player-1")[cancelled.Keys[0].Key]; got != "revoked" {
		t.Errorf("the cancelled order's entitlement is %q, want revoked", got)
	}
	if got := pool(t, g); got != "0/2/1" {
		t.Errorf("pool %s after a cancel, want 0/2/1: a revoked key is not available again", got)
	}
	if s := g.Partner(t, "POST", "/orders", body, &refused); s != 409 || refused.Error.Code != "OUT_OF_STOCK" {
		t.Fatalf("an order after the cancel: %d %+v, want the revoked key never reissued", s, refused)
	}
}

// An order made while a key was left, paid after another order took it:
// the payment is refused and stores nothing, and succeeds once keys are
// imported.
func TestKeys_PartnerPaymentAfterThePoolRanOut(t *testing.T) {
	g := keysGateway(t)
	order := `[{"sku":"` + gatewaytest.KeySKU + `","quantity":2}]`
	late := g.CreateOrder(t, "player-2", "USD", order)
	early := g.CreateOrder(t, "player-1", "USD", order)
	if s := g.Partner(t, "POST", "/payments", gatewaytest.PayBody(early.OrderID, "player-1", "39.98", "USD", "bank-1"), nil); s != 200 {
		t.Fatalf("pay: %d", s)
	}
	before := g.Everything(t)
	var refused gatewaytest.ErrorAnswer
	pay := gatewaytest.PayBody(late.OrderID, "player-2", "39.98", "USD", "bank-2")
	if s := g.Partner(t, "POST", "/payments", pay, &refused); s != 409 || refused.Error.Code != "OUT_OF_STOCK" {
		t.Fatalf("payment with one key left for two: %d %+v", s, refused)
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
	if got := pool(t, g); got != "1/2/0" {
		t.Errorf("pool %s, want 1/2/0", got)
	}
	g.ImportKeys(t, "KEY-0004-DDDD")
	var paid payAnswer
	if s := g.Partner(t, "POST", "/payments", pay, &paid); s != 200 || len(paid.Keys) != 2 {
		t.Fatalf("payment after a refill: %d %+v", s, paid)
	}
}

// Xsolla and a store proxy: three orders take three different keys; a
// fourth is accepted (the sender has taken the money) and its grant
// dead-lettered OUT_OF_STOCK; support imports a key and replays it; a
// refund and a chargeback revoke their keys, which are never reissued.
func TestKeys_XsollaAndStores(t *testing.T) {
	g := keysGateway(t)
	for i := range 2 {
		if resp := g.Post(t, "xs", gatewaytest.OrderPaid(100+i, "player-1", gatewaytest.KeySKU)); resp.StatusCode != 204 {
			t.Fatalf("order_paid %d: %d", i, resp.StatusCode)
		}
	}
	epic := `{"type":"%s","platform":"epic","player_id":"player-2","order":{"entitlement_id":"ent-1"},"items":[{"product_id":"epic-game-110101","quantity":1}]}`
	if s := g.StoreEvent(t, fmt.Sprintf(epic, "purchase"), nil); s != 200 {
		t.Fatalf("store purchase: %d", s)
	}
	g.Drain(t)
	keys1, keys2 := entitledKeys(t, g, "player-1"), entitledKeys(t, g, "player-2")
	if len(keys1) != 2 || len(keys2) != 1 {
		t.Fatalf("keys: player-1 %v, player-2 %v", keys1, keys2)
	}
	for k := range keys2 {
		if _, shared := keys1[k]; shared {
			t.Fatalf("key %s given twice", k)
		}
	}

	if resp := g.Post(t, "xs", gatewaytest.OrderPaid(103, "player-1", gatewaytest.KeySKU)); resp.StatusCode != 204 {
		t.Fatalf("a fourth order_paid: %d, want 204: Xsolla has taken the money, the grant is owed", resp.StatusCode)
	}
	g.Drain(t)
	id := mapping.XsollaFulfillID("xs", 103)
	status, dead := g.Call(t, http.MethodGet, "/admin/v1/deadletters/"+id, gatewaytest.AdminToken, "", "")
	if status != 200 || dead["state"] != "dead" || !strings.Contains(toJSON(dead["last_error"]), "OUT_OF_STOCK") ||
		!strings.Contains(toJSON(dead["last_error"]), "POST /admin/v1/keys/"+gatewaytest.KeySKU) {
		t.Fatalf("the fourth grant: %d %v, want a dead letter OUT_OF_STOCK saying how to refill", status, dead)
	}
	if len(entitledKeys(t, g, "player-1")) != 2 {
		t.Fatal("an order was granted without its key")
	}

	// A refund and a chargeback: their keys are revoked.
	if resp := g.Post(t, "xs", gatewaytest.OrderCanceled(100, "player-1")); resp.StatusCode != 204 {
		t.Fatalf("order_canceled: %d", resp.StatusCode)
	}
	if s := g.StoreEvent(t, fmt.Sprintf(epic, "chargeback"), nil); s != 200 {
		t.Fatalf("chargeback: %d", s)
	}
	g.Drain(t)
	if got := pool(t, g); got != "0/1/2" {
		t.Fatalf("pool %s, want 0/1/2", got)
	}
	if _, text := g.Scrape(t); !strings.Contains(text, `storegate_keys_available{sku="`+gatewaytest.KeySKU+`"} 0`) {
		t.Errorf("an empty pool's gauge is not 0:\n%s", text)
	}
	for k, status := range entitledKeys(t, g, "player-2") {
		if status != "revoked" {
			t.Errorf("charged back key %s is %s", k, status)
		}
	}
	// Replayed with the pool still empty: revoked keys are not reissued.
	replay := func() {
		if s, out := g.Call(t, http.MethodPost, "/admin/v1/deadletters/"+id+"/replay", gatewaytest.AdminToken, "", `{"by":"alice"}`); s != 200 {
			t.Fatalf("replay: %d %v", s, out)
		}
		g.Drain(t)
	}
	replay()
	if s, again := g.Call(t, http.MethodGet, "/admin/v1/deadletters/"+id, gatewaytest.AdminToken, "", ""); s != 200 || again["state"] != "dead" {
		t.Fatalf("replayed on an empty pool: %d %v, want a dead letter again", s, again)
	}
	g.ImportKeys(t, "KEY-0005-EEEE")
	if _, text := g.Scrape(t); !strings.Contains(text, `storegate_keys_available{sku="`+gatewaytest.KeySKU+`"} 1`) {
		t.Errorf("the gauge after a refill is not 1:\n%s", text)
	}
	replay()
	if got := entitledKeys(t, g, "player-1")["KEY-0005-EEEE"]; got != "active" {
		t.Fatalf("after a refill and a replay: %v", entitledKeys(t, g, "player-1"))
	}
	if got := pool(t, g); got != "0/2/2" {
		t.Errorf("pool %s, want 0/2/2", got)
	}
}

// Xsolla's partner_side_catalog limits a game key to the keys left, and a
// partner's cart is refused as an order when its pool cannot cover it.
func TestKeys_CatalogLimitAndCartOrder(t *testing.T) {
	g := keysGateway(t)
	resp := g.Post(t, "xs", `{"notification_type":"partner_side_catalog","user":{"id":"player-1","country":"DE","currency":"EUR"}}`)
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `{"quantity":3,"sku":"`+gatewaytest.KeySKU+`"}`) ||
		!strings.Contains(string(raw), `{"quantity":null,"sku":"crystals_100"}`) {
		t.Fatalf("partner_side_catalog: %d %s", resp.StatusCode, raw)
	}
	tok := g.UserToken(t, "player-1")
	cart := fmt.Sprintf(`{"user_token":%q,"currency":"USD","items":[{"sku":"crystals_100","quantity":1},{"sku":%q,"quantity":4}]}`, tok, gatewaytest.KeySKU)
	if s := g.Partner(t, "PUT", "/cart", cart, nil); s != 200 {
		t.Fatalf("fill the cart: %d", s)
	}
	var refused gatewaytest.ErrorAnswer
	if s := g.Partner(t, "POST", "/cart/order", fmt.Sprintf(`{"user_token":%q}`, tok), &refused); s != 409 ||
		refused.Error.Code != "OUT_OF_STOCK" || fmt.Sprint(refused.Error.Fields) != "[items.1.sku]" {
		t.Fatalf("order of a cart of 4 keys with 3 left: %d %+v", s, refused)
	}
}

// withPinCodeKeys makes the ledger answer get_pincode, as serve does for a
// ledger target, and adds a game_key SKU 110101, the pool for the game on
// a DRM without a pool of its own.
func withPinCodeKeys(c *gatewaytest.Config) {
	c.WebhooksDeps.PinCodes = map[string]webhooks.PinCodes{"ledger": c.Ledger}
	cat, err := mapping.NewCatalog(append(c.APIDeps.Catalog.SKUs(), mapping.SKU{SKU: "110101", Type: storegate.ItemGameKey}))
	if err != nil {
		panic(err)
	}
	c.WebhooksDeps.Catalog, c.APIDeps.Catalog = cat, cat
}

// Xsolla's get_pincode, answered by the ledger from the pools support
// imported: the sku_drm pool, else the bare SKU's; a repeat of a
// transaction gets its key again, even once the pool ran dry; an empty or
// unknown pool is a 503 Xsolla retries, naming the pool in the log and
// holding no key anywhere but the key's own answer.
func TestKeys_XsollaGetPinCode(t *testing.T) {
	var logs bytes.Buffer
	g := gatewaytest.New(t, gatewaytest.WithLog(&logs), gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")),
		gatewaytest.WithCommerce(), gatewaytest.WithGameKeys(), withPinCodeKeys)
	g.ImportKeys(t, "SECRET-STEAM-1")
	if s, out := g.Call(t, http.MethodPost, "/admin/v1/keys/110101", gatewaytest.AdminToken, "", `{"keys":["SECRET-ANY-1"]}`); s != 200 {
		t.Fatalf("import: %d %v", s, out)
	}
	tests := []struct {
		name         string
		txn          int
		product, drm string
		status       int
		key, logged  string // the key answered, or what the log says
	}{
		{"the sku_drm pool", 1, "110101", "Steam", 200, "SECRET-STEAM-1", ""},
		{"a repeat: the same key", 1, "110101", "Steam", 200, "SECRET-STEAM-1", ""},
		{"no pool for the DRM: the bare SKU's", 2, "110101", "epic", 200, "SECRET-ANY-1", ""},
		{"the pool ran dry", 3, "110101", "steam", 503, "", "pool of 110101_steam"},
		{"a repeat after it ran dry", 1, "110101", "steam", 200, "SECRET-STEAM-1", ""},
		{"no pool at all", 4, "220202", "steam", 503, "", "220202_steam or 220202"},
	}
	for _, tt := range tests {
		logs.Reset()
		body := fmt.Sprintf(`{"notification_type":"get_pincode","user":{"id":"player-1"},"transaction":{"id":%d},"pin_code":{"digital_content":%q,"DRM":%q}}`,
			tt.txn, tt.product, tt.drm)
		resp := g.Post(t, "xs", body)
		raw, _ := io.ReadAll(resp.Body)
		if tt.status == 200 {
			if want := `{"pin_code":"` + tt.key + `"}`; resp.StatusCode != 200 || string(raw) != want {
				t.Errorf("%s: %d %s, want 200 %s", tt.name, resp.StatusCode, raw, want)
			}
			continue
		}
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || strings.Contains(string(raw), "SECRET") {
			t.Errorf("%s: %d Retry-After %q %s, want 503 with Retry-After and no key", tt.name, resp.StatusCode, resp.Header.Get("Retry-After"), raw)
		}
		if !strings.Contains(logs.String(), tt.logged) || strings.Contains(logs.String(), "SECRET") {
			t.Errorf("%s: the log does not name %q, or holds a key:\n%s", tt.name, tt.logged, logs.String())
		}
	}
	if got := entitledKeys(t, g, "player-1"); len(got) != 2 || got["SECRET-STEAM-1"] != "active" || got["SECRET-ANY-1"] != "active" {
		t.Errorf("the player's keys in the entitlements: %v", got)
	}
	_, out := g.Call(t, http.MethodGet, "/admin/v1/players/player-1/entitlements", gatewaytest.AdminToken, "", "")
	if !strings.Contains(toJSON(out), `"transaction_id":"xsolla.xs.get_pincode:txn.1"`) {
		t.Errorf("no entitlement under the get_pincode's request id: %v", out)
	}
}
