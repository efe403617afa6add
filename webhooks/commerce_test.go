package webhooks_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/adapters/connectors"
	"storegate/mapping"
	"storegate/signing"
	"storegate/webhooks"
)

// The harness for the partner, store-proxy and Fulfill Orders routes: the
// same real gateway as the Xsolla tests (SQLite, ledger, dispatcher), with a
// catalog that has prices and platform products.

const (
	partnerKey    = "test-partner-key-0123456789"
	partnerSecret = "whsec_cGFydG5lci1zdGFuZGFyZC1zZWNyZXQtMDEyMzQ1"
	storesSecret  = "whsec_c3RvcmVzLXN0YW5kYXJkLXNlY3JldC0wMTIzNDU2"
	playerKey     = "test-player-token-key-0123456789abcdef"
)

var commerceCatalog = []mapping.SKU{
	{SKU: "crystals_100", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100, Name: "100 Crystals",
		Prices:   map[string]int64{"USD": 199, "EUR": 189},
		Products: map[string]string{"steam": "1001", "epic": "epic-crystals-100", "xbox": "9NCRYSTALS100", "playstation": "PS-CRYSTALS-100", "twitch": "drop-crystals-100"}},
	{SKU: "starter_sword", Type: storegate.ItemDurable, Name: "Starter Sword", Prices: map[string]int64{"USD": 499},
		Products: map[string]string{"steam": "2001", "epic": "epic-sword"}},
	{SKU: "potion", Type: storegate.ItemConsumable, UseCount: 3},
}

func withCommerce() option {
	return func(_ *webhooks.Config, d *webhooks.Deps) {
		cat, err := mapping.NewCatalog(commerceCatalog)
		if err != nil {
			panic(err)
		}
		d.Catalog = cat
		d.Orders = d.Ready.(webhooks.Orders)
	}
}

// thisMachine is app.Test's peer address: the partner's registered server.
var thisMachine = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}

// withPartner adds partner "bank" authenticating with auth ("basic" or
// "standard"), registered at app.Test's address.
func withPartner(auth string, edit ...func(*webhooks.PartnerSource)) option {
	return func(c *webhooks.Config, d *webhooks.Deps) {
		src := webhooks.PartnerSource{Name: "bank", Target: "ledger", AllowIPs: thisMachine,
			TokenKeys: [][]byte{webhooks.PartnerTokenKey(partnerKey)}}
		if auth == "standard" {
			v, err := signing.NewStandard([]string{partnerSecret}, signing.StandardConfig{Now: c.Now})
			if err != nil {
				panic(err)
			}
			src.Verifier = v
		} else {
			src.BasicKeys = []string{partnerKey}
		}
		for _, e := range edit {
			e(&src)
		}
		d.Partners = append(d.Partners, src)
		d.Orders = d.Ready.(webhooks.Orders)
	}
}

// withStores adds store-proxy source "studio".
func withStores() option {
	return func(c *webhooks.Config, d *webhooks.Deps) {
		v, err := signing.NewStandard([]string{storesSecret}, signing.StandardConfig{Now: c.Now})
		if err != nil {
			panic(err)
		}
		d.Stores = append(d.Stores, webhooks.StoresSource{Name: "studio", Target: "ledger", Verifier: v})
		d.Orders = d.Ready.(webhooks.Orders)
	}
}

// withFulfill turns Fulfill Orders on with a simulated platform per
// connector, sharing the "studio" source's ids.
func withFulfill(sims map[string]*connectors.Simulator) option {
	return func(c *webhooks.Config, d *webhooks.Deps) {
		tokens, err := signing.NewJWT([][]byte{[]byte(playerKey)}, signing.JWTConfig{Now: c.Now})
		if err != nil {
			panic(err)
		}
		f := &webhooks.FulfillOrders{Source: "studio", Target: "ledger", Tokens: tokens, Connectors: map[string]webhooks.OrderConnector{}}
		for platform, sim := range sims {
			f.Connectors[platform] = sim
		}
		d.FulfillOrders = f
		d.Orders = d.Ready.(webhooks.Orders)
	}
}

// exchange sends a request and decodes a JSON answer into out (when not nil).
func (g *gateway) exchange(t testing.TB, req *http.Request, out any) int {
	t.Helper()
	resp := g.do(t, req)
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", req.Method, req.URL.Path, raw, err)
		}
	}
	return resp.StatusCode
}

func jsonRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// basic authenticates a partner request with HTTP Basic.
func basic(req *http.Request, user, key string) *http.Request {
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+key)))
	return req
}

var msgSeq int

// standard signs a request with Standard Webhooks at the clock's now.
func (g *gateway) standard(t testing.TB, req *http.Request, secret, body string) *http.Request {
	t.Helper()
	msgSeq++
	headers, err := signing.StandardHeaders([]string{secret}, fmt.Sprint("msg_", msgSeq), g.clock.Now().Unix(), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}

// partner sends a request to partner "bank" with HTTP Basic.
func (g *gateway) partner(t testing.TB, method, path, body string, out any) int {
	t.Helper()
	return g.exchange(t, basic(jsonRequest(method, "/partners/bank"+path, body), "bank", partnerKey), out)
}

// storeEvent posts a signed store event to source "studio".
func (g *gateway) storeEvent(t testing.TB, body string, out any) int {
	t.Helper()
	return g.exchange(t, g.standard(t, jsonRequest(http.MethodPost, "/stores/studio/events", body), storesSecret, body), out)
}

// everything counts every row any request can leave behind, the new
// tables included.
func (g *gateway) everything(t testing.TB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"inbox", "outbox", "links", "ledger_entries", "ledger_entitlements", "ledger_transactions",
		"orders", "partner_orders", "fulfill_cursors"} {
		var n int
		if err := g.db.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

func sameRows(t testing.TB, before, after map[string]int) {
	t.Helper()
	for table, n := range after {
		if before[table] != n {
			t.Fatalf("%s: %d rows, want %d as before the request", table, n, before[table])
		}
	}
}

// spend takes currency out of a player's balance on one platform, standing
// in for a game-server spend: a revoke that reverses nothing and names its
// lines is a plain debit in the embedded ledger.
func (g *gateway) spend(t testing.TB, player string, platform storegate.Platform, currency string, amount int64) {
	t.Helper()
	_, err := g.ledger.Revoke(context.Background(), storegate.Command{ID: fmt.Sprint("spend.", player, ".", time.Now().UnixNano()),
		Kind: storegate.KindRevoke, PlayerID: player, Platform: platform, Reason: "spend",
		Lines: []storegate.Line{{SKU: "spend", Quantity: 1, Grants: []storegate.Grant{{Currency: currency, Amount: amount}}}}})
	if err != nil {
		t.Fatal(err)
	}
}

func (g *gateway) platformBalance(t testing.TB, player, currency string, platform storegate.Platform) int64 {
	t.Helper()
	ws, err := g.ledger.Wallets(context.Background(), player)
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

// order is one tracked order as the admin route answers it.
type order struct {
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

// orders reads a player's orders through the admin route.
func (g *gateway) orders(t testing.TB, player string) map[string]order {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/admin/v1/players/"+player+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	var ans struct {
		Orders []order `json:"orders"`
	}
	if s := g.exchange(t, req, &ans); s != 200 {
		t.Fatalf("orders: status %d", s)
	}
	out := map[string]order{}
	for _, o := range ans.Orders {
		out[o.ID] = o
	}
	return out
}

// steps is an order's history as "status/event" strings.
func (o order) steps() []string {
	var out []string
	for _, h := range o.History {
		out = append(out, h.Status+"/"+h.Event)
	}
	return out
}
