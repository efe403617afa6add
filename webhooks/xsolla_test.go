package webhooks_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"

	"storegate/internal/gatewaytest"
	"storegate/signing"
	"storegate/webhooks"
)

func TestXsolla_OrderPaidGrantsOnce(t *testing.T) {
	g := gatewaytest.New(t)
	body := gatewaytest.OrderPaid(1001, "player-1", "crystals_100", "starter_sword")
	for i := range 2 {
		resp := g.Post(t, "xs", body)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("send %d: status %d, want 204", i+1, resp.StatusCode)
		}
		if b, _ := io.ReadAll(resp.Body); len(b) != 0 {
			t.Fatalf("send %d: body %q, want empty", i+1, b)
		}
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Fatalf("CRYSTALS = %d, want 100 (one grant)", got)
	}
	if got, want := g.Items(t, "player-1"), []string{"starter_sword×1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("entitlements = %v, want %v", got, want)
	}
	if n, _ := g.DB.EventCount(context.Background(), "xs"); n != 1 {
		t.Fatalf("stored events = %d, want 1", n)
	}
}

func TestXsolla_ConcurrentCopiesGrantOnce(t *testing.T) {
	g := gatewaytest.New(t)
	body := gatewaytest.OrderPaid(2002, "player-1", "crystals_100")
	const copies = 50
	statuses := make([]int, copies)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = g.Post(t, "xs", body).StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusNoContent {
			t.Fatalf("copy %d: status %d, want 204 like every other copy", i, s)
		}
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Fatalf("CRYSTALS = %d after %d copies, want 100", got, copies)
	}
	if n, _ := g.DB.EventCount(context.Background(), "xs"); n != 1 {
		t.Fatalf("stored events = %d, want 1", n)
	}
}

func TestXsolla_CancelAfterGrantRevokes(t *testing.T) {
	g := gatewaytest.New(t)
	if s := g.Post(t, "xs", gatewaytest.OrderPaid(3003, "player-1", "crystals_100", "starter_sword")).StatusCode; s != 204 {
		t.Fatalf("order_paid: %d", s)
	}
	g.Drain(t)
	if s := g.Post(t, "xs", gatewaytest.OrderCanceled(3003, "player-1")).StatusCode; s != 204 {
		t.Fatalf("order_canceled: %d", s)
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 0 {
		t.Fatalf("CRYSTALS = %d after the cancel, want 0", got)
	}
	if got := g.Items(t, "player-1"); len(got) != 0 {
		t.Fatalf("entitlements after the cancel = %v, want none", got)
	}
}

func TestXsolla_CancelBeforeGrantWaitsForIt(t *testing.T) {
	g := gatewaytest.New(t)
	// The cancel is dispatched first: it must wait, not fail or vanish.
	g.Post(t, "xs", gatewaytest.OrderCanceled(4004, "player-1"))
	g.Drain(t)
	g.Post(t, "xs", gatewaytest.OrderPaid(4004, "player-1", "crystals_100"))
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Fatalf("CRYSTALS = %d before the revoke retried, want 100", got)
	}
	g.Clock.Advance(5 * 60 * 1e9) // past the revoke's backoff
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 0 {
		t.Fatalf("CRYSTALS = %d after the retried revoke, want 0", got)
	}
}

// In separate-webhooks mode Xsolla sends payment and then order_paid for one
// purchase, and refund then order_canceled for its refund. Exactly one type
// grants whichever mode the source is in.
func TestXsolla_SeparateAndCombinedModesGrantOnce(t *testing.T) {
	payment := `{"notification_type":"payment","user":{"id":"player-2"},"transaction":{"id":777,"external_id":"x"},
		"purchase":{"virtual_items":{"items":[{"sku":"crystals_100","amount":1}]},"total":{"currency":"USD","amount":2}}}`
	refund := `{"notification_type":"refund","user":{"id":"player-2"},"transaction":{"id":777},"refund_details":{"code":2,"reason":"chargeback"},
		"purchase":{"virtual_items":{"items":[{"sku":"crystals_100","amount":1}]}}}`
	for _, grantOn := range []string{"order_paid", "payment"} {
		t.Run("grant_on="+grantOn, func(t *testing.T) {
			g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", grantOn)))
			for _, body := range []string{payment, gatewaytest.OrderPaid(777, "player-2", "crystals_100")} {
				if s := g.Post(t, "xs", body).StatusCode; s != 204 {
					t.Fatalf("status %d for %s", s, body[:40])
				}
			}
			g.Drain(t)
			if got := g.Balance(t, "player-2", "CRYSTALS"); got != 100 {
				t.Fatalf("CRYSTALS = %d after payment + order_paid, want 100", got)
			}
			for _, body := range []string{refund, gatewaytest.OrderCanceled(777, "player-2")} {
				if s := g.Post(t, "xs", body).StatusCode; s != 204 {
					t.Fatalf("status %d for %s", s, body[:40])
				}
			}
			g.Drain(t)
			if got := g.Balance(t, "player-2", "CRYSTALS"); got != 0 {
				t.Fatalf("CRYSTALS = %d after refund + order_canceled, want 0", got)
			}
		})
	}
}

