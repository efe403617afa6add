package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/dispatch"
	"storegate/internal/fakeclock"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/metrics"
	"storegate/schemas"
	"storegate/signing"
	"storegate/store"
	"storegate/webhooks"
)

const (
	secret     = "test-xsolla-secret"
	adminToken = "test-admin-token-0123456789"
)

var start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// gateway is the real HTTP surface over a real SQLite store and ledger.
type gateway struct {
	app        *fiber.App
	db         *store.DB
	ledger     *ledger.Ledger
	dispatcher *dispatch.Dispatcher
	metrics    *metrics.Metrics
	clock      *fakeclock.Clock
}

type option func(*webhooks.Config, *webhooks.Deps)

func withSource(src webhooks.XsollaSource) option {
	return func(_ *webhooks.Config, d *webhooks.Deps) { d.Xsolla = append(d.Xsolla, src) }
}

// withLog sends the gateway's logs, every level, to w as JSON lines.
func withLog(w io.Writer) option {
	return func(_ *webhooks.Config, d *webhooks.Deps) {
		d.Log = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

func xsollaSource(name, grantOn string) webhooks.XsollaSource {
	v, err := signing.NewXsolla(secret)
	if err != nil {
		panic(err)
	}
	return webhooks.XsollaSource{Name: name, Verifier: v, Target: "ledger", GrantOn: grantOn}
}

var testCatalog = []mapping.SKU{
	{SKU: "crystals_100", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100},
	{SKU: "starter_sword", Type: storegate.ItemDurable},
	{SKU: "potion", Type: storegate.ItemConsumable, UseCount: 3},
}

func newGateway(t testing.TB, opts ...option) *gateway {
	t.Helper()
	clock := fakeclock.New(start)
	db, err := store.Open(context.Background(), store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), Now: clock.Now,
		Migrations: []store.Migrations{ledger.Migrations()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := ledger.New(db, ledger.Config{Players: []string{"player-1", "player-2"}})
	if err != nil {
		t.Fatal(err)
	}
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := mapping.NewCatalog(testCatalog)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(db.Depth)
	d, err := dispatch.New(db, map[string]dispatch.Target{"ledger": l}, dispatch.Config{Now: clock.Now}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhooks.Config{AdminTokens: []string{adminToken}, Now: clock.Now}
	deps := webhooks.Deps{Inbox: db, Users: map[string]webhooks.Users{"ledger": l}, Economy: l, Ready: db, DeadLetters: db,
		Catalog: cat, Schemas: set, Metrics: m}
	if len(opts) == 0 {
		opts = []option{withSource(xsollaSource("xs", ""))}
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	return &gateway{app: webhooks.New(cfg, deps), db: db, ledger: l, dispatcher: d, metrics: m, clock: clock}
}

// post sends a body signed with the test secret.
func (g *gateway) post(t testing.TB, source, body string) *http.Response {
	t.Helper()
	return g.do(t, signedRequest(source, body))
}

// signedRequest is an Xsolla notification for source, signed with the test
// secret.
func signedRequest(source, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/xsolla/"+source, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", signing.XsollaSignature([]byte(body), secret))
	return req
}

func (g *gateway) do(t testing.TB, req *http.Request) *http.Response {
	t.Helper()
	resp, err := g.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// scrape reads the metrics as Prometheus would.
func (g *gateway) scrape(t testing.TB) (status int, text string) {
	t.Helper()
	rec := httptest.NewRecorder()
	g.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Code, rec.Body.String()
}

// drain runs the dispatcher until nothing is due.
func (g *gateway) drain(t testing.TB) {
	t.Helper()
	for range 100 {
		n, err := g.dispatcher.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("dispatcher did not drain")
}

func (g *gateway) balance(t testing.TB, player, currency string) int64 {
	t.Helper()
	ws, err := g.ledger.Wallets(context.Background(), player)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Currency == currency {
			return w.Balance
		}
	}
	return 0
}

func (g *gateway) items(t testing.TB, player string) []string {
	t.Helper()
	es, err := g.ledger.Entitlements(context.Background(), player, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s×%d", e.Item, e.UseCount))
	}
	return out
}

// rows counts everything an event can leave behind.
func (g *gateway) rows(t testing.TB) int {
	t.Helper()
	total := 0
	for _, table := range []string{"inbox", "outbox", "links", "ledger_entries", "ledger_entitlements", "ledger_transactions"} {
		var n int
		if err := g.db.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

type errorAnswer struct {
	Error struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Fields  []string `json:"fields"`
	} `json:"error"`
}

func readError(t testing.TB, resp *http.Response) errorAnswer {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	var e errorAnswer
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error answer %q is not JSON: %v", raw, err)
	}
	return e
}

func orderPaid(orderID int, player string, items ...string) string {
	var lines []string
	for _, it := range items {
		sku, qty, _ := strings.Cut(it, "*")
		if qty == "" {
			qty = "1"
		}
		lines = append(lines, fmt.Sprintf(`{"sku":%q,"quantity":%s,"type":"virtual_good","amount":"1.99"}`, sku, qty))
	}
	return fmt.Sprintf(`{"notification_type":"order_paid","order":{"id":%d,"mode":"default","status":"paid"},"user":{"external_id":%q,"email":"a@b.c"},"items":[%s]}`,
		orderID, player, strings.Join(lines, ","))
}

func orderCanceled(orderID int, player string) string {
	return fmt.Sprintf(`{"notification_type":"order_canceled","order":{"id":%d,"status":"canceled"},"user":{"external_id":%q},"items":[{"sku":"crystals_100","quantity":1}]}`, orderID, player)
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
