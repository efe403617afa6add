package webhooks_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"storegate"
	"storegate/internal/gatewaytest"
	"storegate/webhooks"
)

// keys is a target that hands out game keys: one per request id.
type keys struct {
	mu   sync.Mutex
	asks map[string]int
}

func (k *keys) PinCode(_ context.Context, r storegate.PinCodeRequest) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.asks == nil {
		k.asks = map[string]int{}
	}
	k.asks[r.RequestID]++
	sum := sha256.Sum256([]byte(r.RequestID))
	return "KEY-" + hex.EncodeToString(sum[:4]), nil
}

func withKeys(k *keys) gatewaytest.Option {
	return func(c *gatewaytest.Config) { c.WebhooksDeps.PinCodes = map[string]webhooks.PinCodes{"ledger": k} }
}

func corpus(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "xsolla", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// TestCorpus_EveryXsollaTypeInEveryIDForm posts one body of every type in
// Xsolla's published list, with its ids as numbers and then as strings,
// and checks the answer Xsolla expects, what was stored, and that the
// order the two forms describe was granted and revoked once.
func TestCorpus_EveryXsollaTypeInEveryIDForm(t *testing.T) {
	k := &keys{}
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), withKeys(k), gatewaytest.WithOrders)
	const (
		none   = iota // a question: nothing stored
		one           // stored once: the second form is a repeat of the first
		each          // stored each time: the event is its body
		linked        // the link table, once
	)
	for _, tc := range []struct {
		typ    string
		status int
		body   string // a substring of the answer; "" for none
		stores int
	}{
		{"user_validation", 204, "", none},
		{"user_search", 200, `{"user":{"id":"player-1","public_id":"player-1"}}`, none},
		{"create_external_transaction", 200, `{"id":"xsolla.xs.order.4100123"}`, linked},
		{"partner_side_catalog", 200, `[{"quantity":null,"sku":"crystals_100"},{"quantity":null,"sku":"potion"},{"quantity":null,"sku":"starter_sword"}]`, none},
		{"get_pincode", 200, `{"pin_code":"KEY-`, each},
		{"payment", 204, "", one},
		{"order_paid", 204, "", one},
		{"partial_refund", 204, "", one},
		{"afs_reject", 204, "", one},
		{"ps_declined", 204, "", each},
		{"user_balance_operation", 204, "", each},
		{"afs_black_list", 204, "", each},
		{"create_subscription", 204, "", each},
		{"update_subscription", 204, "", each},
		{"non_renewal_subscription", 204, "", each},
		{"cancel_subscription", 204, "", each},
		{"payment_account_add", 204, "", each},
		{"payment_account_remove", 204, "", each},
		{"redeem_key", 204, "", each},
		{"refund", 204, "", one},
		{"order_canceled", 204, "", one},
	} {
		for _, form := range []string{"int", "str"} {
			name := tc.typ + "." + form + ".json"
			if _, err := os.Stat(filepath.Join("testdata", "xsolla", name)); err != nil {
				continue // linking's document types its ids one way only
			}
			t.Run(name, func(t *testing.T) {
				before := g.Everything(t)
				resp := g.Post(t, "xs", corpus(t, name))
				raw, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tc.status || !strings.Contains(string(raw), tc.body) || tc.body == "" && len(raw) > 0 {
					t.Fatalf("answer = %d %s, want %d %s", resp.StatusCode, raw, tc.status, tc.body)
				}
				after := g.Everything(t)
				want := 0
				switch {
				case tc.stores == each, tc.stores == one && form == "int":
					want = 1
				}
				if got := after["inbox"] - before["inbox"]; got != want {
					t.Errorf("inbox rows added = %d, want %d", got, want)
				}
				if tc.stores == linked && after["links"] != 1 {
					t.Errorf("links = %d, want 1", after["links"])
				}
			})
		}
		switch tc.typ {
		case "order_paid":
			g.Drain(t)
			if got := g.Balance(t, "player-1", "CRYSTALS"); got != 200 {
				t.Errorf("after order_paid in both forms: %d crystals, want 200 (granted once)", got)
			}
		case "partial_refund":
			g.Drain(t)
			if got, items := g.Balance(t, "player-1", "CRYSTALS"), g.Items(t, "player-1"); got != 200 || len(items) != 0 {
				t.Errorf("after partial_refund of the sword in both forms: %d crystals and %v, want 200 and no sword", got, items)
			}
		case "order_canceled":
			g.Drain(t)
			if got, items := g.Balance(t, "player-1", "CRYSTALS"), g.Items(t, "player-1"); got != 0 || len(items) != 0 {
				t.Errorf("after order_canceled in both forms: %d crystals and %v, want none (revoked once)", got, items)
			}
		}
	}
	if len(k.asks) != 2 {
		t.Errorf("pin codes asked for %d requests, want 2 (get_pincode names no transaction: each request is its own)", len(k.asks))
	}
	// Acknowledged types are in the player's order tracking, each under an
	// order of its own.
	acknowledged := 0
	for _, o := range g.Orders(t, "player-1") {
		if o.Status == string(storegate.OrderAcknowledged) {
			acknowledged++
		}
	}
	if acknowledged < 16 {
		t.Errorf("acknowledged orders tracked = %d, want one per stored body that names player-1", acknowledged)
	}
}

