package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"storegate/internal/gatewaytest"
)

func TestAdmin_NeedsBearerToken(t *testing.T) {
	g := gatewaytest.New(t)
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no header", "", 401},
		{"wrong token", "Bearer not-the-token-at-all", 401},
		{"token without scheme", gatewaytest.AdminToken, 401},
		{"basic scheme", "Basic " + gatewaytest.AdminToken, 401},
		{"right token", "Bearer " + gatewaytest.AdminToken, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/admin/v1/players/player-1/wallets", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp := g.Do(t, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 401 && gatewaytest.ReadError(t, resp).Error.Code != "UNAUTHORIZED" {
				t.Fatal("want code UNAUTHORIZED")
			}
		})
	}
}

func TestAdmin_WalletsAndEntitlements(t *testing.T) {
	g := gatewaytest.New(t)
	g.Post(t, "xs", gatewaytest.OrderPaid(1, "player-1", "crystals_100*2", "starter_sword", "potion"))
	g.Drain(t)
	get := func(path string) map[string]any {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+gatewaytest.AdminToken)
		resp := g.Do(t, req)
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	wallets := get("/admin/v1/players/player-1/wallets")["wallets"].([]any)
	w := wallets[0].(map[string]any)
	if w["currency"] != "CRYSTALS" || w["balance"] != 200.0 {
		t.Fatalf("wallets = %v, want CRYSTALS 200", wallets)
	}
	ents := get("/admin/v1/players/player-1/entitlements")["entitlements"].([]any)
	var items []string
	for _, e := range ents {
		m := e.(map[string]any)
		items = append(items, m["item"].(string))
		if m["item"] == "potion" && m["use_count"] != 3.0 {
			t.Fatalf("potion use_count = %v, want 3", m["use_count"])
		}
	}
	if strings.Join(items, ",") != "potion,starter_sword" && strings.Join(items, ",") != "starter_sword,potion" {
		t.Fatalf("entitlements = %v", items)
	}
	if got := get("/admin/v1/players/nobody/wallets")["wallets"].([]any); len(got) != 0 {
		t.Fatalf("unknown player's wallets = %v, want empty list", got)
	}
}
