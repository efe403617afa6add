package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/dispatch"
	"storegate/internal/fakeclock"
	"storegate/store"
	"storegate/store/engine"
)

var start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// ---- fakes ----

// targetFunc is a target written inline.
type targetFunc func(ctx context.Context, c storegate.Command) storegate.Outcome

func (f targetFunc) Deliver(ctx context.Context, c storegate.Command) storegate.Outcome {
	return f(ctx, c)
}

func always(out storegate.Outcome) targetFunc {
	return func(context.Context, storegate.Command) storegate.Outcome { return out }
}

// counting wraps a target and counts the deliveries per command id.
type counting struct {
	next  dispatch.Target
	mu    sync.Mutex
	calls map[string]int
	order []string
}

func count(next dispatch.Target) *counting { return &counting{next: next, calls: map[string]int{}} }

func (c *counting) Deliver(ctx context.Context, cmd storegate.Command) storegate.Outcome {
	c.mu.Lock()
	c.calls[cmd.ID]++
	c.order = append(c.order, cmd.ID)
	c.mu.Unlock()
	return c.next.Deliver(ctx, cmd)
}

func (c *counting) n(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

// effects is an idempotent target like a real one: the first delivery of a
// command id takes effect, later ones report done without a second effect.
type effects struct {
	mu         sync.Mutex
	deliveries map[string]int
	effects    map[string]int
	seen       map[string]storegate.Command
}

func newEffects() *effects {
	return &effects{deliveries: map[string]int{}, effects: map[string]int{}, seen: map[string]storegate.Command{}}
}

func (e *effects) Deliver(_ context.Context, c storegate.Command) storegate.Outcome {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deliveries[c.ID]++
	if _, ok := e.seen[c.ID]; !ok {
		e.seen[c.ID] = c
		e.effects[c.ID]++
	}
	return storegate.Outcome{Verdict: storegate.VerdictDone}
}

// observer records what the dispatcher reports, as "target:verdict".
type observer struct {
	mu   sync.Mutex
	seen []string
}

func (o *observer) Delivered(target string, v storegate.Verdict, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, target+":"+string(v))
}

func (o *observer) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen...)
}

// memQueue is an in-memory outbox that honours leases the way the store
// does: a leased command is not due until its lease ends, and only the lease
// holder may complete it.
type memQueue struct {
	mu          sync.Mutex
	now         func() time.Time
	items       map[string]*memItem
	completions []store.Completion
	claimed     chan struct{} // hears of every Claim, when not nil
}

type memItem struct {
	cmd        storegate.Command
	state      storegate.State
	attempts   int
	nextAt     time.Time
	owner      string
	leaseUntil time.Time
}

func newMemQueue(now func() time.Time) *memQueue {
	return &memQueue{now: now, items: map[string]*memItem{}}
}

func (q *memQueue) add(cmds ...storegate.Command) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range cmds {
		q.items[c.ID] = &memItem{cmd: c, state: storegate.StatePending, nextAt: q.now()}
	}
}

func (q *memQueue) Claim(_ context.Context, owner, target string, n int, lease time.Duration) ([]store.Claimed, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.claimed != nil {
		select {
		case q.claimed <- struct{}{}:
		default:
		}
	}
	now := q.now()
	var due []*memItem
	for _, it := range q.items {
		if it.cmd.Target == target && it.state == storegate.StatePending && !it.nextAt.After(now) && !it.leaseUntil.After(now) {
			due = append(due, it)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].cmd.CreatedAt.Equal(due[j].cmd.CreatedAt) {
			return due[i].cmd.CreatedAt.Before(due[j].cmd.CreatedAt)
		}
		return due[i].cmd.ID < due[j].cmd.ID
	})
	var out []store.Claimed
	for _, it := range due {
		if len(out) == n {
			break
		}
		it.owner, it.leaseUntil = owner, now.Add(lease)
		out = append(out, store.Claimed{Command: it.cmd, Attempts: it.attempts})
	}
	return out, nil
}

// WriteBackground is never called: memQueue's lanes have no Applier.
func (q *memQueue) WriteBackground(context.Context, func(context.Context, *engine.Tx) error) error {
	return errors.New("memQueue has no transactions")
}

func (q *memQueue) CompleteAll(ctx context.Context, cs []store.Completion) []error {
	errs := make([]error, len(cs))
	for i, c := range cs {
		errs[i] = q.Complete(ctx, c)
	}
	return errs
}

func (q *memQueue) Complete(_ context.Context, c store.Completion) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, ok := q.items[c.ID]
	if !ok || it.owner != c.Owner {
		return store.ErrLeaseLost
	}
	it.state, it.nextAt, it.owner, it.leaseUntil = c.State, c.NextAt, "", time.Time{}
	if it.nextAt.IsZero() {
		it.nextAt = q.now()
	}
	if c.Attempt > 0 {
		it.attempts++
	}
	q.completions = append(q.completions, c)
	return nil
}

func (q *memQueue) last() store.Completion {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.completions[len(q.completions)-1]
}

func (q *memQueue) state(id string) storegate.State {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.items[id].state
}

