package webhooks_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"storegate/internal/gatewaytest"
)

// A body over the server-wide limit is refused by the HTTP server itself,
// before any handler runs; over a real connection the sender still gets the
// documented 413 answer. The client announces the size and waits: the server
// answers from the Content-Length alone (a client still writing the body
// would race the server closing the connection).
func TestXsolla_OversizeOverRealConnection(t *testing.T) {
	g := gatewaytest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.App.Listener(ln)
	t.Cleanup(func() { g.App.ShutdownWithTimeout(5 * time.Second) })
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /webhooks/xsolla/xs HTTP/1.1\r\nHost: storegate\r\nContent-Type: application/json\r\n"+
		"Authorization: Signature 0000000000000000000000000000000000000000\r\nContent-Length: %d\r\n\r\n", 70<<10)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), `"code":"PAYLOAD_TOO_LARGE"`) {
		t.Fatalf("answer = %d %s, want 413 PAYLOAD_TOO_LARGE", resp.StatusCode, raw)
	}
	if n := g.Rows(t); n != 0 {
		t.Fatalf("%d rows left behind", n)
	}
}
