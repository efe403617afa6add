package metrics_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"storegate"
	"storegate/adapters"
	"storegate/dispatch"
	"storegate/internal/fakeclock"
	"storegate/metrics"
	"storegate/store"
	"storegate/store/engine"
)

var start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// The gateway hands Metrics to the engine as its observer; the store counts
// the commands it applies on accept only through an observer that is also a
// store.Observer.
var _ store.Observer = (*metrics.Metrics)(nil)

func family(t *testing.T, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

func TestRequest_CountsBySourceTypeAndStatus(t *testing.T) {
	m := metrics.New(nil)
	m.Request("xsolla", "payment", 200)
	m.Request("xsolla", "payment", 200)
	m.Request("xsolla", "payment", 400)
	m.Request("xsolla", "refund", 204)
	m.Request("steam", "", 503)
	m.Request("xsolla", "payment", 42)   // not an HTTP status
	m.Request("xsolla", "payment", 1000) // nor this
	want := `
# HELP storegate_requests_total Inbound sender requests by source, type and answer status; requests refused before any route (malformed, too large, too slow) with an empty source and type.
# TYPE storegate_requests_total counter
storegate_requests_total{source="steam",status="503",type=""} 1
storegate_requests_total{source="xsolla",status="200",type="payment"} 2
storegate_requests_total{source="xsolla",status="204",type="refund"} 1
storegate_requests_total{source="xsolla",status="400",type="payment"} 1
storegate_requests_total{source="xsolla",status="other",type="payment"} 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestSignatureFailuresAndDuplicates(t *testing.T) {
	m := metrics.New(nil)
	m.SignatureFailure("xsolla")
	m.SignatureFailure("xsolla")
	m.Duplicate("xsolla", "payment")
	want := `
# HELP storegate_duplicates_total Events received again and answered from the store, by source and type.
# TYPE storegate_duplicates_total counter
storegate_duplicates_total{source="xsolla",type="payment"} 1
# HELP storegate_signature_failures_total Requests refused for a missing or wrong signature, by source.
# TYPE storegate_signature_failures_total counter
storegate_signature_failures_total{source="xsolla"} 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"storegate_signature_failures_total", "storegate_duplicates_total"); err != nil {
		t.Error(err)
	}
}

