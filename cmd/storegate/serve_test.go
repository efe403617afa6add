package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// /metrics is served on its own listener only: the senders' listener,
// which Xsolla and partners call, answers 404 for it.
func TestServe_MetricsOnTheirOwnListener(t *testing.T) {
	cfg, err := ParseConfig([]byte(minimal+"store: {dsn: \"sqlite:"+filepath.Join(t.TempDir(), "s.db")+"\"}\n"),
		env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(context.Background(), cfg, Options{Log: newLogger(io.Discard, "error")})
	if err != nil {
		t.Fatal(err)
	}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	senders, scrapes := listen(), listen()
	serveUntilCleanup(t, g, senders, scrapes)
	get := func(addr, path string, header http.Header) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if status, body := get(senders.Addr().String(), "/metrics", nil); status != 404 || !strings.Contains(body, "NOT_FOUND") {
		t.Errorf("/metrics on the senders' listener = %d %q, want 404 NOT_FOUND", status, body)
	}
	// A request refused before any route is counted, and seen on /metrics.
	if status, _ := get(senders.Addr().String(), "/healthz", http.Header{"X-Pad": {strings.Repeat("x", 8000)}}); status != 431 {
		t.Errorf("a request with 8 KB of headers = %d, want 431", status)
	}
	status, body := get(scrapes.Addr().String(), "/metrics", nil)
	if want := `storegate_requests_total{source="",status="431",type=""} 1`; status != 200 || !strings.Contains(body, want) {
		t.Errorf("/metrics on the metrics listener = %d, want 200 with %s:\n%.1000s", status, want, body)
	}
	if status, _ := get(scrapes.Addr().String(), "/webhooks/xsolla/xs", nil); status != 404 {
		t.Errorf("the metrics listener serves the senders' routes: %d, want 404", status)
	}
}

// serveUntilCleanup serves g until the test ends, and fails the test if
// serving, or shutting down, fails.
func serveUntilCleanup(t *testing.T, g *Gateway, ln, metrics net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, ln, metrics) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

// Starting on a store folder storegate cannot use fails at once, naming
// the folder and what to do.
func TestServe_UnusableStoreFolderIsNamed(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-folder")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "storegate.yaml")
	text := fmt.Sprintf("listen: 127.0.0.1:0\nmetrics_listen: \"off\"\nstore: {dsn: \"sqlite:%s/data/s.db\"}\nadmin: {tokens: [\"0123456789abcdef0\"]}\n", blocker)
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", config}, nil, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "store folder "+blocker+"/data cannot be found or created") ||
		!strings.Contains(err.Error(), "store.dsn") {
		t.Fatalf("serve = %v, want the store folder named with what to do", err)
	}
}
