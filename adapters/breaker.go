// Package adapters holds the downstream calls' shared machinery: a circuit
// breaker per remote dependency, one classifier of HTTP results, and one
// resilient HTTP client. Each target lives in its own subpackage (ags,
// studio); the embedded ledger is package ledger and has no breaker: it is
// the store's own database.
package adapters

import (
	"sync"
	"time"

	"storegate"
)

// BreakerConfig tunes one dependency's breaker. Zero fields take the
// defaults.
type BreakerConfig struct {
	// Failures is how many consecutive transient failures open the breaker.
	// Default 5.
	Failures uint32
	// ProbeAfter is how long the breaker stays open before its first probe;
	// each failed probe doubles the wait, up to OpenFor. Default 250ms.
	ProbeAfter time.Duration
	// OpenFor is the longest the breaker stays open between two probes, so
	// the first call after the dependency recovers comes at most this long
	// after. Default 1s.
	OpenFor time.Duration
	// Probes is how many calls a half-open breaker lets through at once.
	// Default 1.
	Probes uint32
}

// WithDefaults returns c with each zero field set to its default: the one
// place the defaults are written, read by NewBreaker and by whoever shows
// or checks them (the YAML config).
func (c BreakerConfig) WithDefaults() BreakerConfig {
	if c.Failures == 0 {
		c.Failures = 5
	}
	if c.ProbeAfter <= 0 {
		c.ProbeAfter = 250 * time.Millisecond
	}
	if c.OpenFor <= 0 {
		c.OpenFor = time.Second
	}
	if c.OpenFor < c.ProbeAfter {
		c.OpenFor = c.ProbeAfter
	}
	if c.Probes == 0 {
		c.Probes = 1
	}
	return c
}

// BreakerObserver hears about state changes, for metrics. States are
// "closed", "half-open" and "open"; from is empty for the breaker's start.
type BreakerObserver func(name, from, to string)

// Breaker guards one remote dependency (an AGS API, a studio backend, a
// revocation service, an order connector): after Failures consecutive
// transient failures it opens, and calls fail at once, without reaching
// the dependency, until a probe gets through. Probes come on a short
// backed-off cadence (ProbeAfter doubling up to OpenFor), so a recovered
// dependency is used again within OpenFor. Only failures of the dependency
// itself count (see CountsAgainst).
type Breaker struct {
	name string
	cfg  BreakerConfig
	now  func() time.Time
	obs  BreakerObserver

	mu       sync.Mutex
	state    string
	failures uint32
	wait     time.Duration // the current open interval
	until    time.Time     // while open: when the next probe may go
	probing  uint32        // half-open calls in flight
	gen      uint64        // bumped at each change: results of older calls are ignored
}

// State names.
const (
	StateClosed   = "closed"
	StateHalfOpen = "half-open"
	StateOpen     = "open"
)

// NewBreaker returns a closed breaker. now nil means time.Now; obs, which
// hears every change (for metrics and logs), may be nil.
func NewBreaker(name string, cfg BreakerConfig, now func() time.Time, obs BreakerObserver) *Breaker {
	if now == nil {
		now = time.Now
	}
	if obs != nil {
		obs(name, "", StateClosed) // shown before any change
	}
	return &Breaker{name: name, cfg: cfg.WithDefaults(), now: now, obs: obs, state: StateClosed}
}

// Name is the dependency's name.
func (b *Breaker) Name() string { return b.name }

// State is the breaker's state: closed, half-open or open.
func (b *Breaker) State() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Allow asks to make one call. When the call may go, it returns done, to be
// called once with whether the call failed the dependency. When it may
// not, done is nil and retryAfter says when to ask again.
func (b *Breaker) Allow() (done func(failed bool), retryAfter time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.state == StateOpen {
		if now.Before(b.until) {
			return nil, b.until.Sub(now)
		}
		b.set(StateHalfOpen)
	}
	if b.state == StateHalfOpen {
		if b.probing >= b.cfg.Probes {
			return nil, b.cfg.ProbeAfter
		}
		b.probing++
	}
	gen := b.gen
	return func(failed bool) { b.record(gen, failed) }, 0
}

// record takes a call's result, unless the breaker changed state since the
// call started.
func (b *Breaker) record(gen uint64, failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.gen {
		return
	}
	switch b.state {
	case StateClosed:
		if !failed {
			b.failures = 0
			return
		}
		b.failures++
		if b.failures >= b.cfg.Failures {
			b.wait = b.cfg.ProbeAfter
			b.open()
		}
	case StateHalfOpen:
		b.probing--
		if failed {
			b.wait = min(2*b.wait, b.cfg.OpenFor)
			b.open()
			return
		}
		b.failures, b.wait = 0, 0
		b.set(StateClosed)
	}
}

func (b *Breaker) open() {
	b.until = b.now().Add(b.wait)
	b.set(StateOpen)
}

// set moves to state, dropping what the previous state counted.
func (b *Breaker) set(state string) {
	from := b.state
	b.state, b.probing, b.gen = state, 0, b.gen+1
	if state != StateClosed {
		b.failures = 0
	}
	if b.obs != nil {
		b.obs(b.name, from, state)
	}
}

// Do runs call through the breaker: while it is open, call is not run and
// the outcome is a wait with RetryAfter set to when to ask again (spending
// no attempt). call's outcome counts against the dependency as
// CountsAgainst says.
func (b *Breaker) Do(call func() storegate.Outcome) storegate.Outcome {
	done, after := b.Allow()
	if done == nil {
		return b.OpenOutcome(after)
	}
	failed := true // a panic counts against the dependency, then goes on up
	defer func() { done(failed) }()
	out := call()
	failed = CountsAgainst(out)
	return out
}

// OpenOutcome is what a call gets while the breaker is open.
func (b *Breaker) OpenOutcome(retryAfter time.Duration) storegate.Outcome {
	return storegate.Outcome{Verdict: storegate.VerdictWait, Code: "BREAKER_OPEN", RetryAfter: retryAfter,
		Message: b.name + " is unavailable (breaker open)"}
}

// Unavailable is the error form of OpenOutcome, for callers that speak
// errors (a user check, a revocation service).
func (b *Breaker) Unavailable(retryAfter time.Duration) error {
	return &storegate.UnavailableError{Dependency: b.name, RetryAfter: retryAfter}
}

// CountsAgainst says whether an outcome is a failure of the dependency
// itself: a transient failure (5xx, timeout, refused connection). A
// deferred retry is about the command, and any 4xx answer (even 408, 425 or
// 429, which are retried) proves the dependency is up and answering:
// neither ever trips a breaker.
func CountsAgainst(out storegate.Outcome) bool {
	if out.Verdict != storegate.VerdictRetry || out.Deferred {
		return false
	}
	return out.HTTPStatus < 400 || out.HTTPStatus >= 500
}