// crashing is a queue whose process dies after delivering and before
// recording the outcome: completions never reach the store.
type crashing struct{ *store.DB }

func (crashing) CompleteAll(_ context.Context, cs []store.Completion) []error {
	errs := make([]error, len(cs))
	for i := range errs {
		errs[i] = errors.New("process died before recording the outcome")
	}
	return errs
}

// ---- helpers ----

func openStore(t *testing.T, clock *fakeclock.Clock) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), engine.Config{DSN: "sqlite:" + t.TempDir() + "/s.db", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func command(id, player, target string) storegate.Command {
	return storegate.Command{ID: id, Kind: storegate.KindFulfill, Source: "xsolla", Target: target, PlayerID: player,
		Platform: storegate.PlatformXsolla, CreatedAt: start,
		Lines: []storegate.Line{{SKU: "crystals_100", Quantity: 1, Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 100}}}}}
}

// enqueue accepts one event per command, in the order given.
func enqueue(t *testing.T, db *store.DB, cmds ...storegate.Command) {
	t.Helper()
	for _, c := range cmds {
		ev := storegate.Event{Source: "xsolla", Type: "payment", Key: "e-" + c.ID, PlayerID: c.PlayerID, Body: []byte(`{}`)}
		if _, _, err := db.Accept(context.Background(), ev, []storegate.Command{c}, storegate.Answer{Status: 204}); err != nil {
			t.Fatal(err)
		}
	}
}

func config(clock *fakeclock.Clock) dispatch.Config {
	return dispatch.Config{Owner: "dispatcher-a", Batch: 16, Lease: 30 * time.Second, Timeout: 10 * time.Second,
		MaxAttempts: 5, BackoffBase: time.Second, BackoffMax: time.Hour, RetryAfterMax: time.Hour,
		Now: clock.Now, Jitter: func() float64 { return 0 }}
}

// lanes gives each remote target a lane of maxInFlight.
func lanes(targets map[string]dispatch.Target, maxInFlight int) map[string]dispatch.Lane {
	out := map[string]dispatch.Lane{}
	for name, t := range targets {
		l := dispatch.Lane{Target: t, MaxInFlight: maxInFlight}
		if a, ok := t.(store.Applier); ok {
			l.Applier = a
		}
		out[name] = l
	}
	return out
}

func newDispatcher(t *testing.T, q dispatch.Queue, targets map[string]dispatch.Target, cfg dispatch.Config, obs dispatch.Observer) *dispatch.Dispatcher {
	t.Helper()
	return newLanes(t, q, lanes(targets, 16), cfg, obs)
}

