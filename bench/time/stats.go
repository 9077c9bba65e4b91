package main

import (
	"math"
	"slices"
	"time"
)

// quantiles sorts latNs in place and returns its nearest-rank p50 and
// p99; zero when empty.
func quantiles(latNs []int64) (p50, p99 time.Duration) {
	slices.Sort(latNs)
	return time.Duration(quantile(latNs, 0.50)), time.Duration(quantile(latNs, 0.99))
}

// quantile is the nearest-rank q-quantile (0 < q <= 1) of sorted: the
// element of rank ceil(q*n), clamped to [1, n]; 0 when empty. The small
// epsilon keeps 0.99*100 at 99 despite floating-point error.
func quantile(sorted []int64, q float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	r := int(math.Ceil(q*float64(n) - 1e-9))
	return sorted[min(max(r, 1), n)-1]
}

// perSec is n events over d, per second; 0 for an empty window.
func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// best returns the index of the largest key; -1 when empty.
func best(keys []float64) int {
	i := -1
	for j, k := range keys {
		if i < 0 || k > keys[i] {
			i = j
		}
	}
	return i
}

// spread is (max-min)/max of keys, the run-to-run noise; 0 for fewer than
// two runs.
func spread(keys []float64) float64 {
	if len(keys) < 2 {
		return 0
	}
	lo, hi := slices.Min(keys), slices.Max(keys)
	if hi == 0 {
		return 0
	}
	return (hi - lo) / hi
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
