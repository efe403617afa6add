package api_test

import (
	"context"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"storegate"
	"storegate/internal/gatewaytest"
)

func newEconomyGateway(t *testing.T) *gatewaytest.Gateway {
	return gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithGame)
}

const spendPath = "/v1/players/player-1/wallets/CRYSTALS/spend"

func TestGame_RoutesNeedTheGameToken(t *testing.T) {
	g := newEconomyGateway(t)
	g.Grant(t, "e1", storegate.PlatformEpic, gatewaytest.Crystals(100))
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"spend without a token", "POST", spendPath, "", 401},
		{"spend with the admin token", "POST", spendPath, gatewaytest.AdminToken, 401},
		{"spend with the game token", "POST", spendPath, gatewaytest.GameToken, 200},
		{"admin route with the game token", "GET", "/admin/v1/players/player-1/transactions", gatewaytest.GameToken, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := g.Call(t, tc.method, tc.path, tc.token, "k-"+strings.ReplaceAll(tc.name, " ", "-"), `{"amount":1}`)
			if status != tc.status {
				t.Fatalf("status = %d (%v), want %d", status, body, tc.status)
			}
			if status == 401 && gatewaytest.ErrCode(body) != "UNAUTHORIZED" {
				t.Errorf("code = %s, want UNAUTHORIZED", gatewaytest.ErrCode(body))
			}
		})
	}
}

