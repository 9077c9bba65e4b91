package main

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// hist is a log-linear latency histogram of fixed size (30 KiB), safe for
// concurrent Record. Values below 128 ns are exact; above, every power of
// two is split into 64 buckets, so a bucket is at most 1/64 of its lower
// bound wide and a quantile read at the bucket's midpoint is within 1/128
// of the exact value. Fixed size matters: the load generator runs inside
// the leader's process, whose RSS the paused-follower scenario reports.
type hist struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sumNs  atomic.Uint64
	maxNs  atomic.Uint64
}

const (
	histExactBits = 7                                                  // values below 1<<7 get a bucket each
	histSubBits   = histExactBits - 1                                  // 64 buckets per power of two above
	histBuckets   = 1<<histExactBits + (64-histExactBits)<<histSubBits // 3776
)

// histBucket returns the bucket of v.
func histBucket(v uint64) int {
	if v < 1<<histExactBits {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v is in [2^e, 2^(e+1)), e >= 7
	shift := e - histSubBits
	m := v >> shift // in [64, 128)
	return 1<<histExactBits + (e-histExactBits)<<histSubBits + int(m-1<<histSubBits)
}

// histBounds returns the smallest value of bucket i and the bucket's width.
func histBounds(i int) (lower, width uint64) {
	if i < 1<<histExactBits {
		return uint64(i), 1
	}
	k := i - 1<<histExactBits
	e := k>>histSubBits + histExactBits
	m := uint64(k&(1<<histSubBits-1)) + 1<<histSubBits
	shift := e - histSubBits
	return m << shift, 1 << shift
}

// Record adds one latency, in ns; negative values count as 0.
func (h *hist) Record(ns int64) {
	v := uint64(max(ns, 0))
	h.counts[histBucket(v)].Add(1)
	h.n.Add(1)
	h.sumNs.Add(v)
	for {
		old := h.maxNs.Load()
		if v <= old || h.maxNs.CompareAndSwap(old, v) {
			return
		}
	}
}

// Count is the number of values recorded.
func (h *hist) Count() uint64 { return h.n.Load() }

// MeanNs is the exact mean, 0 when empty.
func (h *hist) MeanNs() int64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return int64(h.sumNs.Load() / n)
}

// MaxNs is the exact maximum.
func (h *hist) MaxNs() int64 { return int64(h.maxNs.Load()) }

// Quantile returns the nearest-rank q-quantile (0 < q <= 1) in ns, read at
// the midpoint of its bucket and never above the exact maximum; 0 when
// empty. Call it once recording has stopped.
func (h *hist) Quantile(q float64) int64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := nearestRank(q, n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lower, width := histBounds(i)
			return int64(min(lower+(width-1)/2, h.maxNs.Load()))
		}
	}
	return h.MaxNs()
}

// nearestRank is the 1-based rank of the q-quantile among n sorted values:
// ceil(q*n), clamped to [1, n]. The small epsilon keeps 0.99*100 at 99
// despite floating-point error.
func nearestRank(q float64, n uint64) uint64 {
	r := uint64(math.Ceil(q*float64(n) - 1e-9))
	return min(max(r, 1), n)
}
