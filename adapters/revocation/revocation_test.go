package revocation_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"storegate"
	"storegate/adapters/revocation"
	"storegate/adapters/revocation/revocationpb"
	"storegate/ledger"
	"storegate/schemas"
	"storegate/signing"
	"storegate/store"
	"storegate/store/engine"
)

const whsec = "whsec_dGVzdC1yZXZvY2F0aW9uLXNlY3JldA=="

// seen is one request as a test service received it.
type seen struct {
	requestID, auth, entryType, userID, namespace, item, currency, origin string
	quantity                                                              int64
}

// plugin scripts a revocation service: the sword is refused, everything
// else accepted, and every request is recorded.
type plugin struct {
	mu    sync.Mutex
	calls []seen
}

func (p *plugin) answer(s seen) (status, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, s)
	if s.item == "sword" {
		return "FAIL", "the sword is a gift now"
	}
	return "SUCCESS", ""
}

type grpcPlugin struct {
	revocationpb.UnimplementedRevocationServer
	*plugin
}

func (g grpcPlugin) Revoke(ctx context.Context, r *revocationpb.RevokeRequest) (*revocationpb.RevokeResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	s := seen{requestID: first(revocation.RequestIDHeader), auth: first("authorization"), entryType: r.GetRevokeEntryType(),
		userID: r.GetUserId(), namespace: r.GetNamespace(), quantity: int64(r.GetQuantity()), item: r.GetItem().GetItemId(),
		currency: r.GetCurrency().GetCurrencyCode(), origin: r.GetCurrency().GetBalanceOrigin()}
	status, reason := g.answer(s)
	return &revocationpb.RevokeResponse{Status: status, Reason: reason, CustomRevocation: map[string]string{"by": "grpc"}}, nil
}

// serveGRPC starts a plugin on loopback and returns its address and a stop.
func serveGRPC(t *testing.T, p *plugin) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	revocationpb.RegisterRevocationServer(srv, grpcPlugin{plugin: p})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), srv.Stop
}

