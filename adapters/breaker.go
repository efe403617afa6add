// Package adapters holds the downstream targets' shared machinery: a circuit
// breaker per target, one classifier of HTTP results, and one resilient HTTP
// client. Each target lives in its own subpackage (ags, http); the embedded
// ledger is package ledger.
package adapters

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/sony/gobreaker"

	"storegate"
	"storegate/store"
)

// Target takes effect for a command and classifies the result.
type Target interface {
	Deliver(ctx context.Context, c storegate.Command) storegate.Outcome
}

// BreakerConfig tunes one target's breaker. Zero fields take the defaults.
type BreakerConfig struct {
	// Failures is how many consecutive transient failures open the breaker.
	// Default 5.
	Failures uint32
	// OpenFor is how long the breaker stays open before letting a probe
	// through. Default 30s.
	OpenFor time.Duration
	// Probes is how many calls a half-open breaker lets through. Default 1.
	Probes uint32
}

// WithDefaults returns c with each zero field set to its default: the one
// place the defaults are written, read by WithBreaker and by whoever shows
// or checks them (the YAML config).
func (c BreakerConfig) WithDefaults() BreakerConfig {
	if c.Failures == 0 {
		c.Failures = 5
	}
	if c.OpenFor <= 0 {
		c.OpenFor = 30 * time.Second
	}
	if c.Probes == 0 {
		c.Probes = 1
	}
	return c
}

// BreakerObserver hears about state changes, for metrics. States are
// "closed", "half-open" and "open".
type BreakerObserver func(target, from, to string)

// Breaker wraps a target in a gobreaker circuit breaker. Only transient
// failures of the target (verdict retry, not deferred, no 4xx answer) count
// against it; a permanent reject (a 4xx, a dead letter) says nothing about
// its health and never trips it. While the breaker is open, commands are not
// attempted: they come back with verdict wait, which spends no attempt.
type Breaker struct {
	name   string
	target Target
	cb     *gobreaker.CircuitBreaker
}

// ErrBreakerOpen is what a synchronous question to a target (a user check)
// gets while the target's breaker is open: no call is made.
var ErrBreakerOpen = errors.New("adapters: target breaker is open")

// errTransient marks a retry verdict for gobreaker's failure count.
var errTransient = errors.New("transient failure")

// WithBreaker returns target behind a breaker named name.
func WithBreaker(name string, target Target, cfg BreakerConfig, obs BreakerObserver, log *slog.Logger) *Breaker {
	cfg = cfg.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	settings := gobreaker.Settings{
		Name:        name,
		MaxRequests: cfg.Probes,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		IsSuccessful: func(err error) bool {
			return !errors.Is(err, errTransient)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			log.Warn("breaker state changed", "target", name, "from", from.String(), "to", to.String())
			if obs != nil {
				obs(name, from.String(), to.String())
			}
		},
	}
	return &Breaker{name: name, target: target, cb: gobreaker.NewCircuitBreaker(settings)}
}

// Deliver runs the command through the breaker.
func (b *Breaker) Deliver(ctx context.Context, c storegate.Command) storegate.Outcome {
	var out storegate.Outcome
	_, err := b.cb.Execute(func() (any, error) {
		out = b.target.Deliver(ctx, c)
		if countsAgainst(out) {
			return nil, errTransient
		}
		return nil, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return storegate.Outcome{Verdict: storegate.VerdictWait, Code: "BREAKER_OPEN", Message: "target " + b.name + " breaker is open"}
	}
	return out
}

// countsAgainst says whether an outcome is a failure of the target itself:
// a transient failure (5xx, timeout, refused connection). A deferred retry is
// about the command, and any 4xx answer (even 408, 425 or 429, which are
// retried) proves the target is up and answering: neither ever trips the
// breaker.
func countsAgainst(out storegate.Outcome) bool {
	if out.Verdict != storegate.VerdictRetry || out.Deferred {
		return false
	}
	return out.HTTPStatus < 400 || out.HTTPStatus >= 500
}

// State is the breaker's state: closed, half-open or open.
func (b *Breaker) State() string { return b.cb.State().String() }

// UserExists passes a user check through when the wrapped target can do
// one, so a breaker can stand in for its target everywhere. While the
// breaker is open the check fails at once (ErrBreakerOpen): a sender waiting
// on an answer is better served by a quick "try again" than by a timeout.
// Checks do not count towards the breaker; deliveries decide its state.
func (b *Breaker) UserExists(ctx context.Context, playerID string) (bool, error) {
	u, ok := b.target.(interface {
		UserExists(context.Context, string) (bool, error)
	})
	if !ok {
		return false, errors.ErrUnsupported
	}
	if b.cb.State() == gobreaker.StateOpen {
		return false, ErrBreakerOpen
	}
	return u.UserExists(ctx, playerID)
}

// txTarget is a target whose effects live in the store's own database (the
// embedded ledger), see dispatch.TxTarget.
type txTarget interface {
	CanDeliverTx(c storegate.Command) bool
	DeliverTx(ctx context.Context, tx *store.Tx, c storegate.Command) storegate.Outcome
}

// CanDeliverTx reports whether the wrapped target can apply c inside the
// store's transaction.
func (b *Breaker) CanDeliverTx(c storegate.Command) bool {
	t, ok := b.target.(txTarget)
	return ok && t.CanDeliverTx(c)
}

// DeliverTx passes an in-transaction delivery through without the breaker:
// it runs inside the store's own transaction, so its failures are the
// store's, and a store that fails fails the whole batch anyway.
func (b *Breaker) DeliverTx(ctx context.Context, tx *store.Tx, c storegate.Command) storegate.Outcome {
	return b.target.(txTarget).DeliverTx(ctx, tx, c)
}

// DeliverTxMany passes many in-transaction deliveries through, all at once
// when the wrapped target can (the ledger applies a batch's grants with a
// few multi-row statements), else one by one up to the first not done.
func (b *Breaker) DeliverTxMany(ctx context.Context, tx *store.Tx, cs []storegate.Command) storegate.Outcome {
	if t, ok := b.target.(interface {
		DeliverTxMany(context.Context, *store.Tx, []storegate.Command) storegate.Outcome
	}); ok {
		return t.DeliverTxMany(ctx, tx, cs)
	}
	for _, c := range cs {
		if out := b.DeliverTx(ctx, tx, c); out.Verdict != storegate.VerdictDone {
			return out
		}
	}
	return storegate.Outcome{Verdict: storegate.VerdictDone}
}
