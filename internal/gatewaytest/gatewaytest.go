// Package gatewaytest builds storegate's whole HTTP surface for tests: the
// server package's app with the senders' routes (webhooks) and the routes
// people and games call (api), over a real SQLite store, ledger and
// dispatcher, with the requests and readings the tests share.
package gatewaytest

import (
	"context"
	"encoding/base64"
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
	"storegate/api"
	"storegate/api/console"
	"storegate/dispatch"
	"storegate/internal/fakeclock"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/metrics"
	"storegate/schemas"
	"storegate/server"
	"storegate/signing"
	"storegate/store"
	"storegate/store/engine"
	"storegate/webhooks"
)

const (
	Secret     = "test-xsolla-secret"
	AdminToken = "test-admin-token-0123456789"
)

var Start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Gateway is the real HTTP surface over a real SQLite store and ledger.
type Gateway struct {
	App        *fiber.App
	DB         *store.DB
	Ledger     *ledger.Ledger
	Dispatcher *dispatch.Dispatcher
	Metrics    *metrics.Metrics
	Clock      *fakeclock.Clock
	// Health feeds the console's health page (WithConsole); tests sample it.
	Health *console.HealthFeed
}

// Config is what New builds the gateway from; options edit it first.
type Config struct {
	Server       server.Config
	ServerDeps   server.Deps
	Webhooks     webhooks.Config
	WebhooksDeps webhooks.Deps
	API          api.Config
	APIDeps      api.Deps
	// Console, when set, mounts the support console (WithConsole).
	Console     *console.Config
	ConsoleDeps console.Deps
	Health      *console.HealthFeed
	// DB and Ledger are the gateway's own, for options to hand on.
	DB     *store.DB
	Ledger *ledger.Ledger
}

// Option edits the gateway's configuration before it is built.
type Option func(*Config)

// WithSource adds an Xsolla source.
func WithSource(src webhooks.XsollaSource) Option {
	return func(c *Config) { c.WebhooksDeps.Xsolla = append(c.WebhooksDeps.Xsolla, src) }
}

