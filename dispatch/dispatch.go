// Package dispatch delivers the outbox: each target has a lane that claims
// its due commands under a lease and delivers up to its MaxInFlight at once,
// so one slow or failing target never holds up another. Each outcome is
// recorded: done, retry later (exponential backoff with jitter), wait (the
// target's breaker is open: no attempt spent, the lane pauses until its next
// probe), or dead letter after a configurable number of attempts.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"storegate"
	"storegate/store"
	"storegate/store/engine"
)

// Target delivers commands over the network and classifies the result.
// Targets must be idempotent by Command.ID: a command may be delivered more
// than once.
type Target interface {
	Deliver(ctx context.Context, c storegate.Command) storegate.Outcome
}

// Queue is the outbox as the dispatcher uses it.
type Queue interface {
	// Claim leases up to n due commands of one target.
	Claim(ctx context.Context, owner, target string, n int, lease time.Duration) ([]store.Claimed, error)
	// CompleteAll records outcomes in one write; the error at i is cs[i]'s
	// (store.ErrLeaseLost when its lease was lost).
	CompleteAll(ctx context.Context, cs []store.Completion) []error
	// WriteBackground runs fn inside the store's group-committed
	// transaction, as background work: a lane's Applier applies its
	// commands there, together with their completions.
	WriteBackground(ctx context.Context, fn func(context.Context, *engine.Tx) error) error
}

// Lane is one target as the dispatcher delivers to it.
type Lane struct {
	// Target delivers the lane's commands. Required.
	Target Target
	// Applier, when set, applies the commands it takes inside the store's
	// transaction instead, each with its completion, so the effect and
	// "done" commit as one (the embedded ledger). Default none.
	Applier store.Applier
	// MaxInFlight is how many of the lane's commands are claimed and being
	// delivered at once. Default 64.
	MaxInFlight int
}

// txChunk is about how many in-transaction commands share one write: small
// enough that a commit carrying one chunk beside senders' requests keeps
// their answers fast (the store puts several chunks in a commit when no
// sender waits).
const txChunk = 4

// Observer hears about every delivery, for metrics.
type Observer interface {
	Delivered(target string, v storegate.Verdict, d time.Duration)
}

// Config tunes the dispatcher. Zero fields take the documented defaults.
type Config struct {
	// Owner names this dispatcher in leases. Default: hostname-pid.
	Owner string
	// Batch is the most commands one claim takes. Default 64.
	Batch int
	// Lease is how long a claim is held; a worker that dies mid-command loses
	// its lease and another takes the command over. Default 30s.
	Lease time.Duration
	// Timeout bounds one delivery. Must be under Lease. Default 10s.
	Timeout time.Duration
	// Poll is the idle wait between claims when nothing is due. Default 250ms.
	Poll time.Duration
	// MaxAttempts spends this many attempts before a dead letter. Default 12.
	MaxAttempts int
	// BackoffBase and BackoffMax shape retries: base·2^(attempt-1), capped,
	// with jitter taking off up to half. Defaults 1s and 1h.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// RetryAfterMax caps a target's Retry-After hint. Default 1h.
	RetryAfterMax time.Duration
	// DeferMax is how long a deferred command (a revoke waiting for its
	// grant) may wait before it becomes a dead letter. Deferred waits spend
	// no attempts. Default 7 days.
	DeferMax time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Jitter returns a number in [0,1). Default math/rand.
	Jitter func() float64
}

// DefaultMaxInFlight is Lane.MaxInFlight's default.
const DefaultMaxInFlight = 64

