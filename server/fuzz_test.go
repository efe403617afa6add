package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"storegate/internal/gatewaytest"
)

// FuzzEdge sends arbitrary bytes as one client's whole connection, through
// the server's own connection handling: every answer is a JSON error or a
// success, never a 5xx; a refusal quotes nothing of the request and ends the
// connection; and nothing is stored unless a request was answered 2xx.
func FuzzEdge(f *testing.F) {
	head, body := signedOrder(1)
	for _, seed := range []string{
		head + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body),
		head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(body),
		head + fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", len(body), chunked(body)),
		"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\nGET /readyz HTTP/1.1\r\nHost: gw\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-For: ::1\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: gw\r\nBroken Header: x\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"POST /admin/v1/players/p/wallets/%D0%A1RYSTALS/adjustments HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}",
	} {
		f.Add([]byte(seed))
	}
	g := gatewaytest.New(f)
	g.Do(f, httptest.NewRequest(http.MethodGet, "/healthz", nil)) // builds the routes, as serving does
	srv := g.App.Server()
	f.Fuzz(func(t *testing.T, raw []byte) {
		before := g.Rows(t)
		accepted := false
		conn := &scriptedConn{in: bytes.NewReader(raw)}
		_ = srv.ServeConn(conn) // a connection that ends mid-request is the client's doing
		r := bufio.NewReader(&conn.out)
		for {
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				break
			}
			answer, _ := io.ReadAll(resp.Body)
			checkAnswer(t, raw, resp, answer)
			accepted = accepted || resp.StatusCode < 300
			if resp.StatusCode >= 400 && resp.Close && r.Buffered() > 0 {
				t.Fatalf("answers after a refusal that closed the connection: %q", conn.out.String())
			}
		}
		if n := g.Rows(t); n != before && !accepted {
			t.Fatalf("%d rows stored, none answered 2xx, for %q", n-before, raw)
		}
	})
}

// refusals are the codes of requests refused before any route: their
// messages are fixed.
var refusals = map[string]bool{"MALFORMED_REQUEST": true, "HEADERS_TOO_LARGE": true, "REQUEST_TIMEOUT": true, "PAYLOAD_TOO_LARGE": true}

func checkAnswer(t *testing.T, raw []byte, resp *http.Response, answer []byte) {
	t.Helper()
	if resp.StatusCode >= 500 {
		t.Fatalf("status %d %q for %q", resp.StatusCode, answer, raw)
	}
	if resp.StatusCode < 400 {
		return
	}
	var e gatewaytest.ErrorAnswer
	if err := json.Unmarshal(answer, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d with %q, want a JSON error, for %q", resp.StatusCode, answer, raw)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Fatalf("status %d without a request id, for %q", resp.StatusCode, raw)
	}
	if !refusals[e.Error.Code] {
		return
	}
	for i := 0; i+16 <= len(raw); i++ {
		if bytes.Contains(answer, raw[i:i+16]) {
			t.Fatalf("refusal %q quotes the request %q", answer, raw)
		}
	}
}

// scriptedConn is a client connection that sends a fixed script of bytes,
// then ends, and keeps what the server writes.
type scriptedConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptedConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *scriptedConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *scriptedConn) Close() error                { return nil }
func (c *scriptedConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
}
func (c *scriptedConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptedConn) SetWriteDeadline(time.Time) error { return nil }