func TestDelivered_CountsVerdictsAndTimesAttempts(t *testing.T) {
	m := metrics.New(nil)
	m.Delivered("ledger", storegate.VerdictDone, 20*time.Millisecond)
	m.Delivered("ledger", storegate.VerdictDone, 3*time.Second)
	m.Delivered("ledger", storegate.VerdictRetry, 200*time.Millisecond)
	m.Delivered("ledger", storegate.VerdictWait, 0) // not attempted: not timed
	m.Delivered("ags", storegate.VerdictDead, time.Millisecond)
	want := `
# HELP storegate_dispatch_total Delivery outcomes by target and verdict (done, retry, wait, dead).
# TYPE storegate_dispatch_total counter
storegate_dispatch_total{target="ags",verdict="dead"} 1
storegate_dispatch_total{target="ledger",verdict="done"} 2
storegate_dispatch_total{target="ledger",verdict="retry"} 1
storegate_dispatch_total{target="ledger",verdict="wait"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_dispatch_total"); err != nil {
		t.Error(err)
	}
	f := family(t, m, "storegate_dispatch_seconds")
	if f == nil {
		t.Fatal("no storegate_dispatch_seconds")
	}
	counts := map[string]uint64{}
	sums := map[string]float64{}
	for _, mt := range f.GetMetric() {
		target := mt.GetLabel()[0].GetValue()
		counts[target] = mt.GetHistogram().GetSampleCount()
		sums[target] = mt.GetHistogram().GetSampleSum()
	}
	if got, want := counts["ledger"], uint64(3); got != want {
		t.Errorf("ledger attempts timed = %d, want %d (a wait is not an attempt)", got, want)
	}
	if got, want := sums["ledger"], 3.22; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("ledger attempt seconds = %v, want %v", got, want)
	}
	if got, want := counts["ags"], uint64(1); got != want {
		t.Errorf("ags attempts timed = %d, want %d", got, want)
	}
}

func TestBreaker_StateAndTransitions(t *testing.T) {
	m := metrics.New(nil)
	m.BreakerChanged("ledger", "", "closed")
	m.BreakerChanged("ags", "", "closed")
	want := `
# HELP storegate_breaker_state Circuit breaker state by remote dependency (the target label): 0 closed, 1 half-open, 2 open.
# TYPE storegate_breaker_state gauge
storegate_breaker_state{target="ags"} 0
storegate_breaker_state{target="ledger"} 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_breaker_state", "storegate_breaker_transitions_total"); err != nil {
		t.Errorf("before any change: %v", err)
	}

	tests := []struct {
		from, to  string
		wantState float64
	}{
		{"closed", "open", 2},
		{"open", "half-open", 1},
		{"half-open", "open", 2},
		{"open", "half-open", 1},
		{"half-open", "closed", 0},
	}
	for _, tc := range tests {
		m.BreakerChanged("ledger", tc.from, tc.to)
		f := family(t, m, "storegate_breaker_state")
		got := map[string]float64{}
		for _, mt := range f.GetMetric() {
			got[mt.GetLabel()[0].GetValue()] = mt.GetGauge().GetValue()
		}
		if got["ledger"] != tc.wantState || got["ags"] != 0 {
			t.Errorf("after %s->%s states = %v, want ledger %v and ags 0", tc.from, tc.to, got, tc.wantState)
		}
	}
	want = `
# HELP storegate_breaker_transitions_total Circuit breaker transitions by remote dependency (the target label) and new state.
# TYPE storegate_breaker_transitions_total counter
storegate_breaker_transitions_total{target="ledger",to="closed"} 1
storegate_breaker_transitions_total{target="ledger",to="half-open"} 2
storegate_breaker_transitions_total{target="ledger",to="open"} 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_breaker_transitions_total"); err != nil {
		t.Error(err)
	}
}

// The metrics' breaker observer plugged into a real breaker shows it open.
func TestBreaker_ObserverWiredToARealBreaker(t *testing.T) {
	m := metrics.New(nil)
	b := adapters.NewBreaker("studio", adapters.BreakerConfig{Failures: 2, ProbeAfter: time.Hour}, nil, m.BreakerChanged)
	for range 3 {
		b.Do(func() storegate.Outcome { return storegate.Outcome{Verdict: storegate.VerdictRetry} })
	}
	want := `
# HELP storegate_breaker_state Circuit breaker state by remote dependency (the target label): 0 closed, 1 half-open, 2 open.
# TYPE storegate_breaker_state gauge
storegate_breaker_state{target="studio"} 2
# HELP storegate_breaker_transitions_total Circuit breaker transitions by remote dependency (the target label) and new state.
# TYPE storegate_breaker_transitions_total counter
storegate_breaker_transitions_total{target="studio",to="open"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_breaker_state", "storegate_breaker_transitions_total"); err != nil {
		t.Error(err)
	}
}

type targetFunc func(context.Context, storegate.Command) storegate.Outcome

func (f targetFunc) Deliver(ctx context.Context, c storegate.Command) storegate.Outcome {
	return f(ctx, c)
}

