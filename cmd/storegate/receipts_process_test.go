package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"storegate/adapters/mail/mailtest"
	"storegate/signing"
)

// receiptsConfig is a gateway granting Xsolla orders of game keys in its
// ledger and e-mailing their receipts through relay.
func receiptsConfig(t *testing.T, dir string, n node, dsn string, relay *mailtest.Relay) string {
	t.Helper()
	cfg := fmt.Sprintf(`
listen: %s
metrics_listen: %s
log_level: warn
store: {dsn: %q}
admin: {tokens: ["${T_ADMIN}"]}
dispatch: {lease: 3s, timeout: 2s}
sources:
  - {name: xs, kind: xsolla, secrets: ["${T_SECRET}"], target: ledger, allow_ips: ["127.0.0.1", "::1"]}
targets:
  - {name: ledger, kind: ledger, player_pattern: "^p[0-9]+$"}
catalog:
  - {sku: 110101_steam, type: game_key}
receipts: {enabled: true, host: 127.0.0.1, port: %d, tls: none, from: receipts@shop.example, timeout: 1s}
`, n.addr, n.metrics, dsn, relay.Port)
	path := filepath.Join(dir, "receipts.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func postKeyOrder(t *testing.T, addr string, order int) {
	t.Helper()
	body := fmt.Sprintf(`{"notification_type":"order_paid","order":{"id":%d},"user":{"external_id":"p%d","email":"buyer%d@example.com"},"items":[{"sku":"110101_steam","quantity":1}]}`,
		order, order, order)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/xsolla/xs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", signing.XsollaSignature([]byte(body), processSecret))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("order %d: status %d", order, resp.StatusCode)
	}
}

// waitMessages waits until the relay accepted n messages.
func waitMessages(t *testing.T, relay *mailtest.Relay, n int, p *proc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(relay.Messages()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the relay accepted %d receipts, want %d; logs:\n%s", len(relay.Messages()), n, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A receipt goes once per order, with its game key, even when the gateway
// is killed in the middle of sending it: the relay had accepted nothing,
// so the restarted gateway sends it, under the same Message-ID, and it
// arrives once.
func TestProcess_ReceiptsOnceAcrossAKillMidSend(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	relay := mailtest.Start(t)
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "storegate.db")
	n := freeNode(t)
	config := receiptsConfig(t, dir, n, dsn, relay)
	first := start(t, config, n)

	req, _ := http.NewRequest(http.MethodPost, "http://"+n.addr+"/admin/v1/keys/110101_steam",
		strings.NewReader(`{"keys":["STEAM-AAAA-1111","STEAM-BBBB-2222","STEAM-CCCC-3333"]}`))
	req.Header.Set("Authorization", "Bearer process-admin-token-123")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 201 {
		t.Fatalf("import keys: %d %s", resp.StatusCode, raw)
	}

	// Order 1's receipt goes and is recorded before the kill.
	postKeyOrder(t, n.addr, 1)
	waitMessages(t, relay, 1, first)
	waitDrained(t, first)

	// Order 2's receipt is held by the relay before it accepts anything,
	// and the gateway is killed there.
	reached, release := relay.Hold()
	postKeyOrder(t, n.addr, 2)
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatalf("order 2's receipt never reached the relay; logs:\n%s", first.log())
	}
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.cmd.Wait()
	release()

	second := start(t, config, n)
	postKeyOrder(t, n.addr, 3)
	waitMessages(t, relay, 3, second)
	waitDrained(t, second)
	stop(t, second)

	byID := relay.ByMessageID()
	if len(byID) != 3 {
		t.Fatalf("receipts by Message-ID %v, want 3 receipts", byID)
	}
	for id, count := range byID {
		if count != 1 {
			t.Errorf("receipt %s arrived %d times", id, count)
		}
	}
	keys := map[string]string{}
	for _, m := range relay.Messages() {
		if len(m.To) != 1 {
			t.Fatalf("recipients %v", m.To)
		}
		for _, k := range []string{"STEAM-AAAA-1111", "STEAM-BBBB-2222", "STEAM-CCCC-3333"} {
			if strings.Contains(m.Body, k) {
				keys[k] = m.To[0]
			}
		}
	}
	if len(keys) != 3 {
		t.Errorf("keys by recipient %v: want each order's key in its receipt", keys)
	}
	for _, p := range []*proc{first, second} {
		if strings.Contains(p.log(), "STEAM-") {
			t.Errorf("a log shows a game key:\n%s", p.log())
		}
	}
	if s := readState(t, dsn); s.done != 6 || s.pending != 0 {
		t.Errorf("outbox: %d done, %d pending; want 3 grants and 3 receipts done", s.done, s.pending)
	}
}
