package main

import (
	"maps"
	"strings"
	"testing"
	"time"
)

func TestBucketsCoverValues(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 123456789, 1 << 40, 1<<63 - 1} {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside 0..%d", v, i, histBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("bucketOf(%d) = %d whose range is %d..%d", v, i, lo, hi)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var empty hist
	if got := empty.quantile(0.99); got != 0 {
		t.Errorf("empty quantile = %v, want 0", got)
	}

	// 1..1000 ms, split over two recorders to exercise merge.
	var a, b hist
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Millisecond
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	if a.n != 1000 || a.max != time.Second {
		t.Fatalf("n=%d max=%v, want 1000 and 1s", a.n, a.max)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.001, time.Millisecond}, {1, time.Second}} {
		got := a.quantile(tc.q)
		if diff := (got - tc.want).Abs(); float64(diff) > float64(tc.want)/128 {
			t.Errorf("quantile(%v) = %v, want %v within 1/128", tc.q, got, tc.want)
		}
	}

	// The reported value never exceeds the exact maximum.
	var one hist
	one.record(1234567 * time.Nanosecond)
	if got := one.quantile(0.5); got > one.max {
		t.Errorf("quantile %v above max %v", got, one.max)
	}
}

func TestParseOutbox(t *testing.T) {
	const page = `# HELP storegate_outbox_commands Outbox commands by state.
# TYPE storegate_outbox_commands gauge
storegate_outbox_commands{state="dead"} 0
storegate_dispatch_total{target="ledger",verdict="done"} 120000
storegate_dispatch_total{target="other",verdict="done"} 345
storegate_dispatch_total{target="ledger",verdict="retry"} 9
storegate_outbox_commands{state="pending"} 7
storegate_requests_total{source="bench",status="204",type="order_paid"} 120352
`
	got, err := parseOutbox(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if got["done"] != 120345 || got["pending"] != 7 || got["dead"] != 0 || len(got) != 3 {
		t.Errorf("parseOutbox = %v", got)
	}
	if _, err := parseOutbox(strings.NewReader("up 1\n")); err == nil {
		t.Error("a page without the pending gauge parsed")
	}
}

// The writer's counters come out in microseconds (seconds) or as counts, a
// value that does not parse is left out instead of failing the drain check,
// and the report line reads them over the phase's wall time.
func TestParseOutbox_WriterMetrics(t *testing.T) {
	const page = `storegate_outbox_commands{state="pending"} 0
storegate_store_commit_seconds_sum 9.5
storegate_store_commit_seconds_count 5000
storegate_store_commit_writes_sum 40000
storegate_store_log_restart_pause_seconds_sum 0.12
storegate_store_log_restart_pause_seconds_count 4
storegate_store_log_sync_seconds_sum 3
storegate_store_log_sync_seconds_count 6000
go_gc_duration_seconds_sum NaN
process_cpu_seconds_total 12.5
process_resident_memory_bytes 1.572864e+08
`
	got, err := parseOutbox(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"pending": 0, "commit_us": 9_500_000, "commits": 5000, "commit_writes": 40000,
		"restart_us": 120_000, "restarts": 4, "sync_us": 3_000_000, "syncs": 6000, "cpu_us": 12_500_000, "rss": 150 << 20}
	if !maps.Equal(got, want) {
		t.Errorf("parseOutbox = %v, want %v", got, want)
	}
	r := &result{gw: got, wall: 10 * time.Second, gen: 4 * time.Second}
	if s, w := spent(r), "commits 95% of the time (summed over committers; 5000 commits of 8.0 writes, 1.90 ms each), 6000 log flushes of 0.50 ms, 4 log restarts (120 ms in all), GC pauses 0 ms, gateway CPU 1.25 cores (312 µs per write committed), RSS 150 MiB at the end, load generator CPU 0.40 cores"; s != w {
		t.Errorf("spent = %q, want %q", s, w)
	}
}