func openStore(t *testing.T) (*store.DB, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(start)
	db, err := store.Open(context.Background(), engine.Config{DSN: "sqlite:" + t.TempDir() + "/s.db", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, clock
}

func accept(t *testing.T, db *store.DB, player string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		ev := storegate.Event{Source: "xsolla", Type: "payment", Key: "e-" + id, PlayerID: player, Body: []byte(`{}`)}
		c := storegate.Command{ID: id, Kind: storegate.KindFulfill, Source: "xsolla", Target: "ledger", PlayerID: player}
		if _, _, err := db.Accept(context.Background(), ev, []storegate.Command{c}, storegate.Answer{Status: 204}); err != nil {
			t.Fatal(err)
		}
	}
}

func complete(t *testing.T, db *store.DB, id string, state storegate.State, verdict storegate.Verdict) {
	t.Helper()
	ctx := context.Background()
	if err := db.Complete(ctx, store.Completion{ID: id, Owner: "w", State: state, Attempt: 1,
		Outcome: storegate.Outcome{Verdict: verdict}}); err != nil {
		t.Fatal(err)
	}
}

func TestOutboxDepth_AtScrapeTime(t *testing.T) {
	db, _ := openStore(t)
	m := metrics.New(db.Depth)
	accept(t, db, "p1", "t1", "t2", "t3", "t4")
	if _, err := db.Claim(context.Background(), "w", "ledger", 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	complete(t, db, "t1", storegate.StateDone, storegate.VerdictDone)
	complete(t, db, "t2", storegate.StateDead, storegate.VerdictDead)
	want := `
# HELP storegate_outbox_commands Outbox commands not done, by state (pending, dead, discarded). Done ones are counted by storegate_dispatch_total.
# TYPE storegate_outbox_commands gauge
storegate_outbox_commands{state="dead"} 1
storegate_outbox_commands{state="discarded"} 0
storegate_outbox_commands{state="pending"} 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_outbox_commands"); err != nil {
		t.Error(err)
	}
	// The next scrape sees the store as it is then.
	complete(t, db, "t3", storegate.StateDone, storegate.VerdictDone)
	want = strings.Replace(want, `{state="pending"} 2`, `{state="pending"} 1`, 1)
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_outbox_commands"); err != nil {
		t.Errorf("second scrape: %v", err)
	}
}

func TestOutboxDepth_EmptyStoreReportsZeros(t *testing.T) {
	db, _ := openStore(t)
	m := metrics.New(db.Depth)
	want := `
# HELP storegate_outbox_commands Outbox commands not done, by state (pending, dead, discarded). Done ones are counted by storegate_dispatch_total.
# TYPE storegate_outbox_commands gauge
storegate_outbox_commands{state="dead"} 0
storegate_outbox_commands{state="discarded"} 0
storegate_outbox_commands{state="pending"} 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_outbox_commands"); err != nil {
		t.Error(err)
	}
}

// A store that cannot answer is reported as a scrape error, never as an
// empty outbox.
func TestOutboxDepth_StoreErrorIsNotAnEmptyOutbox(t *testing.T) {
	m := metrics.New(func(context.Context) (map[storegate.State]int, error) {
		return nil, errors.New("database is locked")
	})
	fams, err := m.Registry.Gather()
	if err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("Gather error = %v, want the store's error", err)
	}
	for _, f := range fams {
		if f.GetName() == "storegate_outbox_commands" {
			t.Errorf("scrape reported outbox depth %v despite the store error", f.GetMetric())
		}
	}
}

func TestNoDepthFunc_NoOutboxMetric(t *testing.T) {
	m := metrics.New(nil)
	if f := family(t, m, "storegate_outbox_commands"); f != nil {
		t.Errorf("without a depth function the registry still reports %s", f.GetName())
	}
	if f := family(t, m, "go_goroutines"); f == nil {
		t.Error("the Go runtime collector is not registered")
	}
}