func TestXsolla_PartialRefundRevokesOnlyItsLines(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "payment")))
	payment := `{"notification_type":"payment","user":{"id":"player-1"},"transaction":{"id":900},
		"purchase":{"virtual_currency":{"sku":"crystals_100","quantity":2},"virtual_items":{"items":[{"sku":"starter_sword","amount":1}]}}}`
	partial := `{"notification_type":"partial_refund","user":{"id":"player-1"},"transaction":{"id":900},"refund_details":{"code":1},
		"purchase":{"virtual_currency":{"sku":"crystals_100","quantity":1}}}`
	g.Post(t, "xs", payment)
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 200 {
		t.Fatalf("CRYSTALS = %d, want 200", got)
	}
	for range 2 { // a repeated partial refund is the same refund
		if s := g.Post(t, "xs", partial).StatusCode; s != 204 {
			t.Fatalf("partial_refund: %d", s)
		}
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 100 {
		t.Fatalf("CRYSTALS = %d after refunding one pack, want 100", got)
	}
	if got := g.Items(t, "player-1"); !reflect.DeepEqual(got, []string{"starter_sword×1"}) {
		t.Fatalf("entitlements = %v, want the sword kept", got)
	}
}

// Each bad request gets its documented answer and leaves nothing behind.
func TestXsolla_BadInputStoresNothing(t *testing.T) {
	good := gatewaytest.OrderPaid(5005, "player-1", "crystals_100")
	signed := func(body string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("Authorization", signing.XsollaSignature([]byte(body), gatewaytest.Secret))
		}
	}
	for _, tc := range []struct {
		name   string
		source string
		body   string
		setup  func(*http.Request)
		status int
		code   string
		fields []string
	}{
		{"tampered body", "xs", strings.Replace(good, `"quantity":1`, `"quantity":9`, 1), signed(good), 400, "INVALID_SIGNATURE", nil},
		{"missing signature", "xs", good, func(r *http.Request) { r.Header.Del("Authorization") }, 400, "INVALID_SIGNATURE", nil},
		{"wrong secret", "xs", good, func(r *http.Request) {
			r.Header.Set("Authorization", signing.XsollaSignature([]byte(good), "other"))
		}, 400, "INVALID_SIGNATURE", nil},
		{"uppercase hex", "xs", good, func(r *http.Request) {
			r.Header.Set("Authorization", "Signature "+strings.ToUpper(strings.TrimPrefix(signing.XsollaSignature([]byte(good), gatewaytest.Secret), "Signature ")))
		}, 400, "INVALID_SIGNATURE", nil},
		{"wrong content type", "xs", good, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415, "UNSUPPORTED_MEDIA_TYPE", nil},
		{"malformed JSON", "xs", `{"notification_type":"order_paid",`, nil, 400, "INVALID_PARAMETER", nil},
		{"oversize body", "small", `{"notification_type":"order_paid","pad":"` + strings.Repeat("x", 2<<10) + `"}`, nil, 413, "PAYLOAD_TOO_LARGE", nil},
		{"schema violation", "xs", `{"notification_type":"order_paid","user":{"external_id":"player-1"},"order":{"id":"5x"},"items":[{"sku":"crystals_100"}]}`,
			nil, 400, "INVALID_PARAMETER", []string{"items.0.quantity", "order.id"}},
		{"unknown type", "xs", `{"notification_type":"teleport"}`, nil, 400, "INVALID_PARAMETER", []string{"notification_type"}},
		{"no type", "xs", `{"user":{"id":"player-1"}}`, nil, 400, "INVALID_PARAMETER", []string{"notification_type"}},
		{"unknown sku", "xs", gatewaytest.OrderPaid(5006, "player-1", "crystals_100", "moon_rock"), nil, 400, "INVALID_PARAMETER", []string{"items.1.sku"}},
		{"unknown player", "xs", gatewaytest.OrderPaid(5007, "nobody", "crystals_100"), nil, 400, "INVALID_USER", []string{"user.external_id"}},
		{"unknown source", "nope", good, nil, 404, "NOT_FOUND", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			small := gatewaytest.XsollaSource("small", "")
			small.BodyLimit = 1024
			g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithSource(small))
			req := httptest.NewRequest(http.MethodPost, "/webhooks/xsolla/"+tc.source, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", signing.XsollaSignature([]byte(tc.body), gatewaytest.Secret))
			if tc.setup != nil {
				tc.setup(req)
			}
			resp := g.Do(t, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			e := gatewaytest.ReadError(t, resp)
			if e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("error = %+v, want code %s with a message", e.Error, tc.code)
			}
			if tc.fields != nil && !reflect.DeepEqual(e.Error.Fields, tc.fields) {
				t.Fatalf("fields = %q, want %q", e.Error.Fields, tc.fields)
			}
			if strings.Contains(e.Error.Message, gatewaytest.Secret) {
				t.Fatal("the error answer contains the secret")
			}
			if n := g.Rows(t); n != 0 {
				t.Fatalf("%d rows left behind", n)
			}
		})
	}
}

