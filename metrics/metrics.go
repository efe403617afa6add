// Package metrics holds storegate's Prometheus collectors. Labels carry
// source, target, notification type, status, verdict and catalog SKU names
// only: never a player id, a body, a key or a secret.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"storegate"
)

// Metrics is the set of collectors, registered on its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	requests      *prometheus.CounterVec
	signatureFail *prometheus.CounterVec
	duplicates    *prometheus.CounterVec
	dispatch      *prometheus.CounterVec
	dispatchTime  *prometheus.HistogramVec
	breakerState  *prometheus.GaugeVec
	breakerTrans  *prometheus.CounterVec
	commitTime    prometheus.Histogram
	commitWrites  prometheus.Histogram
	restartPause  prometheus.Histogram
	logSync       prometheus.Histogram
	reconnects    prometheus.Counter
	retries       prometheus.Counter
	attrsDropped  *prometheus.CounterVec
}

// DepthFunc reports outbox commands by state.
type DepthFunc func(ctx context.Context) (map[storegate.State]int, error)

// New builds the collectors. depth, when not nil, is queried at each scrape.
func New(depth DepthFunc) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storegate_requests_total", Help: "Inbound sender requests by source, type and answer status; requests refused before any route (malformed, too large, too slow) with an empty source and type."},
			[]string{"source", "type", "status"}),
		signatureFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storegate_signature_failures_total", Help: "Requests refused for a missing or wrong signature, by source."},
			[]string{"source"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storegate_duplicates_total", Help: "Events received again and answered from the store, by source and type."},
			[]string{"source", "type"}),
		dispatch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storegate_dispatch_total", Help: "Delivery outcomes by target and verdict (done, retry, wait, dead)."},
			[]string{"target", "verdict"}),
		dispatchTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "storegate_dispatch_seconds", Help: "Time of one delivery attempt, by target.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10}}, []string{"target"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "storegate_breaker_state", Help: "Circuit breaker state by remote dependency (the target label): 0 closed, 1 half-open, 2 open."},
			[]string{"target"}),
		breakerTrans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storegate_breaker_transitions_total", Help: "Circuit breaker transitions by remote dependency (the target label) and new state."},
			[]string{"target", "to"}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "storegate_store_commit_seconds", Help: "Time of one group commit, from BEGIN to COMMIT. On a SQLite file its answers then wait for a log flush (storegate_store_log_sync_seconds).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .5}}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "storegate_store_commit_writes", Help: "Writes (accepted requests, deliveries, claims) sharing one commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
		restartPause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "storegate_store_log_restart_pause_seconds", Help: "Pauses of the SQLite writer for the checkpoint that lets its write-ahead log start over.",
			Buckets: []float64{.001, .005, .01, .02, .05, .1, .5}}),
		logSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "storegate_store_log_sync_seconds", Help: "Flushes of the SQLite write-ahead log to disk; the answers of the commits before each wait for it.",
			Buckets: []float64{.0001, .0005, .001, .002, .005, .01, .02, .05, .1}}),
	}
	m.reconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "storegate_store_reconnects_total", Help: "Store connections a committer replaced because they could not begin a transaction (the database dropped them)."})
	m.retries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "storegate_store_accept_batch_retries_total", Help: "Batches of accepts that failed as one write (an inline grant not done, a panicking target, a statement error) and ran again one accept at a time, at several times the cost."})
	m.attrsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "storegate_user_attributes_dropped_total", Help: "User attributes a target gave that Xsolla's user_attributes schema refuses, left out of user_validation answers, by source."},
		[]string{"source"})
	m.Registry.MustRegister(m.requests, m.signatureFail, m.duplicates, m.dispatch, m.dispatchTime,
		m.breakerState, m.breakerTrans, m.commitTime, m.commitWrites, m.restartPause, m.logSync, m.reconnects, m.retries, m.attrsDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if depth != nil {
		m.Registry.MustRegister(&depthCollector{depth: depth})
	}
	return m
}

