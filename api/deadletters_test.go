package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/api"
	"storegate/internal/gatewaytest"
	"storegate/store"
)

func deadLetter(t *testing.T, g *gatewaytest.Gateway, order int, player string) string {
	return g.DeadLetter(t, order, player)
}

func admin(t *testing.T, g *gatewaytest.Gateway, method, path, body string) (int, map[string]any) {
	t.Helper()
	return g.Call(t, method, path, gatewaytest.AdminToken, "", body)
}

func listed(page map[string]any) []string {
	out := []string{}
	for _, d := range page["deadletters"].([]any) {
		out = append(out, d.(map[string]any)["id"].(string))
	}
	return out
}

// Support finds the dead letter, reads why it died, replays it once the
// cause is fixed, and the grant takes effect.
func TestDeadLetters_ListInspectReplay(t *testing.T) {
	g := gatewaytest.New(t)
	id := deadLetter(t, g, 1, "player-1")
	g.Clock.Advance(time.Minute)
	other := deadLetter(t, g, 2, "player-2")

	status, page := admin(t, g, http.MethodGet, "/admin/v1/deadletters", "")
	if status != 200 || !reflect.DeepEqual(listed(page), []string{other, id}) {
		t.Fatalf("list = %d %v, want both, most recent first", status, page)
	}
	_, page = admin(t, g, http.MethodGet, "/admin/v1/deadletters?player_id=player-1&target=ledger&kind=fulfill&source=xs", "")
	if got := listed(page); !reflect.DeepEqual(got, []string{id}) {
		t.Errorf("filtered list = %v, want [%s]", got, id)
	}
	// Receipts are a kind of their own: none of these grants is one.
	if status, page = admin(t, g, http.MethodGet, "/admin/v1/deadletters?kind=receipt", ""); status != 200 || len(listed(page)) != 0 {
		t.Errorf("receipts = %d %v, want 200 and none", status, page)
	}
	_, page = admin(t, g, http.MethodGet, "/admin/v1/deadletters?until="+gatewaytest.Start.Add(30*time.Second).Format(time.RFC3339), "")
	if got := listed(page); !reflect.DeepEqual(got, []string{id}) {
		t.Errorf("list until +30s = %v, want [%s]", got, id)
	}

	status, d := admin(t, g, http.MethodGet, "/admin/v1/deadletters/"+id, "")
	if status != 200 {
		t.Fatalf("inspect: %d %v", status, d)
	}
	history := d["history"].([]any)
	if len(history) != 1 || history[0].(map[string]any)["code"] != "30343" || history[0].(map[string]any)["http_status"] != 404.0 {
		t.Errorf("history = %v, want the 404 30343 attempt", history)
	}
	if ev := d["event"].(map[string]any); ev["type"] != "order_paid" || ev["body"].(map[string]any)["notification_type"] != "order_paid" {
		t.Errorf("event = %v, want the order_paid as received", ev)
	}

	status, ans := admin(t, g, http.MethodPost, "/admin/v1/deadletters/"+id+"/replay", `{"by":"alice"}`)
	if status != 200 || ans["count"] != 1.0 {
		t.Fatalf("replay: %d %v", status, ans)
	}
	g.Drain(t)
	if got, want := g.Balance(t, "player-1", "CRYSTALS"), int64(100); got != want {
		t.Errorf("balance after replay = %d, want %d", got, want)
	}
	_, d = admin(t, g, http.MethodGet, "/admin/v1/deadletters/"+id, "")
	if d["state"] != "done" || d["replays"] != 1.0 || d["actions"].([]any)[0].(map[string]any)["actor"] != "alice" {
		t.Errorf("after replay: state %v, replays %v, actions %v", d["state"], d["replays"], d["actions"])
	}
	// Replaying it again: it is not dead any more.
	if status, ans := admin(t, g, http.MethodPost, "/admin/v1/deadletters/"+id+"/replay", `{"by":"alice"}`); status != 409 || ans["error"].(map[string]any)["code"] != "CONFLICT" {
		t.Errorf("second replay = %d %v, want 409 CONFLICT", status, ans)
	}
}