func newLanes(t *testing.T, q dispatch.Queue, ls map[string]dispatch.Lane, cfg dispatch.Config, obs dispatch.Observer) *dispatch.Dispatcher {
	t.Helper()
	if obs == nil {
		obs = &observer{}
	}
	d, err := dispatch.New(q, ls, cfg, obs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func runOnce(t *testing.T, d *dispatch.Dispatcher) int {
	t.Helper()
	n, err := d.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func info(t *testing.T, db *store.DB, id string) store.CommandInfo {
	t.Helper()
	ci, err := db.Command(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// ---- tests ----

func TestNew_TimeoutMustBeUnderLease(t *testing.T) {
	tests := []struct {
		name    string
		cfg     dispatch.Config
		wantErr bool
	}{
		{"defaults", dispatch.Config{}, false},
		{"timeout under lease", dispatch.Config{Timeout: 10 * time.Second, Lease: 30 * time.Second}, false},
		{"timeout equal to lease", dispatch.Config{Timeout: 30 * time.Second, Lease: 30 * time.Second}, true},
		{"timeout over lease", dispatch.Config{Timeout: time.Minute, Lease: 30 * time.Second}, true},
		{"timeout over the default lease", dispatch.Config{Timeout: 40 * time.Second}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dispatch.New(newMemQueue(time.Now), nil, tc.cfg, nil, nil)
			if got, want := err != nil, tc.wantErr; got != want {
				t.Errorf("New error = %v, want error %v", err, want)
			}
		})
	}
}

func TestDeliver_Done(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	enqueue(t, db, command("t1", "p1", "ledger"))
	target := count(always(storegate.Outcome{Verdict: storegate.VerdictDone, HTTPStatus: 204}))
	obs := &observer{}
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, config(clock), obs)

	if got, want := runOnce(t, d), 1; got != want {
		t.Fatalf("RunOnce claimed %d, want %d", got, want)
	}
	ci := info(t, db, "t1")
	if got, want := ci.State, storegate.StateDone; got != want {
		t.Errorf("state = %q, want %q", got, want)
	}
	if got, want := ci.Attempts, 1; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
	attempts, err := db.Attempts(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	// A first-time success writes no attempt row (the outbox row says done);
	// only failures are kept for inspection.
	if len(attempts) != 0 {
		t.Errorf("attempts = %+v, want none recorded for a first-time success", attempts)
	}
	if got, want := obs.list(), []string{"ledger:done"}; !reflect.DeepEqual(got, want) {
		t.Errorf("observer heard %v, want %v", got, want)
	}
	// Done is final.
	clock.Advance(24 * time.Hour)
	if got := runOnce(t, d); got != 0 {
		t.Errorf("a done command was claimed again (%d)", got)
	}
	if got, want := target.n("t1"), 1; got != want {
		t.Errorf("target called %d times, want %d", got, want)
	}
}

// A failing command is retried after a backoff that doubles up to the cap,
// then becomes a dead letter once MaxAttempts are spent, saying so.
func TestDeliver_RetryBacksOffThenDeadLetters(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	enqueue(t, db, command("t1", "p1", "ledger"))
	target := count(always(storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 503, Message: "unavailable"}))
	cfg := config(clock)
	cfg.BackoffBase, cfg.BackoffMax, cfg.MaxAttempts = time.Second, 4*time.Second, 5
	cfg.Jitter = func() float64 { return 0.5 } // three quarters of the exponential wait
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, cfg, nil)

	// base·2^(n-1) capped at 4s: 1s, 2s, 4s, 4s; with jitter 0.5, three quarters of it.
	waits := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 3 * time.Second}
	for i, wait := range waits {
		attempt := i + 1
		if got, want := runOnce(t, d), 1; got != want {
			t.Fatalf("attempt %d: RunOnce claimed %d, want %d", attempt, got, want)
		}
		ci := info(t, db, "t1")
		if ci.State != storegate.StatePending || ci.Attempts != attempt {
			t.Fatalf("after attempt %d: %s with %d attempts, want pending with %d", attempt, ci.State, ci.Attempts, attempt)
		}
		if got, want := ci.NextAt, clock.Now().Add(wait); !got.Equal(want) {
			t.Fatalf("after attempt %d: next attempt at +%v, want +%v", attempt, got.Sub(clock.Now()), wait)
		}
		if !strings.Contains(ci.LastError, "503") || !strings.Contains(ci.LastError, "unavailable") {
			t.Errorf("last error = %q, want the status and message", ci.LastError)
		}
		clock.Set(ci.NextAt.Add(-time.Microsecond))
		if got := runOnce(t, d); got != 0 {
			t.Fatalf("after attempt %d: claimed %d before the backoff ended", attempt, got)
		}
		clock.Set(ci.NextAt)
	}
	if got, want := runOnce(t, d), 1; got != want {
		t.Fatalf("last attempt: RunOnce claimed %d, want %d", got, want)
	}
	ci := info(t, db, "t1")
	if got, want := ci.State, storegate.StateDead; got != want {
		t.Fatalf("state after %d attempts = %q, want %q", cfg.MaxAttempts, got, want)
	}
	if got, want := ci.Attempts, cfg.MaxAttempts; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
	for _, want := range []string{"gave up after 5 attempts", "unavailable", "503"} {
		if !strings.Contains(ci.LastError, want) {
			t.Errorf("dead letter's last error = %q, want it to contain %q", ci.LastError, want)
		}
	}
	attempts, err := db.Attempts(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(attempts), cfg.MaxAttempts; got != want {
		t.Fatalf("%d attempts recorded, want %d", got, want)
	}
	for i, a := range attempts {
		if a.N != i+1 || a.Verdict != storegate.VerdictRetry {
			t.Errorf("attempt %d = %+v, want n=%d verdict retry", i, a, i+1)
		}
	}
	clock.Advance(24 * time.Hour)
	if got := runOnce(t, d); got != 0 {
		t.Errorf("a dead letter was claimed again (%d)", got)
	}
	if got, want := target.n("t1"), cfg.MaxAttempts; got != want {
		t.Errorf("target called %d times, want %d", got, want)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name       string
		attempt    int
		jitter     float64
		retryAfter time.Duration
		want       time.Duration
	}{
		{"first, no jitter: half the base", 1, 0, 0, 500 * time.Millisecond},
		{"second doubles", 2, 0, 0, time.Second},
		{"third doubles again", 3, 0, 0, 2 * time.Second},
		{"jitter adds up to the other half", 3, 0.5, 0, 3 * time.Second},
		{"capped at the max", 7, 0, 0, 30 * time.Second},
		{"capped at the max, full jitter", 7, 0.75, 0, 52500 * time.Millisecond},
		{"far attempts stay capped", 200, 0, 0, 30 * time.Second},
		{"absurd attempts stay capped", math.MaxInt32, 0, 0, 30 * time.Second},
		{"Retry-After above the backoff is a floor", 1, 0, 20 * time.Second, 20 * time.Second},
		{"Retry-After below the backoff is ignored", 7, 0, 10 * time.Second, 30 * time.Second},
		{"Retry-After capped at RetryAfterMax", 1, 0, 3 * time.Hour, 5 * time.Minute},
		{"huge Retry-After capped", 1, 0, math.MaxInt64, 5 * time.Minute},
		{"negative Retry-After ignored", 1, 0, -time.Hour, 500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := dispatch.New(newMemQueue(time.Now), nil, dispatch.Config{BackoffBase: time.Second, BackoffMax: time.Minute,
				RetryAfterMax: 5 * time.Minute, Jitter: func() float64 { return tc.jitter }}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := d.Backoff(tc.attempt, tc.retryAfter), tc.want; got != want {
				t.Errorf("Backoff(%d, %v) = %v, want %v", tc.attempt, tc.retryAfter, got, want)
			}
		})
	}
}

// With the default random jitter every wait lies in [half, full] of the
// exponential step, and the waits actually spread.
func TestBackoff_DefaultJitterWithinHalfAndFull(t *testing.T) {
	d, err := dispatch.New(newMemQueue(time.Now), nil, dispatch.Config{BackoffBase: time.Second, BackoffMax: time.Minute}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 10; attempt++ {
		full := min(time.Second<<(attempt-1), time.Minute)
		lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
		for range 500 {
			w := d.Backoff(attempt, 0)
			if w < full/2 || w > full {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", attempt, w, full/2, full)
			}
			lo, hi = min(lo, w), max(hi, w)
		}
		if hi-lo < full/10 {
			t.Errorf("attempt %d: 500 waits spread over only %v (%v..%v): jitter missing", attempt, hi-lo, lo, hi)
		}
	}
}

// The target's Retry-After reaches the schedule as a floor, capped.
func TestDeliver_RetryAfterSchedulesTheNextAttempt(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter time.Duration
		want       time.Duration
	}{
		{"no hint: backoff", 0, 500 * time.Millisecond},
		{"hint above backoff", 30 * time.Second, 30 * time.Second},
		{"hint above the cap", 10 * time.Hour, 2 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(start)
			q := newMemQueue(clock.Now)
			q.add(command("t1", "p1", "ledger"))
			cfg := config(clock)
			cfg.RetryAfterMax = 2 * time.Minute
			d := newDispatcher(t, q, map[string]dispatch.Target{
				"ledger": always(storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 429, RetryAfter: tc.retryAfter}),
			}, cfg, nil)
			runOnce(t, d)
			c := q.last()
			if got, want := c.State, storegate.StatePending; got != want {
				t.Fatalf("state = %q, want %q", got, want)
			}
			if got, want := c.NextAt.Sub(start), tc.want; got != want {
				t.Errorf("next attempt after %v, want %v", got, want)
			}
			if got, want := c.Attempt, 1; got != want {
				t.Errorf("attempt = %d, want %d", got, want)
			}
		})
	}
}

