package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/quick"
	"time"
)

// TestHistBuckets checks that every bucket's bounds contain exactly the
// values histBucket maps to it, with the promised width.
func TestHistBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 191, 192, 255, 256, 1000, 1 << 20, 123456789, 1<<63 - 1, math.MaxUint64} {
		i := histBucket(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histBucket(%d) = %d, outside [0, %d)", v, i, histBuckets)
		}
		lower, width := histBounds(i)
		if v < lower || v-lower >= width {
			t.Errorf("value %d in bucket %d = [%d, %d+%d)", v, i, lower, lower, width)
		}
		if lower >= 1<<histExactBits && width*64 > lower {
			t.Errorf("bucket %d: width %d is more than 1/64 of lower bound %d", i, width, lower)
		}
	}
	for i := range histBuckets - 1 {
		lo, w := histBounds(i)
		next, _ := histBounds(i + 1)
		if lo+w != next {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", i, lo+w, i+1, next)
		}
	}
}

func TestNearestRank(t *testing.T) {
	tests := []struct {
		q    float64
		n    uint64
		want uint64
	}{
		{0.5, 1, 1}, {0.99, 1, 1}, {0.5, 2, 1}, {0.5, 3, 2}, {0.5, 100, 50},
		{0.99, 100, 99}, {0.99, 101, 100}, {0.999, 1000, 999}, {1, 7, 7}, {0.0001, 7, 1},
	}
	for _, tt := range tests {
		if got := nearestRank(tt.q, tt.n); got != tt.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", tt.q, tt.n, got, tt.want)
		}
	}
}

// TestHistQuantileMatchesSort checks the histogram against sorting every
// value: each quantile within 1/64 of the exact one, count, mean and max
// exact.
func TestHistQuantileMatchesSort(t *testing.T) {
	check := func(seed uint64, n uint16, spread uint8) bool {
		rng := rand.New(rand.NewPCG(seed, 1))
		var h hist
		count := int(n)%4000 + 1
		vals := make([]time.Duration, 0, count)
		var sum int64
		for range count {
			// Latency-like: log-uniform from 1 ns up to 2^(spread%40) ns.
			v := int64(math.Exp2(rng.Float64() * float64(spread%40+1)))
			h.Record(v)
			vals = append(vals, time.Duration(v))
			sum += v
		}
		for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
			exact := int64(exactQuantile(vals, q))
			got := h.Quantile(q)
			if math.Abs(float64(got-exact)) > float64(exact)/64 {
				t.Logf("seed %d n %d q %v: hist %d, exact %d", seed, len(vals), q, got, exact)
				return false
			}
		}
		return h.Count() == uint64(len(vals)) && h.MaxNs() == int64(slices.Max(vals)) &&
			h.MeanNs() == sum/int64(len(vals))
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 200}); err != nil {
		t.Fatal(err)
	}
}

func TestHistEmpty(t *testing.T) {
	var h hist
	if h.Quantile(0.5) != 0 || h.MeanNs() != 0 || h.MaxNs() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
}
