package main

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"storegate/signing"
)

// lateAfter is how far past its scheduled time an open-loop request may
// start before it counts as "not sent on time". Timer wake-ups alone are
// routinely ~100µs late, so a tighter bound would only measure the scheduler.
const lateAfter = 2 * time.Millisecond

// requestTimeout bounds every request, so every phase is bounded in time.
const requestTimeout = 10 * time.Second

// target is one server under load. Both servers get identical signed
// order_paid requests, so the only difference measured is the handler.
type target struct {
	name    string
	paths   string
	secret  string
	clients []*fasthttp.HostClient // one per replica; workers take turns
	next    atomic.Int64

	// Across all phases, warm-ups included, for the outbox cross-check.
	accepted  atomic.Int64 // 2xx answers
	transport atomic.Int64 // no answer: the server may or may not have committed

	firstErr sync.Once
	errMsg   atomic.Pointer[string]
}

// orderSeq makes every order id distinct across phases and servers: a repeated
// id would be a duplicate the gateway answers without queuing a command.
var orderSeq atomic.Int64

func newTarget(name string, addrs []string, secret string, conns int) *target {
	t := &target{name: name, secret: secret}
	for _, addr := range addrs {
		t.clients = append(t.clients, &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: requestTimeout,
			WriteTimeout: requestTimeout, MaxIdleConnDuration: time.Minute})
	}
	return t
}

// worker holds one goroutine's reusable request state. Workers are spread
// over the replicas in turn, like a round-robin load balancer.
type worker struct {
	t      *target
	client *fasthttp.HostClient
	req    *fasthttp.Request
	resp   *fasthttp.Response
	body   []byte
}

func (t *target) newWorker() *worker {
	c := t.clients[int(t.next.Add(1))%len(t.clients)]
	w := &worker{t: t, client: c, req: fasthttp.AcquireRequest(), resp: fasthttp.AcquireResponse(), body: make([]byte, 0, 256)}
	w.req.SetRequestURI("http://" + c.Addr + "/webhooks/xsolla/bench")
	w.req.Header.SetMethod(fasthttp.MethodPost)
	w.req.Header.SetContentType("application/json")
	return w
}

func (w *worker) release() {
	fasthttp.ReleaseRequest(w.req)
	fasthttp.ReleaseResponse(w.resp)
}

// send posts one freshly numbered, signed order_paid and reports success.
func (w *worker) send() bool { return w.sendOrder(orderSeq.Add(1)) }

// sendOrder posts order id (a repeat of an id is a duplicate).
func (w *worker) sendOrder(id int64) bool {
	b := append(w.body[:0], `{"notification_type":"order_paid","order":{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `},"user":{"external_id":"p`...)
	b = strconv.AppendInt(b, id%1000, 10)
	b = append(b, `"},"items":[{"sku":"crystals_100","quantity":1}]}`...)
	w.body = b
	w.req.Header.Set("Authorization", signing.XsollaSignature(b, w.t.secret))
	w.req.SetBodyRaw(b)
	err := w.client.DoTimeout(w.req, w.resp, requestTimeout)
	if err != nil {
		w.t.transport.Add(1)
		w.t.noteError(err.Error())
		return false
	}
	if s := w.resp.StatusCode(); s < 200 || s > 299 {
		w.t.noteError(strconv.Itoa(s) + " " + string(truncate(w.resp.Body(), 200)))
		return false
	}
	w.t.accepted.Add(1)
	return true
}

func (t *target) noteError(msg string) {
	t.firstErr.Do(func() { t.errMsg.Store(&msg) })
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// result is one measured phase (warm-up excluded).
type result struct {
	// offered is the open loop's rate, requests/s; share, that rate as a
	// share of the closed loop's rate measured just before (0: fixed).
	offered  int
	share    float64
	ok, errs int64
	late     int64 // open loop: started more than lateAfter past schedule, or never sent
	elapsed  time.Duration
	lat      hist
	// gw is how the gateway spent the phase, warm-up included (the
	// difference of its /metrics across it, see writerMetrics), over wall.
	gw   map[string]int64
	wall time.Duration
	gen  time.Duration // the load generator's CPU time over wall
}

func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// collect merges the workers' private results under one lock at the end.
type collect struct {
	mu  sync.Mutex
	all result
}

func (c *collect) add(r *result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all.ok += r.ok
	c.all.errs += r.errs
	c.all.late += r.late
	c.all.lat.merge(&r.lat)
}

// closedLoop runs n workers back to back for warmup+d and measures the
// requests that both start and finish inside the last d.
func closedLoop(ctx context.Context, t *target, n int, warmup, d time.Duration) result {
	from := time.Now().Add(warmup)
	end := from.Add(d)
	var c collect
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := t.newWorker()
			defer w.release()
			r := new(result)
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(end) {
					break
				}
				ok := w.send()
				done := time.Now()
				if start.Before(from) || done.After(end) {
					continue
				}
				r.lat.record(done.Sub(start))
				if ok {
					r.ok++
				} else {
					r.errs++
				}
			}
			c.add(r)
		}()
	}
	wg.Wait()
	c.all.elapsed = d
	return c.all
}

// openLoop offers rate requests/s for warmup+d whatever the answers' pace:
// request i is due at start+i/rate and its latency counts from then, so a
// slow server is charged for the queue it causes (no coordinated omission).
// n workers take the next due request as they free up; requests still unsent
// a grace period after the schedule ends are abandoned and counted late.
func openLoop(ctx context.Context, t *target, n, rate int, warmup, d time.Duration) result {
	interval := float64(time.Second) / float64(rate)
	warmN := int64(warmup.Seconds() * float64(rate))
	total := warmN + int64(d.Seconds()*float64(rate))
	start := time.Now().Add(10 * time.Millisecond)
	due := func(i int64) time.Time { return start.Add(time.Duration(float64(i) * interval)) }
	from := due(warmN)
	giveUp := due(total).Add(max(5*time.Second, d))

	var next, sent atomic.Int64
	var lastDone atomic.Int64 // unix nanos
	var c collect
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := t.newWorker()
			defer w.release()
			r := new(result)
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= total {
					break
				}
				at := due(i)
				if wait := time.Until(at); wait > 0 {
					time.Sleep(wait)
				}
				begin := time.Now()
				if begin.After(giveUp) {
					break
				}
				ok := w.send()
				done := time.Now()
				if i < warmN {
					continue
				}
				sent.Add(1)
				if begin.Sub(at) > lateAfter {
					r.late++
				}
				r.lat.record(done.Sub(at))
				if ok {
					r.ok++
				} else {
					r.errs++
				}
				for {
					last := lastDone.Load()
					if done.UnixNano() <= last || lastDone.CompareAndSwap(last, done.UnixNano()) {
						break
					}
				}
			}
			c.add(r)
		}()
	}
	wg.Wait()
	c.all.late += (total - warmN) - sent.Load()
	c.all.elapsed = max(time.Unix(0, lastDone.Load()).Sub(from), d)
	return c.all
}
