package storegate

import "time"

// State is where a command stands in the outbox.
type State string

const (
	StatePending   State = "pending"   // waiting for its next attempt
	StateDone      State = "done"      // the target took effect
	StateDead      State = "dead"      // a dead letter: needs a person
	StateDiscarded State = "discarded" // a dead letter a person gave up on, with a reason
)

// Verdict is the classifier's decision about one delivery attempt.
type Verdict string

const (
	VerdictDone  Verdict = "done"  // the target took effect (or already had)
	VerdictRetry Verdict = "retry" // a transient failure: try again later, spends an attempt
	VerdictDead  Verdict = "dead"  // can never succeed without a person
	VerdictWait  Verdict = "wait"  // not attempted (the target's breaker is open): try after RetryAfter, spends nothing
)

// Outcome is what one delivery attempt came to.
type Outcome struct {
	Verdict Verdict
	// RetryAfter, when set, is when to try again: the target's own hint
	// (Retry-After) for a retry, which the dispatcher caps; for a wait or a
	// deferred retry, when the breaker of the dependency it waits for lets
	// its next probe through.
	RetryAfter time.Duration
	// Deferred marks a retry that is about the command, not the target: the
	// target answered properly but the command cannot take effect yet (a
	// revoke that arrived before its grant). It never counts against the
	// target's circuit breaker.
	Deferred bool
	// HTTPStatus, Code and Message describe the target's answer, for dead
	// letter inspection. They never hold secrets.
	HTTPStatus int
	Code       string
	Message    string
}
