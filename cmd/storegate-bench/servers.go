package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// adminTokenEnv carries the admin token to the gateway, because the config
// insists on ${VAR} secrets being possible and a 16+ character token.
const adminTokenEnv = "STOREGATE_BENCH_ADMIN_TOKEN"

// server is a subprocess under test.
type server struct {
	name    string
	addr    string
	metrics string // where a gateway serves /metrics
	cmd     *exec.Cmd
	exited  chan struct{}
	log     string // its stderr, kept in the temp dir
}

// buildGateway compiles ./cmd/storegate by import path, so it works from
// anywhere inside the module (make and go run both start at its root).
func buildGateway(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "storegate")
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", bin, "storegate/cmd/storegate")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build storegate/cmd/storegate: %w", err)
	}
	return bin, nil
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freeAddr asks the kernel for an unused loopback port. Another process could
// take it before the server binds; startup then fails loudly, not silently.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// benchPlayerPattern matches every player the load sends (p0 to p999): the
// gateway's ledger and floor-accept both take them as existing.
const benchPlayerPattern = `^p[0-9]+$`

func gatewayConfig(addr, metrics, dsn, secret string) string {
	return `# written by storegate-bench
listen: ` + addr + `
metrics_listen: ` + metrics + `
log_level: warn
store:
  dsn: ` + strconv.Quote(dsn) + `
admin:
  tokens: ["${` + adminTokenEnv + `}"]
sources:
  - name: bench
    kind: xsolla
    secrets: [` + strconv.Quote(secret) + `]
    target: ledger
    grant_on: order_paid
    allow_ips: ["127.0.0.1", "::1"]
targets:
  - name: ledger
    kind: ledger
    player_pattern: ` + strconv.Quote(benchPlayerPattern) + `
catalog:
  - sku: crystals_100
    type: coin
    currency: CRYSTALS
    amount: 100
    name: 100 Crystals
`
}

// startGateway runs the real binary with its defaults: durable commits and
// the dispatcher on.
func startGateway(ctx context.Context, bin, dir, name, dsn, secret string) (*server, error) {
	return startConfigured(ctx, bin, dir, name, func(addr, metrics string) string { return gatewayConfig(addr, metrics, dsn, secret) })
}

// startConfigured runs the real binary on the config that config writes
// for the addresses it is given.
func startConfigured(ctx context.Context, bin, dir, name string, config func(addr, metrics string) string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(config(addr, metrics)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), adminTokenEnv+"="+randomHex(16))
	s, err := start(ctx, name, addr, cmd, dir)
	if err != nil {
		return nil, err
	}
	s.metrics = metrics
	return s, nil
}

// pgSchema creates an empty schema for one PostgreSQL run and returns the
// DSN that uses it, and a function that drops it.
func pgSchema(ctx context.Context, base string) (string, func(), error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	schema := "storegate_bench_" + randomHex(6)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	drop := func() {
		admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// startBare re-executes this binary as a bare Fiber server, so both servers
// pay the same process and loopback costs and differ only in the handler.
func startBare(ctx context.Context, dir string) (*server, error) {
	return startSelf(ctx, dir, "bare", nil, "-bare-listen")
}

// startSelf re-executes this binary in the hidden mode listenFlag names,
// listening on a free loopback address, with env added to this process's
// environment and extra flags.
func startSelf(ctx context.Context, dir, name string, env []string, listenFlag string, extra ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{listenFlag, addr}, extra...)...)
	cmd.Env = append(os.Environ(), env...)
	return start(ctx, name, addr, cmd, dir)
}

func start(ctx context.Context, name, addr string, cmd *exec.Cmd, dir string) (*server, error) {
	s := &server{name: name, addr: addr, cmd: cmd, exited: make(chan struct{}), log: filepath.Join(dir, name+".log")}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { cmd.Wait(); logf.Close(); close(s.exited) }()
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get("http://" + s.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited during startup:\n%s", s.name, s.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v:\n%s", s.name, limit, s.tail())
		}
	}
}

// stop asks for a graceful shutdown, then kills after 10 s.
func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// tail is the end of the server's log, for error messages.
func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// outbox reads storegate_outbox_commands by state from /metrics, and the
// done count from storegate_dispatch_total{verdict="done"} (done commands are
// not a gauge: they only grow).
func (s *server) outbox() (map[string]int64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseOutbox(resp.Body)
}

// writerMetrics are the counters and sums of where the gateway's time goes
// that the report shows per phase (parseOutbox's keys; seconds kept as
// microseconds).
var writerMetrics = map[string]string{
	"storegate_store_commit_seconds_sum":              "commit_us",
	"storegate_store_commit_seconds_count":            "commits",
	"storegate_store_commit_writes_sum":               "commit_writes",
	"storegate_store_log_restart_pause_seconds_sum":   "restart_us",
	"storegate_store_log_restart_pause_seconds_count": "restarts",
	"storegate_store_log_sync_seconds_sum":            "sync_us",
	"storegate_store_log_sync_seconds_count":          "syncs",
	"go_gc_duration_seconds_sum":                      "gc_pause_us",
	"process_cpu_seconds_total":                       "cpu_us",
	"process_resident_memory_bytes":                   "rss",
}

func parseOutbox(r io.Reader) (map[string]int64, error) {
	const prefix = `storegate_outbox_commands{state="`
	out := map[string]int64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "storegate_duplicates_total{") {
			_, value, _ := strings.Cut(line, "} ")
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return nil, fmt.Errorf("metrics line %q: %w", line, err)
			}
			out["duplicates"] += int64(v)
			continue
		}
		if strings.HasPrefix(line, "storegate_dispatch_total{") && strings.Contains(line, `verdict="done"}`) {
			_, value, _ := strings.Cut(line, "} ")
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return nil, fmt.Errorf("metrics line %q: %w", line, err)
			}
			out["done"] += int64(v)
			continue
		}
		if name, value, ok := strings.Cut(line, " "); ok && writerMetrics[name] != "" {
			// Only described in the report: a value that does not parse
			// is left out rather than failing the drain and the check.
			v, err := strconv.ParseFloat(value, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if strings.HasSuffix(name, "seconds_sum") || strings.HasPrefix(name, "process_cpu") {
				v *= 1e6 // seconds, kept in microseconds
			}
			out[writerMetrics[name]] = int64(v)
			continue
		}
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		state, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", sc.Text(), err)
		}
		out[state] = int64(v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if _, ok := out["pending"]; !ok {
		return nil, errors.New("no storegate_outbox_commands{state=\"pending\"} in /metrics")
	}
	return out, nil
}

// waitDrained polls the outbox until nothing is pending, up to limit.
func (s *server) waitDrained(ctx context.Context, limit time.Duration) (map[string]int64, time.Duration, error) {
	start := time.Now()
	for {
		counts, err := s.outbox()
		if err == nil && counts["pending"] == 0 {
			return counts, time.Since(start), nil
		}
		if time.Since(start) > limit {
			if err == nil {
				err = fmt.Errorf("%d commands still pending", counts["pending"])
			}
			return counts, time.Since(start), fmt.Errorf("outbox not drained after %v: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return counts, time.Since(start), ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// serveBare is the hidden -bare-listen mode: Fiber with nothing but a 204.
func serveBare(addr string) error {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/readyz", func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusOK) })
	app.Post("/*", func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusNoContent) })
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); app.ShutdownWithTimeout(5 * time.Second) }()
	return app.Listen(addr)
}
