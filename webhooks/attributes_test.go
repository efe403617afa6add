package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"storegate/internal/gatewaytest"
	"storegate/webhooks"
)

// describer is a target that describes players as a studio might.
type describer struct {
	attrs map[string]json.RawMessage
	err   error
}

func (d describer) UserAttributes(context.Context, string) (map[string]json.RawMessage, error) {
	return d.attrs, d.err
}

func withAttributes(a webhooks.Attributes) gatewaytest.Option {
	return func(c *gatewaytest.Config) { c.WebhooksDeps.Attributes = map[string]webhooks.Attributes{"ledger": a} }
}

// counter sums a counter family over its labels.
func counter(t *testing.T, g *gatewaytest.Gateway, name string) float64 {
	t.Helper()
	fams, err := g.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

const validation = `{"notification_type":"user_validation","user":{"id":"player-1"}}`

func validate(t *testing.T, g *gatewaytest.Gateway) (int, string) {
	t.Helper()
	resp := g.Post(t, "xs", validation)
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// Digital Distribution Hub's own example answer has "is_baned": false,
// which its schema refuses. The player still gets the yes, with every
// attribute that fits.
func TestUserValidation_AnAttributeNeverCostsThePlayer(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, tc := range []struct {
		name    string
		target  describer
		status  int
		body    string
		dropped float64
	}{
		{"Digital Distribution Hub's example", describer{attrs: map[string]json.RawMessage{"age": raw("18"), "level": raw("1"), "game": raw(`"WoW"`),
			"is_baned": raw("false"), "registration_date": raw(`"2022-01-01"`)}},
			200, `{"user_attributes":{"age":18,"game":"WoW","level":1,"registration_date":"2022-01-01"}}`, 1},
		{"nothing fits", describer{attrs: map[string]json.RawMessage{"bad name": raw("1"), "empty": raw(`""`), "obj": raw(`{}`)}},
			204, "", 3},
		{"the target cannot say", describer{err: errors.New("studio down")}, 204, "", 0},
		{"none", describer{}, 204, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), withAttributes(tc.target), gatewaytest.WithLog(&log))
			for range 2 {
				if status, body := validate(t, g); status != tc.status || body != tc.body {
					t.Fatalf("answer = %d %s, want %d %s", status, body, tc.status, tc.body)
				}
			}
			if got := counter(t, g, "storegate_user_attributes_dropped_total"); got != 2*tc.dropped {
				t.Errorf("dropped counted = %v, want %v (each answer)", got, 2*tc.dropped)
			}
			if got := strings.Count(log.String(), "user attribute dropped"); got != int(tc.dropped) {
				t.Errorf("drops logged %d times, want %v (once per attribute)", got, tc.dropped)
			}
			if strings.Contains(log.String(), "WoW") {
				t.Error("an attribute's value is in the log")
			}
		})
	}
}

// The embedded ledger answers with the attributes support set through the
// admin API; the admin API refuses what Xsolla would.
func TestUserValidation_TheLedgerAnswersWithAttributes(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), func(c *gatewaytest.Config) {
		c.WebhooksDeps.Attributes = map[string]webhooks.Attributes{"ledger": c.Ledger}
	})
	put := func(body string) (int, map[string]any) {
		return g.Call(t, http.MethodPut, "/admin/v1/players/player-1/attributes", gatewaytest.AdminToken, "", body)
	}
	if status, _ := validate(t, g); status != 204 {
		t.Fatalf("before any attribute: %d, want 204", status)
	}
	if status, ans := put(`{"attributes":{"is_baned":false}}`); status != 400 || gatewaytest.ErrCode(ans) != "INVALID_PARAMETER" {
		t.Fatalf("a boolean attribute: %d %v, want 400", status, ans)
	}
	if status, ans := put(`{"attributes":{"level":12,"tags":["vip","eu"],"guild":"owls"}}`); status != 200 {
		t.Fatalf("set: %d %v", status, ans)
	}
	if status, body := validate(t, g); status != 200 || body != `{"user_attributes":{"guild":"owls","level":12,"tags":["vip","eu"]}}` {
		t.Fatalf("answer = %d %s, want 200 with the attributes set", status, body)
	}
	if status, ans := g.Call(t, http.MethodGet, "/admin/v1/players/player-1/attributes", gatewaytest.AdminToken, "", ""); status != 200 ||
		ans["attributes"].(map[string]any)["guild"] != "owls" {
		t.Fatalf("get: %d %v", status, ans)
	}
	if status, _ := put(`{"attributes":{}}`); status != 200 {
		t.Fatalf("clear: %d", status)
	}
	if status, _ := validate(t, g); status != 204 {
		t.Fatalf("after clearing: %d, want 204", status)
	}
}

// get_pincode without a target that hands out keys is the operator's
// problem to fix, not the player's: 503, so Xsolla asks again later.
func TestGetPinCode_WithoutAKeyTarget(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")))
	before := g.Everything(t)
	resp := g.Post(t, "xs", `{"notification_type":"get_pincode","user":{"id":"player-1"},"pin_code":{"digital_content":"game","DRM":"steam"}}`)
	if e := gatewaytest.ReadError(t, resp); resp.StatusCode != 503 || e.Error.Code != "SERVICE_UNAVAILABLE" {
		t.Fatalf("answer = %d %+v, want 503", resp.StatusCode, e.Error)
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
}

// A get_pincode that names its transaction is answered with the same key
// however often it comes.
func TestGetPinCode_ATransactionGetsOneKey(t *testing.T) {
	k := &keys{}
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), withKeys(k))
	var first string
	for i, id := range []string{`42`, `"42"`, `42`} {
		resp := g.Post(t, "xs", `{"notification_type":"get_pincode","user":{"id":"player-1"},"transaction":{"id":`+id+`},"pin_code":{"digital_content":"game","DRM":"steam"}}`)
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || (i > 0 && string(raw) != first) {
			t.Fatalf("answer %d = %d %s, want 200 %s", i, resp.StatusCode, raw, first)
		}
		first = string(raw)
	}
	if len(k.asks) != 1 {
		t.Errorf("requests asked of the target: %v, want one request id", k.asks)
	}
}