// Handler serves the collectors in Prometheus's text format, for /metrics.
func (m *Metrics) Handler() http.Handler {
	// A store outage must not hide every other metric, least of all then.
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Request counts one inbound request.
func (m *Metrics) Request(source, typ string, status int) {
	m.requests.WithLabelValues(source, typ, statusLabel(status)).Inc()
}

// SignatureFailure counts one refused signature.
func (m *Metrics) SignatureFailure(source string) { m.signatureFail.WithLabelValues(source).Inc() }

// AttributesDropped counts user attributes left out of an answer.
func (m *Metrics) AttributesDropped(source string, n int) {
	m.attrsDropped.WithLabelValues(source).Add(float64(n))
}

// Duplicate counts one duplicate event.
func (m *Metrics) Duplicate(source, typ string) { m.duplicates.WithLabelValues(source, typ).Inc() }

// Delivered counts one delivery attempt (dispatch.Observer).
func (m *Metrics) Delivered(target string, v storegate.Verdict, d time.Duration) {
	m.dispatch.WithLabelValues(target, string(v)).Inc()
	if v != storegate.VerdictWait {
		m.dispatchTime.WithLabelValues(target).Observe(d.Seconds())
	}
}

// Committed records one group commit (engine.Observer).
func (m *Metrics) Committed(writes int, took time.Duration) {
	m.commitTime.Observe(took.Seconds())
	m.commitWrites.Observe(float64(writes))
}

// WriterCheckpoint records one pause of the writer for a log restart
// (engine.Observer).
func (m *Metrics) WriterCheckpoint(took time.Duration) { m.restartPause.Observe(took.Seconds()) }

// Reconnected counts a committer's replaced connection (engine.Observer).
func (m *Metrics) Reconnected() { m.reconnects.Inc() }

// LogSynced records one flush of the write-ahead log (engine.Observer).
func (m *Metrics) LogSynced(took time.Duration) { m.logSync.Observe(took.Seconds()) }

// BulkRetried counts a batch of accepts, the store's one bulk kind of write,
// run again one accept at a time (engine.Observer).
func (m *Metrics) BulkRetried() { m.retries.Inc() }

// BreakerChanged records a transition (adapters.BreakerObserver); from is
// empty for a breaker's start, which is no transition.
func (m *Metrics) BreakerChanged(target, from, to string) {
	v := 0.0
	switch to {
	case "half-open":
		v = 1
	case "open":
		v = 2
	}
	m.breakerState.WithLabelValues(target).Set(v)
	if from != "" {
		m.breakerTrans.WithLabelValues(target, to).Inc()
	}
}

func statusLabel(s int) string {
	const digits = "0123456789"
	if s < 100 || s > 999 {
		return "other"
	}
	return string([]byte{digits[s/100], digits[s/10%10], digits[s%10]})
}

// depthCollector asks the store for the outbox's depth at scrape time.
type depthCollector struct{ depth DepthFunc }

var depthDesc = prometheus.NewDesc("storegate_outbox_commands", "Outbox commands not done, by state (pending, dead, discarded). Done ones are counted by storegate_dispatch_total.", []string{"state"}, nil)

func (d *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- depthDesc }

func (d *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := d.depth(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	for _, s := range []storegate.State{storegate.StatePending, storegate.StateDead, storegate.StateDiscarded} {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}

// KeysFunc reports the available game keys by game_key SKU: every SKU the
// catalog sells, so a pool never filled reads 0 rather than nothing.
type KeysFunc func(ctx context.Context) (map[string]int64, error)

// WatchKeys reports storegate_keys_available{sku} from keys, queried at
// each scrape. Call it once, before the first scrape.
func (m *Metrics) WatchKeys(keys KeysFunc) {
	m.Registry.MustRegister(&keysCollector{keys: keys})
}

// keysCollector asks the ledger for its pools at scrape time.
type keysCollector struct{ keys KeysFunc }

var keysDesc = prometheus.NewDesc("storegate_keys_available", "Game keys left to hand out, by game_key SKU: alert before it reaches 0, when paid orders start to wait for a refill.", []string{"sku"}, nil)

func (k *keysCollector) Describe(ch chan<- *prometheus.Desc) { ch <- keysDesc }

func (k *keysCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	left, err := k.keys(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(keysDesc, err)
		return
	}
	for sku, n := range left {
		ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(n), sku)
	}
}
