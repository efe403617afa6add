package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate/internal/gatewaytest"
	"storegate/signing"
)

// marker is in every hostile request below: no answer or log line may hold it.
const marker = "Mk7-secret-of-the-caller"

// syncBuffer is a bytes.Buffer the server's goroutines may log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// listen serves the gateway on a loopback port, for requests no HTTP
// client would send.
func listen(t testing.TB, g *gatewaytest.Gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.App.Listener(ln)
	t.Cleanup(func() { g.App.Shutdown() })
	return ln.Addr().String()
}

// rawAnswer is what the server wrote back on one connection.
type rawAnswer struct {
	resp *http.Response
	body string
	// more is what came after the first answer before the server closed the
	// connection: an answer to a request hidden in the first one's body.
	more string
}

// rawExchange writes raw on a new connection, then writes nothing more, and
// reads until the server closes the connection (or 5 s pass).
func rawExchange(t testing.TB, addr, raw string) rawAnswer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no HTTP answer to %.40q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	more, _ := io.ReadAll(r)
	return rawAnswer{resp: resp, body: string(body), more: string(more)}
}

// signedOrder is a request line and headers for a signed order_paid, and
// its body, for framing the body by hand.
func signedOrder(id int) (head, body string) {
	body = gatewaytest.OrderPaid(id, "player-1", "crystals_100")
	head = "POST /webhooks/xsolla/xs HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n" +
		"Authorization: " + signing.XsollaSignature([]byte(body), gatewaytest.Secret) + "\r\n"
	return head, body
}

func chunked(body string) string {
	return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
}

var refusedID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// checkRefusal asserts a refusal as the caller sees it: the status, a JSON
// error with the code, a request id, the connection closed, and nothing of
// the request in the answer.
func checkRefusal(t testing.TB, a rawAnswer, status int, code string) {
	t.Helper()
	if a.resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %q", a.resp.StatusCode, status, a.body)
	}
	var e gatewaytest.ErrorAnswer
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("body %q, want a JSON error %s", a.body, code)
	}
	if ct := a.resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if id := a.resp.Header.Get("X-Request-ID"); !refusedID.MatchString(id) {
		t.Errorf("X-Request-ID %q, want a request id", id)
	}
	if !a.resp.Close {
		t.Error("the connection stays open after a refusal")
	}
	if a.more != "" {
		t.Errorf("after the refusal the server answered again: %.80q", a.more)
	}
	if strings.Contains(a.body, marker) || strings.Contains(a.body, "Signature") {
		t.Errorf("the answer reflects the request: %q", a.body)
	}
}

// requestCount reads storegate_requests_total for one label set.
func requestCount(t testing.TB, g *gatewaytest.Gateway, labels string) string {
	t.Helper()
	_, text := g.Scrape(t)
	prefix := "storegate_requests_total{" + labels + "} "
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return "0"
}

