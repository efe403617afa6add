package adapters_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/internal/fakeclock"
)

var start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// transitions records what a BreakerObserver hears, as "from->to".
type transitions struct {
	mu   sync.Mutex
	seen []string
}

func (tr *transitions) observe(_, from, to string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if from != "" {
		tr.seen = append(tr.seen, from+"->"+to)
	}
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.seen)
}

var (
	down    = storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 503}
	ok      = storegate.Outcome{Verdict: storegate.VerdictDone}
	refused = storegate.Outcome{Verdict: storegate.VerdictDead, HTTPStatus: 400}
)

// call runs one call answering out through b, reporting whether it reached
// the dependency.
func call(b *adapters.Breaker, out storegate.Outcome) (storegate.Outcome, bool) {
	reached := false
	got := b.Do(func() storegate.Outcome { reached = true; return out })
	return got, reached
}

// Only consecutive failures of the dependency open the breaker: a 4xx, a
// deferred retry or a dead letter proves it is up, and a success resets
// the count.
func TestBreaker_WhatOpensIt(t *testing.T) {
	tests := []struct {
		name     string
		answers  []storegate.Outcome
		wantOpen bool
	}{
		{"three failures", []storegate.Outcome{down, down, down}, true},
		{"two failures", []storegate.Outcome{down, down}, false},
		{"a success between", []storegate.Outcome{down, down, ok, down, down}, false},
		{"timeouts (no status)", []storegate.Outcome{{Verdict: storegate.VerdictRetry}, {Verdict: storegate.VerdictRetry}, {Verdict: storegate.VerdictRetry}}, true},
		{"429s", []storegate.Outcome{{Verdict: storegate.VerdictRetry, HTTPStatus: 429}, {Verdict: storegate.VerdictRetry, HTTPStatus: 429}, {Verdict: storegate.VerdictRetry, HTTPStatus: 429}}, false},
		{"425s deferred", []storegate.Outcome{{Verdict: storegate.VerdictRetry, Deferred: true}, {Verdict: storegate.VerdictRetry, Deferred: true}, {Verdict: storegate.VerdictRetry, Deferred: true}}, false},
		{"dead letters", []storegate.Outcome{refused, refused, refused}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(start)
			b := adapters.NewBreaker("studio", adapters.BreakerConfig{Failures: 3}, clock.Now, nil)
			for _, a := range tc.answers {
				call(b, a)
			}
			if got := b.State() == adapters.StateOpen; got != tc.wantOpen {
				t.Errorf("open = %v, want %v", got, tc.wantOpen)
			}
		})
	}
}

// While open, calls do not reach the dependency and come back as a wait
// saying when the next probe may go; probes come on a backed-off cadence,
// ProbeAfter doubling up to OpenFor, and a probe that gets through closes
// the breaker.
func TestBreaker_ProbesBackOffAndRecover(t *testing.T) {
	clock := fakeclock.New(start)
	tr := &transitions{}
	b := adapters.NewBreaker("studio", adapters.BreakerConfig{Failures: 1, ProbeAfter: 250 * time.Millisecond, OpenFor: time.Second},
		clock.Now, tr.observe)
	call(b, down)
	// Each failed probe doubles the wait, up to OpenFor.
	for _, wait := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, time.Second} {
		got, reached := call(b, ok)
		if reached || got.Verdict != storegate.VerdictWait || got.RetryAfter != wait {
			t.Fatalf("while open: reached %v, outcome %+v; want a wait of %v without a call", reached, got, wait)
		}
		clock.Advance(wait)
		if _, reached := call(b, down); !reached {
			t.Fatalf("no probe after %v", wait)
		}
	}
	clock.Advance(time.Second)
	if _, reached := call(b, ok); !reached || b.State() != adapters.StateClosed {
		t.Fatalf("a probe that gets through: reached %v, state %s; want closed", reached, b.State())
	}
	if got, reached := call(b, ok); !reached || got.Verdict != storegate.VerdictDone {
		t.Fatalf("after recovery: %+v, reached %v", got, reached)
	}
	want := []string{"closed->open", "open->half-open", "half-open->open", "open->half-open", "half-open->open",
		"open->half-open", "half-open->open", "open->half-open", "half-open->open", "open->half-open", "half-open->closed"}
	if got := tr.list(); !slices.Equal(got, want) {
		t.Errorf("transitions %v, want %v", got, want)
	}
}

// Half-open, only Probes calls go at once; the others wait.
func TestBreaker_HalfOpenLetsOnlyTheProbesThrough(t *testing.T) {
	clock := fakeclock.New(start)
	b := adapters.NewBreaker("studio", adapters.BreakerConfig{Failures: 1, Probes: 2}, clock.Now, nil)
	call(b, down)
	clock.Advance(time.Second)
	first, _ := b.Allow()
	second, _ := b.Allow()
	third, after := b.Allow()
	if first == nil || second == nil || third != nil || after <= 0 {
		t.Fatalf("half-open allowed %v %v %v (retry after %v), want two probes and a wait", first != nil, second != nil, third != nil, after)
	}
	first(false)
	if b.State() != adapters.StateClosed {
		t.Fatalf("state %s after a good probe, want closed", b.State())
	}
	second(true) // a probe of the half-open state that ended: no longer counts
	if b.State() != adapters.StateClosed {
		t.Fatalf("a stale probe's failure moved the breaker to %s", b.State())
	}
}

// A panicking call counts against the dependency and goes on up.
func TestBreaker_PanicCountsAsFailure(t *testing.T) {
	b := adapters.NewBreaker("studio", adapters.BreakerConfig{Failures: 1}, fakeclock.New(start).Now, nil)
	func() {
		defer func() { recover() }()
		b.Do(func() storegate.Outcome { panic("boom") })
	}()
	if b.State() != adapters.StateOpen {
		t.Fatalf("state %s after a panic, want open", b.State())
	}
}

// A client with a breaker stops calling a dependency that keeps failing:
// its calls then fail at once, as a wait, without reaching the server.
func TestClient_BreakerFailsFastWhenOpen(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server on %s, want 127.0.0.1", srv.URL)
	}
	clock := fakeclock.New(start)
	b := adapters.NewBreaker("studio", adapters.BreakerConfig{Failures: 2}, clock.Now, nil)
	c := adapters.NewClient(adapters.ClientConfig{Attempts: 1, Breaker: b}, nil)
	for range 2 {
		c.Do(context.Background(), http.MethodPost, srv.URL, []byte("{}"), nil)
	}
	_, out := c.Do(context.Background(), http.MethodPost, srv.URL, []byte("{}"), nil)
	mu.Lock()
	defer mu.Unlock()
	if hits != 2 || out.Verdict != storegate.VerdictWait || out.Code != "BREAKER_OPEN" {
		t.Fatalf("server hit %d times, last outcome %+v; want 2 hits and a wait", hits, out)
	}
}

// The error form of an open breaker carries when to ask again.
func TestBreaker_Unavailable(t *testing.T) {
	b := adapters.NewBreaker("ledger.revocation", adapters.BreakerConfig{}, nil, nil)
	var u *storegate.UnavailableError
	if err := b.Unavailable(time.Second); !errors.As(err, &u) || u.RetryAfter != time.Second || u.Dependency != "ledger.revocation" {
		t.Fatalf("Unavailable = %v", err)
	}
}