// A verdict the dispatcher does not know is treated as a retry, never as done.
func TestDeliver_UnknownVerdictIsRetry(t *testing.T) {
	clock := fakeclock.New(start)
	q := newMemQueue(clock.Now)
	q.add(command("t1", "p1", "ledger"))
	d := newDispatcher(t, q, map[string]dispatch.Target{"ledger": always(storegate.Outcome{Verdict: "maybe"})}, config(clock), nil)
	runOnce(t, d)
	c := q.last()
	if c.State != storegate.StatePending || c.Outcome.Verdict != storegate.VerdictRetry || c.Attempt != 1 {
		t.Errorf("completion = %s/%s attempt %d, want pending/retry attempt 1", c.State, c.Outcome.Verdict, c.Attempt)
	}
}

// A wait (the target's breaker is open) spends no attempt, however many
// come: the command keeps its place, and its lane claims nothing until the
// breaker's next probe, then one command, and all again once one gets
// through.
func TestDeliver_WaitSpendsNoAttemptAndPausesTheLane(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	enqueue(t, db, command("t1", "p1", "studio"), command("t2", "p2", "studio"), command("t3", "p3", "studio"))
	var mu sync.Mutex
	verdict := storegate.VerdictWait
	obs := &observer{}
	cfg := config(clock)
	cfg.MaxAttempts = 3
	d := newDispatcher(t, db, map[string]dispatch.Target{"studio": targetFunc(func(context.Context, storegate.Command) storegate.Outcome {
		mu.Lock()
		defer mu.Unlock()
		return storegate.Outcome{Verdict: verdict, Code: "BREAKER_OPEN", RetryAfter: 2 * time.Second}
	})}, cfg, obs)

	if got, want := runOnce(t, d), 3; got != want {
		t.Fatalf("first round claimed %d, want %d", got, want)
	}
	// Many more waits than MaxAttempts: none is spent, so no dead letter.
	for i := range 3 * cfg.MaxAttempts {
		if got := runOnce(t, d); got != 0 {
			t.Fatalf("round %d: claimed %d while the breaker is open, want 0", i, got)
		}
		clock.Advance(2 * time.Second)
		if got := runOnce(t, d); got != 1 {
			t.Fatalf("round %d: claimed %d at the probe, want 1", i, got)
		}
		for _, id := range []string{"t1", "t2", "t3"} {
			ci := info(t, db, id)
			if ci.State != storegate.StatePending || ci.Attempts != 0 || ci.NextAt.After(clock.Now()) {
				t.Fatalf("round %d: %s %s with %d attempts, next at +%v; want pending with 0, due now", i, id, ci.State, ci.Attempts, ci.NextAt.Sub(clock.Now()))
			}
		}
	}
	if a, err := db.Attempts(context.Background(), "t1"); err != nil || len(a) != 0 {
		t.Fatalf("waits recorded attempts %+v (err %v), want none", a, err)
	}
	mu.Lock()
	verdict = storegate.VerdictDone
	mu.Unlock()
	clock.Advance(2 * time.Second)
	if got := runOnce(t, d); got != 1 {
		t.Fatalf("the probe that gets through: claimed %d, want 1", got)
	}
	if got := runOnce(t, d); got != 2 {
		t.Fatalf("after the probe got through: claimed %d, want the other 2 at once", got)
	}
	for _, id := range []string{"t1", "t2", "t3"} {
		if ci := info(t, db, id); ci.State != storegate.StateDone || ci.Attempts != 1 {
			t.Errorf("after the target recovers: %s %s with %d attempts, want done with 1", id, ci.State, ci.Attempts)
		}
	}
	if got, want := obs.list()[0], "studio:wait"; got != want {
		t.Errorf("observer heard %q first, want %q", got, want)
	}
}

