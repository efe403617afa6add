package ags_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/adapters/ags"
	"storegate/adapters/ags/agstest"
	"storegate/internal/fakeclock"
)

var start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newFake(t *testing.T) *agstest.Server {
	t.Helper()
	f := agstest.New()
	t.Cleanup(f.Close)
	return f
}

func config(f *agstest.Server) ags.Config {
	return ags.Config{BaseURL: f.URL, Namespace: f.Namespace, ClientID: f.ClientID, ClientSecret: f.ClientSecret,
		Client: adapters.ClientConfig{Timeout: 200 * time.Millisecond, Attempts: 3, RetryWaitMin: 5 * time.Millisecond, RetryWaitMax: 1500 * time.Millisecond}}
}

func newTarget(t *testing.T, cfg ags.Config) *ags.Target {
	t.Helper()
	target, err := ags.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func fulfill(id string) storegate.Command {
	return storegate.Command{ID: id, Kind: storegate.KindFulfill, Source: "xs", Target: "ags", PlayerID: "user-1",
		Platform: storegate.PlatformSteam, OrderRef: "order 7", CreatedAt: start,
		Lines: []storegate.Line{
			{SKU: "crystals_100", Quantity: 2, Type: storegate.ItemCurrency, Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 200}}},
			{SKU: "starter_sword", Quantity: 1, Type: storegate.ItemDurable, Grants: []storegate.Grant{{Item: "starter_sword", Type: storegate.ItemDurable, Quantity: 1}}},
		}}
}

func revoke(id string) storegate.Command {
	return storegate.Command{ID: id + ".revoke", Kind: storegate.KindRevoke, Source: "xs", Target: "ags", PlayerID: "user-1",
		Platform: storegate.PlatformSteam, Reverses: id, Reason: "refund", CreatedAt: start}
}