// WithLog sends the gateway's logs, every level, to w as JSON lines.
func WithLog(w io.Writer) Option {
	return func(c *Config) {
		c.ServerDeps.Log = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// WithRevocation replaces the ledger with one under rules. Give it before
// the options that hand the ledger on.
func WithRevocation(rules ledger.Rules) Option {
	return func(c *Config) {
		l, err := ledger.New(c.DB, ledger.Config{Players: []string{"player-1", "player-2"}, Revocation: rules})
		if err != nil {
			panic(err)
		}
		c.Ledger, c.WebhooksDeps.Users["ledger"], c.APIDeps.Economy = l, l, l
		c.WebhooksDeps.Keys["ledger"], c.WebhooksDeps.Wallets["ledger"], c.APIDeps.Keys = l, l, l
		c.DB.HoldOnPay("ledger", l)
	}
}

// WithCatalog replaces the catalog.
func WithCatalog(skus ...mapping.SKU) Option {
	return func(c *Config) {
		cat, err := mapping.NewCatalog(skus)
		if err != nil {
			panic(err)
		}
		c.WebhooksDeps.Catalog, c.APIDeps.Catalog = cat, cat
	}
}

// WithOrders gives the partner, order-tracking and Fulfill Orders routes
// the store's orders, and the partner routes its carts.
func WithOrders(c *Config) {
	c.WebhooksDeps.Orders, c.WebhooksDeps.Carts, c.APIDeps.Orders = c.DB, c.DB, c.DB
}

// XsollaSource is an Xsolla source signing with Secret, granting through
// the ledger.
func XsollaSource(name, grantOn string) webhooks.XsollaSource {
	v, err := signing.NewXsolla(Secret)
	if err != nil {
		panic(err)
	}
	return webhooks.XsollaSource{Source: webhooks.Source{Name: name, Verifier: v, Target: "ledger"}, GrantOn: grantOn}
}

var testCatalog = []mapping.SKU{
	{SKU: "crystals_100", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100},
	{SKU: "starter_sword", Type: storegate.ItemDurable},
	{SKU: "potion", Type: storegate.ItemConsumable, UseCount: 3},
}

// New builds the gateway, by default with Xsolla source "xs", an admin
// token and players player-1 and player-2.
func New(t testing.TB, opts ...Option) *Gateway {
	t.Helper()
	g := &Gateway{Clock: fakeclock.New(Start)}
	var err error
	g.DB, err = store.Open(context.Background(), engine.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), Now: g.Clock.Now,
		Migrations: []engine.Migrations{ledger.Migrations()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.DB.Close() })
	if g.Ledger, err = ledger.New(g.DB, ledger.Config{Players: []string{"player-1", "player-2"}}); err != nil {
		t.Fatal(err)
	}
	g.DB.HoldOnPay("ledger", g.Ledger)
	g.Metrics = metrics.New(g.DB.Depth)
	cfg := g.config(t)
	if len(opts) == 0 {
		opts = []Option{WithSource(XsollaSource("xs", ""))}
	}
	for _, o := range opts {
		o(&cfg)
	}
	g.Ledger = cfg.Ledger // an option may have replaced it
	g.Dispatcher, err = dispatch.New(g.DB, map[string]dispatch.Lane{"ledger": {Target: g.Ledger, Applier: g.Ledger}}, dispatch.Config{Now: g.Clock.Now}, g.Metrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(cfg.Server, cfg.ServerDeps)
	webhooks.Mount(srv, cfg.Webhooks, cfg.WebhooksDeps)
	api.Mount(srv, cfg.API, cfg.APIDeps)
	if cfg.Console != nil {
		if cfg.ConsoleDeps.Catalog == nil {
			cfg.ConsoleDeps.Catalog = cfg.APIDeps.Catalog
		}
		console.Mount(srv, *cfg.Console, cfg.ConsoleDeps)
	}
	g.App, g.Health = srv.App(), cfg.Health
	return g
}

// WithConsole mounts the support console, signing in with AdminToken, over
// the gateway's store and ledger, on the gateway's clock; edit changes its
// configuration.
func WithConsole(edit ...func(*console.Config, *console.Deps)) Option {
	return func(c *Config) {
		cfg := console.Config{AdminTokens: c.API.AdminTokens, Now: c.Server.Now}
		c.Health = console.NewHealthFeed(console.HealthFeedConfig{Counters: c.ServerDeps.Metrics, Backlogs: c.DB,
			Targets: []string{"ledger"}, Now: c.Server.Now})
		deps := console.Deps{Economy: c.Ledger, Orders: c.DB, Lookups: c.DB, DeadLetters: c.DB, Health: c.Health, Keys: c.Ledger}
		for _, e := range edit {
			e(&cfg, &deps)
		}
		c.Console, c.ConsoleDeps = &cfg, deps
	}
}

// config is the gateway's configuration before the options.
func (g *Gateway) config(t testing.TB) Config {
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := mapping.NewCatalog(testCatalog)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Server:     server.Config{Now: g.Clock.Now},
		ServerDeps: server.Deps{Ready: g.DB, Schemas: set, Metrics: g.Metrics},
		WebhooksDeps: webhooks.Deps{Inbox: g.DB, Users: map[string]webhooks.Users{"ledger": g.Ledger}, Catalog: cat, Keys: map[string]webhooks.GameKeys{"ledger": g.Ledger},
			Wallets: map[string]webhooks.Wallets{"ledger": g.Ledger}},
		API:     api.Config{AdminTokens: []string{AdminToken}},
		APIDeps: api.Deps{Economy: g.Ledger, DeadLetters: g.DB, Inbox: g.DB, Catalog: cat, Keys: g.Ledger},
		DB:      g.DB,
		Ledger:  g.Ledger,
	}
}

// Post sends a body signed with the test secret.
func (g *Gateway) Post(t testing.TB, source, body string) *http.Response {
	t.Helper()
	return g.Do(t, SignedRequest(source, body))
}

// SignedRequest is an Xsolla notification for source, signed with the test
// secret.
func SignedRequest(source, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/xsolla/"+source, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", signing.XsollaSignature([]byte(body), Secret))
	return req
}