func TestDeadLetters_ReplayManyAndDiscard(t *testing.T) {
	g := gatewaytest.New(t)
	a := deadLetter(t, g, 1, "player-1")
	g.Clock.Advance(time.Hour)
	b := deadLetter(t, g, 2, "player-1")
	g.Clock.Advance(time.Hour)
	c := deadLetter(t, g, 3, "player-2")

	// An empty filter replays nothing: all must be said.
	status, ans := admin(t, g, http.MethodPost, "/admin/v1/deadletters/replay", `{"by":"bob"}`)
	if status != 400 || ans["error"].(map[string]any)["fields"].([]any)[0] != "all" {
		t.Errorf("empty replay = %d %v, want 400 naming all", status, ans)
	}
	since := gatewaytest.Start.Add(30 * time.Minute).Format(time.RFC3339)
	until := gatewaytest.Start.Add(90 * time.Minute).Format(time.RFC3339)
	status, ans = admin(t, g, http.MethodPost, "/admin/v1/deadletters/replay", `{"by":"bob","since":"`+since+`","until":"`+until+`"}`)
	if status != 200 || !reflect.DeepEqual(ans["replayed"], []any{b}) || ans["more"] != false {
		t.Errorf("replay by time range = %d %v, want [%s]", status, ans, b)
	}
	status, ans = admin(t, g, http.MethodPost, "/admin/v1/deadletters/"+a+"/discard", `{"by":"carol","reason":"refunded by hand"}`)
	if status != 200 || ans["discarded"] != a {
		t.Errorf("discard = %d %v", status, ans)
	}
	status, ans = admin(t, g, http.MethodPost, "/admin/v1/deadletters/replay", `{"by":"bob","all":true}`)
	if status != 200 || !reflect.DeepEqual(ans["replayed"], []any{c}) {
		t.Errorf("replay all = %d %v, want only [%s] (a is discarded)", status, ans, c)
	}
	_, page := admin(t, g, http.MethodGet, "/admin/v1/deadletters?state=discarded", "")
	if got := listed(page); !reflect.DeepEqual(got, []string{a}) {
		t.Errorf("discarded = %v, want [%s]", got, a)
	}
	g.Drain(t)
	if got, want := g.Balance(t, "player-1", "CRYSTALS"), int64(100); got != want {
		t.Errorf("player-1 balance = %d, want %d (b replayed, a discarded)", got, want)
	}
	// A discarded command comes back only when asked for by name and state.
	if status, _ := admin(t, g, http.MethodPost, "/admin/v1/deadletters/"+a+"/replay", `{"by":"dave"}`); status != 409 {
		t.Errorf("replay of a discarded command without state = %d, want 409", status)
	}
	status, ans = admin(t, g, http.MethodPost, "/admin/v1/deadletters/"+a+"/replay", `{"by":"dave","state":"discarded"}`)
	if status != 200 || !reflect.DeepEqual(ans["replayed"], []any{a}) {
		t.Errorf("replay of the discarded command = %d %v, want [%s]", status, ans, a)
	}
	if status, _ := admin(t, g, http.MethodPost, "/admin/v1/deadletters/"+a+"/replay", `{"by":"dave","state":"pending"}`); status != 400 {
		t.Errorf("replay with state pending = %d, want 400", status)
	}
}