// Every scripted failure ends with the command taking effect exactly once,
// or, for what can never succeed, a dead letter that keeps AGS's error.
func TestTarget_ScriptedFailures(t *testing.T) {
	tests := []struct {
		name         string
		faults       []agstest.Fault
		setup        func(*agstest.Server)
		wantVerdict  storegate.Verdict
		wantDeferred bool
		wantCode     string
		wantMessage  string
		wantRA       time.Duration
		wantRequests int // fulfill requests AGS received
		wantEffects  int
	}{
		{name: "500s then success", faults: []agstest.Fault{{Kind: "fulfill", Status: 500}, {Kind: "fulfill", Status: 502}},
			wantVerdict: storegate.VerdictDone, wantRequests: 1, wantEffects: 1},
		{name: "a timeout after the effect, then the retry is recognised",
			faults:      []agstest.Fault{{Kind: "fulfill", Hang: time.Second}},
			wantVerdict: storegate.VerdictDone, wantRequests: 2, wantEffects: 1},
		{name: "a lost answer (effect, then 503)", faults: []agstest.Fault{{Kind: "fulfill", Status: 503, AfterEffect: true}},
			wantVerdict: storegate.VerdictDone, wantRequests: 2, wantEffects: 1},
		{name: "429 with a short Retry-After, waited for in the call", faults: []agstest.Fault{{Kind: "fulfill", Status: 429, RetryAfter: "1"}},
			wantVerdict: storegate.VerdictDone, wantRequests: 1, wantEffects: 1},
		{name: "429 with a long Retry-After goes back to the dispatcher", faults: []agstest.Fault{{Kind: "fulfill", Status: 429, RetryAfter: "120"}},
			wantVerdict: storegate.VerdictRetry, wantRA: 120 * time.Second, wantRequests: 0, wantEffects: 0},
		{name: "20006 optimistic lock is retried", faults: []agstest.Fault{{Kind: "fulfill", Status: 409, ErrorCode: 20006, ErrorMessage: "optimistic lock"}},
			wantVerdict: storegate.VerdictDone, wantRequests: 1, wantEffects: 1},
		{name: "5xx past the in-call attempts is a retry", faults: []agstest.Fault{{Kind: "fulfill", Status: 500}, {Kind: "fulfill", Status: 500}, {Kind: "fulfill", Status: 500}},
			wantVerdict: storegate.VerdictRetry, wantRequests: 0, wantEffects: 0},
		{name: "a permanent 400 is a dead letter with AGS's code", faults: []agstest.Fault{{Kind: "fulfill", Status: 400, ErrorCode: 35123, ErrorMessage: "Wallet [CRYSTALS] is inactive"}},
			wantVerdict: storegate.VerdictDead, wantCode: "35123", wantMessage: "Wallet [CRYSTALS] is inactive", wantRequests: 0, wantEffects: 0},
		{name: "30343 unknown sku is a dead letter", setup: func(f *agstest.Server) { f.SetItemUnknown("starter_sword", true) },
			wantVerdict: storegate.VerdictDead, wantCode: "30343", wantMessage: "Item of sku [starter_sword] does not exist", wantRequests: 1, wantEffects: 0},
		{name: "FULFILL_FAILED is a deferred retry", faults: []agstest.Fault{{Kind: "fulfill", State: "FULFILL_FAILED"}},
			wantVerdict: storegate.VerdictRetry, wantDeferred: true, wantCode: "FULFILL_FAILED", wantMessage: "first-item: wallet is inactive", wantRequests: 1, wantEffects: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t)
			fake.Script(tc.faults...)
			if tc.setup != nil {
				tc.setup(fake)
			}
			target := newTarget(t, config(fake))
			out := target.Deliver(context.Background(), fulfill("xs.order.7"))
			if out.Verdict != tc.wantVerdict || out.Deferred != tc.wantDeferred {
				t.Errorf("outcome = %+v, want verdict %q deferred %v", out, tc.wantVerdict, tc.wantDeferred)
			}
			if tc.wantCode != "" && out.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", out.Code, tc.wantCode)
			}
			if !strings.Contains(out.Message, tc.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", out.Message, tc.wantMessage)
			}
			if out.RetryAfter != tc.wantRA {
				t.Errorf("RetryAfter = %v, want %v", out.RetryAfter, tc.wantRA)
			}
			if got := fake.Requests()["fulfill:xs.order.7"]; got != tc.wantRequests {
				t.Errorf("fulfill requests that reached AGS's logic = %d, want %d", got, tc.wantRequests)
			}
			if got := fake.Effects()["fulfill:xs.order.7"]; got != tc.wantEffects {
				t.Errorf("effects = %d, want %d", got, tc.wantEffects)
			}
		})
	}
}

// What AGS receives for a fulfillment: v3 by default, the items by SKU (or
// by item id when mapped), the platform as origin, the transaction id as
// orderNo.
func TestTarget_FulfillRequest(t *testing.T) {
	for _, version := range []string{"v2", "v3"} {
		t.Run(version, func(t *testing.T) {
			fake := newFake(t)
			cfg := config(fake)
			cfg.FulfillmentAPI = version
			cfg.ItemIDs = map[string]string{"starter_sword": "a1b2c3"}
			target := newTarget(t, cfg)
			if out := target.Deliver(context.Background(), fulfill("xs.order.7")); out.Verdict != storegate.VerdictDone {
				t.Fatalf("outcome = %+v", out)
			}
			if got, want := fake.Path("fulfill:xs.order.7"), "/platform/"+version+"/admin/namespaces/game/users/user-1/fulfillments/xs.order.7"; got != want {
				t.Errorf("path = %q, want %q", got, want)
			}
			var got struct {
				Items []map[string]any `json:"items"`
			}
			if err := json.Unmarshal(fake.Body("fulfill:xs.order.7"), &got); err != nil {
				t.Fatal(err)
			}
			meta := map[string]any{"storegateSource": "xs", "orderRef": "order 7"}
			want := []map[string]any{
				{"itemSku": "crystals_100", "quantity": 2.0, "orderNo": "xs.order.7", "source": "PURCHASE", "origin": "Steam", "entitlementOrigin": "Steam", "metadata": meta},
				{"itemId": "a1b2c3", "quantity": 1.0, "orderNo": "xs.order.7", "source": "PURCHASE", "origin": "Steam", "entitlementOrigin": "Steam", "metadata": meta},
			}
			if !reflect.DeepEqual(got.Items, want) {
				t.Errorf("items = %v\nwant    %v", got.Items, want)
			}
		})
	}
}

