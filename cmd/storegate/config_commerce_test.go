package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storegate/signing"
)

const commerceBase = `
admin:
  tokens: ["0123456789abcdef0"]
sources:
  - name: bank
    kind: partner
    secrets: ["${PARTNER}"]
    target: ledger
    allow_ips: ["127.0.0.1"]
  - name: studio
    kind: stores
    secrets: ["whsec_c3RvcmVzLXN0YW5kYXJkLXNlY3JldC0wMTIzNDU2"]
    target: ledger
targets:
  - name: ledger
    kind: ledger
    players: ["player-1"]
catalog:
  - {sku: crystals_100, type: coin, currency: CRYSTALS, amount: 100, prices: {USD: 199}, products: {epic: epic-crystals-100}}
`

func TestParseConfig_CommerceDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(commerceBase), env(map[string]string{"PARTNER": "whsec_cGFydG5lci1zdGFuZGFyZC1zZWNyZXQtMDEyMzQ1"}))
	if err != nil {
		t.Fatal(err)
	}
	p, s, f := cfg.Sources[0].Partner, cfg.Sources[1].Stores, cfg.FulfillOrders
	for _, tc := range []struct{ name, got, want string }{
		{"partner.auth", p.Auth, "standard"},
		{"partner.token_ttl (left to webhooks.PartnerSource)", p.TokenTTL.D().String(), "0s"},
		{"stores.platforms", strings.Join(s.Platforms, ","), "steam,epic,xbox,playstation,twitch"},
		{"fulfill_orders.overlap", f.Overlap.D().String(), "5m0s"},
		{"fulfill_orders.wait", f.Wait.D().String(), "2s"},
		{"fulfill_orders.timeout", f.Timeout.D().String(), "10s"},
		{"fulfill_orders.source", f.Source, ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want default %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseConfig_CommerceProblemsWithPaths(t *testing.T) {
	bad := strings.Replace(commerceBase, `    allow_ips: ["127.0.0.1"]
`, `    allow_ips: ["any"]
    grant_on: payment
    partner:
      auth: password
      token_ttl: 1s
      currencies: [usd]
      prices: {ghost: {USD: 1}, crystals_100: {USD: -5}}
      discounts: {crystals_100: 120}
      taxes:
        countries: {de: 19, FR: 101}
        currencies: {EUR: 1.00001, usd: 7}
      bonuses:
        - {sku: ghost, quantity: -1}
        - {sku: crystals_100, min_amount: {USD: 0}, with_sku: ghost}
    stores: {platforms: [steam]}
`, 1)
	bad = strings.Replace(bad, `    target: ledger
targets:`, `    target: ledger
    stores: {platforms: [gog]}
fulfill_orders:
  source: bank
  token_keys: [short]
  wait: 1m
  connectors:
    - {platform: epic, url: "ftp://x"}
    - {platform: epic, kind: grpc, url: "http://127.0.0.1:1/orders", secrets: [not-base64!]}
targets:`, 1)
	_, err := ParseConfig([]byte(bad), env(map[string]string{"PARTNER": "whsec_cGFydG5lci1zdGFuZGFyZC1zZWNyZXQtMDEyMzQ1"}))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		"sources[0].stores: only a stores source",
		"sources[0].grant_on: only for an xsolla source",
		"sources[0].partner.auth: \"password\" is not standard or basic",
		"sources[0].allow_ips: a partner must be limited to its registered server addresses",
		"sources[0].partner.token_ttl: must be between 1m and 24h",
		"sources[0].partner.currencies[0]: \"usd\" is neither an ISO 4217 code nor a currency the catalog grants",
		"sources[0].partner.prices.ghost: not a catalog sku",
		"sources[0].partner.prices.crystals_100.USD: want a positive amount",
		"sources[0].partner.discounts.crystals_100: 120 is not a percentage",
		"sources[0].partner.taxes.countries.de: not an ISO 3166-1 alpha-2 code",
		"sources[0].partner.taxes.countries.FR: 101 is not a percentage 0..100",
		"\"1.00001\" is not a percentage like 19 or 8.875",
		"sources[0].partner.taxes.currencies.usd: neither an ISO 4217 code nor a currency the catalog grants",
		"sources[0].partner.bonuses[0].sku: \"ghost\" is not a catalog sku",
		"sources[0].partner.bonuses[0].quantity: -1 outside 1..1000000",
		"sources[0].partner.bonuses[0]: set min_amount, with_sku or both",
		"sources[0].partner.bonuses[1].min_amount.USD: want a positive amount",
		"sources[0].partner.bonuses[1].with_sku: \"ghost\" is not a catalog sku",
		"sources[1].stores.platforms[0]: \"gog\" is not steam",
		"fulfill_orders.source: \"bank\" is not a configured stores source",
		"fulfill_orders.token_keys[0]: an HS256 key needs at least 32 characters",
		"fulfill_orders.wait: must be between 0 and 30s",
		"fulfill_orders.connectors[0].url: want an http:// or https:// URL",
		"fulfill_orders.connectors[1].platform: epic has two connectors",
		"fulfill_orders.connectors[1].kind: \"grpc\" is not a known connector kind (http)",
		"fulfill_orders.connectors[1].secrets: Standard Webhooks secrets must be whsec_",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in:\n%v", want, err)
		}
	}
	// A partner needs its registered addresses; a Basic key is not short;
	// a standard secret is whsec_.
	noAddr := strings.Replace(commerceBase, `    allow_ips: ["127.0.0.1"]
`, `    partner: {auth: basic}
`, 1)
	_, err = ParseConfig([]byte(noAddr), env(map[string]string{"PARTNER": "short"}))
	for _, want := range []string{"sources[0].allow_ips: required for a partner", "sources[0].secrets[0]: an HTTP Basic key needs at least 16"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in %v", want, err)
		}
	}
	_, err = ParseConfig([]byte(commerceBase), env(map[string]string{"PARTNER": "not-a-whsec-secret"}))
	if err == nil || !strings.Contains(err.Error(), "sources[0].secrets: Standard Webhooks secrets must be whsec_") || strings.Contains(err.Error(), "not-a-whsec") {
		t.Errorf("standard partner with a non-whsec secret: %v", err)
	}
}