// Bad requests get a clear error naming the field, and change nothing.
func TestDeadLetters_BadInput(t *testing.T) {
	g := gatewaytest.New(t)
	id := deadLetter(t, g, 1, "player-1")
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		field                    string
	}{
		{"bad state", "GET", "/admin/v1/deadletters?state=done", "", 400, "INVALID_PARAMETER", "state"},
		{"bad kind", "GET", "/admin/v1/deadletters?kind=grant", "", 400, "INVALID_PARAMETER", "kind"},
		{"bad since", "GET", "/admin/v1/deadletters?since=yesterday", "", 400, "INVALID_PARAMETER", "since"},
		{"bad limit", "GET", "/admin/v1/deadletters?limit=0", "", 400, "INVALID_PARAMETER", "limit"},
		{"bad cursor", "GET", "/admin/v1/deadletters?cursor=nope", "", 400, "INVALID_PARAMETER", "cursor"},
		{"unknown id", "GET", "/admin/v1/deadletters/ghost", "", 404, "NOT_FOUND", ""},
		{"replay without by", "POST", "/admin/v1/deadletters/" + id + "/replay", `{}`, 400, "INVALID_PARAMETER", "by"},
		{"replay with an unknown field", "POST", "/admin/v1/deadletters/" + id + "/replay", `{"by":"x","force":true}`, 400, "INVALID_PARAMETER", "force"},
		{"replay not JSON", "POST", "/admin/v1/deadletters/" + id + "/replay", `by=x`, 400, "INVALID_PARAMETER", ""},
		{"replay unknown id", "POST", "/admin/v1/deadletters/ghost/replay", `{"by":"x"}`, 404, "NOT_FOUND", ""},
		{"replay many, bad until", "POST", "/admin/v1/deadletters/replay", `{"by":"x","until":"soon"}`, 400, "INVALID_PARAMETER", "until"},
		{"replay many, limit too high", "POST", "/admin/v1/deadletters/replay", `{"by":"x","all":true,"limit":100000}`, 400, "INVALID_PARAMETER", "limit"},
		{"discard without a reason", "POST", "/admin/v1/deadletters/" + id + "/discard", `{"by":"x"}`, 400, "INVALID_PARAMETER", "reason"},
		{"discard without by", "POST", "/admin/v1/deadletters/" + id + "/discard", `{"reason":"r"}`, 400, "INVALID_PARAMETER", "by"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, ans := admin(t, g, tc.method, tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status = %d, want %d (%v)", status, tc.status, ans)
			}
			e := ans["error"].(map[string]any)
			if e["code"] != tc.code {
				t.Errorf("code = %v, want %s", e["code"], tc.code)
			}
			if tc.field != "" && (e["fields"] == nil || e["fields"].([]any)[0] != tc.field) {
				t.Errorf("fields = %v, want %s", e["fields"], tc.field)
			}
		})
	}
	d, err := g.DB.DeadLetter(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != storegate.StateDead || len(d.Actions) != 0 {
		t.Errorf("after bad requests: %s with actions %v, want dead and untouched", d.State, d.Actions)
	}
}

func TestDeadLetters_NeedBearerToken(t *testing.T) {
	g := gatewaytest.New(t)
	for _, r := range []struct{ method, path string }{
		{"GET", "/admin/v1/deadletters"}, {"GET", "/admin/v1/deadletters/x"}, {"POST", "/admin/v1/deadletters/replay"},
		{"POST", "/admin/v1/deadletters/x/replay"}, {"POST", "/admin/v1/deadletters/x/discard"},
	} {
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(`{"by":"x","all":true,"reason":"r"}`))
		req.Header.Set("Authorization", "Bearer wrong-token-0123456789")
		if resp := g.Do(t, req); resp.StatusCode != 401 {
			t.Errorf("%s %s with a wrong token: %d, want 401", r.method, r.path, resp.StatusCode)
		}
	}
}

// discarder answers every discard with err.
type discarder struct{ err error }

func (d discarder) Discard(context.Context, string, string, string) error { return d.err }

// A grant paid from the player's wallet is never discarded: support is
// told to replay it, and why, as a conflict.
func TestDiscardDeadLetter_APaidGrantIsAConflict(t *testing.T) {
	paid := fmt.Errorf("%w: partner.pa.order.9 was paid with 450 CRYSTALS from the player's wallet", store.ErrPaidGrant)
	err := api.DiscardDeadLetter(context.Background(), discarder{paid}, "partner.pa.order.9", "no longer sold", "carol")
	var e *storegate.Error
	if !errors.As(err, &e) || e.Code != storegate.CodeConflict {
		t.Fatalf("err = %v, want a conflict", err)
	}
	want := "partner.pa.order.9 was paid with 450 CRYSTALS from the player's wallet: replay it once its cause is fixed; discarding it would keep the payment without the grant"
	if e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
}