// A fulfillment AGS recorded as FULFILL_FAILED is retried with /retry, not
// sent again, and takes effect once.
func TestTarget_FulfillFailedCallsRetry(t *testing.T) {
	fake := newFake(t)
	fake.Script(agstest.Fault{Kind: "fulfill", State: "FULFILL_FAILED"})
	target := newTarget(t, config(fake))
	if out := target.Deliver(context.Background(), fulfill("xs.order.7")); out.Code != "FULFILL_FAILED" {
		t.Fatalf("first delivery = %+v, want FULFILL_FAILED", out)
	}
	if out := target.Deliver(context.Background(), fulfill("xs.order.7")); out.Verdict != storegate.VerdictDone {
		t.Fatalf("second delivery = %+v, want done", out)
	}
	if got, want := fake.Requests()["fulfill:xs.order.7"], 2; got != want {
		t.Errorf("requests = %d, want %d (the PUT, then /retry)", got, want)
	}
	if got, want := fake.Effects()["fulfill:xs.order.7"], 1; got != want {
		t.Errorf("effects = %d, want %d", got, want)
	}
	if got, want := fake.State("xs.order.7"), "FULFILLED"; got != want {
		t.Errorf("state = %q, want %q", got, want)
	}
}

// A full revoke that arrives before its grant waits (deferred, never a
// breaker failure) and succeeds once the grant is there; revoking twice
// takes back once.
func TestTarget_RevokeBeforeGrant(t *testing.T) {
	fake := newFake(t)
	target := newTarget(t, config(fake))
	out := target.Deliver(context.Background(), revoke("xs.order.7"))
	if out.Verdict != storegate.VerdictRetry || !out.Deferred || out.Code != "38145" {
		t.Fatalf("revoke before grant = %+v, want a deferred retry with 38145", out)
	}
	if out := target.Deliver(context.Background(), fulfill("xs.order.7")); out.Verdict != storegate.VerdictDone {
		t.Fatalf("fulfill = %+v", out)
	}
	for i := range 2 {
		if out := target.Deliver(context.Background(), revoke("xs.order.7")); out.Verdict != storegate.VerdictDone {
			t.Fatalf("revoke %d = %+v, want done", i+1, out)
		}
	}
	if got, want := fake.Effects()["revoke:xs.order.7"], 1; got != want {
		t.Errorf("revoke effects = %d, want %d", got, want)
	}
	if got, want := fake.Path("revoke:xs.order.7"), "/platform/v2/admin/namespaces/game/users/user-1/fulfillments/xs.order.7/revoke"; got != want {
		t.Errorf("revoke path = %q, want %q", got, want)
	}
}

