package loadtest

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in log-linear buckets: each power of two of
// microseconds is split into histSub buckets, so a percentile is off by at
// most 1/histSub (about 3%) of its value. A histogram rather than a list of
// samples keeps memory constant however long a run is, and atomic counters
// let every connection's goroutine record without a lock.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histGroups  = 40 // up to 2^40 µs, far beyond any timeout
	histBuckets = histGroups * histSub
)

// bucketOf maps a value in microseconds to its bucket.
func bucketOf(us uint64) int {
	if us < histSub {
		return int(us)
	}
	// The top histSubBits bits below the leading one select the sub-bucket.
	g := bits.Len64(us) - histSubBits // ≥ 1
	sub := int(us>>uint(g-1)) & (histSub - 1)
	b := g*histSub + sub
	if b >= histBuckets {
		b = histBuckets - 1
	}
	return b
}

// bucketUpper is the largest value (µs) that falls in bucket b.
func bucketUpper(b int) uint64 {
	if b < histSub {
		return uint64(b)
	}
	g, sub := b/histSub, b%histSub
	lo := uint64(histSub+sub) << uint(g-1)
	return lo + (uint64(1) << uint(g-1)) - 1
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	us := uint64(d / time.Microsecond)
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest duration recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Percentile returns the smallest bucket bound at or below which a fraction
// q (0 < q ≤ 1) of the durations lie; 0 when nothing was recorded.
func (h *Histogram) Percentile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	want := uint64(q*float64(n) + 0.5)
	if want < 1 {
		want = 1
	}
	if want > n {
		want = n
	}
	var seen uint64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= want {
			d := time.Duration(bucketUpper(b)) * time.Microsecond
			if m := h.Max(); d > m {
				d = m
			}
			return d
		}
	}
	return h.Max()
}

// Reset forgets everything recorded. It must not race with Record.
func (h *Histogram) Reset() {
	for b := range h.counts {
		h.counts[b].Store(0)
	}
	h.n.Store(0)
	h.max.Store(0)
}