// A revoke waiting for its grant is deferred: it spends no attempt, so it
// never becomes a dead letter after MaxAttempts while its grant may still
// come (a refund that beats its purchase must still claw it back); its wait
// grows with its age up to BackoffMax; only after DeferMax is it dead.
func TestDeliver_DeferredNeverSpendsAttempts(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	enqueue(t, db, command("r1", "p1", "ledger"))
	var mu sync.Mutex
	verdict := storegate.VerdictRetry
	cfg := config(clock)
	cfg.MaxAttempts = 3
	cfg.DeferMax = 48 * time.Hour
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": targetFunc(func(context.Context, storegate.Command) storegate.Outcome {
		mu.Lock()
		defer mu.Unlock()
		return storegate.Outcome{Verdict: verdict, Deferred: verdict == storegate.VerdictRetry, Code: "NOT_GRANTED_YET"}
	})}, cfg, nil)

	var waits []time.Duration
	for i := range 10 * cfg.MaxAttempts {
		if got := runOnce(t, d); got != 1 {
			t.Fatalf("round %d: claimed %d, want 1", i, got)
		}
		ci := info(t, db, "r1")
		if ci.State != storegate.StatePending || ci.Attempts != 0 {
			t.Fatalf("round %d: %s with %d attempts, want pending with 0", i, ci.State, ci.Attempts)
		}
		wait := ci.NextAt.Sub(clock.Now())
		if wait < cfg.BackoffBase || wait > cfg.BackoffMax {
			t.Fatalf("round %d: waits %v, want within [%v, %v]", i, wait, cfg.BackoffBase, cfg.BackoffMax)
		}
		waits = append(waits, wait)
		clock.Set(ci.NextAt)
	}
	if first, last := waits[0], waits[len(waits)-1]; last <= first {
		t.Errorf("waits did not grow with age: first %v, last %v", first, last)
	}
	// Its grant lands: the revoke then takes effect.
	mu.Lock()
	verdict = storegate.VerdictDone
	mu.Unlock()
	runOnce(t, d)
	if ci := info(t, db, "r1"); ci.State != storegate.StateDone {
		t.Fatalf("after the grant: %s, want done", ci.State)
	}

	// A revoke whose grant never comes is a dead letter after DeferMax.
	enqueue(t, db, command("r2", "p2", "ledger"))
	mu.Lock()
	verdict = storegate.VerdictRetry
	mu.Unlock()
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("r2 never became a dead letter")
		}
		runOnce(t, d)
		ci := info(t, db, "r2")
		if ci.State == storegate.StateDead {
			if !strings.Contains(ci.LastError, "still waiting after") || clock.Now().Sub(start) < cfg.DeferMax {
				t.Fatalf("dead at +%v with %q, want after %v saying it waited", clock.Now().Sub(start), ci.LastError, cfg.DeferMax)
			}
			break
		}
		clock.Set(ci.NextAt)
	}
}

// The real breaker in front of a failing target: once open, the next
// command waits and spends nothing.
func TestDeliver_OpenBreakerSpendsNoAttempt(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	first, second := command("t1", "p1", "studio"), command("t2", "p1", "studio")
	second.CreatedAt = start.Add(time.Second)
	enqueue(t, db, first, second)
	failing := count(always(storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 503}))
	b := adapters.NewBreaker("studio", adapters.BreakerConfig{Failures: 1}, clock.Now, nil)
	d := newDispatcher(t, db, map[string]dispatch.Target{"studio": targetFunc(func(ctx context.Context, c storegate.Command) storegate.Outcome {
		return b.Do(func() storegate.Outcome { return failing.Deliver(ctx, c) })
	})}, config(clock), nil)

	if got, want := runOnce(t, d), 2; got != want {
		t.Fatalf("claimed %d, want %d", got, want)
	}
	if ci := info(t, db, "t1"); ci.State != storegate.StatePending || ci.Attempts != 1 {
		t.Errorf("t1: %s with %d attempts, want pending with 1 (it tripped the breaker)", ci.State, ci.Attempts)
	}
	ci := info(t, db, "t2")
	if ci.State != storegate.StatePending || ci.Attempts != 0 {
		t.Errorf("t2: %s with %d attempts, want pending with 0 (breaker open)", ci.State, ci.Attempts)
	}
	if !strings.Contains(ci.LastError, "BREAKER_OPEN") {
		t.Errorf("t2 last error = %q, want BREAKER_OPEN", ci.LastError)
	}
	if got, want := failing.n("t2"), 0; got != want {
		t.Errorf("the failing target saw t2 %d times, want %d", got, want)
	}
}

