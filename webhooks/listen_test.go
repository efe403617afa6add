package webhooks_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"storegate/signing"
)

// A body over the server-wide limit is refused by the HTTP server itself,
// before any handler runs; over a real connection the sender still gets the
// documented 413 answer.
func TestXsolla_OversizeOverRealConnection(t *testing.T) {
	g := newGateway(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.app.Listener(ln)
	t.Cleanup(func() { g.app.ShutdownWithTimeout(5 * time.Second) })
	body := `{"notification_type":"order_paid","pad":"` + strings.Repeat("x", 70<<10) + `"}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/webhooks/xsolla/xs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", signing.XsollaSignature([]byte(body), secret))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), `"code":"PAYLOAD_TOO_LARGE"`) {
		t.Fatalf("answer = %d %s, want 413 PAYLOAD_TOO_LARGE", resp.StatusCode, raw)
	}
	if n := g.rows(t); n != 0 {
		t.Fatalf("%d rows left behind", n)
	}
}
