package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Snapshot is the counters' values now, for the console's health page,
// read from the collectors themselves (not a scrape: that would count the
// outbox too).
type Snapshot struct {
	// Requests are the senders' requests answered, by source and status.
	Requests map[string]map[int]float64
	// Deliveries are delivery outcomes, by target and verdict.
	Deliveries map[string]map[string]float64
	// Breakers are the breakers' states by dependency (ags.platform,
	// studio, ...): closed, half-open, open.
	Breakers map[string]string
}

// Snapshot reads the counters.
func (m *Metrics) Snapshot() Snapshot {
	s := Snapshot{Requests: map[string]map[int]float64{}, Deliveries: map[string]map[string]float64{}, Breakers: map[string]string{}}
	read(m.requests, func(l map[string]string, v float64) {
		if l["source"] == "" {
			return // refused before any route: no source to show it under
		}
		status, _ := strconv.Atoi(l["status"])
		if s.Requests[l["source"]] == nil {
			s.Requests[l["source"]] = map[int]float64{}
		}
		s.Requests[l["source"]][status] += v
	})
	read(m.dispatch, func(l map[string]string, v float64) {
		if s.Deliveries[l["target"]] == nil {
			s.Deliveries[l["target"]] = map[string]float64{}
		}
		s.Deliveries[l["target"]][l["verdict"]] += v
	})
	read(m.breakerState, func(l map[string]string, v float64) {
		s.Breakers[l["target"]] = [...]string{"closed", "half-open", "open"}[min(max(int(v), 0), 2)]
	})
	return s
}

// read calls fn with each series of c: its labels and value.
func read(c prometheus.Collector, fn func(labels map[string]string, v float64)) {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		switch {
		case pb.Counter != nil:
			fn(labels, pb.Counter.GetValue())
		case pb.Gauge != nil:
			fn(labels, pb.Gauge.GetValue())
		}
	}
}
