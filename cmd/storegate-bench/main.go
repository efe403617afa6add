// Command storegate-bench is the load generator behind `make bench`. It
// builds and starts the real gateway (SQLite, durable group commit,
// dispatcher on) and a bare Fiber handler that answers 204, drives both with
// the same signed Xsolla order_paid load, closed-loop then open-loop, checks
// that every accepted webhook was granted exactly once, and prints a Markdown
// table. The bare server is the ceiling: the ratio says what storing and
// granting costs on top of HTTP on this machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration, warmup time.Duration
	concurrency      int
	rate             int
	openWorkers      int
	drainLimit       time.Duration
	keep             bool
	gateway          string
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
	fs.IntVar(&o.rate, "rate", 5000, "open-loop offered requests/s")
	fs.IntVar(&o.openWorkers, "open-workers", 512, "open-loop maximum requests in flight")
	fs.DurationVar(&o.drainLimit, "drain-timeout", time.Minute, "how long to wait for the dispatcher to drain")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (gateway binary, config, database, logs)")
	fs.StringVar(&o.gateway, "gateway", "", "use this gateway binary instead of building ./cmd/storegate (e.g. a profiling build)")
	bareListen := fs.String("bare-listen", "", "internal: serve the bare handler on ADDR")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: storegate-bench [flags]  (run from inside the storegate module)")
		fs.VisitAll(func(f *flag.Flag) {
			switch {
			case f.Name == "bare-listen":
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
	if o.duration <= 0 || o.duration > time.Hour || o.warmup < 0 || o.warmup > time.Hour ||
		o.concurrency < 1 || o.concurrency > 10000 || o.rate < 1 || o.rate > 1_000_000 ||
		o.openWorkers < 1 || o.openWorkers > 10000 || o.drainLimit <= 0 {
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

// report is everything the table shows.
type report struct {
	gwClosed, gwOpen, bareClosed, bareOpen *result
	accepted, ambiguous                    int64
	outbox                                 map[string]int64
	drain                                  time.Duration
	pendingAtEnd                           int64 // when the load stopped
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
	if bin == "" {
		fmt.Fprintln(log, "building the gateway...")
		if bin, err = buildGateway(ctx, dir); err != nil {
			return nil, err
		}
	}
	secret := randomHex(16)
	conns := max(o.concurrency, o.openWorkers) + 8
	rep := &report{}

	gw, err := startGateway(ctx, bin, dir, secret)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	t := newTarget("gateway", gw.addr, secret, conns)
	rep.gwClosed, rep.gwOpen = phases(ctx, t, o, log)
	if ctx.Err() != nil {
		return nil, errors.New("interrupted")
	}
	rep.accepted, rep.ambiguous = t.accepted.Load(), t.transport.Load()
	if c, err := gw.outbox(); err == nil {
		rep.pendingAtEnd = c["pending"]
	}
	fmt.Fprintln(log, "waiting for the dispatcher to drain...")
	counts, drain, drainErr := gw.waitDrained(ctx, o.drainLimit)
	rep.outbox, rep.drain = counts, drain
	gw.stop()

	bare, err := startBare(ctx, dir)
	if err != nil {
		return rep, errors.Join(drainErr, err)
	}
	defer bare.stop()
	rep.bareClosed, rep.bareOpen = phases(ctx, newTarget("bare", bare.addr, secret, conns), o, log)
	bare.stop()
	if ctx.Err() != nil {
		return nil, errors.New("interrupted")
	}
	if drainErr != nil {
		return rep, fmt.Errorf("%w; exactly-once grants not verified", drainErr)
	}
	return rep, rep.verify()
}

func phases(ctx context.Context, t *target, o options, log io.Writer) (closed, open *result) {
	fmt.Fprintf(log, "%s: closed loop, %d workers, %v + %v warm-up...\n", t.name, o.concurrency, o.duration, o.warmup)
	c := closedLoop(ctx, t, o.concurrency, o.warmup, o.duration)
	fmt.Fprintf(log, "%s: closed loop %.0f req/s, p99 %s, %d errors\n", t.name, c.rate(), ms(c.lat.quantile(0.99)), c.errs)
	fmt.Fprintf(log, "%s: open loop, %d req/s offered, %v + %v warm-up...\n", t.name, o.rate, o.duration, o.warmup)
	p := openLoop(ctx, t, o.openWorkers, o.rate, o.warmup, o.duration)
	fmt.Fprintf(log, "%s: open loop %.0f req/s, p99 %s, %d errors, %d late\n", t.name, p.rate(), ms(p.lat.quantile(0.99)), p.errs, p.late)
	if m := t.errMsg.Load(); m != nil {
		fmt.Fprintf(log, "%s: first error: %s\n", t.name, *m)
	}
	return &c, &p
}

// verify checks that each accepted webhook became exactly one granted
// command. A request that got no answer may or may not have committed, so
// only those widen the accepted range.
func (r *report) verify() error {
	done := r.outbox["done"]
	if r.outbox["dead"] > 0 || r.outbox["discarded"] > 0 {
		return fmt.Errorf("outbox has %d dead and %d discarded commands", r.outbox["dead"], r.outbox["discarded"])
	}
	if done < r.accepted || done > r.accepted+r.ambiguous {
		return fmt.Errorf("accepted %d webhooks (+%d unanswered) but the outbox has %d done commands", r.accepted, r.ambiguous, done)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func (r *report) print(w io.Writer, o options) {
	fmt.Fprintf(w, "\n### storegate-bench\n\n")
	fmt.Fprintf(w, "%s; closed loop: %d workers; open loop: %d req/s offered, up to %d in flight; %v measured after %v warm-up each\n\n",
		machine(), o.concurrency, o.rate, o.openWorkers, o.duration, o.warmup)
	fmt.Fprintln(w, "| server | closed req/s | p50 | p99 | max | errors | open req/s | p50 | p99 | max | errors | late |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	row := func(name string, c, p *result) {
		if c == nil || p == nil {
			fmt.Fprintf(w, "| %s | - | - | - | - | - | - | - | - | - | - | - |\n", name)
			return
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %d | %.0f | %s | %s | %s | %d | %d |\n", name,
			c.rate(), ms(c.lat.quantile(0.5)), ms(c.lat.quantile(0.99)), ms(c.lat.max), c.errs,
			p.rate(), ms(p.lat.quantile(0.5)), ms(p.lat.quantile(0.99)), ms(p.lat.max), p.errs, p.late)
	}
	row("gateway", r.gwClosed, r.gwOpen)
	row("bare", r.bareClosed, r.bareOpen)
	if r.gwClosed != nil && r.bareClosed != nil && r.bareClosed.rate() > 0 {
		fmt.Fprintf(w, "\ngateway/bare closed-loop req/s: %.3f\n", r.gwClosed.rate()/r.bareClosed.rate())
	}
	fmt.Fprintf(w, "gateway outbox: %d accepted (2xx, warm-ups included), %d unanswered; done %d, pending %d, dead %d\n",
		r.accepted, r.ambiguous, r.outbox["done"], r.outbox["pending"], r.outbox["dead"])
	fmt.Fprintf(w, "dispatcher: %d pending when the load stopped, drained in %.1fs", r.pendingAtEnd, r.drain.Seconds())
	if r.drain > 0 && r.pendingAtEnd > 0 {
		fmt.Fprintf(w, " (%.0f commands/s unloaded)", float64(r.pendingAtEnd-r.outbox["pending"])/r.drain.Seconds())
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "latency: open loop from the scheduled send time; late = started over %v after schedule or never sent\n", lateAfter)
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
