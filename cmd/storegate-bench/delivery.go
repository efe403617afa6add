package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The delivery phases measure the dispatcher, not the accept path: the
// gateway's grants go to a studio backend (kind: http) played by backend
// below, which applies each transaction id once and can answer slowly or
// be down.

// studioSecret signs the gateway's calls to the fake backend, which does
// not check them: the gateway's side is what is measured.
const studioSecret = "whsec_YmVuY2gtc3R1ZGlvLXNlY3JldC0wMTIzNDU2Nzg5"

// backend is a fake studio backend on loopback: every 2xx answer is
// counted per transaction id, so a lost command shows as none and a
// command delivered again after a 2xx as two.
type backend struct {
	url   string
	srv   *http.Server
	delay atomic.Int64 // nanoseconds each answer waits
	down  atomic.Bool  // answer 503 to everything

	mu      sync.Mutex
	answers map[string]int
	upAt    time.Time // when the outage ended
	first   time.Time // the first 2xx after upAt
	last    time.Time // the last 2xx
}

func startBackend() (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{url: "http://" + ln.Addr().String(), answers: map[string]int{}}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go b.srv.Serve(ln)
	return b, nil
}

func (b *backend) close() { b.srv.Close() }

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/users" {
		w.Write([]byte(`{"exists":true}`))
		return
	}
	if b.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if d := time.Duration(b.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	var c struct {
		TransactionID string `json:"transaction_id"`
	}
	if json.Unmarshal(body, &c) != nil || c.TransactionID == "" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	now := time.Now()
	b.mu.Lock()
	b.answers[c.TransactionID]++
	if !b.upAt.IsZero() && b.first.IsZero() {
		b.first = now
	}
	b.last = now
	b.mu.Unlock()
	w.Write([]byte(`{"status":"done"}`))
}

// recover ends an outage, noting when.
func (b *backend) recover() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.upAt, b.first = time.Now(), time.Time{}
	b.down.Store(false)
	return b.upAt
}

// tally compares the 2xx answers with the orders accepted: lost are orders
// never answered, doubled are orders answered more than once.
func (b *backend) tally(orders []int64) (lost, doubled int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range orders {
		switch n := b.answers["xsolla.bench.order."+strconv.FormatInt(id, 10)]; {
		case n == 0:
			lost++
		case n > 1:
			doubled++
		}
	}
	return lost, doubled
}

func (b *backend) times() (first, last time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first, b.last
}

// deliveryConfig is gatewayConfig with the grants going to the backend, and
// the dispatcher on or off.
func deliveryConfig(addr, metrics, dsn, secret, url string, dispatch bool) string {
	return fmt.Sprintf(`# written by storegate-bench
listen: %s
metrics_listen: %s
log_level: warn
store: {dsn: %q}
admin: {tokens: ["${%s}"]}
dispatch: {disabled: %v}
sources:
  - {name: bench, kind: xsolla, secrets: [%q], target: studio, grant_on: order_paid, allow_ips: ["127.0.0.1", "::1"]}
targets:
  - {name: studio, kind: http, http: {url: %q, secrets: [%q]}}
catalog:
  - {sku: crystals_100, type: coin, currency: CRYSTALS, amount: 100, name: 100 Crystals}
`, addr, metrics, dsn, adminTokenEnv, !dispatch, secret, url, studioSecret)
}

// startDeliveryGateway runs the binary on the delivery config.
func startDeliveryGateway(ctx context.Context, bin, dir, name, dsn, secret, url string, dispatch bool) (*server, error) {
	return startConfigured(ctx, bin, dir, name, func(addr, metrics string) string {
		return deliveryConfig(addr, metrics, dsn, secret, url, dispatch)
	})
}

