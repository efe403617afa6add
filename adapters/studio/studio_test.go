package studio_test

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/adapters/studio"
	"storegate/adapters/studio/studiotest"
	"storegate/schemas"
)

const (
	oldSecret = "whsec_b2xkLXN0dWRpby1zZWNyZXQtMDEyMzQ1Njc4OQ=="
	newSecret = "whsec_bmV3LXN0dWRpby1zZWNyZXQtOTg3NjU0MzIxMA=="
)

var start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newFake(t *testing.T, secrets ...string) *studiotest.Server {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{newSecret}
	}
	f, err := studiotest.New(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if p := f.Problems(); len(p) > 0 {
			t.Errorf("the studio backend saw contract violations: %q", p)
		}
	})
	return f
}

func newTarget(t *testing.T, url string, secrets ...string) *studio.Target {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{newSecret}
	}
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	target, err := studio.New(studio.Config{URL: url, Secrets: secrets, Decode: set.Decode,
		Client: adapters.ClientConfig{Timeout: 200 * time.Millisecond, Attempts: 3, RetryWaitMin: 5 * time.Millisecond, RetryWaitMax: 1500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func fulfill(id string) storegate.Command {
	return storegate.Command{ID: id, Kind: storegate.KindFulfill, Source: "xs", Target: "studio", PlayerID: "player-1",
		Platform: storegate.PlatformXsolla, OrderRef: "order 7", CreatedAt: start,
		Lines: []storegate.Line{
			{SKU: "crystals_100", Quantity: 2, Type: storegate.ItemCurrency, Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 200}}},
			{SKU: "starter_pack", Quantity: 1, Type: storegate.ItemBundle, Bundle: true, Grants: []storegate.Grant{
				{Item: "starter_sword", Type: storegate.ItemDurable, Quantity: 1}, {Currency: "CRYSTALS", Amount: 200}}},
		}}
}

func revoke(id string) storegate.Command {
	return storegate.Command{ID: id + ".revoke", Kind: storegate.KindRevoke, Source: "xs", Target: "studio", PlayerID: "player-1",
		Platform: storegate.PlatformXsolla, Reverses: id, Reason: "order_canceled", CreatedAt: start}
}

// Every scripted failure ends with one effect, or a dead letter that keeps
// the studio's own error code and message.
func TestTarget_ScriptedFailures(t *testing.T) {
	tests := []struct {
		name         string
		faults       []studiotest.Fault
		reject       string
		wantVerdict  storegate.Verdict
		wantCode     string
		wantMessage  string
		wantRA       time.Duration
		wantRequests int
		wantEffects  int
	}{
		{name: "500s then success", faults: []studiotest.Fault{{Status: 500}, {Status: 503}},
			wantVerdict: storegate.VerdictDone, wantRequests: 1, wantEffects: 1},
		{name: "a timeout after the effect; the retry is a duplicate", faults: []studiotest.Fault{{Hang: time.Second}},
			wantVerdict: storegate.VerdictDone, wantRequests: 2, wantEffects: 1},
		{name: "a lost answer", faults: []studiotest.Fault{{Status: 502, AfterEffect: true}},
			wantVerdict: storegate.VerdictDone, wantRequests: 2, wantEffects: 1},
		{name: "429 with a short Retry-After", faults: []studiotest.Fault{{Status: 429, RetryAfter: "1"}},
			wantVerdict: storegate.VerdictDone, wantRequests: 1, wantEffects: 1},
		{name: "429 with a long Retry-After goes back to the dispatcher", faults: []studiotest.Fault{{Status: 429, RetryAfter: "300"}},
			wantVerdict: storegate.VerdictRetry, wantRA: 300 * time.Second},
		{name: "a permanent 400 is a dead letter with the studio's error", reject: "starter_pack",
			wantVerdict: storegate.VerdictDead, wantCode: "UNKNOWN_SKU", wantMessage: "studio backend answered 400: no item starter_pack in the game", wantRequests: 1},
		{name: "5xx past the in-call attempts is a retry", faults: []studiotest.Fault{{Status: 500}, {Status: 500}, {Status: 500}},
			wantVerdict: storegate.VerdictRetry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t)
			fake.Script(tc.faults...)
			if tc.reject != "" {
				fake.Reject(tc.reject, true)
			}
			out := newTarget(t, fake.URL).Deliver(context.Background(), fulfill("xs.order.7"))
			if out.Verdict != tc.wantVerdict {
				t.Errorf("outcome = %+v, want %q", out, tc.wantVerdict)
			}
			if tc.wantCode != "" && out.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", out.Code, tc.wantCode)
			}
			if !strings.Contains(out.Message, tc.wantMessage) {
				t.Errorf("message = %q, want %q", out.Message, tc.wantMessage)
			}
			if out.RetryAfter != tc.wantRA {
				t.Errorf("RetryAfter = %v, want %v", out.RetryAfter, tc.wantRA)
			}
			if got := fake.Requests()["xs.order.7"]; got != tc.wantRequests {
				t.Errorf("requests = %d, want %d", got, tc.wantRequests)
			}
			if got := fake.Effects()["xs.order.7"]; got != tc.wantEffects {
				t.Errorf("effects = %d, want %d", got, tc.wantEffects)
			}
		})
	}
}