// A command for a target with no lane (its target was taken out of the
// configuration) is never claimed: it waits, for support to see in the
// outbox's depth, until the target is back.
func TestRunOnce_UnknownTargetIsNeverClaimed(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	enqueue(t, db, command("t1", "p1", "nope"))
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": always(storegate.Outcome{Verdict: storegate.VerdictDone})}, config(clock), nil)
	if got := runOnce(t, d); got != 0 {
		t.Fatalf("claimed %d, want 0", got)
	}
	if ci := info(t, db, "t1"); ci.State != storegate.StatePending || ci.Attempts != 0 {
		t.Errorf("t1: %s with %d attempts, want pending with 0", ci.State, ci.Attempts)
	}
}

func TestDeliver_PanicIsRetry(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	enqueue(t, db, command("t1", "p1", "flaky"), command("t2", "p2", "ledger"))
	d := newDispatcher(t, db, map[string]dispatch.Target{
		"flaky":  targetFunc(func(context.Context, storegate.Command) storegate.Outcome { panic("nil map in adapter") }),
		"ledger": always(storegate.Outcome{Verdict: storegate.VerdictDone}),
	}, config(clock), nil)
	if got, want := runOnce(t, d), 2; got != want {
		t.Fatalf("claimed %d, want %d", got, want)
	}
	wantPanicRecorded(t, db, "t1", "nil map in adapter")
	if got, want := info(t, db, "t2").State, storegate.StateDone; got != want {
		t.Errorf("the other player's command = %q, want %q", got, want)
	}
}