// serveHTTP starts the HTTP equivalent, which checks the signature and the
// published request schema before answering.
func serveHTTP(t *testing.T, p *plugin) (string, func()) {
	verifier, err := signing.NewStandard([]string{whsec}, signing.StandardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifier.Verify(r.Header.Get, body); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if err := set.Validate("revocation/request", body); err != nil {
			t.Errorf("request breaks the published schema: %v", err)
		}
		var req revocation.HTTPRequest
		json.Unmarshal(body, &req)
		if got, want := r.Header.Get("webhook-id"), revocation.WebhookID(req.RequestID); got != want {
			t.Errorf("webhook-id = %q, want %q", got, want)
		}
		s := seen{requestID: req.RequestID, auth: r.Header.Get("Authorization"), entryType: req.RevokeEntryType, userID: req.UserID,
			namespace: req.Namespace, quantity: req.Quantity}
		if req.Item != nil {
			s.item = req.Item.ItemID
		}
		if req.Currency != nil {
			s.currency, s.origin = req.Currency.CurrencyCode, req.Currency.BalanceOrigin
		}
		status, reason := p.answer(s)
		answer, _ := json.Marshal(map[string]any{"status": status, "reason": reason, "customRevocation": map[string]string{"by": "http"}})
		if err := set.Validate("revocation/answer", answer); err != nil {
			t.Errorf("the test's own answer breaks the published schema: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, srv.Close
}

// The custom strategy against a real gRPC plugin and a real HTTP service on
// loopback: each entry is asked with a stable request id, the answers
// decide, and an unreachable service makes the revoke wait, taking nothing.
func TestCustomStrategy_GRPCAndHTTP(t *testing.T) {
	tests := []struct {
		name    string
		client  func(t *testing.T, p *plugin) (ledger.CustomRevoker, func())
		wantTag string
		auth    string
	}{
		{"grpc", func(t *testing.T, p *plugin) (ledger.CustomRevoker, func()) {
			addr, stop := serveGRPC(t, p)
			c, err := revocation.NewGRPC(revocation.GRPCConfig{Address: addr, Token: "plugin-token", Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c, stop
		}, "grpc", "Bearer plugin-token"},
		{"http", func(t *testing.T, p *plugin) (ledger.CustomRevoker, func()) {
			url, stop := serveHTTP(t, p)
			c, err := revocation.NewHTTP(revocation.HTTPConfig{URL: url, Secrets: []string{whsec}, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return c, stop
		}, "http", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			p := &plugin{}
			client, stop := tc.client(t, p)
			db, err := store.Open(ctx, engine.Config{DSN: "sqlite:" + t.TempDir() + "/s.db", Migrations: []engine.Migrations{ledger.Migrations()}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			l, err := ledger.New(db, ledger.Config{Revocation: ledger.Rules{Currency: ledger.StrategyCustom, Durable: ledger.StrategyCustom,
				Custom: client, Namespace: "mygame"}})
			if err != nil {
				t.Fatal(err)
			}
			grant := func(id string) {
				c := storegate.Command{ID: id, Kind: storegate.KindFulfill, PlayerID: "p1", Platform: storegate.PlatformPlayStation,
					Lines: []storegate.Line{{SKU: "gems_100", Quantity: 1, Grants: []storegate.Grant{{Currency: "GEMS", Amount: 100}}},
						{SKU: "sword", Quantity: 1, Grants: []storegate.Grant{{Item: "sword", Type: storegate.ItemDurable, Quantity: 1}}}}}
				if _, err := l.Fulfill(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			grant("ps.1")
			res, err := l.Revoke(ctx, storegate.Command{ID: "ps.1.revoke", Kind: storegate.KindRevoke, PlayerID: "p1",
				Platform: storegate.PlatformPlayStation, Reverses: "ps.1", Reason: "refund"})
			if err != nil {
				t.Fatal(err)
			}
			want := []seen{
				{requestID: "ps.1.revoke/0/0", auth: tc.auth, entryType: "CURRENCY", userID: "p1", namespace: "mygame", quantity: 100, currency: "GEMS", origin: "Playstation"},
				{requestID: "ps.1.revoke/1/0", auth: tc.auth, entryType: "ITEM", userID: "p1", namespace: "mygame", quantity: 1, item: "sword"},
			}
			if len(p.calls) != len(want) {
				t.Fatalf("service got %+v, want %+v", p.calls, want)
			}
			for i := range want {
				if p.calls[i] != want[i] {
					t.Errorf("request %d = %+v, want %+v", i, p.calls[i], want[i])
				}
			}
			rev := res.Revocation
			gems, sword := rev.ItemRevocations[0], rev.ItemRevocations[1]
			if gems.Status != "SUCCESS" || gems.CustomRevocation["by"] != tc.wantTag || len(gems.CreditRevocations) != 1 || gems.CreditRevocations[0].BalanceAfter != 0 {
				t.Errorf("gems = %+v, want taken back with the service's custom_revocation", gems)
			}
			if sword.Status != "FAIL" || sword.Reason != "custom revocation service: the sword is a gift now" {
				t.Errorf("sword = %+v, want failed with the service's reason", sword)
			}
			if rev.State != ledger.StatePartiallyRevoked {
				t.Errorf("state = %s, want PARTIALLY_REVOKED", rev.State)
			}

			// The service goes away: the next revoke takes nothing and waits.
			grant("ps.2")
			stop()
			out := l.Deliver(ctx, storegate.Command{ID: "ps.2.revoke", Kind: storegate.KindRevoke, PlayerID: "p1",
				Platform: storegate.PlatformPlayStation, Reverses: "ps.2"})
			if out.Verdict != storegate.VerdictRetry || out.Code != "CUSTOM_REVOCATION" {
				t.Fatalf("delivery with the service down = %+v, want a retry", out)
			}
			ws, _ := l.Wallets(ctx, "p1")
			if ws[0].Balance != 100 {
				t.Errorf("balance = %d, want 100: nothing taken while the service is down", ws[0].Balance)
			}
		})
	}
}

func TestNewClients_RejectBadConfig(t *testing.T) {
	if _, err := revocation.NewGRPC(revocation.GRPCConfig{}); err == nil {
		t.Error("gRPC client without an address")
	}
	for _, cfg := range []revocation.HTTPConfig{{Secrets: []string{whsec}}, {URL: "http://127.0.0.1:1"}, {URL: "http://127.0.0.1:1", Secrets: []string{"whsec_!!"}}} {
		if _, err := revocation.NewHTTP(cfg); err == nil {
			t.Errorf("HTTP client accepted %+v", cfg)
		}
	}
}