func TestSignJWT(t *testing.T) {
	var out bytes.Buffer
	key := "demo-player-token-key-DO-NOT-USE-0123"
	if err := run(context.Background(), []string{"sign", "jwt", "--secret", key, "--sub", "player-1", "--ttl", "5m"}, strings.NewReader(""), &out, &out); err != nil {
		t.Fatal(err)
	}
	v, _ := signing.NewJWT([][]byte{[]byte(key)}, signing.JWTConfig{})
	c, err := v.Verify(strings.TrimSpace(out.String()))
	if err != nil || c.Subject != "player-1" || c.ExpiresAt-c.IssuedAt != 300 {
		t.Fatalf("token %q: claims %+v, %v", out.String(), c, err)
	}
	if err := run(context.Background(), []string{"sign", "jwt", "--secret", key}, strings.NewReader(""), &out, &out); err == nil {
		t.Fatal("sign jwt without --sub: no error")
	}
}

// testGateway builds a gateway from YAML config text over a fresh SQLite
// file, closed when the test ends. No dispatcher runs (NewGateway starts
// none) and nothing listens: requests go through g.App.Test.
func testGateway(t *testing.T, yaml string, vars map[string]string) *Gateway {
	t.Helper()
	cfg, err := ParseConfig([]byte(yaml), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.DSN = "sqlite:" + filepath.Join(t.TempDir(), "s.db")
	g, err := NewGateway(context.Background(), cfg, Options{Log: newLogger(io.Discard, "error")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// The wiring from config to routes, with the real HTTP connector against a
// studio endpoint that checks storegate's signature.
func TestGateway_CommerceWiring(t *testing.T) {
	const connectorSecret = "whsec_Y29ubmVjdG9yLXNlY3JldC0wMTIzNDU2Nzg5"
	verifier, _ := signing.NewStandard([]string{connectorSecret}, signing.StandardConfig{})
	var asked struct {
		PlayerID string     `json:"player_id"`
		Platform string     `json:"platform"`
		Since    *time.Time `json:"since"`
	}
	studio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifier.Verify(r.Header.Get, body); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		json.Unmarshal(body, &asked)
		io.WriteString(w, `{"orders":[{"type":"purchase","platform":"epic","player_id":"player-1","order":{"entitlement_id":"E1"},"items":[{"product_id":"epic-crystals-100","quantity":1}]}]}`)
	}))
	defer studio.Close()
	yaml := strings.Replace(commerceBase, "targets:", `fulfill_orders:
  source: studio
  token_keys: ["player-token-key-0123456789abcdef0123"]
  wait: 0s
  connectors:
    - {platform: epic, url: "`+studio.URL+`/orders", secrets: ["`+connectorSecret+`"]}
targets:`, 1)
	yaml = strings.Replace(yaml, `allow_ips: ["127.0.0.1"]`, `allow_ips: ["0.0.0.0"]`, 1) // app.Test's peer
	g := testGateway(t, yaml, map[string]string{"PARTNER": "whsec_cGFydG5lci1zdGFuZGFyZC1zZWNyZXQtMDEyMzQ1"})

	tok, _ := signing.SignJWT([]byte("player-token-key-0123456789abcdef0123"), signing.Claims{Subject: "player-1", ExpiresAt: time.Now().Add(time.Hour).Unix()})
	req := httptest.NewRequest(http.MethodPost, "/v1/players/player-1/fulfill-orders", strings.NewReader(`{"platform":"epic"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := g.App.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `"transaction_id":"epic.studio.E1"`) {
		t.Fatalf("fulfill-orders: %d %s", resp.StatusCode, raw)
	}
	if asked.PlayerID != "player-1" || asked.Platform != "epic" || asked.Since != nil {
		t.Fatalf("the connector was asked %+v", asked)
	}

	// The partner source authenticates with Standard Webhooks by default.
	body := `{"user":{"id":"player-1","email":"player-1@example.org"}}`
	headers, _ := signing.StandardHeaders([]string{"whsec_cGFydG5lci1zdGFuZGFyZC1zZWNyZXQtMDEyMzQ1"}, "msg_1", time.Now().Unix(), []byte(body))
	req = httptest.NewRequest(http.MethodPost, "/partners/bank/users/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if resp, err := g.App.Test(req, -1); err != nil || resp.StatusCode != 200 {
		t.Fatalf("partner users/token: %v %v", resp.StatusCode, err)
	}
}

func TestParseConfig_PartnerTaxesAndBonusesReachThePricing(t *testing.T) {
	withTaxes := strings.Replace(commerceBase, `    allow_ips: ["127.0.0.1"]
`, `    allow_ips: ["127.0.0.1"]
    partner:
      taxes: {countries: {DE: 19, US: 8.875}, currencies: {USD: 5}}
      bonuses: [{sku: crystals_100, with_sku: crystals_100}]
`, 1)
	cfg, err := ParseConfig([]byte(withTaxes), env(map[string]string{"PARTNER": "whsec_cGFydG5lci1zdGFuZGFyZC1zZWNyZXQtMDEyMzQ1"}))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Sources[0].Partner.pricing()
	if p.Taxes.Countries["DE"] != 190_000 || p.Taxes.Countries["US"] != 88_750 || p.Taxes.Currencies["USD"] != 50_000 {
		t.Errorf("taxes = %+v, want DE 19%%, US 8.875%%, USD 5%% in millionths", p.Taxes)
	}
	if len(p.Bonuses) != 1 || p.Bonuses[0].Quantity != 1 || p.Bonuses[0].WithSKU != "crystals_100" {
		t.Errorf("bonuses = %+v, want one of quantity 1 (the default) with crystals_100", p.Bonuses)
	}
}
