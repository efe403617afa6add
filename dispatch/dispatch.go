// Package dispatch delivers the outbox: it claims due commands under a lease,
// hands each to its target, and records the outcome: done, retry later
// (exponential backoff with jitter), wait (breaker open; no attempt spent), or
// dead letter after a configurable number of attempts.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"storegate"
	"storegate/store"
)

// Target takes effect for a command and classifies the result. Targets must
// be idempotent by Command.ID: a command may be delivered more than once.
type Target interface {
	Deliver(ctx context.Context, c storegate.Command) storegate.Outcome
}

// Queue is the outbox as the dispatcher uses it.
type Queue interface {
	Claim(ctx context.Context, owner string, n int, lease time.Duration) ([]store.Claimed, error)
	Complete(ctx context.Context, c store.Completion) error
}

// TxTarget is a target whose effects live in the store's own database (the
// embedded ledger). Its commands are applied inside the store's transaction
// together with their completion: the effect and "done" commit as one, and
// a whole claimed batch shares one commit instead of two per command.
type TxTarget interface {
	Target
	// CanDeliverTx reports whether c can be applied inside a transaction
	// (one that needs a network call cannot).
	CanDeliverTx(c storegate.Command) bool
	// DeliverTx applies c inside tx. The dispatcher undoes its writes for
	// any verdict but done.
	DeliverTx(ctx context.Context, tx *store.Tx, c storegate.Command) storegate.Outcome
}

// Writer runs a function inside the store's group-committed transaction, as
// background work (store.DB.WriteBackground); a queue that has it delivers
// TxTargets' commands inside its transactions.
type Writer interface {
	WriteBackground(ctx context.Context, fn func(context.Context, *store.Tx) error) error
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
	// Workers is how many players' commands are delivered at once. Default 8.
	Workers int
	// Batch is how many commands one claim takes. Default 64.
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
	// WaitDelay is how long a command waits when its target's breaker is
	// open. Default 5s.
	WaitDelay time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Jitter returns a number in [0,1). Default math/rand.
	Jitter func() float64
}

