package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/adapters"
)

// scripted is a target that answers with a verdict chosen by the test and
// counts the calls that reached it.
type scripted struct {
	mu      sync.Mutex
	verdict storegate.Verdict
	calls   int
	// block, when set, holds a call until it is closed; entered hears of
	// each call that is being held.
	block   chan struct{}
	entered chan struct{}
}

func (s *scripted) Deliver(ctx context.Context, c storegate.Command) storegate.Outcome {
	s.mu.Lock()
	s.calls++
	v, block, entered := s.verdict, s.block, s.entered
	s.mu.Unlock()
	if block != nil {
		entered <- struct{}{}
		<-block
	}
	return storegate.Outcome{Verdict: v, Code: "SCRIPTED", Message: "scripted " + string(v)}
}

func (s *scripted) set(v storegate.Verdict) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verdict = v
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// transitions records what a BreakerObserver hears.
type transitions struct {
	mu   sync.Mutex
	seen []string
}

func (tr *transitions) observe(target, from, to string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.seen = append(tr.seen, fmt.Sprintf("%s:%s->%s", target, from, to))
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.seen...)
}

func cmd(id string) storegate.Command {
	return storegate.Command{ID: id, Kind: storegate.KindFulfill, Target: "ledger", PlayerID: "p1"}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitForState polls the breaker until it reports want or the deadline passes.
func waitForState(t *testing.T, b *adapters.Breaker, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for b.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("breaker state = %q after %v, want %q", b.State(), within, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBreaker_OpensAfterConsecutiveRetries(t *testing.T) {
	for _, failures := range []uint32{1, 3, 5} {
		t.Run(fmt.Sprint(failures, " failures"), func(t *testing.T) {
			target := &scripted{verdict: storegate.VerdictRetry}
			b := adapters.WithBreaker("ledger", target, adapters.BreakerConfig{Failures: failures, OpenFor: time.Hour}, nil, nil)
			for i := range failures {
				if got, want := b.State(), "closed"; got != want {
					t.Fatalf("before failure %d state = %q, want %q", i+1, got, want)
				}
				if got, want := b.Deliver(context.Background(), cmd("c")).Verdict, storegate.VerdictRetry; got != want {
					t.Fatalf("delivery %d verdict = %q, want the target's %q", i+1, got, want)
				}
			}
			if got, want := b.State(), "open"; got != want {
				t.Fatalf("after %d retries state = %q, want %q", failures, got, want)
			}
			out := b.Deliver(context.Background(), cmd("c"))
			if got, want := out.Verdict, storegate.VerdictWait; got != want {
				t.Errorf("verdict while open = %q, want %q", got, want)
			}
			if got, want := out.Code, "BREAKER_OPEN"; got != want {
				t.Errorf("code while open = %q, want %q", got, want)
			}
			if got, want := target.count(), int(failures); got != want {
				t.Errorf("target called %d times, want %d: an open breaker must not call it", got, want)
			}
		})
	}
}

func TestBreaker_SuccessResetsTheCount(t *testing.T) {
	target := &scripted{}
	b := adapters.WithBreaker("ledger", target, adapters.BreakerConfig{Failures: 3, OpenFor: time.Hour}, nil, nil)
	for _, v := range []storegate.Verdict{
		storegate.VerdictRetry, storegate.VerdictRetry, storegate.VerdictDone,
		storegate.VerdictRetry, storegate.VerdictRetry, storegate.VerdictDone,
		storegate.VerdictRetry, storegate.VerdictRetry,
	} {
		target.set(v)
		if got, want := b.Deliver(context.Background(), cmd("c")).Verdict, v; got != want {
			t.Fatalf("verdict = %q, want the target's %q", got, want)
		}
	}
	if got, want := b.State(), "closed"; got != want {
		t.Fatalf("state = %q, want %q: no 3 retries were consecutive", got, want)
	}
}

func TestBreaker_DeadVerdictNeverTrips(t *testing.T) {
	target := &scripted{verdict: storegate.VerdictDead}
	tr := &transitions{}
	b := adapters.WithBreaker("ledger", target, adapters.BreakerConfig{Failures: 2, OpenFor: time.Hour}, tr.observe, nil)
	for i := range 20 {
		out := b.Deliver(context.Background(), cmd(fmt.Sprint("c", i)))
		if got, want := out.Verdict, storegate.VerdictDead; got != want {
			t.Fatalf("delivery %d verdict = %q, want %q", i, got, want)
		}
		if got, want := out.Code, "SCRIPTED"; got != want {
			t.Fatalf("delivery %d code = %q, want the target's own %q", i, got, want)
		}
	}
	if got, want := b.State(), "closed"; got != want {
		t.Errorf("state after 20 dead letters = %q, want %q", got, want)
	}
	if got, want := target.count(), 20; got != want {
		t.Errorf("target called %d times, want %d", got, want)
	}
	if got := tr.list(); len(got) != 0 {
		t.Errorf("observer heard %v, want no transitions", got)
	}
}

func TestBreaker_HalfOpenProbeCloses(t *testing.T) {
	target := &scripted{verdict: storegate.VerdictRetry}
	tr := &transitions{}
	b := adapters.WithBreaker("ledger", target, adapters.BreakerConfig{Failures: 2, OpenFor: 50 * time.Millisecond}, tr.observe, nil)
	for range 2 {
		b.Deliver(context.Background(), cmd("c"))
	}
	if got, want := b.State(), "open"; got != want {
		t.Fatalf("state = %q, want %q", got, want)
	}
	if got, want := b.Deliver(context.Background(), cmd("c")).Verdict, storegate.VerdictWait; got != want {
		t.Fatalf("verdict while open = %q, want %q", got, want)
	}
	target.set(storegate.VerdictDone)
	waitForState(t, b, "half-open", 5*time.Second)
	before := target.count()
	if got, want := b.Deliver(context.Background(), cmd("c")).Verdict, storegate.VerdictDone; got != want {
		t.Fatalf("probe verdict = %q, want %q", got, want)
	}
	if got, want := target.count(), before+1; got != want {
		t.Errorf("target calls = %d, want %d: the probe must reach the target", got, want)
	}
	if got, want := b.State(), "closed"; got != want {
		t.Errorf("state after a good probe = %q, want %q", got, want)
	}
	if got, want := tr.list(), []string{"ledger:closed->open", "ledger:open->half-open", "ledger:half-open->closed"}; !equal(got, want) {
		t.Errorf("observer heard %v, want %v", got, want)
	}
}

func TestBreaker_FailedProbeReopens(t *testing.T) {
	target := &scripted{verdict: storegate.VerdictRetry}
	tr := &transitions{}
	b := adapters.WithBreaker("ledger", target, adapters.BreakerConfig{Failures: 1, OpenFor: 50 * time.Millisecond}, tr.observe, nil)
	b.Deliver(context.Background(), cmd("c"))
	waitForState(t, b, "half-open", 5*time.Second)
	if got, want := b.Deliver(context.Background(), cmd("c")).Verdict, storegate.VerdictRetry; got != want {
		t.Fatalf("probe verdict = %q, want the target's %q", got, want)
	}
	if got, want := b.State(), "open"; got != want {
		t.Errorf("state after a failed probe = %q, want %q", got, want)
	}
	if got, want := tr.list(), []string{"ledger:closed->open", "ledger:open->half-open", "ledger:half-open->open"}; !equal(got, want) {
		t.Errorf("observer heard %v, want %v", got, want)
	}
}

// While the one allowed probe is in flight, other commands wait instead of
// piling onto a target that may still be down.
func TestBreaker_HalfOpenLetsOnlyTheProbesThrough(t *testing.T) {
	target := &scripted{verdict: storegate.VerdictRetry}
	b := adapters.WithBreaker("ledger", target, adapters.BreakerConfig{Failures: 1, OpenFor: 50 * time.Millisecond, Probes: 1}, nil, nil)
	b.Deliver(context.Background(), cmd("c"))
	waitForState(t, b, "half-open", 5*time.Second)

	target.mu.Lock()
	target.verdict = storegate.VerdictDone
	target.block, target.entered = make(chan struct{}), make(chan struct{}, 1)
	block, entered := target.block, target.entered
	target.mu.Unlock()

	probe := make(chan storegate.Outcome, 1)
	go func() { probe <- b.Deliver(context.Background(), cmd("probe")) }()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the probe never reached the target")
	}
	out := b.Deliver(context.Background(), cmd("other"))
	if got, want := out.Verdict, storegate.VerdictWait; got != want {
		t.Errorf("second call while the probe is in flight = %q, want %q", got, want)
	}
	close(block)
	if got, want := (<-probe).Verdict, storegate.VerdictDone; got != want {
		t.Errorf("probe verdict = %q, want %q", got, want)
	}
	if got, want := target.count(), 2; got != want {
		t.Errorf("target called %d times, want %d (the trip and the probe)", got, want)
	}
	if got, want := b.State(), "closed"; got != want {
		t.Errorf("state = %q, want %q", got, want)
	}
}

// A panicking target counts against the breaker and the panic reaches the
// caller (the dispatcher recovers it into a retry).
func TestBreaker_PanicCountsAsFailure(t *testing.T) {
	b := adapters.WithBreaker("ledger", panicking{}, adapters.BreakerConfig{Failures: 1, OpenFor: time.Hour}, nil, nil)
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("the target's panic was swallowed")
			}
		}()
		b.Deliver(context.Background(), cmd("c"))
	}()
	if got, want := b.State(), "open"; got != want {
		t.Errorf("state after a panic = %q, want %q", got, want)
	}
}