// The body the studio gets: the published contract, verbatim ids.
func TestTarget_Request(t *testing.T) {
	fake := newFake(t)
	target := newTarget(t, fake.URL)
	if out := target.Deliver(context.Background(), fulfill("xs.order.7")); out.Verdict != storegate.VerdictDone {
		t.Fatalf("outcome = %+v", out)
	}
	var got map[string]any
	if err := json.Unmarshal(fake.Body("xs.order.7"), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "fulfill", "transaction_id": "xs.order.7", "player_id": "player-1", "platform": "Xsolla",
		"source": "xs", "order_ref": "order 7", "created_at": "2026-11-01T12:00:00Z",
		"lines": []any{
			map[string]any{"sku": "crystals_100", "quantity": 2.0, "type": "coin", "grants": []any{map[string]any{"currency": "CRYSTALS", "amount": 200.0}}},
			map[string]any{"sku": "starter_pack", "quantity": 1.0, "type": "bundle", "bundle": true, "grants": []any{
				map[string]any{"item": "starter_sword", "type": "durable", "quantity": 1.0}, map[string]any{"currency": "CRYSTALS", "amount": 200.0}}},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body = %v\nwant   %v", got, want)
	}
}

// A revoke before its fulfillment: 425, a deferred retry (never a breaker
// failure); after the grant it takes effect once.
func TestTarget_RevokeBeforeGrant(t *testing.T) {
	fake := newFake(t)
	target := newTarget(t, fake.URL)
	out := target.Deliver(context.Background(), revoke("xs.order.7"))
	if out.Verdict != storegate.VerdictRetry || !out.Deferred || out.Code != "NOT_GRANTED_YET" {
		t.Fatalf("revoke before grant = %+v, want a deferred NOT_GRANTED_YET", out)
	}
	if got := fake.Requests()["xs.order.7.revoke"]; got != 1 {
		t.Errorf("requests = %d, want 1: a deferred retry is not repeated in the call", got)
	}
	target.Deliver(context.Background(), fulfill("xs.order.7"))
	for range 2 {
		if out := target.Deliver(context.Background(), revoke("xs.order.7")); out.Verdict != storegate.VerdictDone {
			t.Fatalf("revoke = %+v, want done", out)
		}
	}
	if got, want := fake.Effects()["xs.order.7.revoke"], 1; got != want {
		t.Errorf("revoke effects = %d, want %d", got, want)
	}
}

// Rotation: the target signs with every configured secret, so a receiver
// that knows only the old one or only the new one accepts the call.
func TestTarget_SecretRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		receiver []string
		sender   []string
		want     storegate.Verdict
	}{
		{"receiver on the old secret", []string{oldSecret}, []string{oldSecret, newSecret}, storegate.VerdictDone},
		{"receiver on the new secret", []string{newSecret}, []string{oldSecret, newSecret}, storegate.VerdictDone},
		{"receiver on both, sender on the new", []string{oldSecret, newSecret}, []string{newSecret}, storegate.VerdictDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t, tc.receiver...)
			out := newTarget(t, fake.URL, tc.sender...).Deliver(context.Background(), fulfill("xs.order.7"))
			if out.Verdict != tc.want {
				t.Errorf("outcome = %+v, want %q", out, tc.want)
			}
		})
	}
}

// A receiver with another secret refuses the call: a dead letter (401),
// nothing applied.
func TestTarget_WrongSecret(t *testing.T) {
	fake, err := studiotest.New(oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	out := newTarget(t, fake.URL, newSecret).Deliver(context.Background(), fulfill("xs.order.7"))
	if out.Verdict != storegate.VerdictDead || out.HTTPStatus != 401 || out.Code != "INVALID_SIGNATURE" {
		t.Errorf("outcome = %+v, want a dead 401 INVALID_SIGNATURE", out)
	}
	if got := fake.Effects()["xs.order.7"]; got != 0 {
		t.Errorf("effects = %d, want 0", got)
	}
}

func TestTarget_Users(t *testing.T) {
	fake := newFake(t)
	fake.SetUser("player-1", map[string]any{"level": 12, "guild": "owls"})
	fake.SetUser("player-2", nil)
	target := newTarget(t, fake.URL)
	ctx := context.Background()
	for _, tc := range []struct {
		player string
		exists bool
		attrs  map[string]json.RawMessage
	}{
		{"player-1", true, map[string]json.RawMessage{"level": json.RawMessage(`12`), "guild": json.RawMessage(`"owls"`)}},
		{"player-2", true, nil},
		{"ghost", false, nil},
	} {
		exists, err := target.UserExists(ctx, tc.player)
		if err != nil || exists != tc.exists {
			t.Errorf("UserExists(%q) = %v, %v; want %v", tc.player, exists, err, tc.exists)
		}
		attrs, err := target.UserAttributes(ctx, tc.player)
		if err != nil || !reflect.DeepEqual(attrs, tc.attrs) {
			t.Errorf("UserAttributes(%q) = %v, %v; want %v", tc.player, attrs, err, tc.attrs)
		}
	}
	// user_validation asks both questions in a row: one call, not two.
	calls := fake.Calls()
	target.UserExists(ctx, "player-1")
	target.UserAttributes(ctx, "player-1")
	if got := fake.Calls() - calls; got != 0 {
		t.Errorf("a repeated check made %d calls, want 0 (answered a moment ago)", got)
	}
}

// An answer that breaks the contract is an error, never a "no".
func TestTarget_UserAnswerBreaksContract(t *testing.T) {
	for _, body := range []string{`{"exists":"yes"}`, `{"exists":true,"EXISTS":false}`, `{"attributes":{}}`, `not json`} {
		srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, _ *nethttp.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		}))
		_, err := newTarget(t, srv.URL).UserExists(context.Background(), "player-1")
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), "breaks the contract") {
			t.Errorf("%s: err = %v, want a contract error", body, err)
		}
	}
}