func (g *Gateway) Do(t testing.TB, req *http.Request) *http.Response {
	t.Helper()
	resp, err := g.App.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Scrape reads the metrics as Prometheus would.
func (g *Gateway) Scrape(t testing.TB) (status int, text string) {
	t.Helper()
	rec := httptest.NewRecorder()
	g.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Code, rec.Body.String()
}

// Drain runs the dispatcher until nothing is due.
func (g *Gateway) Drain(t testing.TB) {
	t.Helper()
	for range 100 {
		n, err := g.Dispatcher.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("dispatcher did not drain")
}

// Balance is a player's balance of a currency, every platform together.
func (g *Gateway) Balance(t testing.TB, player, currency string) int64 {
	t.Helper()
	ws, err := g.Ledger.Wallets(context.Background(), player)
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

// Items are a player's active entitlements as "item×uses".
func (g *Gateway) Items(t testing.TB, player string) []string {
	t.Helper()
	es, err := g.Ledger.Entitlements(context.Background(), player, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s×%d", e.Item, e.UseCount))
	}
	return out
}

// Rows counts everything an event can leave behind.
func (g *Gateway) Rows(t testing.TB) int {
	t.Helper()
	total := 0
	for _, table := range []string{"inbox", "outbox", "links", "ledger_entries", "ledger_entitlements", "ledger_transactions"} {
		var n int
		if err := g.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// ErrorAnswer is an error answer as callers read it.
type ErrorAnswer struct {
	Error struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Fields  []string `json:"fields"`
	} `json:"error"`
}

// ReadError decodes an error answer.
func ReadError(t testing.TB, resp *http.Response) ErrorAnswer {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	var e ErrorAnswer
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error answer %q is not JSON: %v", raw, err)
	}
	return e
}

// OrderPaid is an Xsolla order_paid for items, each "sku" or "sku*quantity".
func OrderPaid(orderID int, player string, items ...string) string {
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

// OrderCanceled is an Xsolla order_canceled.
func OrderCanceled(orderID int, player string) string {
	return fmt.Sprintf(`{"notification_type":"order_canceled","order":{"id":%d,"status":"canceled"},"user":{"external_id":%q},"items":[{"sku":"crystals_100","quantity":1}]}`, orderID, player)
}

func MustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// The partner, store-proxy and Fulfill Orders routes' setup: a catalog
// with prices and platform products, and the sources that use it.

const (
	PartnerKey    = "test-partner-key-0123456789"
	PartnerSecret = "whsec_cGFydG5lci1zdGFuZGFyZC1zZWNyZXQtMDEyMzQ1"
	StoresSecret  = "whsec_c3RvcmVzLXN0YW5kYXJkLXNlY3JldC0wMTIzNDU2"
	PlayerKey     = "test-player-token-key-0123456789abcdef"
)

var commerceCatalog = []mapping.SKU{
	{SKU: "crystals_100", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100, Name: "100 Crystals",
		Prices:   map[string]int64{"USD": 199, "EUR": 189},
		Products: map[string]string{"steam": "1001", "epic": "epic-crystals-100", "xbox": "9NCRYSTALS100", "playstation": "PS-CRYSTALS-100", "twitch": "drop-crystals-100"}},
	{SKU: "starter_sword", Type: storegate.ItemDurable, Name: "Starter Sword", Prices: map[string]int64{"USD": 499},
		Products: map[string]string{"steam": "2001", "epic": "epic-sword"}},
	{SKU: "potion", Type: storegate.ItemConsumable, UseCount: 3},
}

// WithCommerce replaces the catalog with one that has prices and platform
// products.
func WithCommerce() Option {
	return func(c *Config) {
		cat, err := mapping.NewCatalog(commerceCatalog)
		if err != nil {
			panic(err)
		}
		c.WebhooksDeps.Catalog, c.APIDeps.Catalog = cat, cat
		WithOrders(c)
	}
}

// KeySKU is the game_key SKU WithGameKeys adds: a game on Steam, in the
// sku_drm form.
const KeySKU = "110101_steam"

// WithGameKeys adds KeySKU to the catalog (give it after WithCommerce or
// WithCatalog), sold to partners at 19.99 USD, on Steam as product 110101
// and on Epic as epic-game-110101.
func WithGameKeys() Option {
	return func(c *Config) {
		skus := append(c.APIDeps.Catalog.SKUs(), mapping.SKU{SKU: KeySKU, Type: storegate.ItemGameKey, Name: "The Game (Steam)",
			Prices: map[string]int64{"USD": 1999}, Products: map[string]string{"steam": "110101", "epic": "epic-game-110101"}})
		cat, err := mapping.NewCatalog(skus)
		if err != nil {
			panic(err)
		}
		c.WebhooksDeps.Catalog, c.APIDeps.Catalog = cat, cat
		c.ServerDeps.Metrics.WatchKeys(func(ctx context.Context) (map[string]int64, error) {
			return c.Ledger.KeysAvailable(ctx, cat.GameKeys())
		})
	}
}

// ImportKeys imports keys into KeySKU's pool through the admin API.
func (g *Gateway) ImportKeys(t testing.TB, keys ...string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"keys": keys})
	status, out := g.Call(t, http.MethodPost, "/admin/v1/keys/"+KeySKU, AdminToken, "", string(body))
	if status != 200 {
		t.Fatalf("import keys: %d %v", status, out)
	}
	return out
}

// ThisMachine is app.Test's peer address: the partner's registered server.
var ThisMachine = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}

// WithPartner adds partner "bank" authenticating with auth ("basic" or
// "standard"), registered at app.Test's address.
func WithPartner(auth string, edit ...func(*webhooks.PartnerSource)) Option {
	return func(c *Config) {
		src := webhooks.PartnerSource{Source: webhooks.Source{Name: "bank", Target: "ledger", AllowIPs: ThisMachine},
			TokenKeys: [][]byte{webhooks.PartnerTokenKey(PartnerKey)}}
		if auth == "standard" {
			src.Verifier = standardVerifier(PartnerSecret, c.Server.Now)
		} else {
			src.BasicKeys = []string{PartnerKey}
		}
		for _, e := range edit {
			e(&src)
		}
		c.WebhooksDeps.Partners = append(c.WebhooksDeps.Partners, src)
		WithOrders(c)
	}
}

// WithStores adds store-proxy source "studio".
func WithStores() Option {
	return func(c *Config) {
		c.WebhooksDeps.Stores = append(c.WebhooksDeps.Stores,
			webhooks.StoresSource{Source: webhooks.Source{Name: "studio", Target: "ledger",
				Verifier: standardVerifier(StoresSecret, c.Server.Now)}})
		WithOrders(c)
	}
}

func standardVerifier(secret string, now func() time.Time) *signing.Standard {
	v, err := signing.NewStandard([]string{secret}, signing.StandardConfig{Now: now})
	if err != nil {
		panic(err)
	}
	return v
}

// WithFulfill turns Fulfill Orders on with a connector per platform (a
// simulated platform, in most tests), sharing the "studio" source's ids.
func WithFulfill(connectors map[string]api.OrderConnector) Option {
	return func(c *Config) {
		tokens, err := signing.NewJWT([][]byte{[]byte(PlayerKey)}, signing.JWTConfig{Now: c.Server.Now})
		if err != nil {
			panic(err)
		}
		f := &api.FulfillOrders{Source: "studio", Target: "ledger", Tokens: tokens, Connectors: map[string]api.OrderConnector{}}
		for platform, con := range connectors {
			f.Connectors[platform] = con
		}
		c.APIDeps.FulfillOrders = f
		WithOrders(c)
	}
}

// Exchange sends a request and decodes a JSON answer into out (when not nil).
func (g *Gateway) Exchange(t testing.TB, req *http.Request, out any) int {
	t.Helper()
	resp := g.Do(t, req)
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", req.Method, req.URL.Path, raw, err)
		}
	}
	return resp.StatusCode
}