// WithDefaults returns c with each zero field set to its default: the one
// place the defaults are written, read by New and by whoever shows or checks
// them (the YAML config).
func (c Config) WithDefaults() Config {
	if c.Owner == "" {
		host, _ := os.Hostname()
		c.Owner = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Batch <= 0 {
		c.Batch = 64
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 12
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = time.Hour
	}
	if c.RetryAfterMax <= 0 {
		c.RetryAfterMax = time.Hour
	}
	if c.DeferMax <= 0 {
		c.DeferMax = 7 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
	return c
}

// Dispatcher delivers commands. Run it once per process.
type Dispatcher struct {
	cfg   Config
	queue Queue
	done  completions
	lanes []*lane // by name
	obs   Observer
	log   *slog.Logger
}

// New returns a dispatcher with a lane per target. A command naming no
// lane is never claimed: every target a source names has one.
func New(q Queue, lanes map[string]Lane, cfg Config, obs Observer, log *slog.Logger) (*Dispatcher, error) {
	cfg = cfg.WithDefaults()
	if cfg.Timeout >= cfg.Lease {
		return nil, errors.New("dispatch: timeout must be shorter than the lease")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{cfg: cfg, queue: q, obs: obs, log: log, done: completions{q: q}}
	for _, name := range slices.Sorted(maps.Keys(lanes)) {
		l := lanes[name]
		if l.Target == nil {
			return nil, fmt.Errorf("dispatch: lane %s has no target", name)
		}
		if l.MaxInFlight <= 0 {
			l.MaxInFlight = DefaultMaxInFlight
		}
		d.lanes = append(d.lanes, &lane{d: d, name: name, target: l.Target, applier: l.Applier, max: l.MaxInFlight,
			wake: make(chan struct{}, 1), freed: make(chan struct{}, 1), queued: map[string][]item{}})
	}
	return d, nil
}

// Notify wakes every lane early: new commands were committed.
func (d *Dispatcher) Notify() {
	for _, l := range d.lanes {
		signal(l.wake)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, each lane on its own, then waits for the
// deliveries in flight.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range d.lanes {
		wg.Go(func() { l.run(ctx) })
	}
	wg.Wait()
}

// RunOnce has every lane claim what it has room for and deliver it, and
// returns how many commands were claimed once all are delivered. It is Run
// in steps, for tests and tools.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	total := 0
	var errs []error
	for _, l := range d.lanes {
		n, _, err := l.fill(ctx)
		total += n
		errs = append(errs, err)
	}
	for _, l := range d.lanes {
		l.running.Wait()
	}
	return total, errors.Join(errs...)
}

// lane delivers one target's commands: up to max claimed at once, one
// player's in claim order and one at a time (a grant before its revoke),
// players side by side.
type lane struct {
	d       *Dispatcher
	name    string
	target  Target
	applier store.Applier
	max     int
	wake    chan struct{} // new commands may be due
	freed   chan struct{} // a claimed command was completed or let go

	mu sync.Mutex
	// held counts the commands claimed and not yet completed or let go.
	held int
	// queued holds, per player with a command being delivered, the
	// player's later claimed commands, in claim order.
	queued map[string][]item
	// paused is when the target's breaker lets its next probe through;
	// probing, that the lane sends one command at a time until one gets
	// through to the target.
	paused  time.Time
	probing bool
	running sync.WaitGroup
}

// item is a claimed command and the last moment its delivery may start.
type item struct {
	c     store.Claimed
	start time.Time
}

func (l *lane) run(ctx context.Context) {
	defer l.running.Wait()
	for ctx.Err() == nil {
		n, asked, err := l.fill(ctx)
		if err != nil && ctx.Err() == nil {
			l.d.log.Error("claim failed", "target", l.name, "err", err)
		}
		if err == nil && n > 0 && n == asked {
			continue // more may be due now
		}
		wait := l.d.cfg.Poll
		if p := l.pausedFor(); p > 0 {
			wait = p
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-l.wake:
		case <-l.freed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// room is how many commands the lane may claim now.
func (l *lane) room() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.d.cfg.Now().Before(l.paused):
		return 0
	case l.probing && l.held > 0:
		return 0
	case l.probing:
		return 1
	}
	return min(l.max-l.held, l.d.cfg.Batch)
}

// pausedFor is how long the lane still waits for its target's breaker.
func (l *lane) pausedFor() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paused.Sub(l.d.cfg.Now())
}

// pause stops claims until the target's breaker lets a probe through.
func (l *lane) pause(after time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := l.d.cfg.Now().Add(max(after, time.Millisecond)); until.After(l.paused) {
		l.paused = until
	}
	l.probing = true
}

// heard takes what one delivery says of the target's health: a wait
// pauses the lane; an answer that proves the target works ends probing, so
// the backlog drains at full concurrency from the next claim on.
func (l *lane) heard(out storegate.Outcome) {
	switch {
	case out.Verdict == storegate.VerdictWait:
		l.pause(out.RetryAfter)
	case out.Verdict == storegate.VerdictDone || out.Verdict == storegate.VerdictDead || out.Deferred:
		l.mu.Lock()
		l.probing = false
		l.mu.Unlock()
	}
}

// fill claims what the lane has room for and starts delivering it: the
// commands its Applier takes at once, in the store's transaction, the rest
// by player. It returns how many it claimed and asked for.
func (l *lane) fill(ctx context.Context) (n, asked int, err error) {
	asked = l.room()
	if asked == 0 {
		return 0, 0, nil
	}
	// A delivery must end before the lease does, or another dispatcher may
	// take the command over while it is still in flight. A delivery lasts
	// up to Timeout, so none may start after this; what is left is let go
	// to its lease and claimed again when it ends.
	start := l.d.cfg.Now().Add(l.d.cfg.Lease - l.d.cfg.Timeout)
	claimed, err := l.d.queue.Claim(ctx, l.d.cfg.Owner, l.name, asked, l.d.cfg.Lease)
	if err != nil || len(claimed) == 0 {
		return 0, asked, err
	}
	l.mu.Lock()
	l.held += len(claimed)
	// A player already being delivered to, or with a command in this claim
	// that goes the slow way, keeps the rest of its commands in order
	// behind it.
	behind := map[string]bool{}
	for p := range l.queued {
		behind[p] = true
	}
	l.mu.Unlock()
	var inTx, rest []store.Claimed
	for _, c := range claimed {
		p := c.Command.PlayerID
		if l.applier != nil && !behind[p] && store.Takes(l.applier, c.Command) {
			inTx = append(inTx, c)
			continue
		}
		behind[p] = true
		rest = append(rest, c)
	}
	// A wave's chunks are written concurrently, so the store can put
	// several in one commit; no player is in two chunks of a wave, and a
	// player's later commands come in later waves, so they still apply in
	// order (a grant before its revoke).
	for _, wave := range waves(inTx, txChunk) {
		var chunks sync.WaitGroup
		for _, chunk := range wave {
			chunks.Go(func() { l.applyInTx(chunk) })
		}
		chunks.Wait()
	}
	l.release(len(inTx))
	for _, c := range rest {
		l.enqueue(item{c: c, start: start})
	}
	return len(claimed), asked, nil
}

// release counts n claimed commands completed or let go.
func (l *lane) release(n int) {
	if n == 0 {
		return
	}
	l.mu.Lock()
	l.held -= n
	l.mu.Unlock()
	signal(l.freed)
}

// enqueue delivers it now, or after the player's commands claimed before it.
func (l *lane) enqueue(it item) {
	p := it.c.Command.PlayerID
	l.mu.Lock()
	if q, busy := l.queued[p]; busy {
		l.queued[p] = append(q, it)
		l.mu.Unlock()
		return
	}
	l.queued[p] = nil
	l.mu.Unlock()
	l.running.Go(func() { l.player(it) })
}

// player delivers one player's commands one after another, until none is
// queued behind.
func (l *lane) player(it item) {
	p := it.c.Command.PlayerID
	for {
		if l.d.cfg.Now().After(it.start) {
			l.mu.Lock()
			left := 1 + len(l.queued[p])
			delete(l.queued, p)
			l.mu.Unlock()
			// The player's later commands wait too, keeping their order.
			l.d.log.Warn("lease too short to deliver the rest of the claim; leaving it to expire",
				"command", it.c.Command.ID, "target", l.name, "left", left)
			l.release(left)
			return
		}
		if l.applier != nil && store.Takes(l.applier, it.c.Command) {
			l.applyInTx([]store.Claimed{it.c})
		} else {
			l.heard(l.d.deliver(l.name, l.target, it.c))
		}
		l.mu.Lock()
		q := l.queued[p]
		if len(q) == 0 {
			delete(l.queued, p)
			l.mu.Unlock()
			l.release(1)
			return
		}
		it, l.queued[p] = q[0], q[1:]
		l.mu.Unlock()
		l.release(1)
	}
}

// waves splits claimed commands into waves of chunks. Wave k holds each
// player's commands k·size to (k+1)·size-1, in claim order, packed into
// chunks of at most 2·size-1 commands with no player in two chunks.
func waves(claimed []store.Claimed, size int) [][][]store.Claimed {
	var players []string
	byPlayer := map[string][]store.Claimed{}
	for _, c := range claimed {
		p := c.Command.PlayerID
		if _, ok := byPlayer[p]; !ok {
			players = append(players, p)
		}
		byPlayer[p] = append(byPlayer[p], c)
	}
	var out [][][]store.Claimed
	for k := 0; ; k++ {
		var wave [][]store.Claimed
		var chunk []store.Claimed
		for _, p := range players {
			cs := byPlayer[p]
			if k*size >= len(cs) {
				continue
			}
			chunk = append(chunk, cs[k*size:min((k+1)*size, len(cs))]...)
			if len(chunk) >= size {
				wave, chunk = append(wave, chunk), nil
			}
		}
		if chunk != nil {
			wave = append(wave, chunk)
		}
		if wave == nil {
			return out
		}
		out = append(out, wave)
	}
}

// errNotAllDone sends a chunk of in-transaction commands down the slow path.
var errNotAllDone = errors.New("dispatch: not every command of the chunk is done")

// txResult is what became of one in-transaction delivery.
type txResult struct {
	out      storegate.Outcome
	comp     store.Completion
	leaseErr error
}

// applyAll applies claimed at once inside tx and records their
// completions, each with its share of the time; errNotAllDone if the
// Applier did not do them all (the caller then undoes it and applies each
// alone). On PostgreSQL this is what makes a chunk cheap: the ledger's
// statements, each a round trip, are shared by the chunk.
func (l *lane) applyAll(ctx context.Context, tx *engine.Tx, claimed []store.Claimed, results []txResult) error {
	cs := make([]storegate.Command, len(claimed))
	for i, c := range claimed {
		cs[i] = c.Command
	}
	started := l.d.cfg.Now()
	if store.Apply(ctx, l.applier, tx, cs).Verdict != storegate.VerdictDone {
		return errNotAllDone
	}
	share := l.d.cfg.Now().Sub(started) / time.Duration(len(claimed))
	for i, c := range claimed {
		r := txResult{out: storegate.Outcome{Verdict: storegate.VerdictDone}}
		r.comp = l.d.completion(c, r.out)
		r.comp.StartedAt, r.comp.Duration = started, share
		if err := store.CompleteIn(ctx, tx, r.comp); err != nil {
			return errNotAllDone
		}
		results[i] = r
	}
	return nil
}

// applyOne applies one command inside tx and records its completion there;
// a verdict other than done undoes the effect and keeps the completion.
func (l *lane) applyOne(ctx context.Context, tx *engine.Tx, c store.Claimed) (txResult, error) {
	var r txResult
	started := l.d.cfg.Now()
	r.out = store.Apply(ctx, l.applier, tx, []storegate.Command{c.Command})
	if r.out.Verdict != storegate.VerdictDone {
		if err := tx.Undo(ctx); err != nil {
			return r, err
		}
	}
	r.comp = l.d.completion(c, r.out)
	r.comp.StartedAt, r.comp.Duration = started, l.d.cfg.Now().Sub(started)
	return r, store.CompleteIn(ctx, tx, r.comp)
}

// applyInTx applies claimed commands and records their completions in one
// write. A command whose lease was lost is undone entirely; if the write
// fails as a whole, nothing of it committed and the leases expire.
func (l *lane) applyInTx(claimed []store.Claimed) {
	if len(claimed) == 0 {
		return
	}
	results := make([]txResult, len(claimed))
	ctx, cancel := context.WithTimeout(context.Background(), l.d.cfg.Timeout)
	defer cancel()
	err := l.d.queue.WriteBackground(ctx, func(ctx context.Context, tx *engine.Tx) error {
		// Usually every command is done: apply them all under one
		// savepoint. Savepoints are not free (SQLite copies each page a
		// savepoint changes), so only if one is not done, or its lease was
		// lost, is all of it undone and each command applied under its own.
		if len(claimed) > 1 {
			err := tx.Savepoint(ctx, func() error { return l.applyAll(ctx, tx, claimed, results) })
			if !errors.Is(err, errNotAllDone) {
				return err
			}
		}
		for i, c := range claimed {
			var r txResult
			err := tx.Savepoint(ctx, func() error {
				var err error
				r, err = l.applyOne(ctx, tx, c)
				return err
			})
			switch {
			case errors.Is(err, store.ErrLeaseLost):
				r.leaseErr = err // undone: another worker owns it
			case err != nil:
				return err
			}
			results[i] = r
		}
		return nil
	})
	for i, c := range claimed {
		if err != nil {
			// results is not read: a write that timed out may still be
			// running, and filling it in.
			l.d.log.Error("could not apply or record in-transaction deliveries; the leases will expire", "command", c.Command.ID, "err", err)
			continue
		}
		r := results[i]
		if l.d.obs != nil && r.leaseErr == nil {
			l.d.obs.Delivered(c.Command.Target, r.out.Verdict, r.comp.Duration)
		}
		l.d.logOutcome(c.Command, r.out, r.comp, r.leaseErr)
	}
}

// deliver runs one command to its outcome over the network and records it.
// It deliberately ignores the caller's cancellation: a delivery in flight
// finishes and is recorded, so a shutdown does not leave an effect
// unrecorded until the lease expires.
func (d *Dispatcher) deliver(name string, target Target, c store.Claimed) storegate.Outcome {
	cmd := c.Command
	started := d.cfg.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	out := safeDeliver(ctx, target, cmd)
	cancel()
	elapsed := d.cfg.Now().Sub(started)
	if d.obs != nil {
		d.obs.Delivered(name, out.Verdict, elapsed)
	}
	comp := d.completion(c, out)
	comp.StartedAt, comp.Duration = started, elapsed
	ctx, cancel = context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	d.logOutcome(cmd, out, comp, d.done.record(ctx, comp))
	return out
}

// completions gathers the outcomes of deliveries that end together into
// few writes: with many commands in flight, a write per outcome would cost
// the store a transaction (on PostgreSQL, its round trips) per command. A
// caller finding fewer than completionWriters writes under way writes what
// has gathered, again until nothing is left, and hands each its result; the
// others wait for theirs.
type completions struct {
	q       Queue
	mu      sync.Mutex
	pending []completing
	writing int
}

// completionWriters is how many writes of outcomes may be under way at
// once: PostgreSQL's four committers each take one.
const completionWriters = 4

type completing struct {
	comp store.Completion
	done chan error
}

func (c *completions) record(ctx context.Context, comp store.Completion) error {
	done := make(chan error, 1)
	c.mu.Lock()
	c.pending = append(c.pending, completing{comp, done})
	if c.writing >= completionWriters {
		c.mu.Unlock()
		return <-done
	}
	c.writing++
	for len(c.pending) > 0 {
		batch := c.pending
		c.pending = nil
		c.mu.Unlock()
		comps := make([]store.Completion, len(batch))
		for i, b := range batch {
			comps[i] = b.comp
		}
		for i, err := range c.q.CompleteAll(ctx, comps) {
			batch[i].done <- err
		}
		c.mu.Lock()
	}
	c.writing--
	c.mu.Unlock()
	return <-done
}

// logOutcome logs what became of a delivery: a lost lease, an outcome that
// could not be recorded, a dead letter, or a retry.
func (d *Dispatcher) logOutcome(cmd storegate.Command, out storegate.Outcome, comp store.Completion, err error) {
	log := d.log.With("command", cmd.ID, "target", cmd.Target, "kind", cmd.Kind, "verdict", out.Verdict, "attempt", comp.Attempt)
	switch {
	case errors.Is(err, store.ErrLeaseLost):
		log.Warn("lease lost before completion; another worker owns the command")
	case err != nil:
		// The lease will expire and the command run again; the target's
		// idempotency makes that harmless.
		log.Error("could not record outcome", "err", err)
	case comp.State == storegate.StateDead:
		log.Error("dead letter", "code", out.Code, "http_status", out.HTTPStatus, "message", out.Message)
	case out.Verdict == storegate.VerdictRetry:
		log.Warn("delivery failed; will retry", "next_at", comp.NextAt, "code", out.Code, "http_status", out.HTTPStatus, "message", out.Message)
	}
}

// safeDeliver turns a target's panic into a retry of that command alone.
func safeDeliver(ctx context.Context, t Target, c storegate.Command) (out storegate.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			out = storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "PANIC", Message: fmt.Sprint(r)}
		}
	}()
	return t.Deliver(ctx, c)
}

