package console

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"storegate/metrics"
	"storegate/store"
)

// HealthFeed makes the health report from what the gateway has today: the
// metrics' counters and breaker states, and the store's backlogs. Rates
// come from samples of the counters, one per Every, kept for Window.
type HealthFeed struct {
	cfg     HealthFeedConfig
	mu      sync.Mutex
	samples []sample
}

// HealthFeedConfig configures a HealthFeed. Zero fields take the defaults.
type HealthFeedConfig struct {
	// Counters are the metrics; Backlogs the store. Required.
	Counters Counters
	Backlogs Backlogs
	// Sources and Targets are the configured names, shown even when idle.
	Sources, Targets []string
	// Every is how often Run samples the counters. Default 10s.
	Every time.Duration
	// Window is how far back rates reach. Default 5m.
	Window time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// WithDefaults is c with every zero field at its default.
func (c HealthFeedConfig) WithDefaults() HealthFeedConfig {
	if c.Every <= 0 {
		c.Every = 10 * time.Second
	}
	if c.Window <= 0 {
		c.Window = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Counters are the metrics as the feed reads them.
type Counters interface {
	Snapshot() metrics.Snapshot
}

// Backlogs are the store's backlogs.
type Backlogs interface {
	TargetBacklogs(ctx context.Context) ([]store.Backlog, error)
	SourceBacklogs(ctx context.Context) ([]store.Backlog, error)
}

type sample struct {
	at   time.Time
	snap metrics.Snapshot
}

// NewHealthFeed makes a feed; it has no rates until Sample or Run runs.
func NewHealthFeed(cfg HealthFeedConfig) *HealthFeed {
	return &HealthFeed{cfg: cfg.WithDefaults()}
}

// Run samples the counters every Every until ctx is done.
func (f *HealthFeed) Run(ctx context.Context) {
	f.Sample()
	t := time.NewTicker(f.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.Sample()
		}
	}
}

// Sample takes one sample of the counters, and forgets those older than
// the window.
func (f *HealthFeed) Sample() {
	now := f.cfg.Now()
	s := sample{at: now, snap: f.cfg.Counters.Snapshot()}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples = append(f.samples, s)
	cut := 0
	for cut < len(f.samples)-1 && now.Sub(f.samples[cut].at) > f.cfg.Window {
		cut++
	}
	f.samples = slices.Delete(f.samples, 0, cut)
}

// Health is the report now.
func (f *HealthFeed) Health(ctx context.Context) (HealthReport, error) {
	targets, err := f.cfg.Backlogs.TargetBacklogs(ctx)
	if err != nil {
		return HealthReport{}, err
	}
	sources, err := f.cfg.Backlogs.SourceBacklogs(ctx)
	if err != nil {
		return HealthReport{}, err
	}
	now := f.cfg.Now()
	f.mu.Lock()
	samples := slices.Clone(f.samples)
	f.mu.Unlock()
	latest := f.cfg.Counters.Snapshot()
	samples = append(samples, sample{at: now, snap: latest})
	r := HealthReport{At: now, Window: f.cfg.Window}
	minutes := int(f.cfg.Window / time.Minute)

	srcs := endpoints(f.cfg.Sources, sources, keys(latest.Requests))
	for i := range srcs {
		e := &srcs[i]
		e.PerMinute = perMinute(samples, now, minutes, func(s metrics.Snapshot) float64 { return sum(s.Requests[e.Name]) })
		e.LastError, e.LastErrorAt = lastRefusal(samples, e.Name)
	}
	tgts := endpoints(f.cfg.Targets, targets, keys(latest.Deliveries))
	for i := range tgts {
		e := &tgts[i]
		e.Breaker = breakerOf(e.Name, latest.Breakers)
		e.PerMinute = perMinute(samples, now, minutes, func(s metrics.Snapshot) float64 { return sum(s.Deliveries[e.Name]) })
	}
	r.Sources, r.Targets = srcs, tgts
	return r, nil
}

// endpoints are the configured names, and any other the store or the
// metrics know, with their backlogs.
func endpoints(configured []string, backlogs []store.Backlog, counted []string) []Endpoint {
	byName := map[string]*Endpoint{}
	var names []string
	for _, name := range slices.Concat(configured, counted) {
		if byName[name] == nil {
			byName[name] = &Endpoint{Name: name}
			names = append(names, name)
		}
	}
	for _, b := range backlogs {
		if byName[b.Name] == nil {
			byName[b.Name] = &Endpoint{Name: b.Name}
			names = append(names, b.Name)
		}
		e := byName[b.Name]
		e.Backlog, e.Dead, e.OldestPending, e.LastError, e.LastErrorAt = b.Pending, b.Dead, b.OldestPending, b.LastError, b.LastErrorAt
	}
	sort.Strings(names)
	out := make([]Endpoint, 0, len(names))
	for _, n := range names {
		out = append(out, *byName[n])
	}
	return out
}

// perMinute is how much a counter grew in each of the last n minutes,
// oldest first, from the samples that bound each minute. samples is never
// empty: Health adds one for now.
func perMinute(samples []sample, now time.Time, n int, value func(metrics.Snapshot) float64) []int {
	// The counter at t: the last sample's at or before t; before the first
	// sample, the first's, so time before it counts nothing.
	at := func(t time.Time) float64 {
		v := value(samples[0].snap)
		for _, s := range samples {
			if s.at.After(t) {
				break
			}
			v = value(s.snap)
		}
		return v
	}
	out := make([]int, n)
	for i := range n {
		from, to := now.Add(-time.Duration(n-i)*time.Minute), now.Add(-time.Duration(n-i-1)*time.Minute)
		out[i] = int(max(0, at(to)-at(from)))
	}
	return out
}

// lastRefusal is the latest sample in which a source's refused answers
// (4xx and 5xx) grew, with their statuses.
func lastRefusal(samples []sample, source string) (string, time.Time) {
	for i := len(samples) - 1; i > 0; i-- {
		prev, cur := samples[i-1].snap.Requests[source], samples[i].snap.Requests[source]
		var text string
		for _, status := range sortedStatuses(cur) {
			if d := cur[status] - prev[status]; status >= 400 && d > 0 {
				text += fmt.Sprintf("%sHTTP %d ×%d", sep(text), status, int(d))
			}
		}
		if text != "" {
			return "answered " + text, samples[i].at
		}
	}
	return "", time.Time{}
}

func sep(s string) string {
	if s == "" {
		return ""
	}
	return ", "
}

func sortedStatuses(m map[int]float64) []int {
	out := make([]int, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func sum[K comparable](m map[K]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// breakerOf is a target's breaker state: its own (a studio backend), or
// the worst of its dependencies' (an AGS target's <name>.platform and
// <name>.iam, a ledger's <name>.revocation), naming the dependency that is
// not closed.
func breakerOf(target string, breakers map[string]string) string {
	rank := map[string]int{"closed": 0, "half-open": 1, "open": 2}
	state, which := breakers[target], ""
	for name, st := range breakers {
		if strings.HasPrefix(name, target+".") && (state == "" || rank[st] > rank[state]) {
			state, which = st, name
		}
	}
	if which != "" && state != "closed" {
		return state + " (" + which + ")"
	}
	return state
}
