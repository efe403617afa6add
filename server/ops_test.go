package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"storegate/internal/gatewaytest"
)

func TestOps_HealthReadyMetrics(t *testing.T) {
	g := gatewaytest.New(t)
	g.Post(t, "xs", gatewaytest.OrderPaid(1, "player-1", "crystals_100"))
	g.Post(t, "xs", gatewaytest.OrderPaid(1, "player-1", "crystals_100"))
	bad := httptest.NewRequest(http.MethodPost, "/webhooks/xsolla/xs", strings.NewReader("{}"))
	bad.Header.Set("Authorization", "Signature 0000000000000000000000000000000000000000")
	g.Do(t, bad)
	if s := g.Do(t, httptest.NewRequest(http.MethodGet, "/healthz", nil)).StatusCode; s != 200 {
		t.Fatalf("/healthz = %d", s)
	}
	if s := g.Do(t, httptest.NewRequest(http.MethodGet, "/readyz", nil)).StatusCode; s != 200 {
		t.Fatalf("/readyz = %d with the store open", s)
	}
	// /metrics has a listener of its own (cmd/storegate): the senders'
	// listener does not serve it.
	if resp := g.Do(t, httptest.NewRequest(http.MethodGet, "/metrics", nil)); resp.StatusCode != 404 {
		t.Fatalf("/metrics on the senders' listener = %d, want 404", resp.StatusCode)
	}
	_, text := g.Scrape(t)
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
	if strings.Contains(text, "player-1") || strings.Contains(text, gatewaytest.Secret) {
		t.Error("/metrics exposes a player id or a secret")
	}
	g.DB.Close()
	if s := g.Do(t, httptest.NewRequest(http.MethodGet, "/readyz", nil)).StatusCode; s != 503 {
		t.Fatalf("/readyz = %d with the store closed, want 503", s)
	}
	// The store being down is when operators need the other metrics most.
	if status, text := g.Scrape(t); status != 200 || !strings.Contains(text, "storegate_requests_total") {
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
	g := gatewaytest.New(t, func(c *gatewaytest.Config) { c.ServerDeps.Ready = storeFull{} })
	resp := g.Do(t, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	e := gatewaytest.ReadError(t, resp)
	if resp.StatusCode != 503 || e.Error.Code != "SERVICE_UNAVAILABLE" || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("/readyz = %d %+v, Retry-After %q; want 503 SERVICE_UNAVAILABLE, Retry-After 5",
			resp.StatusCode, e.Error, resp.Header.Get("Retry-After"))
	}
	if strings.Contains(e.Error.Message, "disk") {
		t.Errorf("/readyz shows the internal cause: %q", e.Error.Message)
	}
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	g := gatewaytest.New(t)
	resp := g.Do(t, httptest.NewRequest(http.MethodGet, "/nope", nil))
	if resp.StatusCode != 404 || gatewaytest.ReadError(t, resp).Error.Code != "NOT_FOUND" {
		t.Fatalf("status = %d, want 404 NOT_FOUND", resp.StatusCode)
	}
}