// completion turns an outcome into the outbox's next state.
func (d *Dispatcher) completion(c store.Claimed, out storegate.Outcome) store.Completion {
	comp := store.Completion{ID: c.Command.ID, Owner: d.cfg.Owner, Outcome: out}
	now := d.cfg.Now()
	switch out.Verdict {
	case storegate.VerdictDone:
		comp.State, comp.Attempt = storegate.StateDone, c.Attempts+1
	case storegate.VerdictDead:
		comp.State, comp.Attempt = storegate.StateDead, c.Attempts+1
	case storegate.VerdictWait:
		// The target is unavailable, not the command: it keeps its place,
		// and its lane waits for the target (lane.pause).
		comp.State, comp.NextAt = storegate.StatePending, now
	case storegate.VerdictRetry:
		if !out.Deferred {
			return d.retry(c, comp, out, now)
		}
		// Deferred (a revoke waiting for its grant, or for a revocation
		// service whose breaker is open): nothing failed, so no attempt is
		// spent and MaxAttempts never turns it into a dead letter while it
		// may still succeed; the wait is the breaker's next probe when it
		// says, else it grows with the command's age, up to BackoffMax. Only
		// after DeferMax does a person need to look.
		age := now.Sub(c.Command.CreatedAt)
		if age > d.cfg.DeferMax {
			comp.State, comp.Attempt = storegate.StateDead, c.Attempts+1
			comp.Outcome.Message = fmt.Sprintf("still waiting after %v: %s", d.cfg.DeferMax, out.Message)
			break
		}
		wait := min(max(age/4, d.cfg.BackoffBase), d.cfg.BackoffMax)
		if out.RetryAfter > 0 {
			wait = min(out.RetryAfter, d.cfg.RetryAfterMax)
		}
		comp.State, comp.NextAt = storegate.StatePending, now.Add(wait)
	default:
		return d.retry(c, comp, out, now)
	}
	return comp
}

