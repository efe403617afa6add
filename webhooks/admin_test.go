package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"storegate/webhooks"
)

func TestAdmin_NeedsBearerToken(t *testing.T) {
	g := newGateway(t)
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no header", "", 401},
		{"wrong token", "Bearer not-the-token-at-all", 401},
		{"token without scheme", adminToken, 401},
		{"basic scheme", "Basic " + adminToken, 401},
		{"right token", "Bearer " + adminToken, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/admin/v1/players/player-1/wallets", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp := g.do(t, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 401 && readError(t, resp).Error.Code != "UNAUTHORIZED" {
				t.Fatal("want code UNAUTHORIZED")
			}
		})
	}
}

func TestAdmin_WalletsAndEntitlements(t *testing.T) {
	g := newGateway(t)
	g.post(t, "xs", orderPaid(1, "player-1", "crystals_100*2", "starter_sword", "potion"))
	g.drain(t)
	get := func(path string) map[string]any {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp := g.do(t, req)
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

func TestOps_HealthReadyMetrics(t *testing.T) {
	g := newGateway(t)
	g.post(t, "xs", orderPaid(1, "player-1", "crystals_100"))
	g.post(t, "xs", orderPaid(1, "player-1", "crystals_100"))
	bad := httptest.NewRequest(http.MethodPost, "/webhooks/xsolla/xs", strings.NewReader("{}"))
	bad.Header.Set("Authorization", "Signature 0000000000000000000000000000000000000000")
	g.do(t, bad)
	if s := g.do(t, httptest.NewRequest(http.MethodGet, "/healthz", nil)).StatusCode; s != 200 {
		t.Fatalf("/healthz = %d", s)
	}
	if s := g.do(t, httptest.NewRequest(http.MethodGet, "/readyz", nil)).StatusCode; s != 200 {
		t.Fatalf("/readyz = %d with the store open", s)
	}
	// /metrics has a listener of its own (cmd/storegate): the senders'
	// listener does not serve it.
	if resp := g.do(t, httptest.NewRequest(http.MethodGet, "/metrics", nil)); resp.StatusCode != 404 {
		t.Fatalf("/metrics on the senders' listener = %d, want 404", resp.StatusCode)
	}
	_, text := g.scrape(t)
	for _, want := range []string{
		`storegate_requests_total{source="xs",status="204",type="order_paid"} 2`,
		`storegate_duplicates_total{source="xs",type="order_paid"} 1`,
		`storegate_signature_failures_total{source="xs"} 1`,
		`storegate_outbox_commands{state="pending"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, "player-1") || strings.Contains(text, secret) {
		t.Error("/metrics exposes a player id or a secret")
	}
	g.db.Close()
	if s := g.do(t, httptest.NewRequest(http.MethodGet, "/readyz", nil)).StatusCode; s != 503 {
		t.Fatalf("/readyz = %d with the store closed, want 503", s)
	}
	// The store being down is when operators need the other metrics most.
	if status, text := g.scrape(t); status != 200 || !strings.Contains(text, "storegate_requests_total") {
		t.Fatalf("/metrics with the store down = %d, want 200 with the request counters", status)
	}
}

// storeFull is a store that cannot commit: its disk is full.
type storeFull struct{}

func (storeFull) Ping(context.Context) error {
	return errors.New("store: commit: database or disk is full (13)")
}

// While the store cannot commit, /readyz says so, as every 503 does: with
// Retry-After, and without the internal cause.
func TestOps_ReadyzIs503WhileTheStoreCannotCommit(t *testing.T) {
	g := newGateway(t, func(_ *webhooks.Config, d *webhooks.Deps) { d.Ready = storeFull{} })
	resp := g.do(t, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	e := readError(t, resp)
	if resp.StatusCode != 503 || e.Error.Code != "SERVICE_UNAVAILABLE" || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("/readyz = %d %+v, Retry-After %q; want 503 SERVICE_UNAVAILABLE, Retry-After 5",
			resp.StatusCode, e.Error, resp.Header.Get("Retry-After"))
	}
	if strings.Contains(e.Error.Message, "disk") {
		t.Errorf("/readyz shows the internal cause: %q", e.Error.Message)
	}
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	g := newGateway(t)
	resp := g.do(t, httptest.NewRequest(http.MethodGet, "/nope", nil))
	if resp.StatusCode != 404 || readError(t, resp).Error.Code != "NOT_FOUND" {
		t.Fatalf("status = %d, want 404 NOT_FOUND", resp.StatusCode)
	}
}