type panicking struct{}

func (panicking) Deliver(context.Context, storegate.Command) storegate.Outcome { panic("boom") }

type withUsers struct {
	scripted
	known map[string]bool
}

func (w *withUsers) UserExists(_ context.Context, id string) (bool, error) { return w.known[id], nil }

func TestBreaker_UserExists(t *testing.T) {
	b := adapters.WithBreaker("ledger", &withUsers{known: map[string]bool{"p1": true}}, adapters.BreakerConfig{}, nil, nil)
	for _, tc := range []struct {
		player string
		want   bool
	}{{"p1", true}, {"p2", false}} {
		got, err := b.UserExists(context.Background(), tc.player)
		if err != nil {
			t.Fatalf("UserExists(%q): %v", tc.player, err)
		}
		if got != tc.want {
			t.Errorf("UserExists(%q) = %v, want %v", tc.player, got, tc.want)
		}
	}
	plain := adapters.WithBreaker("plain", &scripted{}, adapters.BreakerConfig{}, nil, nil)
	if _, err := plain.UserExists(context.Background(), "p1"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("UserExists on a target without users: err = %v, want ErrUnsupported", err)
	}
}

func TestBreaker_DeferredRetryNeverTrips(t *testing.T) {
	target := deferring{}
	b := adapters.WithBreaker("ledger", target, adapters.BreakerConfig{Failures: 2}, nil, nil)
	for i := range 10 {
		if got := b.Deliver(context.Background(), storegate.Command{ID: "r"}); got.Verdict != storegate.VerdictRetry {
			t.Fatalf("call %d: verdict %s, want the target's retry (breaker must stay closed)", i, got.Verdict)
		}
	}
	if b.State() != "closed" {
		t.Fatalf("state = %s after deferred retries, want closed", b.State())
	}
}