// retry schedules a failed attempt again, or makes it a dead letter after
// MaxAttempts.
func (d *Dispatcher) retry(c store.Claimed, comp store.Completion, out storegate.Outcome, now time.Time) store.Completion {
	comp.Outcome.Verdict = storegate.VerdictRetry // anything unknown is a retry
	comp.Attempt = c.Attempts + 1
	if comp.Attempt >= d.cfg.MaxAttempts {
		comp.State = storegate.StateDead
		comp.Outcome.Message = fmt.Sprintf("gave up after %d attempts: %s", comp.Attempt, out.Message)
		return comp
	}
	comp.State, comp.NextAt = storegate.StatePending, now.Add(d.Backoff(comp.Attempt, out.RetryAfter))
	return comp
}

// Backoff is the wait after the given failed attempt (1-based): exponential
// from BackoffBase, capped at BackoffMax, with "equal jitter" (between half
// and all of it) so a burst of failures does not retry in lockstep. A target's
// Retry-After, capped at RetryAfterMax, is a floor.
func (d *Dispatcher) Backoff(attempt int, retryAfter time.Duration) time.Duration {
	exp := float64(d.cfg.BackoffBase) * math.Pow(2, float64(attempt-1))
	wait := time.Duration(math.Min(exp, float64(d.cfg.BackoffMax)))
	wait = wait/2 + time.Duration(d.cfg.Jitter()*float64(wait/2))
	if retryAfter > 0 {
		retryAfter = min(retryAfter, d.cfg.RetryAfterMax)
		wait = max(wait, retryAfter)
	}
	return wait
}