// One player's commands run in creation order, each after the previous one
// finished, even when the store hands them over in another order; different
// players run at the same time.
func TestRunOnce_OnePlayerInOrderPlayersConcurrently(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	grantA := command("a.fulfill", "alice", "ledger")
	revokeA := command("a.revoke", "alice", "ledger")
	revokeA.Kind, revokeA.Reverses, revokeA.CreatedAt = storegate.KindRevoke, "a.fulfill", start.Add(time.Second)
	grantB := command("b.fulfill", "bob", "ledger")
	grantB.CreatedAt = start.Add(2 * time.Second)
	// The revoke is queued first: creation time, not queue order, decides.
	enqueue(t, db, revokeA, grantA, grantB)

	var mu sync.Mutex
	order := map[string][]string{}
	finished := map[string]bool{}
	bobArrived := make(chan struct{})
	target := targetFunc(func(ctx context.Context, c storegate.Command) storegate.Outcome {
		mu.Lock()
		order[c.PlayerID] = append(order[c.PlayerID], c.ID)
		if c.Kind == storegate.KindRevoke && !finished[c.Reverses] {
			mu.Unlock()
			return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "NOT_GRANTED_YET", Message: "revoke ran before its fulfillment finished"}
		}
		mu.Unlock()
		switch c.ID {
		case "b.fulfill":
			close(bobArrived)
		case "a.fulfill":
			// Alice's fulfillment finishes only once Bob's is in flight too.
			select {
			case <-bobArrived:
			case <-ctx.Done():
				return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "NOT_CONCURRENT", Message: "players were delivered one after the other"}
			}
		}
		mu.Lock()
		finished[c.ID] = true
		mu.Unlock()
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	})
	cfg := config(clock)
	cfg.Timeout = 5 * time.Second // real time: how long Alice's fulfillment waits for Bob's
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, cfg, nil)

	if got, want := runOnce(t, d), 3; got != want {
		t.Fatalf("claimed %d, want %d", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := order["alice"], []string{"a.fulfill", "a.revoke"}; !reflect.DeepEqual(got, want) {
		t.Errorf("alice's commands ran as %v, want %v", got, want)
	}
	for _, id := range []string{"a.fulfill", "a.revoke", "b.fulfill"} {
		if ci := info(t, db, id); ci.State != storegate.StateDone {
			t.Errorf("%s = %s (%s), want done", id, ci.State, ci.LastError)
		}
	}
}

// A player's commands never overlap and run in creation order, however many
// the lane may deliver at once.
func TestRunOnce_OnePlayerNeverOverlaps(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	const n = 8
	var want []string
	for i := n - 1; i >= 0; i-- { // queued newest first
		c := command(fmt.Sprint("a", i), "alice", "ledger")
		c.CreatedAt = start.Add(time.Duration(i) * time.Second)
		enqueue(t, db, c)
	}
	for i := range n {
		want = append(want, fmt.Sprint("a", i))
	}
	var mu sync.Mutex
	var order []string
	inFlight, overlaps := 0, 0
	target := targetFunc(func(context.Context, storegate.Command) storegate.Outcome {
		mu.Lock()
		if inFlight++; inFlight > 1 {
			overlaps++
		}
		mu.Unlock()
		runtime.Gosched() // give an overlapping delivery every chance to start
		mu.Lock()
		inFlight--
		mu.Unlock()
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	})
	recording := targetFunc(func(ctx context.Context, c storegate.Command) storegate.Outcome {
		mu.Lock()
		order = append(order, c.ID)
		mu.Unlock()
		return target(ctx, c)
	})
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": recording}, config(clock), nil)
	if got := runOnce(t, d); got != n {
		t.Fatalf("claimed %d, want %d", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if overlaps != 0 {
		t.Errorf("%d deliveries started while another of the same player was in flight", overlaps)
	}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("delivered in order %v, want %v", order, want)
	}
}

// A crash between claim and completion neither loses nor doubles a command:
// once the dead dispatcher's lease ends, another takes the command over and
// the target, idempotent by command id, takes effect once.
func TestCrashBetweenClaimAndCompletion(t *testing.T) {
	tests := []struct {
		name string
		// crash makes dispatcher A claim and die; it reports whether A's
		// target call happened before the crash.
		crash func(t *testing.T, db *store.DB, cfg dispatch.Config, target dispatch.Target) (delivered bool)
	}{
		{"after claim, before delivery", func(t *testing.T, db *store.DB, cfg dispatch.Config, _ dispatch.Target) bool {
			claimed, err := db.Claim(context.Background(), cfg.Owner, "ledger", cfg.Batch, cfg.Lease)
			if err != nil || len(claimed) != 1 {
				t.Fatalf("A claimed %d (err %v), want 1", len(claimed), err)
			}
			return false
		}},
		{"after delivery, before recording", func(t *testing.T, db *store.DB, cfg dispatch.Config, target dispatch.Target) bool {
			a := newDispatcher(t, crashing{db}, map[string]dispatch.Target{"ledger": target}, cfg, nil)
			if got, want := runOnce(t, a), 1; got != want {
				t.Fatalf("A claimed %d, want %d", got, want)
			}
			return true
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(start)
			db := openStore(t, clock)
			original := command("t1", "p1", "ledger")
			enqueue(t, db, original)
			target := newEffects()

			cfgA := config(clock)
			delivered := tc.crash(t, db, cfgA, target)
			if ci := info(t, db, "t1"); ci.State != storegate.StatePending {
				t.Fatalf("after the crash the command is %s, want pending", ci.State)
			}

			cfgB := config(clock)
			cfgB.Owner = "dispatcher-b"
			b := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, cfgB, nil)
			if got := runOnce(t, b); got != 0 {
				t.Fatalf("B claimed %d while A's lease held, want 0", got)
			}
			clock.Advance(cfgA.Lease + time.Second)
			if got, want := runOnce(t, b), 1; got != want {
				t.Fatalf("B claimed %d after A's lease ended, want %d", got, want)
			}

			ci := info(t, db, "t1")
			if got, want := ci.State, storegate.StateDone; got != want {
				t.Errorf("state = %q, want %q", got, want)
			}
			target.mu.Lock()
			defer target.mu.Unlock()
			if got, want := target.effects["t1"], 1; got != want {
				t.Errorf("target took effect %d times, want %d", got, want)
			}
			wantDeliveries := 1
			if delivered {
				wantDeliveries = 2
			}
			if got := target.deliveries["t1"]; got != wantDeliveries {
				t.Errorf("target saw %d deliveries, want %d", got, wantDeliveries)
			}
			// The redelivery carries the same id and content, so the
			// target can recognise it.
			if got := target.seen["t1"]; got.ID != original.ID || !reflect.DeepEqual(got.Lines, original.Lines) || !got.CreatedAt.Equal(original.CreatedAt) {
				t.Errorf("delivered %+v, want %+v", got, original)
			}
			clock.Advance(time.Hour)
			if got := runOnce(t, b); got != 0 {
				t.Errorf("claimed %d after done, want 0", got)
			}
		})
	}
}

// A dispatcher does not start a delivery its lease may not cover: when a
// claim runs long (one player's commands go one at a time), the rest is
// left to expire and is delivered once, by whoever claims it next, never by
// two dispatchers at the same time.
func TestRunOnce_NoDeliveryAfterTheLeaseCouldEnd(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	var cmds []storegate.Command
	for i := range 5 {
		c := command(fmt.Sprint("t", i), "p", "ledger")
		c.CreatedAt = start.Add(time.Duration(i) * time.Second)
		cmds = append(cmds, c)
	}
	enqueue(t, db, cmds...)

	cfgA := config(clock)
	cfgB := config(clock)
	cfgB.Owner = "dispatcher-b"

	var mu sync.Mutex
	deliveries := map[string][]string{}
	var b *dispatch.Dispatcher
	bRan := false
	target := func(owner string) dispatch.Target {
		return targetFunc(func(ctx context.Context, c storegate.Command) storegate.Outcome {
			mu.Lock()
			deliveries[c.ID] = append(deliveries[c.ID], owner)
			runB := false
			if owner == "dispatcher-a" {
				// Each delivery takes 9s, within the 10s timeout.
				clock.Advance(9 * time.Second)
				// Once A's lease has run out, B claims what is due.
				if !clock.Now().Before(start.Add(cfgA.Lease)) && !bRan {
					bRan, runB = true, true
				}
			}
			mu.Unlock()
			if runB {
				if _, err := b.RunOnce(context.Background()); err != nil {
					t.Error(err)
				}
			}
			return storegate.Outcome{Verdict: storegate.VerdictDone}
		})
	}
	a := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target("dispatcher-a")}, cfgA, nil)
	b = newDispatcher(t, db, map[string]dispatch.Target{"ledger": target("dispatcher-b")}, cfgB, nil)

	runOnce(t, a)
	mu.Lock()
	ran := bRan
	mu.Unlock()
	if !ran {
		clock.Set(start.Add(cfgA.Lease + time.Second))
		runOnce(t, b)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range cmds {
		if got := deliveries[c.ID]; len(got) != 1 {
			t.Errorf("%s delivered by %v, want exactly one dispatcher", c.ID, got)
		}
		if ci := info(t, db, c.ID); ci.State != storegate.StateDone {
			t.Errorf("%s = %s, want done", c.ID, ci.State)
		}
	}
}