// deferring answers like the ledger for a revoke that arrived before its grant.
type deferring struct{}

func (deferring) Deliver(context.Context, storegate.Command) storegate.Outcome {
	return storegate.Outcome{Verdict: storegate.VerdictRetry, Deferred: true, Code: "NOT_GRANTED_YET"}
}

// A 4xx answer proves the target is up: even the retried ones (408, 425,
// 429) never open the breaker; 5xx and transport failures do.
func TestBreaker_FourHundredsNeverTrip(t *testing.T) {
	tests := []struct {
		name     string
		out      storegate.Outcome
		wantOpen bool
	}{
		{"429 rate limited", storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 429}, false},
		{"408 request timeout", storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 408}, false},
		{"409 optimistic lock retried", storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 409}, false},
		{"400 dead letter", storegate.Outcome{Verdict: storegate.VerdictDead, HTTPStatus: 400}, false},
		{"deferred 404", storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 404, Deferred: true}, false},
		{"503", storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 503}, true},
		{"timeout, no answer", storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "TIMEOUT"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := targetOutcome(tc.out)
			b := adapters.WithBreaker("ags", target, adapters.BreakerConfig{Failures: 3, OpenFor: time.Hour}, nil, nil)
			for range 10 {
				b.Deliver(context.Background(), cmd("c"))
			}
			if got := b.State() == "open"; got != tc.wantOpen {
				t.Errorf("after 10 × %s the breaker is %s, want open=%v", tc.name, b.State(), tc.wantOpen)
			}
		})
	}
}

type targetOutcome storegate.Outcome

func (o targetOutcome) Deliver(context.Context, storegate.Command) storegate.Outcome {
	return storegate.Outcome(o)
}

// A user check while the breaker is open fails at once, without a call: a
// sender waiting on the answer gets "try again" instead of a timeout.
func TestBreaker_UserCheckFailsFastWhenOpen(t *testing.T) {
	target := &withUsersFailing{}
	b := adapters.WithBreaker("studio", target, adapters.BreakerConfig{Failures: 1, OpenFor: time.Hour}, nil, nil)
	b.Deliver(context.Background(), cmd("c"))
	if got, want := b.State(), "open"; got != want {
		t.Fatalf("state = %q, want %q", got, want)
	}
	if _, err := b.UserExists(context.Background(), "p1"); !errors.Is(err, adapters.ErrBreakerOpen) {
		t.Errorf("UserExists err = %v, want ErrBreakerOpen", err)
	}
	if target.checks != 0 {
		t.Errorf("the target was asked %d times, want 0", target.checks)
	}
}

type withUsersFailing struct{ checks int }

func (w *withUsersFailing) Deliver(context.Context, storegate.Command) storegate.Outcome {
	return storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 503}
}

func (w *withUsersFailing) UserExists(context.Context, string) (bool, error) {
	w.checks++
	return true, nil
}