// Requests fasthttp refuses before any route runs: each is a JSON error
// with its status, a request id and a count, logged below ERROR, quoting
// nothing of the request, and storing nothing.
func TestEdge_ProtocolRefusals(t *testing.T) {
	logs := &syncBuffer{}
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithLog(logs),
		func(c *gatewaytest.Config) { c.Server.ReadTimeout = 300 * time.Millisecond })
	addr := listen(t, g)
	head, body := signedOrder(1)
	var many strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&many, "X-H%d: %s\r\n", i, marker)
	}
	for _, tc := range []struct {
		name   string
		raw    string
		status int
		code   string
	}{
		{"URL of 5,000 characters", "GET /healthz?x=" + strings.Repeat(marker, 200) + " HTTP/1.1\r\nHost: gw\r\n\r\n", 431, "HEADERS_TOO_LARGE"},
		{"20 KB Authorization", "GET /healthz HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + strings.Repeat(marker, 800) + "\r\n\r\n", 431, "HEADERS_TOO_LARGE"},
		{"5,000 headers", "GET /healthz HTTP/1.1\r\nHost: gw\r\n" + many.String() + "\r\n", 431, "HEADERS_TOO_LARGE"},
		{"signed order with a 20 KB header", head + "X-Pad: " + strings.Repeat(marker, 800) + "\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body), 431, "HEADERS_TOO_LARGE"},
		{"broken header line", "GET /healthz HTTP/1.1\r\nHost: gw\r\nAuthorization: Signature " + marker + "\r\nBroken Header: x\r\n\r\n", 400, "MALFORMED_REQUEST"},
		{"broken header line in a signed order", head + "Bad Key: " + marker + "\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body), 400, "MALFORMED_REQUEST"},
		{"not HTTP", marker + "\r\n\r\n", 400, "MALFORMED_REQUEST"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "MALFORMED_REQUEST"},
		{"unknown method", "BREW /healthz HTTP/1.1\r\nHost: gw\r\nX-M: " + marker + "\r\n\r\n", 400, "MALFORMED_REQUEST"},
		{"body over the limit", head + "Content-Length: 100000000\r\n\r\n" + body, 413, "PAYLOAD_TOO_LARGE"},
		{"headers that never end", "GET /healthz HTTP/1.1\r\nHost: gw\r\nAuthorization: Signature " + marker + "\r\n", 408, "REQUEST_TIMEOUT"},
		{"a body that never ends", head + "Content-Length: 5000\r\n\r\n" + body, 408, "REQUEST_TIMEOUT"},
		{"idle connection", "", 408, "REQUEST_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counted := fmt.Sprintf(`source="",status="%d",type=""`, tc.status)
			before := requestCount(t, g, counted)
			checkRefusal(t, rawExchange(t, addr, tc.raw), tc.status, tc.code)
			if after := requestCount(t, g, counted); after == before {
				t.Errorf("storegate_requests_total{%s} = %s after the refusal, as before", counted, after)
			}
		})
	}
	if n := g.Rows(t); n != 0 {
		t.Errorf("%d rows stored", n)
	}
	text := logs.String()
	for _, bad := range []string{`"level":"ERROR"`, marker, `"request_id":""`} {
		if strings.Contains(text, bad) {
			t.Errorf("the logs hold %s:\n%.2000s", bad, text)
		}
	}
	if !strings.Contains(text, `"status":431`) {
		t.Errorf("no log line for the refusals:\n%.2000s", text)
	}
}

// Framing two HTTP parsers may read differently is refused, and the
// connection closed, so a request hidden in the body never runs. One
// Content-Length, or Transfer-Encoding: chunked alone, is accepted.
func TestEdge_AmbiguousFramingIsRefused(t *testing.T) {
	g := gatewaytest.New(t)
	addr := listen(t, g)
	hidden := "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"
	for i, tc := range []struct {
		name    string
		framing func(body string) string
	}{
		{"Content-Length and Transfer-Encoding", func(b string) string {
			return fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", len(b), chunked(b))
		}},
		{"Transfer-Encoding and Content-Length", func(b string) string {
			return fmt.Sprintf("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n%s", chunked(b))
		}},
		{"two conflicting Content-Lengths", func(b string) string {
			return fmt.Sprintf("Content-Length: 4\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		}},
		{"two equal Content-Lengths", func(b string) string {
			return fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s", len(b), len(b), b)
		}},
		{"Content-Length list", func(b string) string {
			return fmt.Sprintf("Content-Length: %d, %d\r\n\r\n%s", len(b), len(b), b)
		}},
		{"gzip, chunked", func(b string) string { return "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked(b) }},
		{"chunked on two lines", func(b string) string {
			return "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b)
		}},
		{"identity", func(b string) string { return "Transfer-Encoding: identity\r\n\r\n" + chunked(b) }},
		{"folded Transfer-Encoding", func(b string) string { return "Transfer-Encoding:\r\n chunked\r\n\r\n" + chunked(b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, body := signedOrder(100 + i)
			a := rawExchange(t, addr, head+tc.framing(body)+hidden)
			checkRefusal(t, a, 400, "MALFORMED_REQUEST")
			if n := g.Rows(t); n != 0 {
				t.Fatalf("%d rows stored", n)
			}
		})
	}
	t.Run("chunked on HTTP/1.0", func(t *testing.T) {
		head, body := signedOrder(200)
		head = strings.Replace(head, "HTTP/1.1", "HTTP/1.0", 1)
		checkRefusal(t, rawExchange(t, addr, head+"Transfer-Encoding: chunked\r\n\r\n"+chunked(body)), 400, "MALFORMED_REQUEST")
		if n := g.Rows(t); n != 0 {
			t.Fatalf("%d rows stored", n)
		}
	})
	for i, framing := range []func(string) string{
		func(b string) string {
			return fmt.Sprintf("Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(b), b)
		},
		func(b string) string { return "Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n" + chunked(b) },
	} {
		head, body := signedOrder(300 + i)
		if a := rawExchange(t, addr, head+framing(body)); a.resp.StatusCode != 204 {
			t.Fatalf("plain framing %d: status %d %q, want 204", i, a.resp.StatusCode, a.body)
		}
	}
}

// The caller is the right-most X-Forwarded-For address that is not a
// trusted proxy, over every line of the header in order: a proxy such as
// HAProxy adds its own line after the caller's.
func TestEdge_ForwardedForReadsEveryLine(t *testing.T) {
	src := gatewaytest.XsollaSource("xs", "")
	src.AllowIPs = []netip.Prefix{gatewaytest.MustPrefix("10.1.2.3/32"), gatewaytest.MustPrefix("2001:db8::7/128")}
	trust := func(c *gatewaytest.Config) {
		// app.Test's peer is 0.0.0.0; 10.9.0.0/16 is a second tier of proxies.
		c.Server.TrustedProxies = []netip.Prefix{gatewaytest.MustPrefix("0.0.0.0/32"), gatewaytest.MustPrefix("10.9.0.0/16")}
	}
	g := gatewaytest.New(t, gatewaytest.WithSource(src), trust)
	for i, tc := range []struct {
		lines  []string
		status int
	}{
		{[]string{"10.1.2.3"}, 204},
		{[]string{"10.1.2.3", "192.0.2.66"}, 403}, // the caller's line, then the proxy's
		{[]string{"10.1.2.3, 192.0.2.66"}, 403},
		{[]string{"192.0.2.66", "10.1.2.3"}, 204},
		{[]string{"192.0.2.66, 10.1.2.3", "10.9.0.5"}, 204}, // a trusted hop is skipped
		{[]string{"10.1.2.3", "10.9.0.5, 10.9.3.3"}, 204},
		{[]string{"10.1.2.3", "192.0.2.66", "10.9.0.5"}, 403},
		{[]string{"2001:db8::7"}, 204},
		{[]string{"2001:db8::7", "2001:db8::66"}, 403},
		{[]string{"10.1.2.3", "2001:db8::66"}, 403},
		{[]string{"2001:db8::66", "::ffff:10.1.2.3"}, 204}, // an IPv4-mapped address is the IPv4 one
		{[]string{"garbage", "10.1.2.3"}, 204},             // left of the caller: not read
		{[]string{"10.1.2.3", "garbage"}, 403},
		{[]string{"10.1.2.3", "10.1.2.3:4000"}, 403},
		{[]string{"10.1.2.3", "[2001:db8::7]"}, 403},
		{[]string{"10.1.2.3", ""}, 403},
		{[]string{"10.1.2.3", "10.1.2.3 10.1.2.3"}, 403},
	} {
		body := gatewaytest.OrderPaid(1000+i, "player-1", "crystals_100")
		req := gatewaytest.SignedRequest("xs", body)
		req.Header["X-Forwarded-For"] = tc.lines
		before := g.Everything(t)
		resp := g.Do(t, req)
		if resp.StatusCode != tc.status {
			t.Errorf("X-Forwarded-For lines %q: status %d, want %d", tc.lines, resp.StatusCode, tc.status)
			continue
		}
		if tc.status == 403 {
			if e := gatewaytest.ReadError(t, resp); e.Error.Code != "INVALID_CLIENT_IP" {
				t.Errorf("lines %q: code %s, want INVALID_CLIENT_IP", tc.lines, e.Error.Code)
			}
			gatewaytest.SameRows(t, before, g.Everything(t))
		}
	}
	// Where the caller should be, an entry that is no address hides the
	// caller: it is not the proxy either, even one a source admits.
	proxies := gatewaytest.XsollaSource("proxies", "")
	proxies.AllowIPs = []netip.Prefix{gatewaytest.MustPrefix("0.0.0.0/32")}
	g = gatewaytest.New(t, gatewaytest.WithSource(proxies), trust)
	req := gatewaytest.SignedRequest("proxies", gatewaytest.OrderPaid(2000, "player-1", "crystals_100"))
	req.Header.Set("X-Forwarded-For", "unknown")
	if resp := g.Do(t, req); resp.StatusCode != 403 || g.Rows(t) != 0 {
		t.Errorf("X-Forwarded-For unknown from an admitted proxy: status %d, %d rows; want 403, none", resp.StatusCode, g.Rows(t))
	}
}