// JSONRequest is a request with a JSON body, or none.
func JSONRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// Basic authenticates a partner request with HTTP Basic.
func Basic(req *http.Request, user, key string) *http.Request {
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+key)))
	return req
}

var msgSeq int

// Standard signs a request with Standard Webhooks at the clock's now.
func (g *Gateway) Standard(t testing.TB, req *http.Request, secret, body string) *http.Request {
	t.Helper()
	msgSeq++
	headers, err := signing.StandardHeaders([]string{secret}, fmt.Sprint("msg_", msgSeq), g.Clock.Now().Unix(), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}

// Partner sends a request to partner "bank" with HTTP Basic.
func (g *Gateway) Partner(t testing.TB, method, path, body string, out any) int {
	t.Helper()
	return g.Exchange(t, Basic(JSONRequest(method, "/partners/bank"+path, body), "bank", PartnerKey), out)
}

// StoreEvent posts a signed store event to source "studio".
func (g *Gateway) StoreEvent(t testing.TB, body string, out any) int {
	t.Helper()
	return g.Exchange(t, g.Standard(t, JSONRequest(http.MethodPost, "/stores/studio/events", body), StoresSecret, body), out)
}

// Everything counts every row any request can leave behind, the new
// tables included.
func (g *Gateway) Everything(t testing.TB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"inbox", "outbox", "links", "ledger_entries", "ledger_entitlements", "ledger_transactions",
		"orders", "partner_orders", "partner_carts", "fulfill_cursors"} {
		var n int
		if err := g.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// SameRows fails the test when a table's row count changed.
func SameRows(t testing.TB, before, after map[string]int) {
	t.Helper()
	for table, n := range after {
		if before[table] != n {
			t.Fatalf("%s: %d rows, want %d as before the request", table, n, before[table])
		}
	}
}

// Spend takes currency out of a player's balance on one platform, standing
// in for a game-server spend: a revoke that reverses nothing and names its
// lines is a plain debit in the embedded ledger.
func (g *Gateway) Spend(t testing.TB, player string, platform storegate.Platform, currency string, amount int64) {
	t.Helper()
	_, err := g.Ledger.Revoke(context.Background(), storegate.Command{ID: fmt.Sprint("spend.", player, ".", time.Now().UnixNano()),
		Kind: storegate.KindRevoke, PlayerID: player, Platform: platform, Reason: "spend",
		Lines: []storegate.Line{{SKU: "spend", Quantity: 1, Grants: []storegate.Grant{{Currency: currency, Amount: amount}}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// PlatformBalance is a player's balance of a currency on one platform.
func (g *Gateway) PlatformBalance(t testing.TB, player, currency string, platform storegate.Platform) int64 {
	t.Helper()
	ws, err := g.Ledger.Wallets(context.Background(), player)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Currency != currency {
			continue
		}
		for _, p := range w.Platforms {
			if p.Platform == platform {
				return p.Balance
			}
		}
	}
	return 0
}

// Order is one tracked order as the admin route answers it.
type Order struct {
	ID       string `json:"id"`
	Source   string `json:"source"`
	Platform string `json:"platform"`
	Ref      string `json:"order_ref"`
	Status   string `json:"status"`
	History  []struct {
		Status string `json:"status"`
		Event  string `json:"event"`
		Reason string `json:"reason"`
	} `json:"history"`
}

// Orders reads a player's orders through the admin route.
func (g *Gateway) Orders(t testing.TB, player string) map[string]Order {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/admin/v1/players/"+player+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	var ans struct {
		Orders []Order `json:"orders"`
	}
	if s := g.Exchange(t, req, &ans); s != 200 {
		t.Fatalf("orders: status %d", s)
	}
	out := map[string]Order{}
	for _, o := range ans.Orders {
		out[o.ID] = o
	}
	return out
}

// Steps is an order's history as "status/event" strings.
func (o Order) Steps() []string {
	var out []string
	for _, h := range o.History {
		out = append(out, h.Status+"/"+h.Event)
	}
	return out
}

// GameToken is the game servers' token of WithGame.
const GameToken = "test-game-token-0123456789"

// WithGame accepts GameToken on the game-server routes.
func WithGame(c *Config) { c.API.GameTokens = []string{GameToken} }

// Call sends a JSON body (or none) with a bearer token and an optional
// idempotency key, and decodes the JSON answer.
func (g *Gateway) Call(t testing.TB, method, path, token, key, body string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp := g.Do(t, req)
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: answer %q is not JSON", method, path, raw)
	}
	return resp.StatusCode, out
}

// ErrCode is the error code of a decoded answer.
func ErrCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// Grant applies a fulfillment to player-1 in the ledger directly.
func (g *Gateway) Grant(t testing.TB, id string, platform storegate.Platform, lines ...storegate.Line) {
	t.Helper()
	if _, err := g.Ledger.Fulfill(context.Background(), storegate.Command{ID: id, Kind: storegate.KindFulfill, Source: "stores",
		PlayerID: "player-1", Platform: platform, Lines: lines}); err != nil {
		t.Fatal(err)
	}
}

// Crystals is an order line granting n CRYSTALS.
func Crystals(n int64) storegate.Line {
	return storegate.Line{SKU: "crystals", Quantity: 1, Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: n}}}
}

// OrderAnswer is a partner order as the partner routes answer it.
type OrderAnswer struct {
	OrderID   int64  `json:"order_id"`
	Status    string `json:"status"`
	PlayerID  string `json:"player_id"`
	Currency  string `json:"currency"`
	PaymentID int64  `json:"payment_id"`
	Price     Price  `json:"price"`
	Items     []Line `json:"items"`
}

// Price is the price of a partner order or cart as the partner routes
// answer it.
type Price struct {
	Amount                string `json:"amount"`
	AmountWithoutDiscount string `json:"amount_without_discount"`
	AmountWithoutTax      string `json:"amount_without_tax"`
	Tax                   struct {
		Percent string `json:"percent"`
		Amount  string `json:"amount"`
	} `json:"tax"`
	Currency string `json:"currency"`
}

// Line is one line of a partner order or cart.
type Line struct {
	SKU             string `json:"sku"`
	Quantity        int64  `json:"quantity"`
	UnitPrice       string `json:"unit_price"`
	DiscountPercent int64  `json:"discount_percent"`
	Amount          string `json:"amount"`
	Bonus           bool   `json:"bonus"`
}

// UserToken gets a user token for player through the partner flow.
func (g *Gateway) UserToken(t testing.TB, player string) string {
	t.Helper()
	return g.UserTokenIn(t, player, "")
}

// UserTokenIn gets a user token for player living in country (none when
// empty), which chooses the tax rate of the player's orders.
func (g *Gateway) UserTokenIn(t testing.TB, player, country string) string {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	user := fmt.Sprintf(`{"id":%q,"email":"a@b.c"}`, player)
	if country != "" {
		user = fmt.Sprintf(`{"id":%q,"email":"a@b.c","country":%q}`, player, country)
	}
	if s := g.Partner(t, "POST", "/users/token", `{"project_id":1,"user":`+user+`}`, &tok); s != 200 || tok.Token == "" {
		t.Fatalf("users/token: status %d, token %q", s, tok.Token)
	}
	return tok.Token
}

// CreateOrder creates an order for player through the partner flow.
func (g *Gateway) CreateOrder(t testing.TB, player, currency, items string) OrderAnswer {
	t.Helper()
	var o OrderAnswer
	body := fmt.Sprintf(`{"user_token":%q,"currency":%q,"items":%s}`, g.UserToken(t, player), currency, items)
	if s := g.Partner(t, "POST", "/orders", body, &o); s != 200 || o.OrderID == 0 {
		t.Fatalf("orders: status %d, %+v", s, o)
	}
	return o
}

// PayBody is a partner's payment notification.
func PayBody(orderID int64, player, amount, currency, psTxn string) string {
	return fmt.Sprintf(`{"project_id":1,"payment":{"geotype_id":13038,"amount":%s,"currency":%q,"ps_transaction_id":%q,"project_transaction_id":null},
		"purchase":{"order_id":%d},"user":{"id":%q,"email":"a@b.c"}}`, amount, currency, psTxn, orderID, player)
}

// PlayerToken is a game client's token for player, signed with key.
func (g *Gateway) PlayerToken(t testing.TB, player string, key string) string {
	t.Helper()
	tok, err := signing.SignJWT([]byte(key), signing.Claims{Subject: player, ExpiresAt: g.Clock.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// EpicEvent is a store-proxy event for an Epic order.
func EpicEvent(typ, entitlement, player string) string {
	return fmt.Sprintf(`{"type":%q,"platform":"epic","player_id":%q,"order":{"entitlement_id":%q},"items":[{"product_id":"epic-crystals-100","quantity":1}]}`,
		typ, player, entitlement)
}

// DeadLetter posts an Xsolla order to source "xs" and kills its grant the
// way the dispatcher does after the target refused it for good; it returns
// the command's id.
func (g *Gateway) DeadLetter(t testing.TB, order int, player string) string {
	t.Helper()
	if resp := g.Post(t, "xs", OrderPaid(order, player, "crystals_100")); resp.StatusCode != 204 {
		t.Fatalf("order %d: status %d", order, resp.StatusCode)
	}
	id := mapping.XsollaFulfillID("xs", mapping.Int(order))
	ctx := context.Background()
	claimed, err := g.DB.Claim(ctx, "test", "ledger", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claimed {
		out := storegate.Outcome{Verdict: storegate.VerdictWait}
		state := storegate.StatePending
		attempt := 0
		if c.Command.ID == id {
			out = storegate.Outcome{Verdict: storegate.VerdictDead, HTTPStatus: 404, Code: "30343", Message: "AGS answered 404: Item of sku [crystals_100] does not exist"}
			state, attempt = storegate.StateDead, 1
		}
		if err := g.DB.Complete(ctx, store.Completion{ID: c.Command.ID, Owner: "test", State: state, Attempt: attempt,
			StartedAt: g.Clock.Now(), Outcome: out}); err != nil {
			t.Fatal(err)
		}
	}
	return id
}