// A partial refund uses doRevocation with requestId = the command's id:
// CURRENCY entries for coins, ITEM entries for items. It waits while the
// fulfillment it reverses is not in AGS, and a second delivery is a replay.
func TestTarget_PartialRevocation(t *testing.T) {
	fake := newFake(t)
	target := newTarget(t, config(fake))
	partial := storegate.Command{ID: "xs.prefund.9.abc", Kind: storegate.KindRevoke, Source: "xs", Target: "ags", PlayerID: "user-1",
		Platform: storegate.PlatformXsolla, Reverses: "xs.order.7", Reason: "chargeback", OrderRef: "transaction 9",
		Lines: []storegate.Line{
			{SKU: "crystals_100", Quantity: 1, Type: storegate.ItemCurrency, Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 100}}},
			{SKU: "starter_sword", Quantity: 1, Type: storegate.ItemDurable, Grants: []storegate.Grant{{Item: "starter_sword", Type: storegate.ItemDurable, Quantity: 1}}},
		}}
	out := target.Deliver(context.Background(), partial)
	if out.Verdict != storegate.VerdictRetry || !out.Deferred || out.Code != "NOT_GRANTED_YET" {
		t.Fatalf("partial revoke before grant = %+v, want a deferred NOT_GRANTED_YET", out)
	}
	if fake.Requests()["revocation:xs.prefund.9.abc"] != 0 {
		t.Fatal("the revocation was sent before its grant")
	}
	if out := target.Deliver(context.Background(), fulfill("xs.order.7")); out.Verdict != storegate.VerdictDone {
		t.Fatalf("fulfill = %+v", out)
	}
	for i := range 2 {
		if out := target.Deliver(context.Background(), partial); out.Verdict != storegate.VerdictDone {
			t.Fatalf("partial revoke %d = %+v, want done", i+1, out)
		}
	}
	if got, want := fake.Effects()["revocation:xs.prefund.9.abc"], 1; got != want {
		t.Errorf("revocation effects = %d, want %d", got, want)
	}
	var body map[string]any
	if err := json.Unmarshal(fake.Body("revocation:xs.prefund.9.abc"), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"source": "ORDER", "transactionId": "xs.order.7", "requestId": "xs.prefund.9.abc", "reason": "chargeback",
		"meta": map[string]any{"storegateSource": "xs", "orderRef": "transaction 9"},
		"revokeEntries": []any{
			map[string]any{"type": "CURRENCY", "quantity": 100.0, "currency": map[string]any{"namespace": "game", "currencyCode": "CRYSTALS", "balanceOrigin": "Other"}},
			map[string]any{"type": "ITEM", "quantity": 1.0, "item": map[string]any{"itemIdentity": "starter_sword", "itemIdentityType": "ITEM_SKU", "entitlementOrigin": "Other"}},
		},
	}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("revocation body = %v\nwant %v", body, want)
	}
}

// The IAM token is fetched once, reused until shortly before it expires,
// and fetched again once when AGS refuses it (401).
func TestTarget_TokenCache(t *testing.T) {
	fake := newFake(t)
	fake.TokenLife = time.Hour
	clock := fakeclock.New(start)
	cfg := config(fake)
	cfg.Now = clock.Now
	target := newTarget(t, cfg)
	deliver := func(id string) {
		t.Helper()
		if out := target.Deliver(context.Background(), fulfill(id)); out.Verdict != storegate.VerdictDone {
			t.Fatalf("deliver %s = %+v", id, out)
		}
	}
	for i := range 5 {
		deliver(fmt.Sprint("t", i))
	}
	if got, want := fake.TokensIssued(), 1; got != want {
		t.Errorf("tokens after 5 deliveries = %d, want %d", got, want)
	}
	clock.Advance(59*time.Minute + 30*time.Second) // in the last minute of its life
	deliver("t5")
	if got, want := fake.TokensIssued(), 2; got != want {
		t.Errorf("tokens near expiry = %d, want %d", got, want)
	}
	fake.RevokeTokens()
	deliver("t6")
	if got, want := fake.TokensIssued(), 3; got != want {
		t.Errorf("tokens after a 401 = %d, want %d", got, want)
	}
}

// Wrong client credentials: a dead letter that says so, without the secret.
func TestTarget_BadCredentials(t *testing.T) {
	fake := newFake(t)
	cfg := config(fake)
	cfg.ClientSecret = "wrong-secret-value"
	target := newTarget(t, cfg)
	out := target.Deliver(context.Background(), fulfill("t1"))
	if out.Verdict != storegate.VerdictDead || out.Code != "IAM_TOKEN" {
		t.Errorf("outcome = %+v, want a dead IAM_TOKEN", out)
	}
	if strings.Contains(out.Message, "wrong-secret-value") {
		t.Errorf("message %q shows the secret", out.Message)
	}
	if got := fake.Effects()["fulfill:t1"]; got != 0 {
		t.Errorf("effects = %d, want 0", got)
	}
}

