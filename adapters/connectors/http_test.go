package connectors_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"storegate/adapters/connectors"
	"storegate/mapping"
	"storegate/signing"
)

const secret = "whsec_Y29ubmVjdG9yLXNlY3JldC0wMTIzNDU2Nzg5"

func TestHTTP_SignsAsksAndReadsOrders(t *testing.T) {
	v, _ := signing.NewStandard([]string{secret}, signing.StandardConfig{})
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || v.Verify(r.Header.Get, body) != nil {
			http.Error(w, "refused", http.StatusUnauthorized)
			return
		}
		json.Unmarshal(body, &got)
		io.WriteString(w, `{"orders":[{"type":"purchase"},{"type":"refund"}]}`)
	}))
	defer srv.Close()
	c, err := connectors.NewHTTP(connectors.HTTPConfig{URL: srv.URL, Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	orders, err := c.Orders(context.Background(), "player-1", "epic", since)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 2 || got["player_id"] != "player-1" || got["platform"] != "epic" || got["since"] != "2026-11-01T11:00:00Z" {
		t.Fatalf("orders %s, request %v", orders, got)
	}
	if _, err := c.Orders(context.Background(), "player-1", "epic", time.Time{}); err != nil || got["since"] != nil {
		t.Fatalf("first run: since = %v (%v), want null", got["since"], err)
	}
}

func TestHTTP_Failures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		delay  time.Duration
	}{
		{"5xx", 503, `{"orders":[]}`, 0},
		{"4xx", 401, ``, 0},
		{"not JSON", 200, `<html>`, 0},
		{"no orders key", 200, `{"items":[]}`, 0},
		{"orders not a list", 200, `{"orders":{}}`, 0},
		{"too large", 200, `{"orders":["` + strings.Repeat("x", 2<<20) + `"]}`, 0},
		{"too many", 200, `{"orders":[` + strings.Repeat(`{},`, connectors.MaxOrders) + `{}]}`, 0},
		{"too slow", 200, `{"orders":[]}`, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(tc.delay):
				case <-r.Context().Done():
					return
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, err := connectors.NewHTTP(connectors.HTTPConfig{URL: srv.URL, Secrets: []string{secret}, Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Orders(context.Background(), "p", "epic", time.Time{}); !errors.Is(err, connectors.ErrConnector) {
				t.Fatalf("err = %v, want ErrConnector", err)
			}
		})
	}
}

func TestNewHTTP_Config(t *testing.T) {
	for _, cfg := range []connectors.HTTPConfig{{Secrets: []string{secret}}, {URL: "http://x"}, {URL: "http://x", Secrets: []string{"whsec_!!"}}} {
		if _, err := connectors.NewHTTP(cfg); err == nil {
			t.Errorf("NewHTTP(%+v): no error", cfg)
		}
	}
}

func TestSimulator_ReturnsChangesSince(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	sim := connectors.NewSimulator(func() time.Time { return now })
	e := mapping.StoreEvent{Type: "purchase", Platform: "epic", PlayerID: "p", Order: mapping.StoreOrder{EntitlementID: "E1"}}
	sim.Put(e)
	sim.Put(mapping.StoreEvent{Type: "purchase", Platform: "epic", PlayerID: "other", Order: mapping.StoreOrder{EntitlementID: "E2"}})
	now = now.Add(time.Hour)
	if got, _ := sim.Orders(context.Background(), "p", "epic", now); len(got) != 0 {
		t.Fatalf("changes since now = %s, want none", got)
	}
	e.Type = "chargeback"
	sim.Put(e)
	got, _ := sim.Orders(context.Background(), "p", "epic", now)
	if len(got) != 1 || !strings.Contains(string(got[0]), `"chargeback"`) {
		t.Fatalf("changes = %s, want E1's chargeback", got)
	}
	if sim.Calls() != 2 {
		t.Fatalf("calls = %d", sim.Calls())
	}
}