func TestXsolla_IPAllowlist(t *testing.T) {
	src := gatewaytest.XsollaSource("xs", "")
	src.AllowIPs = webhooks.XsollaRanges()
	proxy := func(c *gatewaytest.Config) {}
	g := gatewaytest.New(t, gatewaytest.WithSource(src), proxy)
	// app.Test's peer is 0.0.0.0: outside Xsolla's ranges.
	resp := g.Post(t, "xs", gatewaytest.OrderPaid(1, "player-1", "crystals_100"))
	if resp.StatusCode != 403 || gatewaytest.ReadError(t, resp).Error.Code != "INVALID_CLIENT_IP" {
		t.Fatalf("status = %d, want 403 INVALID_CLIENT_IP", resp.StatusCode)
	}
	if n := g.Rows(t); n != 0 {
		t.Fatalf("%d rows left behind", n)
	}
}

func TestXsolla_TrustedProxyForwardsClientIP(t *testing.T) {
	src := gatewaytest.XsollaSource("xs", "")
	src.AllowIPs = webhooks.XsollaRanges()
	trust := func(c *gatewaytest.Config) {
		c.Server.TrustedProxies = []netip.Prefix{gatewaytest.MustPrefix("0.0.0.0/32")}
	}
	g := gatewaytest.New(t, gatewaytest.WithSource(src), trust)
	for _, tc := range []struct {
		xff    string
		status int
	}{
		{"185.30.21.7", 204},
		{"203.0.113.9", 403},
		{"185.30.21.7, 203.0.113.9", 403}, // the right-most untrusted hop is the client
		{"garbage", 403},
	} {
		req := gatewaytest.SignedRequest("xs", gatewaytest.OrderPaid(int(len(tc.xff)), "player-1", "crystals_100"))
		req.Header.Set("X-Forwarded-For", tc.xff)
		if got := g.Do(t, req).StatusCode; got != tc.status {
			t.Errorf("X-Forwarded-For %q: status %d, want %d", tc.xff, got, tc.status)
		}
	}
}