// In payment mode (projects on separate webhooks that grant on payment),
// payment and refund carry the money; both forms grant and revoke once.
func TestCorpus_PaymentModeGrantsAndRevokesOnce(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "payment")))
	for _, step := range []struct {
		typ      string
		crystals int64
	}{{"payment", 2 * 100}, {"refund", 0}} {
		for _, form := range []string{"int", "str"} {
			if resp := g.Post(t, "xs", corpus(t, step.typ+"."+form+".json")); resp.StatusCode != 204 {
				t.Fatalf("%s.%s: %d, want 204", step.typ, form, resp.StatusCode)
			}
		}
		g.Drain(t)
		if got := g.Balance(t, "player-1", "CRYSTALS"); got != step.crystals {
			t.Errorf("after %s in both forms: %d crystals, want %d", step.typ, got, step.crystals)
		}
	}
}

// declared are the top-level keys each type's schema declares beyond
// notification_type and user (and that the corpus body carries).
var declared = map[string][]string{
	"payment": {"transaction", "purchase"}, "refund": {"transaction"}, "partial_refund": {"transaction", "purchase"},
	"afs_reject": {"transaction"}, "order_paid": {"items", "order"}, "order_canceled": {"items", "order"},
	"get_pincode": {"pin_code"}, "create_external_transaction": {"order_id", "items"},
}

func refused(t *testing.T, g *gatewaytest.Gateway, body, field string) {
	t.Helper()
	before := g.Everything(t)
	resp := g.Post(t, "xs", body)
	e := gatewaytest.ReadError(t, resp)
	if resp.StatusCode != 400 || e.Error.Code != "INVALID_PARAMETER" || len(e.Error.Fields) != 1 || e.Error.Fields[0] != field {
		t.Fatalf("answer = %d %+v, want 400 INVALID_PARAMETER naming %s", resp.StatusCode, e.Error, field)
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
}

// TestCorpus_CaseTwinsAndSmuggledKeys tries, on every Xsolla type, a key
// that Go's decoder would read as a declared one: refused with 400 naming
// it, and nothing stored or granted.
func TestCorpus_CaseTwinsAndSmuggledKeys(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "xsolla", "*.int.json"))
	if err != nil || len(files) < 20 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	k := &keys{}
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), withKeys(k))
	for _, f := range files {
		name := filepath.Base(f)
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(corpus(t, name)), &doc); err != nil {
			t.Fatal(err)
		}
		keys := append([]string{"notification_type"}, declared[strings.Split(name, ".")[0]]...)
		if _, ok := doc["user"]; ok {
			keys = append(keys, "user")
		}
		for _, key := range keys {
			v, ok := doc[key]
			if !ok {
				t.Fatalf("%s has no %s", name, key)
			}
			twin := strings.ToUpper(key[:1]) + key[1:]
			t.Run(name+"/"+twin, func(t *testing.T) {
				body := strings.TrimSuffix(corpus(t, name), "}") + `,"` + twin + `":` + string(v) + `}`
				refused(t, g, body, twin)
			})
		}
		var user map[string]json.RawMessage
		if json.Unmarshal(doc["user"], &user) != nil {
			continue
		}
		for _, key := range []string{"id", "external_id", "public_id"} {
			if v, ok := user[key]; ok {
				t.Run(name+"/user."+strings.ToUpper(key), func(t *testing.T) {
					body := strings.Replace(corpus(t, name), `"user":{`, `"user":{"`+strings.ToUpper(key)+`":`+string(v)+`,`, 1)
					refused(t, g, body, "user."+strings.ToUpper(key))
				})
				break
			}
		}
	}
	if len(k.asks) != 0 {
		t.Errorf("pin codes handed out for refused requests: %v", k.asks)
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 0 {
		t.Errorf("crystals granted by refused requests: %d", got)
	}
}