func TestTarget_UserExists(t *testing.T) {
	fake := newFake(t)
	fake.SetUsers("user-1")
	now := time.Now()
	cfg := config(fake)
	cfg.Now = func() time.Time { return now }
	target := newTarget(t, cfg)
	for _, tc := range []struct {
		user string
		want bool
	}{{"user-1", true}, {"ghost", false}} {
		got, err := target.UserExists(context.Background(), tc.user)
		if err != nil || got != tc.want {
			t.Errorf("UserExists(%q) = %v, %v; want %v", tc.user, got, err, tc.want)
		}
	}
	fake.Script(agstest.Fault{Kind: "user", Status: 500}, agstest.Fault{Kind: "user", Status: 500}, agstest.Fault{Kind: "user", Status: 500})
	// A yes is remembered for a few seconds: IAM failing now is not asked.
	if ok, err := target.UserExists(context.Background(), "user-1"); !ok || err != nil {
		t.Errorf("UserExists a moment after a yes = %v, %v; want the remembered yes", ok, err)
	}
	now = now.Add(6 * time.Second)
	if _, err := target.UserExists(context.Background(), "user-1"); err == nil {
		t.Error("UserExists with IAM failing: no error, want one (unsure is not no)")
	}
	// A no is never remembered: the player may sign up a second later.
	fake.SetUsers("user-1", "ghost")
	if ok, err := target.UserExists(context.Background(), "ghost"); !ok || err != nil {
		t.Errorf("UserExists of a new player = %v, %v; want yes", ok, err)
	}
}

func TestTarget_UserAttributesFromTheIAMUser(t *testing.T) {
	fake := newFake(t)
	fake.SetProfile("user-1", map[string]any{"country": "DE", "displayName": "Ada", "dateOfBirth": "2008-12-07", "emailVerified": true})
	cfg := config(fake)
	cfg.Now = func() time.Time { return time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC) }
	attrs, err := newTarget(t, cfg).UserAttributes(context.Background(), "user-1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range attrs {
		got[k] = string(v)
	}
	if want := map[string]string{"country": `"DE"`, "display_name": `"Ada"`, "age": "17"}; !reflect.DeepEqual(got, want) {
		t.Errorf("attributes = %v, want %v (17: the birthday is tomorrow)", got, want)
	}
}

func TestConfig_Validate(t *testing.T) {
	cfg := ags.Config{BaseURL: "ftp://x", FulfillmentAPI: "v9", UserCheckPath: "/users"}
	got := cfg.Validate()
	want := []string{"base_url: want an http(s) URL", "iam_url: want an http(s) URL", "namespace: required", "client_id: required",
		"client_secret: required (is its environment variable empty?)", `fulfillment_api: "v9" is not v2 or v3`,
		"user_check_path: want a path starting with / that contains {userId}"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q\nwant %q", got, want)
	}
}

// The same transaction id with another payload is refused for good
// (38128): a dead letter for a person, never a second grant.
func TestTarget_DifferentPayloadIsDead(t *testing.T) {
	fake := newFake(t)
	target := newTarget(t, config(fake))
	if out := target.Deliver(context.Background(), fulfill("xs.order.7")); out.Verdict != storegate.VerdictDone {
		t.Fatalf("first = %+v", out)
	}
	changed := fulfill("xs.order.7")
	changed.Lines = changed.Lines[:1]
	out := target.Deliver(context.Background(), changed)
	if out.Verdict != storegate.VerdictDead || out.Code != "38128" || !strings.Contains(out.Message, "Cannot retry fulfillment with different payload") {
		t.Errorf("outcome = %+v, want a dead 38128 with AGS's message", out)
	}
	if got, want := fake.Effects()["fulfill:xs.order.7"], 1; got != want {
		t.Errorf("effects = %d, want %d", got, want)
	}
}