// Attributes pass whatever their values: the gateway keeps those Xsolla
// takes, so one bad attribute never turns a yes into an error.
func TestTarget_UserAttributesPassAsTheStudioGaveThem(t *testing.T) {
	fake := newFake(t)
	fake.SetUser("player-1", map[string]any{"is_baned": false, "level": 3})
	attrs, err := newTarget(t, fake.URL).UserAttributes(context.Background(), "player-1")
	if err != nil || string(attrs["is_baned"]) != "false" || string(attrs["level"]) != "3" {
		t.Errorf("UserAttributes = %s, %v; want is_baned false and level 3", attrs, err)
	}
}

func TestWebhookID(t *testing.T) {
	for in, want := range map[string]string{
		"xsolla.src.order.1001":  "xsolla%2Esrc%2Eorder%2E1001",
		"steam-42":               "steam-42",
		"a%2Eb":                  "a%252Eb",
		"xsolla.src.order.1.rev": "xsolla%2Esrc%2Eorder%2E1%2Erev",
	} {
		if got := studio.WebhookID(in); got != want {
			t.Errorf("WebhookID(%q) = %q, want %q", in, got, want)
		}
	}
	// Distinct ids never share a webhook-id.
	if studio.WebhookID("a.b") == studio.WebhookID("a%2Eb") {
		t.Error("a.b and a%2Eb share a webhook-id")
	}
}

func TestConfig_Validate(t *testing.T) {
	got := studio.Config{URL: "backend.local", Secrets: []string{"not-base64!"}, FulfillPath: "fulfill"}.Validate()
	want := []string{"url: want an http(s) URL", "secrets[0]: not a Standard Webhooks secret (whsec_ + base64)", "fulfill_path: want a path starting with /"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q\nwant %q", got, want)
	}
}

// The contract examples in docs/targets.md pass the published schemas, so what a
// studio copies from the documentation is what storegate sends and accepts.
func TestDocsContractExamplesMatchTheSchemas(t *testing.T) {
	raw, err := os.ReadFile("../../docs/targets.md")
	if err != nil {
		t.Fatal(err)
	}
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- schema: ([a-z_/]+) -->\\s*```json\\n(.*?)```")
	found := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
		found[m[1]] = true
		if err := set.Validate(m[1], []byte(m[2])); err != nil {
			t.Errorf("docs/targets.md example for %s fails its schema: %v\n%s", m[1], err, m[2])
		}
	}
	for _, name := range []string{"studio/fulfill", "studio/revoke", "studio/user_check", "studio/user_answer", "studio/command_answer",
		"studio/pin_code", "studio/pin_code_answer"} {
		if !found[name] {
			t.Errorf("docs/targets.md has no example for %s", name)
		}
	}
}

// A game key comes from the studio, one per request id: a repeat of one
// request is the same message, so the studio answers it with the same key.
func TestTarget_PinCode(t *testing.T) {
	fake := newFake(t)
	target := newTarget(t, fake.URL)
	ask := func(id string) string {
		t.Helper()
		code, err := target.PinCode(context.Background(), storegate.PinCodeRequest{RequestID: id, Source: "xs", PlayerID: "player-1",
			Product: "game", DRM: "steam"})
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	first, again, other := ask("xsolla.xs.get_pincode:txn.1"), ask("xsolla.xs.get_pincode:txn.1"), ask("xsolla.xs.get_pincode:txn.2")
	if first == "" || again != first || other == first || fake.KeysHandedOut() != 2 {
		t.Errorf("keys %q %q %q (%d handed out), want the first twice and another", first, again, other, fake.KeysHandedOut())
	}
	if p := fake.Problems(); len(p) > 0 {
		t.Errorf("contract problems: %v", p)
	}
	fake.SetDown(true)
	if _, err := target.PinCode(context.Background(), storegate.PinCodeRequest{RequestID: "r3", PlayerID: "player-1"}); err == nil {
		t.Error("a studio that is down gave a key")
	}
}
