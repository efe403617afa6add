package main

import (
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
