// Command storegate-bench is the load generator behind `make bench`. It
// builds and starts the real gateway (SQLite, durable group commit,
// dispatcher on; with -postgres also on PostgreSQL with one and with two
// replicas) and a bare Fiber handler that answers 204, drives them with
// the same signed Xsolla order_paid load, closed-loop then open-loop, checks
// that every accepted webhook was granted exactly once, and prints a Markdown
// table. The bare server is the ceiling: the ratio says what storing and
// granting costs on top of HTTP on this machine. The floors (floors.go) say
// what a durable write costs on it before any of storegate's work, and
// (floor-accept) what the gateway's HTTP surface over the least durable
// accept costs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	duration, warmup time.Duration
	concurrency      int
	rate             int
	openShares       []float64
	openWorkers      int
	drainLimit       time.Duration
	keep             bool
	gateway          string
	postgres         string
	floors           bool
	noGateway        bool
	// The delivery phases (delivery.go).
	delivery, deliveryOnly bool
	backlog, slowBacklog   int
	slowDelay              time.Duration
	outage                 time.Duration
	outageRate             int
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storegate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each phase")
	fs.IntVar(&o.concurrency, "concurrency", 64, "closed-loop workers, one keep-alive connection each")
	fs.IntVar(&o.rate, "rate", 5000, "open-loop offered requests/s, when -open-share is empty")
	fs.Func("open-share", "open loops offering these shares of the closed loop's rate measured just before, comma separated (default 0.5,0.8; empty: one open loop at -rate)",
		func(s string) error {
			o.openShares = nil
			for _, f := range strings.Split(s, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				v, err := strconv.ParseFloat(f, 64)
				if err != nil || v <= 0 || v > 2 {
					return fmt.Errorf("share %q: want a number in (0, 2]", f)
				}
				o.openShares = append(o.openShares, v)
			}
			return nil
		})
	o.openShares = []float64{0.5, 0.8}
	fs.IntVar(&o.openWorkers, "open-workers", 512, "open-loop maximum requests in flight")
	fs.DurationVar(&o.drainLimit, "drain-timeout", time.Minute, "how long to wait for the dispatcher to drain")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (gateway binary, config, database, logs)")
	fs.StringVar(&o.gateway, "gateway", "", "use this gateway binary instead of building ./cmd/storegate (e.g. a profiling build)")
	fs.StringVar(&o.postgres, "postgres", os.Getenv("STOREGATE_BENCH_POSTGRES_DSN"), "also run on this PostgreSQL server, with 1 and 2 replicas (default $STOREGATE_BENCH_POSTGRES_DSN)")
	fs.BoolVar(&o.floors, "floors", true, "also load four floor servers: a file appended to and flushed, a one-table SQLite, storegate's store storing the event alone, and the gateway's HTTP surface over the one-table SQLite (see floors.go)")
	fs.BoolVar(&o.noGateway, "no-gateway", false, "skip the gateway: load only the bare handler and the floors")
	fs.BoolVar(&o.delivery, "delivery", true, "also run the delivery phases: a backlog drained to a fast studio backend, to a slow one, and an outage under load (see delivery.go)")
	fs.BoolVar(&o.deliveryOnly, "delivery-only", false, "run the delivery phases alone")
	fs.IntVar(&o.backlog, "backlog", 50000, "delivery: the backlog drained to a fast backend")
	fs.IntVar(&o.slowBacklog, "slow-backlog", 3000, "delivery: the backlog drained to a slow backend")
	fs.DurationVar(&o.slowDelay, "slow-backend", 300*time.Millisecond, "delivery: how long the slow backend takes to answer")
	fs.DurationVar(&o.outage, "outage", time.Minute, "delivery: how long the backend is down under load (0: no outage phase)")
	fs.IntVar(&o.outageRate, "outage-rate", 500, "delivery: orders/s offered through the outage")
	bareListen := fs.String("bare-listen", "", "internal: serve the bare handler on ADDR")
	floorListen := fs.String("floor-listen", "", "internal: serve a floor on ADDR")
	floorKind := fs.String("floor-kind", "", "internal: which floor")
	floorDir := fs.String("floor-dir", "", "internal: the floor's data folder")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: storegate-bench [flags]  (run from inside the storegate module)")
		fs.VisitAll(func(f *flag.Flag) {
			switch {
			case f.Name == "bare-listen" || strings.HasPrefix(f.Name, "floor-"):
			case f.DefValue == "" || f.DefValue == "false":
				fmt.Fprintf(stderr, "  -%s: %s\n", f.Name, f.Usage)
			default:
				fmt.Fprintf(stderr, "  -%s: %s (default %s)\n", f.Name, f.Usage, f.DefValue)
			}
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *bareListen != "" {
		if err := serveBare(*bareListen); err != nil {
			fmt.Fprintln(stderr, "bare:", err)
			return 1
		}
		return 0
	}
	if *floorListen != "" {
		if err := serveFloor(*floorListen, *floorKind, *floorDir); err != nil {
			fmt.Fprintln(stderr, "floor:", err)
			return 1
		}
		return 0
	}
	if o.duration <= 0 || o.duration > time.Hour || o.warmup < 0 || o.warmup > time.Hour ||
		o.concurrency < 1 || o.concurrency > 10000 || o.rate < 1 || o.rate > 1_000_000 ||
		o.openWorkers < 1 || o.openWorkers > 10000 || o.drainLimit <= 0 ||
		o.backlog < 1 || o.slowBacklog < 1 || o.slowDelay < 0 || o.outage < 0 || o.outageRate < 1 || o.outageRate > 100_000 {
		fmt.Fprintln(stderr, "storegate-bench: a flag is out of range (see -h)")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench(ctx, o, stderr)
	if rep != nil {
		rep.print(stdout, o)
	}
	if err != nil {
		fmt.Fprintln(stderr, "storegate-bench:", err)
		return 1
	}
	return 0
}

// run is one gateway configuration under load: SQLite, or PostgreSQL with
// one or more replicas sharing the database.
type gwRun struct {
	name               string
	replicas           int
	closed             *result
	opens              []*result
	accepted           int64 // distinct webhooks answered 2xx (warm-ups included)
	ambiguous          int64 // no answer: may or may not have committed
	outbox             map[string]int64
	drain              time.Duration
	pendingAtEnd       int64 // when the load stopped
	burstBacklog       int64 // pending when the closed loop stopped
	burstDrain         time.Duration
	dupOrders, dupSent int64 // cross-replica duplicate phase
	err                error
}

// report is everything the table shows.
type report struct {
	runs       []*gwRun
	bareClosed *result
	bareOpens  []*result
	delivery   deliveryReport
	floors     []floorRun
}

// floorRun is one floor server's phases (see floors.go).
type floorRun struct {
	name   string
	closed *result
	opens  []*result
}

func bench(ctx context.Context, o options, log io.Writer) (*report, error) {
	dir, err := os.MkdirTemp("", "storegate-bench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintln(log, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := o.gateway
	if bin == "" && (!o.noGateway || o.deliveryOnly) {
		fmt.Fprintln(log, "building the gateway...")
		if bin, err = buildGateway(ctx, dir); err != nil {
			return nil, err
		}
	}
	secret := randomHex(16)
	conns := max(o.concurrency, o.openWorkers) + 8
	rep := &report{}
	var errs []error

	if o.deliveryOnly || (o.delivery && !o.noGateway) {
		d, err := deliveryRuns(ctx, o, bin, dir, secret, log)
		rep.delivery = d
		errs = append(errs, err)
		if o.deliveryOnly || ctx.Err() != nil {
			return rep, errors.Join(errs...)
		}
	}
	if !o.noGateway {
		r := gatewayRun(ctx, o, bin, dir, "sqlite", "sqlite:"+filepath.Join(dir, "bench.db"), 1, secret, conns, log)
		rep.runs = append(rep.runs, r)
		errs = append(errs, r.err)
	}
	if o.postgres != "" && !o.noGateway {
		for _, n := range []int{1, 2} {
			if ctx.Err() != nil {
				break
			}
			dsn, drop, err := pgSchema(ctx, o.postgres)
			if err != nil {
				errs = append(errs, err)
				break
			}
			r := gatewayRun(ctx, o, bin, dir, fmt.Sprintf("postgres-x%d", n), dsn, n, secret, conns, log)
			drop()
			rep.runs = append(rep.runs, r)
			errs = append(errs, r.err)
		}
	}
	if ctx.Err() != nil {
		return nil, errors.New("interrupted")
	}

	settleDisk()
	bare, err := startBare(ctx, dir)
	if err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	defer bare.stop()
	rep.bareClosed, rep.bareOpens = phases(ctx, newTarget("bare", []string{bare.addr}, secret, conns), o, log, nil, nil)
	bare.stop()
	if ctx.Err() != nil {
		return nil, errors.New("interrupted")
	}
	if o.floors {
		for _, kind := range floorKinds {
			settleDisk()
			s, err := startFloor(ctx, dir, kind, secret)
			if err != nil {
				errs = append(errs, err)
				break
			}
			c, p := phases(ctx, newTarget(kind, []string{s.addr}, secret, conns), o, log, nil, nil)
			s.stop()
			if !o.keep {
				os.RemoveAll(filepath.Join(dir, kind)) // its unwritten pages with it
			}
			if ctx.Err() != nil {
				return nil, errors.New("interrupted")
			}
			rep.floors = append(rep.floors, floorRun{kind, c, p})
		}
	}
	return rep, errors.Join(errs...)
}

// gatewayRun starts replicas gateway processes on dsn, loads them, lets the
// dispatcher drain, and checks that every accepted webhook was granted once.
func gatewayRun(ctx context.Context, o options, bin, dir, name, dsn string, replicas int, secret string, conns int, log io.Writer) *gwRun {
	r := &gwRun{name: name, replicas: replicas}
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	var addrs []string
	for i := range replicas {
		s, err := startGateway(ctx, bin, dir, fmt.Sprintf("%s-%d", name, i+1), dsn, secret)
		if err != nil {
			r.err = fmt.Errorf("%s: %w", name, err)
			return r
		}
		servers = append(servers, s)
		addrs = append(addrs, s.addr)
	}
	t := newTarget(name, addrs, secret, conns)
	r.closed, r.opens = phases(ctx, t, o, log, func() {
		if c, err := outbox(servers); err == nil {
			r.burstBacklog = c["pending"]
		}
		fmt.Fprintf(log, "%s: draining the closed loop's backlog before the open loop...\n", name)
		start := time.Now()
		servers[0].waitDrained(ctx, o.drainLimit)
		r.burstDrain = time.Since(start)
	}, servers)
	if ctx.Err() != nil {
		r.err = ctx.Err()
		return r
	}
	r.accepted, r.ambiguous = t.accepted.Load(), t.transport.Load()
	if replicas > 1 {
		// Every order to every replica at the same moment: each copy must be
		// answered and exactly one granted.
		fmt.Fprintf(log, "%s: %d orders, each sent to all %d replicas at once...\n", name, dupOrders, replicas)
		r.dupOrders, r.dupSent = duplicatePhase(ctx, t, dupOrders)
		r.accepted += r.dupOrders
	}
	if c, err := outbox(servers); err == nil {
		r.pendingAtEnd = c["pending"]
	}
	fmt.Fprintf(log, "%s: waiting for the dispatcher to drain...\n", name)
	start := time.Now()
	_, _, drainErr := servers[0].waitDrained(ctx, o.drainLimit)
	r.drain = time.Since(start)
	r.outbox, _ = outbox(servers)
	if drainErr != nil {
		r.err = fmt.Errorf("%s: %w; exactly-once grants not verified", name, drainErr)
		return r
	}
	r.err = r.verify()
	return r
}

// dupOrders is how many orders the cross-replica duplicate phase sends.
const dupOrders = 2000

// duplicatePhase sends n new orders, each to every replica concurrently, and
// returns how many orders got at least one 2xx and how many copies were sent.
func duplicatePhase(ctx context.Context, t *target, n int) (orders, sent int64) {
	workers := make([]*worker, len(t.clients))
	for i := range workers {
		workers[i] = t.newWorker()
		defer workers[i].release()
	}
	// newWorker takes replicas in turn, so the workers cover them all.
	for range n {
		if ctx.Err() != nil {
			break
		}
		id := orderSeq.Add(1)
		var ok atomic.Bool
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if w.sendOrder(id) {
					ok.Store(true)
				}
			}()
		}
		wg.Wait()
		sent += int64(len(workers))
		if ok.Load() {
			orders++
		}
	}
	// sendOrder counted every 2xx copy as accepted; only one per order is.
	t.accepted.Add(-(sent - orders))
	return orders, sent
}

// outbox sums the replicas' counters: pending and dead are global (one
// database), done and duplicates are per process.
func outbox(servers []*server) (map[string]int64, error) {
	total := map[string]int64{}
	for i, s := range servers {
		c, err := s.outbox()
		if err != nil {
			return nil, err
		}
		total["done"] += c["done"]
		total["duplicates"] += c["duplicates"]
		if i == 0 {
			total["pending"], total["dead"], total["discarded"] = c["pending"], c["dead"], c["discarded"]
		}
	}
	return total, nil
}

// phases runs the closed loop, then for each open loop between() (the
// gateway drains the backlog there, so the open loop measures a steady rate
// and not the catch-up after a burst), then the open loop: one per
// -open-share, offering that share of the closed loop's rate, so every
// server is loaded alike relative to what it can do; or one at -rate.
func phases(ctx context.Context, t *target, o options, log io.Writer, between func(), servers []*server) (closed *result, opens []*result) {
	fmt.Fprintf(log, "%s: closed loop, %d workers, %v + %v warm-up...\n", t.name, o.concurrency, o.duration, o.warmup)
	var c result
	observe(servers, &c, func() { c = closedLoop(ctx, t, o.concurrency, o.warmup, o.duration) })
	fmt.Fprintf(log, "%s: closed loop %.0f req/s, p99 %s, %d errors\n", t.name, c.rate(), ms(c.lat.quantile(0.99)), c.errs)
	type load struct {
		rate  int
		share float64
	}
	loads := []load{{o.rate, 0}}
	if len(o.openShares) > 0 {
		loads = nil
		for _, s := range o.openShares {
			loads = append(loads, load{max(1, int(s*c.rate())), s})
		}
	}
	for _, l := range loads {
		if ctx.Err() != nil {
			break
		}
		if between != nil {
			between()
		}
		fmt.Fprintf(log, "%s: open loop, %d req/s offered, %v + %v warm-up...\n", t.name, l.rate, o.duration, o.warmup)
		p := &result{}
		observe(servers, p, func() { *p = openLoop(ctx, t, o.openWorkers, l.rate, o.warmup, o.duration) })
		p.offered, p.share = l.rate, l.share
		fmt.Fprintf(log, "%s: open loop %.0f req/s, p99 %s, %d errors, %d late\n", t.name, p.rate(), ms(p.lat.quantile(0.99)), p.errs, p.late)
		opens = append(opens, p)
	}
	if m := t.errMsg.Load(); m != nil {
		fmt.Fprintf(log, "%s: first error: %s\n", t.name, *m)
	}
	return &c, opens
}

// observe runs load and records in r how the first server spent it.
func observe(servers []*server, r *result, load func()) {
	if len(servers) == 0 {
		load()
		return
	}
	before, err := servers[0].outbox()
	start, cpu := time.Now(), selfCPU()
	load()
	r.gen = selfCPU() - cpu
	after, err2 := servers[0].outbox()
	if err != nil || err2 != nil {
		return
	}
	r.wall = time.Since(start)
	r.gw = map[string]int64{}
	for _, key := range writerMetrics {
		r.gw[key] = after[key] - before[key]
	}
	r.gw["rss"] = after["rss"] // a gauge: its value at the end
}

// spent describes r.gw: the share of the phase the committers spent
// committing, their commits, the log flushes their answers waited for, the
// pauses for log restarts and garbage collection, the gateway's CPU, and
// the load generator's (it shares the machine).
func spent(r *result) string {
	if r == nil || r.gw == nil || r.wall <= 0 {
		return ""
	}
	g, wall := r.gw, float64(r.wall.Microseconds())
	per := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	s := fmt.Sprintf("commits %.0f%% of the time (summed over committers; %d commits of %.1f writes, %.2f ms each)",
		100*float64(g["commit_us"])/wall, g["commits"], per(g["commit_writes"], g["commits"]), per(g["commit_us"], g["commits"])/1000)
	if g["syncs"] > 0 {
		s += fmt.Sprintf(", %d log flushes of %.2f ms", g["syncs"], per(g["sync_us"], g["syncs"])/1000)
	}
	// CPU per write is the steadier figure to compare builds by on a noisy
	// machine: rates and latencies move with every pause of a shared core.
	s += fmt.Sprintf(", %d log restarts (%.0f ms in all), GC pauses %.0f ms, gateway CPU %.2f cores (%.0f µs per write committed), RSS %d MiB at the end",
		g["restarts"], float64(g["restart_us"])/1000, float64(g["gc_pause_us"])/1000, float64(g["cpu_us"])/wall, per(g["cpu_us"], g["commit_writes"]), g["rss"]>>20)
	if r.gen > 0 {
		s += fmt.Sprintf(", load generator CPU %.2f cores", float64(r.gen.Microseconds())/wall)
	}
	return s
}

// verify checks that each accepted webhook became exactly one granted
// command. A request that got no answer may or may not have committed, so
// only those widen the accepted range.
func (r *gwRun) verify() error {
	done := r.outbox["done"]
	if r.outbox["dead"] > 0 || r.outbox["discarded"] > 0 {
		return fmt.Errorf("%s: outbox has %d dead and %d discarded commands", r.name, r.outbox["dead"], r.outbox["discarded"])
	}
	if done < r.accepted || done > r.accepted+r.ambiguous {
		return fmt.Errorf("%s: accepted %d webhooks (+%d unanswered) but the outbox has %d done commands", r.name, r.accepted, r.ambiguous, done)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func (r *report) print(w io.Writer, o options) {
	fmt.Fprintf(w, "\n### storegate-bench\n\n")
	if len(r.runs) == 0 && r.bareClosed == nil && len(r.floors) == 0 {
		fmt.Fprintln(w, machine())
		r.delivery.print(w)
		return
	}
	fmt.Fprintf(w, "%s; closed loop: %d workers; open loops: %s, up to %d in flight; %v measured after %v warm-up each\n\n",
		machine(), o.concurrency, offeredText(o), o.openWorkers, o.duration, o.warmup)
	fmt.Fprintln(w, "| server | closed req/s | p50 | p99 | max | errors | open offered | open req/s | p50 | p99 | max | errors | late |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	row := func(name string, c *result, opens []*result) {
		if c == nil || len(opens) == 0 {
			fmt.Fprintf(w, "| %s | - | - | - | - | - | - | - | - | - | - | - | - |\n", name)
			return
		}
		for i, p := range opens {
			closed := fmt.Sprintf("%.0f | %s | %s | %s | %d", c.rate(), ms(c.lat.quantile(0.5)), ms(c.lat.quantile(0.99)), ms(c.lat.max), c.errs)
			if i > 0 {
				closed = "〃 | | | |"
			}
			offered := strconv.Itoa(p.offered)
			if p.share > 0 {
				offered = fmt.Sprintf("%d (%.0f%%)", p.offered, 100*p.share)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f | %s | %s | %s | %d | %d |\n", name, closed, offered,
				p.rate(), ms(p.lat.quantile(0.5)), ms(p.lat.quantile(0.99)), ms(p.lat.max), p.errs, p.late)
		}
	}
	for _, run := range r.runs {
		row("gateway "+run.name, run.closed, run.opens)
	}
	row("bare", r.bareClosed, r.bareOpens)
	for _, f := range r.floors {
		row(f.name, f.closed, f.opens)
	}
	fmt.Fprintln(w)
	for _, run := range r.runs {
		if run.closed != nil && r.bareClosed != nil && r.bareClosed.rate() > 0 {
			fmt.Fprintf(w, "- %s: gateway/bare closed-loop req/s %.3f; ", run.name, run.closed.rate()/r.bareClosed.rate())
		} else {
			fmt.Fprintf(w, "- %s: ", run.name)
		}
		fmt.Fprintf(w, "%d accepted, %d unanswered; done %d, pending %d, dead %d; closed-loop backlog %d drained in %.1fs",
			run.accepted, run.ambiguous, run.outbox["done"], run.outbox["pending"], run.outbox["dead"], run.burstBacklog, run.burstDrain.Seconds())
		if run.burstDrain > 0 && run.burstBacklog > 0 {
			fmt.Fprintf(w, " (%.0f commands/s)", float64(run.burstBacklog)/run.burstDrain.Seconds())
		}
		fmt.Fprintf(w, "; %d pending when the open loop stopped, drained in %.1fs", run.pendingAtEnd, run.drain.Seconds())
		if run.dupSent > 0 {
			fmt.Fprintf(w, "; duplicates: %d orders sent %d times across %d replicas, %d copies answered from the store",
				run.dupOrders, run.dupSent, run.replicas, run.outbox["duplicates"])
		}
		if run.err != nil {
			fmt.Fprintf(w, "; ERROR: %v", run.err)
		}
		fmt.Fprintln(w)
		phs := []struct {
			name string
			r    *result
		}{{"closed loop", run.closed}}
		for _, p := range run.opens {
			phs = append(phs, struct {
				name string
				r    *result
			}{fmt.Sprintf("open loop at %d req/s", p.offered), p})
		}
		for _, ph := range phs {
			if s := spent(ph.r); s != "" {
				fmt.Fprintf(w, "  - %s, warm-up included (%s): %s\n", ph.name, run.name+"-1", s)
			}
		}
	}
	for _, f := range r.floors {
		if f.closed != nil && r.bareClosed != nil && r.bareClosed.rate() > 0 {
			fmt.Fprintf(w, "- %s: floor/bare closed-loop req/s %.3f\n", f.name, f.closed.rate()/r.bareClosed.rate())
		}
	}
	fmt.Fprintf(w, "\nlatency: open loop from the scheduled send time; late = started over %v after schedule or never sent\n", lateAfter)
	r.delivery.print(w)
}

// offeredText says what the open loops offer.
func offeredText(o options) string {
	if len(o.openShares) == 0 {
		return fmt.Sprintf("%d req/s offered", o.rate)
	}
	var parts []string
	for _, s := range o.openShares {
		parts = append(parts, fmt.Sprintf("%.0f%%", 100*s))
	}
	return strings.Join(parts, " and ") + " of each server's closed-loop rate offered"
}

func machine() string {
	s := fmt.Sprintf("%s/%s, NumCPU %d, GOMAXPROCS %d, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return s + ", " + strings.TrimSpace(v)
			}
		}
	}
	return s
}