// The Epic story over HTTP: spend, charge-back, refusal, and what support
// sees in the wallet, the history and the revocations.
func TestGame_SpendChargebackAndWhatSupportSees(t *testing.T) {
	g := newEconomyGateway(t)
	g.Grant(t, "epic.1", storegate.PlatformEpic, gatewaytest.Crystals(100))
	status, body := g.Call(t, "POST", spendPath, gatewaytest.GameToken, "buy-hat", `{"amount":80,"reason":"hat"}`)
	if status != 200 || body["balance"] != 20.0 || body["replayed"] != false {
		t.Fatalf("spend = %d %v", status, body)
	}
	if status, again := g.Call(t, "POST", spendPath, gatewaytest.GameToken, "buy-hat", `{"amount":80,"reason":"hat"}`); status != 200 || again["replayed"] != true {
		t.Fatalf("repeated spend = %d %v, want the first answer replayed", status, again)
	}
	if _, err := g.Ledger.Revoke(context.Background(), storegate.Command{ID: "epic.1.revoke", Kind: storegate.KindRevoke, Source: "stores",
		PlayerID: "player-1", Platform: storegate.PlatformEpic, Reverses: "epic.1", Reason: "chargeback"}); err != nil {
		t.Fatal(err)
	}
	status, body = g.Call(t, "POST", spendPath, gatewaytest.GameToken, "buy-boots", `{"amount":5}`)
	if status != 409 || gatewaytest.ErrCode(body) != "INSUFFICIENT_FUNDS" {
		t.Fatalf("spend with a negative balance = %d %v, want 409 INSUFFICIENT_FUNDS", status, body)
	}
	_, wallets := g.Call(t, "GET", "/admin/v1/players/player-1/wallets", gatewaytest.AdminToken, "", "")
	w := wallets["wallets"].([]any)[0].(map[string]any)
	if w["balance"] != -80.0 || w["spending_blocked"] != true {
		t.Errorf("wallet = %v, want -80 and spending blocked", w)
	}
	_, hist := g.Call(t, "GET", "/admin/v1/players/player-1/transactions?currency=CRYSTALS", gatewaytest.AdminToken, "", "")
	var kinds []string
	for _, e := range hist["entries"].([]any) {
		kinds = append(kinds, e.(map[string]any)["kind"].(string))
	}
	if strings.Join(kinds, ",") != "fulfill,spend,revoke" {
		t.Errorf("history kinds = %v", kinds)
	}
	_, hist = g.Call(t, "GET", "/admin/v1/players/player-1/transactions?kind=revoke&limit=1", gatewaytest.AdminToken, "", "")
	if e := hist["entries"].([]any); len(e) != 1 || e[0].(map[string]any)["reason"] != "chargeback" || hist["next_offset"] != nil {
		t.Errorf("revoke entries = %v", hist)
	}
	_, revs := g.Call(t, "GET", "/admin/v1/players/player-1/revocations?status=SUCCESS&source=IAP&transaction_id=epic.1", gatewaytest.AdminToken, "", "")
	list := revs["revocations"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["state"] != "REVOKED" {
		t.Errorf("revocations = %v", revs)
	}
	_, revs = g.Call(t, "GET", "/admin/v1/players/player-1/revocations?status=FAIL", gatewaytest.AdminToken, "", "")
	if len(revs["revocations"].([]any)) != 0 {
		t.Errorf("failed revocations = %v, want none", revs)
	}
}

func TestGame_BadInputGetsAClearErrorAndStoresNothing(t *testing.T) {
	g := newEconomyGateway(t)
	g.Grant(t, "epic.1", storegate.PlatformEpic, gatewaytest.Crystals(100))
	before := g.Rows(t)
	for _, tc := range []struct {
		name, path, key, ctype, body string
		status                       int
		code                         string
		fields                       []string
	}{
		{"no idempotency key", spendPath, "", "application/json", `{"amount":1}`, 400, "INVALID_PARAMETER", []string{"Idempotency-Key"}},
		{"key with a space", spendPath, "a b", "application/json", `{"amount":1}`, 400, "INVALID_PARAMETER", []string{"Idempotency-Key"}},
		{"not JSON", spendPath, "k", "application/json", `{"amount":`, 400, "INVALID_PARAMETER", nil},
		{"wrong content type", spendPath, "k", "text/plain", `{"amount":1}`, 415, "UNSUPPORTED_MEDIA_TYPE", nil},
		{"amount zero", spendPath, "k", "application/json", `{"amount":0}`, 400, "INVALID_PARAMETER", []string{"amount"}},
		{"amount missing", spendPath, "k", "application/json", `{"reason":"x"}`, 400, "INVALID_PARAMETER", []string{"amount"}},
		{"amount a string", spendPath, "k", "application/json", `{"amount":"5"}`, 400, "INVALID_PARAMETER", []string{"amount"}},
		{"unknown platform", spendPath, "k", "application/json", `{"amount":1,"platform":"Nintendo"}`, 400, "INVALID_PARAMETER", []string{"platform"}},
		{"unknown field", spendPath, "k", "application/json", `{"amount":1,"wallet":"x"}`, 400, "INVALID_PARAMETER", []string{"wallet"}},
		{"too large", spendPath, "k", "application/json", `{"amount":1,"reason":"` + strings.Repeat("x", 5000) + `"}`, 413, "PAYLOAD_TOO_LARGE", nil},
		{"consume: use_count zero", "/v1/players/player-1/entitlements/x/consume", "k", "application/json", `{"use_count":0}`, 400, "INVALID_PARAMETER", []string{"use_count"}},
		{"consume: unknown entitlement", "/v1/players/player-1/entitlements/x/consume", "k", "", "", 404, "NOT_FOUND", nil},
		{"adjustment: no actor", "/admin/v1/players/player-1/wallets/CRYSTALS/adjustments", "k", "application/json", `{"amount":5,"reason":"r"}`, 400, "INVALID_PARAMETER", []string{"actor"}},
		{"adjustment: zero", "/admin/v1/players/player-1/wallets/CRYSTALS/adjustments", "k", "application/json", `{"amount":0,"reason":"r","actor":"a"}`, 400, "INVALID_PARAMETER", []string{"amount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			token := gatewaytest.GameToken
			if strings.HasPrefix(tc.path, "/admin") {
				token = gatewaytest.AdminToken
			}
			req.Header.Set("Authorization", "Bearer "+token)
			if tc.key != "" {
				req.Header.Set("Idempotency-Key", tc.key)
			}
			resp := g.Do(t, req)
			if resp.StatusCode != tc.status {
				raw, _ := io.ReadAll(resp.Body)
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, raw, tc.status)
			}
			e := gatewaytest.ReadError(t, resp)
			if e.Error.Code != tc.code || strings.Join(e.Error.Fields, ",") != strings.Join(tc.fields, ",") || e.Error.Message == "" {
				t.Errorf("error = %+v, want %s with fields %v", e.Error, tc.code, tc.fields)
			}
		})
	}
	if got := g.Rows(t); got != before {
		t.Errorf("bad requests stored %d rows", got-before)
	}
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Errorf("balance = %d, want 100", got)
	}
}