// Notify wakes a dispatcher that is waiting out a long poll.
func TestRun_NotifyWakesEarly(t *testing.T) {
	q := newMemQueue(time.Now)
	q.claimed = make(chan struct{}, 1)
	delivered := make(chan string, 1)
	cfg := dispatch.Config{Owner: "d", Poll: time.Hour, Jitter: func() float64 { return 0 }}
	d := newDispatcher(t, q, map[string]dispatch.Target{"ledger": targetFunc(func(_ context.Context, c storegate.Command) storegate.Outcome {
		delivered <- c.ID
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	})}, cfg, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() { d.Run(ctx); close(stopped) }()

	select {
	case <-q.claimed: // the first, empty claim: Run now waits an hour
	case <-ctx.Done():
		t.Fatal("Run never claimed")
	}
	c := command("t1", "p1", "ledger")
	c.CreatedAt = time.Now()
	q.add(c)
	d.Notify()
	select {
	case id := <-delivered:
		if id != "t1" {
			t.Errorf("delivered %q, want t1", id)
		}
	case <-ctx.Done():
		t.Fatal("Notify did not wake Run: the command waited for the poll")
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got, want := q.state("t1"), storegate.StateDone; got != want {
		t.Errorf("state = %q, want %q", got, want)
	}
}

// A backlog larger than one batch is drained at once, not one batch per poll.
func TestRun_DrainsBacklogWithoutWaiting(t *testing.T) {
	q := newMemQueue(time.Now)
	const n = 7
	for i := range n {
		c := command(fmt.Sprint("t", i), fmt.Sprint("p", i), "ledger")
		c.CreatedAt = start.Add(time.Duration(i))
		q.add(c)
	}
	delivered := make(chan string, n)
	cfg := dispatch.Config{Owner: "d", Batch: 2, Poll: time.Hour}
	d := newDispatcher(t, q, map[string]dispatch.Target{"ledger": targetFunc(func(_ context.Context, c storegate.Command) storegate.Outcome {
		delivered <- c.ID
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	})}, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() { d.Run(ctx); close(stopped) }()
	for i := range n {
		select {
		case <-delivered:
		case <-ctx.Done():
			t.Fatalf("only %d of %d commands delivered before the deadline", i, n)
		}
	}
	cancel()
	<-stopped
}

// Shutting down lets a delivery in flight finish and records it, so the
// effect is not left unrecorded until the lease expires.
func TestRun_ShutdownFinishesDeliveryInFlight(t *testing.T) {
	q := newMemQueue(time.Now)
	c := command("t1", "p1", "ledger")
	q.add(c)
	entered, release := make(chan struct{}), make(chan struct{})
	cfg := dispatch.Config{Owner: "d", Poll: time.Hour}
	d := newDispatcher(t, q, map[string]dispatch.Target{"ledger": targetFunc(func(ctx context.Context, _ storegate.Command) storegate.Outcome {
		close(entered)
		<-release
		if ctx.Err() != nil {
			return storegate.Outcome{Verdict: storegate.VerdictRetry, Message: "delivery context was cancelled by the shutdown"}
		}
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	})}, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { d.Run(ctx); close(stopped) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the command was never delivered")
	}
	cancel()
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got, want := q.state("t1"), storegate.StateDone; got != want {
		t.Errorf("state after shutdown = %q (%s), want %q", got, q.last().Outcome.Message, want)
	}
}

// wantPanicRecorded checks that a target's panic became a failed attempt of
// command id: pending for a retry, its last error naming the panic.
func wantPanicRecorded(t *testing.T, db *store.DB, id, panicked string) {
	t.Helper()
	ci := info(t, db, id)
	if ci.State != storegate.StatePending || ci.Attempts != 1 {
		t.Errorf("panicking command: %s with %d attempts, want pending with 1", ci.State, ci.Attempts)
	}
	for _, want := range []string{"PANIC", panicked} {
		if !strings.Contains(ci.LastError, want) {
			t.Errorf("last error = %q, want it to contain %q", ci.LastError, want)
		}
	}
}
