package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/dispatch"
	"storegate/internal/fakeclock"
)

// barrier is a slow target (a backend answering in 300 ms, say) that
// answers nobody until want deliveries are in flight at once: it can only
// get through its commands if the lane delivers them concurrently.
type barrier struct {
	want int
	mu   sync.Mutex
	in   int
	most int
	all  chan struct{}
}

func newBarrier(want int) *barrier { return &barrier{want: want, all: make(chan struct{})} }

func (b *barrier) Deliver(ctx context.Context, _ storegate.Command) storegate.Outcome {
	b.mu.Lock()
	b.in++
	b.most = max(b.most, b.in)
	if b.in == b.want {
		close(b.all)
	}
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.in--; b.mu.Unlock() }()
	select {
	case <-b.all:
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	case <-ctx.Done():
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "NOT_CONCURRENT", Message: "fewer deliveries in flight than the lane allows"}
	}
}

// A slow target is delivered MaxInFlight commands at once, one per
// player, not a worker count's worth: throughput follows the lane's
// concurrency, not the target's latency.
func TestRunOnce_SlowTargetDeliveredConcurrently(t *testing.T) {
	tests := []struct {
		name        string
		maxInFlight int
	}{
		{"default", 0},
		{"configured", 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.maxInFlight
			if want == 0 {
				want = dispatch.DefaultMaxInFlight
			}
			clock := fakeclock.New(start)
			db := openStore(t, clock)
			var ids []string
			for i := range want {
				c := command(fmt.Sprint("t", i), fmt.Sprint("p", i), "studio")
				enqueue(t, db, c)
				ids = append(ids, c.ID)
			}
			target := newBarrier(want)
			cfg := config(clock)
			cfg.Batch = want
			cfg.Timeout = 20 * time.Second // real time: how long the barrier waits for the others
			cfg.Lease = time.Minute
			d := newLanes(t, db, map[string]dispatch.Lane{"studio": {Target: target, MaxInFlight: tc.maxInFlight}}, cfg, nil)
			if got := runOnce(t, d); got != want {
				t.Fatalf("claimed %d, want %d", got, want)
			}
			for _, id := range ids {
				if ci := info(t, db, id); ci.State != storegate.StateDone {
					t.Fatalf("%s = %s (%s): the deliveries were not concurrent", id, ci.State, ci.LastError)
				}
			}
			if target.most != want {
				t.Errorf("at most %d in flight, want %d", target.most, want)
			}
		})
	}
}

// blocked is a target that answers nothing until released.
type blocked struct{ release chan struct{} }

func (b blocked) Deliver(ctx context.Context, _ storegate.Command) storegate.Outcome {
	select {
	case <-b.release:
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	case <-ctx.Done():
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "TIMEOUT"}
	}
}

// One target's backlog never delays another's: with every delivery to a
// hung backend in flight, another target's commands are delivered.
func TestRun_HungTargetDelaysNoOther(t *testing.T) {
	db := openStore(t, fakeclock.New(start))
	for i := range 8 {
		enqueue(t, db, command(fmt.Sprint("h", i), fmt.Sprint("p", i), "hung"), command(fmt.Sprint("f", i), fmt.Sprint("p", i), "fast"))
	}
	hung := blocked{release: make(chan struct{})}
	fast := count(always(storegate.Outcome{Verdict: storegate.VerdictDone}))
	d := newLanes(t, db, map[string]dispatch.Lane{"hung": {Target: hung, MaxInFlight: 2}, "fast": {Target: fast, MaxInFlight: 2}},
		dispatch.Config{Owner: "d", Poll: 10 * time.Millisecond, Timeout: time.Minute, Lease: 2 * time.Minute}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { d.Run(ctx); close(stopped) }()
	waitFor(t, "the fast target's commands, while the other hangs", func() bool {
		for i := range 8 {
			if fast.n(fmt.Sprint("f", i)) == 0 {
				return false
			}
		}
		return true
	})
	close(hung.release)
	cancel()
	<-stopped
}

// waitFor polls cond; the bound is a failure guard, not a measure of speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A backend down for a minute behind its real breaker (defaults) gets its
// first delivery within 2 s of coming back, on the dispatcher's clock,
// however its outage lined up with the breaker's probes; the backlog then
// goes at full concurrency. The lane is stepped every 50 ms.
func TestRunOnce_RecoveryWithinTwoSecondsOfTheBackend(t *testing.T) {
	for _, offset := range []time.Duration{0, 130 * time.Millisecond, 470 * time.Millisecond, 900 * time.Millisecond} {
		t.Run(fmt.Sprint("back at +60s", offset), func(t *testing.T) {
			clock := fakeclock.New(start)
			db := openStore(t, clock)
			for i := range 40 {
				enqueue(t, db, command(fmt.Sprint("t", i), fmt.Sprint("p", i), "studio"))
			}
			back := start.Add(time.Minute + offset)
			var mu sync.Mutex
			var first time.Time
			breaker := adapters.NewBreaker("studio", adapters.BreakerConfig{}, clock.Now, nil)
			backend := targetFunc(func(context.Context, storegate.Command) storegate.Outcome {
				return breaker.Do(func() storegate.Outcome {
					now := clock.Now()
					if now.Before(back) {
						return storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 503}
					}
					mu.Lock()
					if first.IsZero() {
						first = now
					}
					mu.Unlock()
					return storegate.Outcome{Verdict: storegate.VerdictDone}
				})
			})
			cfg := config(clock)
			cfg.MaxAttempts = 1000
			cfg.BackoffMax = time.Second
			d := newLanes(t, db, map[string]dispatch.Lane{"studio": {Target: backend}}, cfg, nil)
			for clock.Now().Before(back.Add(10 * time.Second)) {
				runOnce(t, d)
				clock.Advance(50 * time.Millisecond)
			}
			if first.IsZero() || first.Sub(back) > 2*time.Second {
				t.Fatalf("first delivery %v after the backend came back, want within 2s", first.Sub(back))
			}
			for i := range 40 {
				if ci := info(t, db, fmt.Sprint("t", i)); ci.State != storegate.StateDone {
					t.Errorf("t%d = %s after recovery, want done", i, ci.State)
				}
			}
		})
	}
}