func TestGame_ConsumeAnEntitlementByItsEscapedID(t *testing.T) {
	g := newEconomyGateway(t)
	g.Grant(t, "xs.order.1", storegate.PlatformXsolla, storegate.Line{SKU: "potion", Quantity: 1,
		Grants: []storegate.Grant{{Item: "potion", Type: storegate.ItemConsumable, Quantity: 3}}})
	path := "/v1/players/player-1/entitlements/" + url.PathEscape("xs.order.1/0/0") + "/consume"
	status, body := g.Call(t, "POST", path, gatewaytest.GameToken, "drink-1", `{"use_count":2}`)
	ent, _ := body["entitlement"].(map[string]any)
	if status != 200 || ent["use_count"] != 1.0 || ent["consumed_count"] != 2.0 {
		t.Fatalf("consume = %d %v, want 1 use left", status, body)
	}
	status, body = g.Call(t, "POST", path, gatewaytest.GameToken, "drink-2", `{"use_count":2}`)
	if status != 409 || gatewaytest.ErrCode(body) != "CONFLICT" {
		t.Fatalf("consume beyond the uses left = %d %v, want 409 CONFLICT", status, body)
	}
	status, body = g.Call(t, "POST", path, gatewaytest.GameToken, "drink-3", "")
	if status != 200 || body["entitlement"].(map[string]any)["status"] != "consumed" {
		t.Fatalf("consume of the last use (empty body: one use) = %d %v", status, body)
	}
	_, list := g.Call(t, "GET", "/admin/v1/players/player-1/entitlements?status=consumed", gatewaytest.AdminToken, "", "")
	if n := len(list["entitlements"].([]any)); n != 1 {
		t.Errorf("consumed entitlements = %v, want the potion", list)
	}
}

func TestAdmin_AdjustmentIsRecordedOnceWithItsActor(t *testing.T) {
	g := newEconomyGateway(t)
	path := "/admin/v1/players/player-2/wallets/CRYSTALS/adjustments"
	body := `{"amount":250,"reason":"outage compensation","actor":"alice@support"}`
	status, first := g.Call(t, "POST", path, gatewaytest.AdminToken, "inc-42", body)
	if status != 201 || first["balance"] != 250.0 || first["platform"] != "System" {
		t.Fatalf("adjustment = %d %v, want 201 with 250 on System", status, first)
	}
	status, again := g.Call(t, "POST", path, gatewaytest.AdminToken, "inc-42", body)
	if status != 200 || again["replayed"] != true || again["entry_id"] != first["entry_id"] {
		t.Fatalf("repeat = %d %v, want 200 replayed", status, again)
	}
	status, conflict := g.Call(t, "POST", path, gatewaytest.AdminToken, "inc-42", `{"amount":999,"reason":"r","actor":"a"}`)
	if status != 409 || gatewaytest.ErrCode(conflict) != "CONFLICT" {
		t.Fatalf("same key, other body = %d %v, want 409", status, conflict)
	}
	status, debit := g.Call(t, "POST", path, gatewaytest.AdminToken, "inc-43", `{"amount":-300,"reason":"r","actor":"a"}`)
	if status != 409 || gatewaytest.ErrCode(debit) != "INSUFFICIENT_FUNDS" {
		t.Fatalf("debit below zero = %d %v, want 409 INSUFFICIENT_FUNDS", status, debit)
	}
	_, hist := g.Call(t, "GET", "/admin/v1/players/player-2/transactions", gatewaytest.AdminToken, "", "")
	e := hist["entries"].([]any)
	if len(e) != 1 || e[0].(map[string]any)["actor"] != "alice@support" || e[0].(map[string]any)["kind"] != "adjustment" {
		t.Errorf("history = %v, want one adjustment by alice", hist)
	}
}