// No label of any storegate metric carries a player id: drive every
// recording path, including a real dispatcher over a real store delivering a
// player's commands, then scrape everything.
func TestLabels_NeverCarryAPlayerID(t *testing.T) {
	const player = "player-77310042"
	db, clock := openStore(t)
	m := metrics.New(db.Depth)
	accept(t, db, player, "xsolla.shop.order.1", "xsolla.shop.order.2")

	b := adapters.NewBreaker("ledger", adapters.BreakerConfig{Failures: 2}, clock.Now, m.BreakerChanged)
	target := targetFunc(func(_ context.Context, c storegate.Command) storegate.Outcome {
		return b.Do(func() storegate.Outcome {
			if c.ID == "xsolla.shop.order.2" {
				return storegate.Outcome{Verdict: storegate.VerdictRetry, Message: "no such player " + c.PlayerID}
			}
			return storegate.Outcome{Verdict: storegate.VerdictDone}
		})
	})
	d, err := dispatch.New(db, map[string]dispatch.Lane{"ledger": {Target: target}},
		dispatch.Config{Owner: "d", Now: clock.Now}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.RunOnce(context.Background()); err != nil || n != 2 {
		t.Fatalf("RunOnce = %d, %v; want 2 commands", n, err)
	}
	m.Request("xsolla", "payment", 200)
	m.Request("xsolla", "user_validation", 400)
	m.Duplicate("xsolla", "payment")
	m.SignatureFailure("xsolla")

	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "storegate_") {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				seen++
				if strings.Contains(l.GetValue(), player) || strings.Contains(l.GetValue(), "77310042") {
					t.Errorf("%s{%s=%q} carries the player id", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no labelled storegate metric was scraped")
	}
	req := family(t, m, "storegate_requests_total")
	if req == nil {
		t.Fatal("no storegate_requests_total")
	}
	for _, mt := range req.GetMetric() {
		var names []string
		for _, l := range mt.GetLabel() {
			names = append(names, l.GetName())
		}
		sort.Strings(names)
		if got, want := strings.Join(names, ","), "source,status,type"; got != want {
			t.Errorf("request counter labels = %s, want %s", got, want)
		}
	}
	want := `
# HELP storegate_dispatch_total Delivery outcomes by target and verdict (done, retry, wait, dead).
# TYPE storegate_dispatch_total counter
storegate_dispatch_total{target="ledger",verdict="done"} 1
storegate_dispatch_total{target="ledger",verdict="retry"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_dispatch_total"); err != nil {
		t.Error(err)
	}
}

// The store reports each commit: every write is counted in exactly one, and
// each has a duration.
func TestStoreCommits_WiredToARealStore(t *testing.T) {
	m := metrics.New(nil)
	db, err := store.Open(context.Background(), engine.Config{DSN: "sqlite:" + t.TempDir() + "/s.db", Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	const writes = 40
	errs := make(chan error, writes)
	for range writes {
		go func() {
			errs <- db.Write(context.Background(), func(ctx context.Context, tx *engine.Tx) error { return nil })
		}()
	}
	for range writes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	hist := func(name string) *dto.Histogram {
		f := family(t, m, name)
		if f == nil {
			t.Fatalf("no %s", name)
		}
		return f.GetMetric()[0].GetHistogram()
	}
	perCommit, took := hist("storegate_store_commit_writes"), hist("storegate_store_commit_seconds")
	if perCommit.GetSampleSum() != writes {
		t.Errorf("commits carried %v writes in all, want %d", perCommit.GetSampleSum(), writes)
	}
	if n := perCommit.GetSampleCount(); n < 1 || n > writes || took.GetSampleCount() != n {
		t.Errorf("%d commits with %d durations, want between 1 and %d, one duration each", n, took.GetSampleCount(), writes)
	}
	if took.GetSampleSum() <= 0 {
		t.Errorf("commits took %v s in all, want more than nothing", took.GetSampleSum())
	}
}

func TestBulkRetried_Counts(t *testing.T) {
	m := metrics.New(nil)
	m.BulkRetried()
	want := `
# HELP storegate_store_accept_batch_retries_total Batches of accepts that failed as one write (an inline grant not done, a panicking target, a statement error) and ran again one accept at a time, at several times the cost.
# TYPE storegate_store_accept_batch_retries_total counter
storegate_store_accept_batch_retries_total 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_store_accept_batch_retries_total"); err != nil {
		t.Error(err)
	}
}

func TestReconnected_Counts(t *testing.T) {
	m := metrics.New(nil)
	m.Reconnected()
	m.Reconnected()
	want := `
# HELP storegate_store_reconnects_total Store connections a committer replaced because they could not begin a transaction (the database dropped them).
# TYPE storegate_store_reconnects_total counter
storegate_store_reconnects_total 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "storegate_store_reconnects_total"); err != nil {
		t.Error(err)
	}
}