// sendOrders posts n new orders with workers senders and returns the ids
// of those accepted.
func sendOrders(ctx context.Context, t *target, n, workers int) []int64 {
	var mu sync.Mutex
	var ids []int64
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			w := t.newWorker()
			defer w.release()
			for ctx.Err() == nil && left.Add(-1) >= 0 {
				id := orderSeq.Add(1)
				if w.sendOrder(id) {
					mu.Lock()
					ids = append(ids, id)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return ids
}

// drainRun is one backlog drained to the backend.
type drainRun struct {
	name          string
	delay         time.Duration
	backlog       int
	took          time.Duration // from the dispatcher's start to the last answer
	lost, doubled int
	err           error
}

func (d drainRun) rate() float64 {
	if d.took <= 0 {
		return 0
	}
	return float64(d.backlog) / d.took.Seconds()
}

// drainPhase queues n orders with the dispatcher off, restarts the gateway
// with it on, and times the drain to a backend answering after delay.
func drainPhase(ctx context.Context, o options, bin, dir, name, dsn, secret string, n int, delay time.Duration, log io.Writer) drainRun {
	r := drainRun{name: name, delay: delay}
	b, err := startBackend()
	if err != nil {
		r.err = err
		return r
	}
	defer b.close()
	b.delay.Store(int64(delay))
	queue, err := startDeliveryGateway(ctx, bin, dir, name+"-queue", dsn, secret, b.url, false)
	if err != nil {
		r.err = err
		return r
	}
	fmt.Fprintf(log, "%s: queueing %d orders with the dispatcher off...\n", name, n)
	ids := sendOrders(ctx, newTarget(name, []string{queue.addr}, secret, o.concurrency+8), n, o.concurrency)
	queue.stop()
	r.backlog = len(ids)
	fmt.Fprintf(log, "%s: draining %d commands to a backend answering after %v...\n", name, r.backlog, delay)
	settleDisk()
	s, err := startDeliveryGateway(ctx, bin, dir, name+"-drain", dsn, secret, b.url, true)
	if err != nil {
		r.err = err
		return r
	}
	defer s.stop()
	began := time.Now()
	if _, _, err := s.waitDrained(ctx, o.drainLimit+time.Duration(n/100)*time.Second); err != nil {
		r.err = fmt.Errorf("%s: %w", name, err)
	}
	_, last := b.times()
	r.took = last.Sub(began)
	r.lost, r.doubled = b.tally(ids)
	fmt.Fprintf(log, "%s: %.0f commands/s, %d lost, %d doubled\n", name, r.rate(), r.lost, r.doubled)
	return r
}

// outageRun is a backend outage under load.
type outageRun struct {
	name          string
	rate          int
	outage        time.Duration
	accepted      int
	backlog       int64         // pending when the backend came back
	first, empty  time.Duration // from recovery to the first answer, to nothing pending
	lost, doubled int
	err           error
}

// outagePhase offers rate orders/s; the backend goes down after a few
// seconds for outage, and the load stops when it comes back. It times the
// first delivery after recovery and the drain of the backlog.
func outagePhase(ctx context.Context, o options, bin, dir, name, dsn, secret string, rate int, outage time.Duration, log io.Writer) outageRun {
	r := outageRun{name: name, rate: rate, outage: outage}
	b, err := startBackend()
	if err != nil {
		r.err = err
		return r
	}
	defer b.close()
	s, err := startDeliveryGateway(ctx, bin, dir, name, dsn, secret, b.url, true)
	if err != nil {
		r.err = err
		return r
	}
	defer s.stop()
	t := newTarget(name, []string{s.addr}, secret, o.openWorkers+8)
	const before = 5 * time.Second
	fmt.Fprintf(log, "%s: %d orders/s; the backend goes down after %v for %v...\n", name, rate, before, outage)
	var ids []int64
	var mu sync.Mutex
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		var sends sync.WaitGroup
		sem := make(chan struct{}, o.openWorkers)
		for {
			select {
			case <-loadCtx.Done():
				sends.Wait()
				return
			case <-tick.C:
			}
			sem <- struct{}{}
			sends.Go(func() {
				defer func() { <-sem }()
				w := t.newWorker()
				defer w.release()
				id := orderSeq.Add(1)
				if w.sendOrder(id) {
					mu.Lock()
					ids = append(ids, id)
					mu.Unlock()
				}
			})
		}
	})
	sleep(ctx, before)
	b.down.Store(true)
	sleep(ctx, outage)
	stopLoad()
	wg.Wait()
	if c, err := s.outbox(); err == nil {
		r.backlog = c["pending"]
	}
	up := b.recover()
	_, _, err = s.waitDrained(ctx, o.drainLimit)
	r.empty = time.Since(up)
	if err != nil {
		r.err = fmt.Errorf("%s: %w", name, err)
	}
	first, _ := b.times()
	if !first.IsZero() {
		r.first = first.Sub(up)
	}
	r.accepted = len(ids)
	r.lost, r.doubled = b.tally(ids)
	fmt.Fprintf(log, "%s: first delivery %v after recovery, backlog of %d empty after %v, %d lost, %d doubled\n",
		name, r.first.Round(time.Millisecond), r.backlog, r.empty.Round(100*time.Millisecond), r.lost, r.doubled)
	return r
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// deliveryReport is what the delivery phases found.
type deliveryReport struct {
	drains  []drainRun
	outages []outageRun
}

// deliveryRuns runs the delivery phases: a large backlog drained to a fast
// backend (SQLite, and PostgreSQL with one replica when given), a backlog
// to a backend answering slowly, and an outage under load.
func deliveryRuns(ctx context.Context, o options, bin, dir, secret string, log io.Writer) (deliveryReport, error) {
	var rep deliveryReport
	var errs []error
	add := func(r drainRun) {
		rep.drains = append(rep.drains, r)
		errs = append(errs, r.err)
	}
	add(drainPhase(ctx, o, bin, dir, "drain-sqlite", "sqlite:"+filepath.Join(dir, "drain.db"), secret, o.backlog, 0, log))
	if o.postgres != "" && ctx.Err() == nil {
		dsn, drop, err := pgSchema(ctx, o.postgres)
		if err != nil {
			return rep, err
		}
		add(drainPhase(ctx, o, bin, dir, "drain-postgres-x1", dsn, secret, o.backlog, 0, log))
		drop()
	}
	if ctx.Err() == nil {
		add(drainPhase(ctx, o, bin, dir, "slow-sqlite", "sqlite:"+filepath.Join(dir, "slow.db"), secret, o.slowBacklog, o.slowDelay, log))
	}
	if ctx.Err() == nil && o.outage > 0 {
		r := outagePhase(ctx, o, bin, dir, "outage-sqlite", "sqlite:"+filepath.Join(dir, "outage.db"), secret, o.outageRate, o.outage, log)
		rep.outages = append(rep.outages, r)
		errs = append(errs, r.err)
	}
	return rep, errors.Join(errs...)
}

func (d deliveryReport) print(w io.Writer) {
	if len(d.drains) == 0 && len(d.outages) == 0 {
		return
	}
	fmt.Fprintln(w, "\n| delivery | backend answers after | backlog | commands/s | lost | doubled |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
	for _, r := range d.drains {
		fmt.Fprintf(w, "| %s | %v | %d | %.0f | %d | %d |\n", r.name, r.delay, r.backlog, r.rate(), r.lost, r.doubled)
	}
	if len(d.outages) > 0 {
		fmt.Fprintln(w, "\n| outage | orders/s | down for | accepted | backlog at recovery | first delivery after recovery | backlog empty after | lost | doubled |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, r := range d.outages {
			fmt.Fprintf(w, "| %s | %d | %v | %d | %d | %s | %.1f s | %d | %d |\n", r.name, r.rate, r.outage, r.accepted, r.backlog,
				ms(r.first), r.empty.Seconds(), r.lost, r.doubled)
		}
	}
	for _, r := range d.drains {
		if r.err != nil {
			fmt.Fprintf(w, "- %s: ERROR: %v\n", r.name, r.err)
		}
	}
	for _, r := range d.outages {
		if r.err != nil {
			fmt.Fprintf(w, "- %s: ERROR: %v\n", r.name, r.err)
		}
	}
}