func TestAdmin_ListingsRejectBadQueries(t *testing.T) {
	g := newEconomyGateway(t)
	for _, q := range []struct{ path, field string }{
		{"/admin/v1/players/player-1/transactions?since=yesterday", "since"},
		{"/admin/v1/players/player-1/transactions?until=2026-13-01T00:00:00Z", "until"},
		{"/admin/v1/players/player-1/transactions?limit=0", "limit"},
		{"/admin/v1/players/player-1/transactions?limit=5000", "limit"},
		{"/admin/v1/players/player-1/transactions?offset=-1", "offset"},
		{"/admin/v1/players/player-1/transactions?kind=gift", "kind"},
		{"/admin/v1/players/player-1/transactions?platform=Nintendo", "platform"},
		{"/admin/v1/players/player-1/revocations?source=STORE", "source"},
		{"/admin/v1/players/player-1/revocations?status=OK", "status"},
		{"/admin/v1/players/player-1/entitlements?status=gone", "status"},
	} {
		t.Run(q.path, func(t *testing.T) {
			status, body := g.Call(t, "GET", q.path, gatewaytest.AdminToken, "", "")
			fields, _ := body["error"].(map[string]any)["fields"].([]any)
			if status != 400 || len(fields) != 1 || fields[0] != q.field {
				t.Errorf("%d %v, want 400 naming %s", status, body, q.field)
			}
		})
	}
}

// Only currencies the catalog grants have wallets: a name that merely looks
// like one (a Cyrillic С, an invisible direction mark, another case) or one
// the catalog does not know is refused wherever a currency is named, and
// leaves no wallet and no history behind.
func TestEconomy_UnknownCurrenciesAreRefused(t *testing.T) {
	g := newEconomyGateway(t)
	g.Grant(t, "e1", storegate.PlatformEpic, gatewaytest.Crystals(100))
	adjust := `{"amount":5,"reason":"goodwill","actor":"support@example.com"}`
	for _, currency := range []string{"СRYSTALS", "CRYSTALS\u200f", "\u202eCRYSTALS", "CRYSTALS ", "crystals", "GOLD"} {
		escaped := url.PathEscape(currency)
		for _, tc := range []struct{ name, method, path, token, body string }{
			{"adjustment", "POST", "/admin/v1/players/player-1/wallets/" + escaped + "/adjustments", gatewaytest.AdminToken, adjust},
			{"spend", "POST", "/v1/players/player-1/wallets/" + escaped + "/spend", gatewaytest.GameToken, `{"amount":1}`},
			{"history", "GET", "/admin/v1/players/player-1/transactions?currency=" + url.QueryEscape(currency), gatewaytest.AdminToken, ""},
		} {
			before := g.Everything(t)
			status, body := g.Call(t, tc.method, tc.path, tc.token, "k-"+tc.name, tc.body)
			e, _ := body["error"].(map[string]any)
			if status != 400 || gatewaytest.ErrCode(body) != "INVALID_PARAMETER" || !strings.Contains(e["message"].(string), "grants: CRYSTALS") {
				t.Errorf("%s in %q: %d %v, want 400 INVALID_PARAMETER naming the catalog's currencies", tc.name, currency, status, body)
			}
			gatewaytest.SameRows(t, before, g.Everything(t))
		}
	}
	ws, err := g.Ledger.Wallets(context.Background(), "player-1")
	if err != nil || len(ws) != 1 || ws[0].Currency != "CRYSTALS" || ws[0].Balance != 100 {
		t.Fatalf("wallets = %+v (%v), want CRYSTALS 100 alone", ws, err)
	}
	if status, body := g.Call(t, "POST", "/admin/v1/players/player-1/wallets/CRYSTALS/adjustments", gatewaytest.AdminToken, "k-ok", adjust); status != 201 {
		t.Fatalf("adjustment of CRYSTALS = %d %v, want 201", status, body)
	}
}