// WithDefaults returns c with each zero field set to its default: the one
// place the defaults are written, read by New and by whoever shows or checks
// them (the YAML config).
func (c Config) WithDefaults() Config {
	if c.Owner == "" {
		host, _ := os.Hostname()
		c.Owner = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Workers <= 0 {
		c.Workers = 8
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
	if c.WaitDelay <= 0 {
		c.WaitDelay = 5 * time.Second
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
	cfg     Config
	queue   Queue
	targets map[string]Target
	obs     Observer
	log     *slog.Logger
	wake    chan struct{}
}

// New returns a dispatcher. targets maps target names to targets; a command
// naming an unknown target becomes a dead letter.
func New(q Queue, targets map[string]Target, cfg Config, obs Observer, log *slog.Logger) (*Dispatcher, error) {
	cfg = cfg.WithDefaults()
	if cfg.Timeout >= cfg.Lease {
		return nil, errors.New("dispatch: timeout must be shorter than the lease")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{cfg: cfg, queue: q, targets: targets, obs: obs, log: log, wake: make(chan struct{}, 1)}, nil
}

// Notify wakes the dispatcher early: new commands were committed.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, then waits for deliveries in flight.
func (d *Dispatcher) Run(ctx context.Context) {
	for {
		n, err := d.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Error("claim failed", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		if n == d.cfg.Batch {
			continue // more may be due right now
		}
		timer := time.NewTimer(d.cfg.Poll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-d.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// RunOnce claims one batch and delivers it, returning how many commands it
// claimed. Commands of one player run in order (a grant before its revoke);
// players run concurrently.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	// A delivery must end before the lease does, or another dispatcher may
	// take the command over while it is still in flight. A delivery lasts
	// up to Timeout, so none may start after this; the rest of the batch is
	// left to its lease and claimed again when it ends.
	lastStart := d.cfg.Now().Add(d.cfg.Lease - d.cfg.Timeout)
	claimed, err := d.queue.Claim(ctx, d.cfg.Owner, d.cfg.Batch, d.cfg.Lease)
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	// In-transaction commands first, in claim order, all in one write;
	// the rest by player. A player's commands split between the two keep
	// their order: only a revoke that must ask a custom service over the
	// network goes the slow way, and it comes after the grant it undoes.
	var inTx, rest []store.Claimed
	w, canWrite := d.queue.(Writer)
	for _, c := range claimed {
		if t, ok := d.targets[c.Command.Target].(TxTarget); canWrite && ok && t.CanDeliverTx(c.Command) {
			inTx = append(inTx, c)
		} else {
			rest = append(rest, c)
		}
	}
	// A wave's chunks are written concurrently, so the store can put
	// several in one commit; no player is in two chunks of a wave, and a
	// player's later commands come in later waves, so they still apply in
	// order (a grant before its revoke).
	for _, wave := range waves(inTx, txChunk) {
		var chunks sync.WaitGroup
		for _, c := range wave {
			chunks.Go(func() { d.deliverInTx(w, c) })
		}
		chunks.Wait()
	}
	var groups [][]store.Claimed
	index := map[string]int{}
	for _, c := range rest {
		i, ok := index[c.Command.PlayerID]
		if !ok {
			i = len(groups)
			index[c.Command.PlayerID] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], c)
	}
	sem := make(chan struct{}, d.cfg.Workers)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for i, c := range g {
				if d.cfg.Now().After(lastStart) {
					// The player's later commands wait too, keeping their order.
					d.log.Warn("lease too short to deliver the rest of the batch; leaving it to expire",
						"command", c.Command.ID, "left", len(g)-i)
					return
				}
				d.deliver(c)
			}
		}()
	}
	wg.Wait()
	return len(claimed), nil
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

// applyTx delivers one command inside tx and records its completion there;
// notDone runs first when the verdict is not done.
func (d *Dispatcher) applyTx(ctx context.Context, tx *store.Tx, c store.Claimed, notDone func() error) (txResult, error) {
	var r txResult
	started := d.cfg.Now()
	r.out = safeDeliverTx(ctx, d.targets[c.Command.Target].(TxTarget), tx, c.Command)
	if r.out.Verdict != storegate.VerdictDone {
		if err := notDone(); err != nil {
			return r, err
		}
	}
	r.comp = d.completion(c, r.out)
	r.comp.StartedAt, r.comp.Duration = started, d.cfg.Now().Sub(started)
	return r, tx.Complete(ctx, r.comp)
}

// manyTarget returns the target of claimed when they are all fulfillments
// for one TxManyTarget.
func (d *Dispatcher) manyTarget(claimed []store.Claimed) (TxManyTarget, bool) {
	name := claimed[0].Command.Target
	for _, c := range claimed {
		if c.Command.Target != name || c.Command.Kind != storegate.KindFulfill {
			return nil, false
		}
	}
	t, ok := d.targets[name].(TxManyTarget)
	return t, ok
}

// applyManyTx applies claimed to t at once inside tx and records their
// completions, each with its share of the time; errNotAllDone if t did not
// do them all (the caller then undoes it and applies each alone). On
// PostgreSQL this is what makes a chunk cheap: the ledger's statements,
// each a round trip, are shared by the chunk.
func (d *Dispatcher) applyManyTx(ctx context.Context, tx *store.Tx, t TxManyTarget, claimed []store.Claimed, results []txResult) error {
	cs := make([]storegate.Command, len(claimed))
	for i, c := range claimed {
		cs[i] = c.Command
	}
	started := d.cfg.Now()
	if !d.deliverMany(ctx, t, tx, cs) {
		return errNotAllDone
	}
	share := d.cfg.Now().Sub(started) / time.Duration(len(claimed))
	for i, c := range claimed {
		r := txResult{out: storegate.Outcome{Verdict: storegate.VerdictDone}}
		r.comp = d.completion(c, r.out)
		r.comp.StartedAt, r.comp.Duration = started, share
		if err := tx.Complete(ctx, r.comp); err != nil {
			return errNotAllDone
		}
		results[i] = r
	}
	return nil
}

// deliverInTx applies TxTargets' commands and records their completions in
// one write. A command whose lease was lost is undone entirely; if the
// write fails as a whole, nothing of it committed and the leases expire.
func (d *Dispatcher) deliverInTx(w Writer, claimed []store.Claimed) {
	results := make([]txResult, len(claimed))
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	err := w.WriteBackground(ctx, func(ctx context.Context, tx *store.Tx) error {
		// Usually every command is done: apply them all under one
		// savepoint. Savepoints are not free (SQLite copies each page a
		// savepoint changes), so only if one is not done, or its lease was
		// lost, is all of it undone and each command applied under its own.
		if len(claimed) > 1 {
			err := tx.Savepoint(ctx, func() error {
				if t, ok := d.manyTarget(claimed); ok {
					return d.applyManyTx(ctx, tx, t, claimed, results)
				}
				for i, c := range claimed {
					r, err := d.applyTx(ctx, tx, c, func() error { return errNotAllDone })
					if err != nil {
						return errNotAllDone
					}
					results[i] = r
				}
				return nil
			})
			if !errors.Is(err, errNotAllDone) {
				return err
			}
		}
		for i, c := range claimed {
			var r txResult
			// One savepoint per command: a verdict other than done undoes
			// the effects and keeps the completion; a lost lease undoes both.
			err := tx.Savepoint(ctx, func() error {
				var err error
				r, err = d.applyTx(ctx, tx, c, func() error { return tx.Undo(ctx) })
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
			d.log.Error("could not apply or record in-transaction deliveries; the leases will expire", "command", c.Command.ID, "err", err)
			continue
		}
		r := results[i]
		if d.obs != nil && r.leaseErr == nil {
			d.obs.Delivered(c.Command.Target, r.out.Verdict, r.comp.Duration)
		}
		d.logOutcome(c.Command, r.out, r.comp, r.leaseErr)
	}
}

// DeliverInline applies c inside tx, the transaction that accepts it, when
// its target is a TxTarget that can (store.Inline): the grant and its
// event commit together. Anything but done is left to the store to undo
// and to the dispatcher's usual path (retries, backoff, dead letters), so
// this path needs no classification of its own; a done delivery is counted
// once committed.
func (d *Dispatcher) DeliverInline(ctx context.Context, tx *store.Tx, c storegate.Command) bool {
	if !d.TakesInline(c) {
		return false
	}
	t := d.targets[c.Target].(TxTarget)
	started := d.cfg.Now()
	out := safeDeliverTx(ctx, t, tx, c)
	if out.Verdict != storegate.VerdictDone {
		return false
	}
	if d.obs != nil {
		took := d.cfg.Now().Sub(started)
		tx.OnCommit(func() { d.obs.Delivered(c.Target, out.Verdict, took) })
	}
	return true
}

// TxManyTarget is a TxTarget that applies many commands inside one
// transaction at once, all or none: any verdict but done and the store
// undoes every write of the batch.
type TxManyTarget interface {
	TxTarget
	DeliverTxMany(ctx context.Context, tx *store.Tx, cs []storegate.Command) storegate.Outcome
}

// DeliverInlineMany is DeliverInline for the fulfillments of a batch of
// accepts, all or none (store.InlineMany): the commands of each target go
// to it together when it is a TxManyTarget. A done delivery is counted once
// committed, each with its share of the call's time.
func (d *Dispatcher) DeliverInlineMany(ctx context.Context, tx *store.Tx, cs []storegate.Command) bool {
	var targets []string
	byTarget := map[string][]storegate.Command{}
	for _, c := range cs {
		if !d.TakesInline(c) {
			return false
		}
		if byTarget[c.Target] == nil {
			targets = append(targets, c.Target)
		}
		byTarget[c.Target] = append(byTarget[c.Target], c)
	}
	for _, name := range targets {
		batch := byTarget[name]
		started := d.cfg.Now()
		if !d.deliverMany(ctx, d.targets[name].(TxTarget), tx, batch) {
			return false
		}
		if d.obs != nil {
			share := d.cfg.Now().Sub(started) / time.Duration(len(batch))
			tx.OnCommit(func() {
				for range batch {
					d.obs.Delivered(name, storegate.VerdictDone, share)
				}
			})
		}
	}
	return true
}

// deliverMany applies cs to t inside tx, at once when t can.
func (d *Dispatcher) deliverMany(ctx context.Context, t TxTarget, tx *store.Tx, cs []storegate.Command) (done bool) {
	m, ok := t.(TxManyTarget)
	if !ok {
		for _, c := range cs {
			if safeDeliverTx(ctx, t, tx, c).Verdict != storegate.VerdictDone {
				return false
			}
		}
		return true
	}
	defer func() {
		if recover() != nil {
			done = false // the store undoes the batch and runs each accept alone
		}
	}()
	return m.DeliverTxMany(ctx, tx, cs).Verdict == storegate.VerdictDone
}

// TakesInline reports whether c's target applies commands inside the
// store's transaction and can apply this one (store.Inline).
func (d *Dispatcher) TakesInline(c storegate.Command) bool {
	t, ok := d.targets[c.Target].(TxTarget)
	return ok && t.CanDeliverTx(c)
}

// deliver runs one command to its outcome. It deliberately ignores the
// caller's cancellation: a delivery in flight finishes and is recorded, so a
// shutdown does not leave an effect unrecorded until the lease expires.
func (d *Dispatcher) deliver(c store.Claimed) {
	cmd := c.Command
	started := d.cfg.Now()
	target, ok := d.targets[cmd.Target]
	var out storegate.Outcome
	if !ok {
		out = storegate.Outcome{Verdict: storegate.VerdictDead, Code: "UNKNOWN_TARGET", Message: fmt.Sprintf("no target named %q", cmd.Target)}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
		out = safeDeliver(ctx, target, cmd)
		cancel()
	}
	elapsed := d.cfg.Now().Sub(started)
	if d.obs != nil {
		d.obs.Delivered(cmd.Target, out.Verdict, elapsed)
	}
	comp := d.completion(c, out)
	comp.StartedAt, comp.Duration = started, elapsed
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	d.logOutcome(cmd, out, comp, d.queue.Complete(ctx, comp))
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

func safeDeliver(ctx context.Context, t Target, c storegate.Command) (out storegate.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			out = storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "PANIC", Message: fmt.Sprint(r)}
		}
	}()
	return t.Deliver(ctx, c)
}

// safeDeliverTx is safeDeliver for the in-transaction path: a panic is a
// retry of that command alone, instead of failing the whole shared write
// again at every claim without ever spending an attempt.
func safeDeliverTx(ctx context.Context, t TxTarget, tx *store.Tx, c storegate.Command) (out storegate.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			out = storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "PANIC", Message: fmt.Sprint(r)}
		}
	}()
	return t.DeliverTx(ctx, tx, c)
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
		comp.State, comp.NextAt = storegate.StatePending, now.Add(d.cfg.WaitDelay)
	case storegate.VerdictRetry:
		if !out.Deferred {
			return d.retry(c, comp, out, now)
		}
		// Deferred (a revoke waiting for its grant): nothing failed, so no
		// attempt is spent and MaxAttempts never turns it into a dead
		// letter while its grant may still come; the wait grows with the
		// command's age, up to BackoffMax. Only after DeferMax does a person
		// need to look.
		age := now.Sub(c.Command.CreatedAt)
		if age > d.cfg.DeferMax {
			comp.State, comp.Attempt = storegate.StateDead, c.Attempts+1
			comp.Outcome.Message = fmt.Sprintf("still waiting after %v: %s", d.cfg.DeferMax, out.Message)
			break
		}
		comp.State, comp.NextAt = storegate.StatePending, now.Add(min(max(age/4, d.cfg.BackoffBase), d.cfg.BackoffMax))
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
