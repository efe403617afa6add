package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"storegate/signing"
	"storegate/store"
	"storegate/store/engine"
)

// These tests run the real binary as a separate process, so they can kill it
// with SIGKILL: what a 204 promised must survive that.

func binary(t *testing.T) string {
	t.Helper()
	return goBuild(t, ".")
}

const processSecret = "process-test-secret"

type proc struct {
	cmd *exec.Cmd
	node
	logs   *strings.Builder
	stderr *lockedWriter // guards logs: the process writes while a test reads
}

// log is what the process wrote to stderr so far.
func (p *proc) log() string {
	p.stderr.mu.Lock()
	defer p.stderr.mu.Unlock()
	return p.logs.String()
}

// node is where one gateway process listens: the routes on addr, /metrics
// on metrics.
type node struct{ addr, metrics string }

func freeNode(t *testing.T) node {
	n := node{freeAddr(t), freeAddr(t)}
	for n.metrics == n.addr {
		n.metrics = freeAddr(t)
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeConfig(t *testing.T, dir string, n node, dsn string, dispatch bool) string {
	t.Helper()
	return writeConfigTo(t, dir, n, dsn, dispatch, `ledger, kind: ledger, player_pattern: "^p[0-9]+$"`)
}

// writeConfigTo is writeConfig with the source's grants going to the
// target described (the inside of its flow mapping, name first).
func writeConfigTo(t *testing.T, dir string, n node, dsn string, dispatch bool, target string) string {
	t.Helper()
	name, _, _ := strings.Cut(target, ",")
	cfg := fmt.Sprintf(`
listen: %s
metrics_listen: %s
log_level: warn
store: {dsn: %q}
admin: {tokens: ["${T_ADMIN}"]}
dispatch: {disabled: %v, lease: 3s, timeout: 1s}
sources:
  - {name: xs, kind: xsolla, secrets: ["${T_SECRET}"], target: %s, allow_ips: ["127.0.0.1", "::1"]}
targets:
  - {name: %s}
catalog:
  - {sku: crystals_100, type: coin, currency: CRYSTALS, amount: 100}
`, n.addr, n.metrics, dsn, !dispatch, name, target)
	path := filepath.Join(dir, fmt.Sprintf("storegate-%s-%v.yaml", strings.ReplaceAll(n.addr, ":", "_"), dispatch))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func start(t *testing.T, config string, n node) *proc {
	t.Helper()
	return startEnv(t, config, n, os.Environ())
}

// startEnv is start with the process's environment.
func startEnv(t *testing.T, config string, n node, env []string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary(t), "serve", "--config", config), node: n, logs: &strings.Builder{}}
	p.cmd.Env = append(env, "T_ADMIN=process-admin-token-123", "T_SECRET="+processSecret)
	p.stderr = &lockedWriter{w: p.logs}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + n.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("gateway did not become ready; logs:\n%s", p.log())
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// String is what was written, when the writer keeps it (a bytes.Buffer).
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.w.(fmt.Stringer); ok {
		return s.String()
	}
	return ""
}

var client = &http.Client{Timeout: 10 * time.Second}

func postOrder(addr string, order int, player string) (int, error) {
	body := fmt.Sprintf(`{"notification_type":"order_paid","order":{"id":%d},"user":{"external_id":%q},"items":[{"sku":"crystals_100","quantity":1}]}`, order, player)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/xsolla/xs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", signing.XsollaSignature([]byte(body), processSecret))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// sendLoad posts orders 1..n spread over 10 players, plus 50 concurrent copies
// of order 1, and returns when every one was answered 204.
func sendLoad(t *testing.T, addr string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n+50)
	sem := make(chan struct{}, 32)
	send := func(order int) {
		defer wg.Done()
		sem <- struct{}{}
		defer func() { <-sem }()
		status, err := postOrder(addr, order, fmt.Sprintf("p%d", order%10))
		if err == nil && status != 204 {
			err = fmt.Errorf("order %d: status %d", order, status)
		}
		if err != nil {
			errs <- err
		}
	}
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go send(i)
	}
	for range 50 {
		wg.Add(1)
		go send(1)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

type ledgerState struct {
	events, pending, done, grants int
	balance                       int64
}

// readState opens the database directly.
func readState(t *testing.T, dsn string) ledgerState {
	t.Helper()
	db, err := store.Open(context.Background(), engine.Config{DSN: dsn, Migrations: tables()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var s ledgerState
	q := func(query string, dst any) {
		if err := db.QueryRow(ctx, query).Scan(dst); err != nil {
			t.Fatal(err)
		}
	}
	q(`SELECT COUNT(*) FROM inbox`, &s.events)
	q(`SELECT COUNT(*) FROM outbox WHERE state = 'pending'`, &s.pending)
	q(`SELECT COUNT(*) FROM outbox WHERE state = 'done'`, &s.done)
	q(`SELECT COUNT(*) FROM ledger_transactions`, &s.grants)
	q(`SELECT COALESCE(SUM(balance), 0) FROM ledger_wallets`, &s.balance)
	return s
}

func waitDrained(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.metrics + "/metrics")
		if err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(raw), `storegate_outbox_commands{state="pending"} 0`) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("outbox did not drain; logs:\n%s", p.log())
}

// metricLines reads the gateway's /metrics.
func metricLines(t *testing.T, p *proc) []string {
	t.Helper()
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return strings.Split(string(raw), "\n")
}

// scrape reads one unlabelled sample from the gateway's /metrics.
func scrape(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	for _, line := range metricLines(t, p) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

func stop(t *testing.T, p *proc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gateway exited with %v; logs:\n%s", err, p.log())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gateway did not stop on SIGTERM")
	}
}

func TestProcess_SIGKILLAfter204LosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	const orders = 300
	for _, tc := range []struct {
		name     string
		dispatch bool // whether the first process delivers before it dies
	}{
		{"killed before any delivery", false},
		{"killed while delivering", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dsn := "sqlite:" + filepath.Join(dir, "storegate.db")
			n := freeNode(t)
			first := start(t, writeConfig(t, dir, n, dsn, tc.dispatch), n)
			sendLoad(t, n.addr, orders)
			// Every order was answered 204: kill at once, no chance to flush.
			first.cmd.Process.Signal(syscall.SIGKILL)
			first.cmd.Wait()

			before := readState(t, dsn)
			t.Logf("at SIGKILL: %d events, %d commands pending, %d done", before.events, before.pending, before.done)
			if before.events != orders {
				t.Fatalf("%d events survived SIGKILL, want all %d answered 204", before.events, orders)
			}
			if !tc.dispatch && before.pending != orders {
				t.Fatalf("%d pending with the dispatcher off, want %d", before.pending, orders)
			}

			second := start(t, writeConfig(t, dir, n, dsn, true), n)
			waitDrained(t, second)
			if commits := scrape(t, second, "storegate_store_commit_seconds_count"); commits < 1 {
				t.Errorf("/metrics shows %v commits after the deliveries, want some", commits)
			}
			stop(t, second)
			after := readState(t, dsn)
			if after.done != orders || after.grants != orders || after.balance != orders*100 {
				t.Fatalf("after restart: %d done, %d grants, balance %d; want %d, %d, %d",
					after.done, after.grants, after.balance, orders, orders, orders*100)
			}
		})
	}
}

// serve runs the collector at GOGC=400 unless GOGC says otherwise (see
// defaultGCPercent); Go's own metric shows what the process runs with.
func TestProcess_GCPercent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") {
			env = append(env, kv)
		}
	}
	for _, c := range []struct {
		env  []string
		want float64
	}{
		{env, defaultGCPercent},
		{append(slices.Clone(env), "GOGC=150"), 150},
	} {
		dir := t.TempDir()
		n := freeNode(t)
		p := startEnv(t, writeConfig(t, dir, n, "sqlite:"+filepath.Join(dir, "s.db"), false), n, c.env)
		if got := scrape(t, p, "go_gc_gogc_percent"); got != c.want {
			t.Errorf("go_gc_gogc_percent = %v, want %v", got, c.want)
		}
		stop(t, p)
	}
}