func TestXsolla_StoreDownIs5xx(t *testing.T) {
	g := gatewaytest.New(t)
	g.DB.Close()
	resp := g.Post(t, "xs", gatewaytest.OrderPaid(6006, "player-1", "crystals_100"))
	if resp.StatusCode < 500 {
		t.Fatalf("status = %d with the store closed, want 5xx", resp.StatusCode)
	}
	if e := gatewaytest.ReadError(t, resp); e.Error.Code != "SERVICE_UNAVAILABLE" || strings.Contains(e.Error.Message, "closed") {
		t.Fatalf("error = %+v, want SERVICE_UNAVAILABLE without internal detail", e.Error)
	}
	if got := resp.Header.Get("Retry-After"); got != "5" {
		t.Fatalf("Retry-After = %q, want 5", got)
	}
}

func TestXsolla_UserValidation(t *testing.T) {
	g := gatewaytest.New(t)
	for _, tc := range []struct {
		user   string
		status int
	}{{"player-1", 204}, {"stranger", 400}} {
		resp := g.Post(t, "xs", `{"notification_type":"user_validation","settings":{"project_id":1,"merchant_id":2},"user":{"id":"`+tc.user+`","email":"e@x"}}`)
		if resp.StatusCode != tc.status {
			t.Fatalf("user %s: status %d, want %d", tc.user, resp.StatusCode, tc.status)
		}
		if tc.status == 400 {
			if e := gatewaytest.ReadError(t, resp); e.Error.Code != "INVALID_USER" {
				t.Fatalf("code = %s, want INVALID_USER", e.Error.Code)
			}
		}
	}
	if n := g.Rows(t); n != 0 {
		t.Fatalf("user validation stored %d rows", n)
	}
}

func TestXsolla_UserSearch(t *testing.T) {
	g := gatewaytest.New(t)
	resp := g.Post(t, "xs", `{"notification_type":"user_search","user":{"public_id":"player-2"}}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != `{"user":{"id":"player-2","public_id":"player-2"}}` {
		t.Fatalf("answer = %d %s", resp.StatusCode, body)
	}
	if resp := g.Post(t, "xs", `{"notification_type":"user_search","user":{"public_id":"ghost"}}`); resp.StatusCode != 400 {
		t.Fatalf("unknown user: status %d, want 400", resp.StatusCode)
	}
}

func TestXsolla_TransactionLinking(t *testing.T) {
	src := gatewaytest.XsollaSource("xs", "")
	src.LinkParameters = map[string]any{"shard": "eu-1"}
	g := gatewaytest.New(t, gatewaytest.WithSource(src))
	link := `{"notification_type":"create_external_transaction","order_id":42,"project_id":51336,"user":{"external_id":"player-1","email":"e@x"},"items":[{"item_id":101,"sku":"starter_sword","quantity":1,"type":"virtual_good"}]}`
	var answers []string
	for range 2 {
		resp := g.Post(t, "xs", link)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		answers = append(answers, string(body))
	}
	want := `{"custom_parameters":{"shard":"eu-1"},"id":"xsolla.xs.order.42"}`
	if answers[0] != want || answers[1] != want {
		t.Fatalf("answers = %q, want %s twice", answers, want)
	}
	// The linked id is the one the order's grant carries.
	g.Post(t, "xs", gatewaytest.OrderPaid(42, "player-1", "starter_sword"))
	g.Drain(t)
	ents, _ := g.Ledger.Entitlements(context.Background(), "player-1", false)
	if len(ents) != 1 || ents[0].TransactionID != "xsolla.xs.order.42" {
		t.Fatalf("entitlements = %+v, want one granted under xsolla.xs.order.42", ents)
	}
}

func TestXsolla_AcknowledgedTypesAreStored(t *testing.T) {
	g := gatewaytest.New(t)
	for _, body := range []string{
		`{"notification_type":"afs_reject","user":{"id":"player-1"},"transaction":{"id":5,"payment_date":"x"},"refund_details":{"code":4,"reason":"Potential fraud"}}`,
		`{"notification_type":"redeem_key","key":"ABC"}`,
	} {
		for range 2 {
			if s := g.Post(t, "xs", body).StatusCode; s != 204 {
				t.Fatalf("status %d for %s", s, body)
			}
		}
	}
	if n, _ := g.DB.EventCount(context.Background(), "xs"); n != 2 {
		t.Fatalf("events = %d, want 2 (each stored once)", n)
	}
	if d, _ := g.DB.Depth(context.Background()); d["pending"] != 0 {
		t.Fatalf("acknowledged types queued %d commands", d["pending"])
	}
}
