package main

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram (HDR-style): values keep their top
// subBits+1 significant bits, so a percentile is off by less than 1/128
// (0.8%) while memory stays fixed whatever the request count. Each worker
// owns one and they are merged at the end, so recording takes no lock.
type hist struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	subBits     = 7
	subCount    = 1 << subBits // 128 exact buckets, then 128 per power of two
	histBuckets = (64 - subBits) * subCount
)

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// bucketRange is the inclusive range of values that land in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	shift := i/subCount - 1
	top := uint64(i%subCount + subCount)
	lo = top << shift
	return lo, lo + (uint64(1)<<shift - 1)
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at q (0..1]: the middle of the bucket holding
// the ceil(q*n)-th smallest sample, never more than the exact maximum.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			return min(time.Duration(lo+(hi-lo)/2), h.max)
		}
	}
	return h.max
}
