package tso

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestLeadersNeverOverlap runs a sequence of leaders against one
// committed ceiling, as the state machine keeps it, with clocks that jump
// back and forth: every timestamp served is larger than the one before.
func TestLeadersNeverOverlap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var committed uint64 // ordering.Machine's ceiling
	commit := func(ms uint64) (prev, now uint64) {
		prev = committed
		committed = max(committed, ms)
		return prev, committed
	}
	const window = 3000
	var last uint64
	now := uint64(1_700_000_000_000)
	for leader := range 20 {
		var a Allocator
		if _, err := a.Next(now, 1); !errors.Is(err, ErrNotReady) {
			t.Fatalf("a fresh allocator served: %v", err)
		}
		// Each leader's clock is off by up to ±5 s.
		skew := uint64(rng.Int64N(10_000))
		prev, ceil := commit(now + skew - 5000 + window)
		a.Reset(prev, ceil)
		for range 5000 {
			now += uint64(rng.IntN(3))
			n := uint32(1 + rng.IntN(300))
			first, err := a.Next(now+skew-5000, n)
			var need *NeedCeiling
			if errors.As(err, &need) {
				_, c := commit(need.AtLeastMs + window)
				a.SetCeiling(c)
				first, err = a.Next(now+skew-5000, n)
			}
			if err != nil {
				t.Fatalf("leader %d: %v", leader, err)
			}
			if first <= last && last != 0 {
				t.Fatalf("leader %d served %d after %d", leader, first, last)
			}
			if Physical(first+uint64(n)-1) >= committed {
				t.Fatalf("leader %d served at %d ms, ceiling %d", leader, Physical(first+uint64(n)-1), committed)
			}
			last = first + uint64(n) - 1
		}
	}
}

func TestNextBounds(t *testing.T) {
	var a Allocator
	a.Reset(100, 102)
	if _, err := a.Next(0, 0); err == nil {
		t.Fatal("served 0 timestamps")
	}
	first, err := a.Next(50, logicalMax)
	if err != nil || Physical(first) != 100 || Logical(first) != 0 {
		t.Fatalf("first batch: %d (%d.%d) %v", first, Physical(first), Logical(first), err)
	}
	second, err := a.Next(50, 1)
	if err != nil || Physical(second) != 101 {
		t.Fatalf("a full millisecond must move to the next: %d.%d %v", Physical(second), Logical(second), err)
	}
	var need *NeedCeiling
	if _, err := a.Next(102, 1); !errors.As(err, &need) || need.AtLeastMs != 103 {
		t.Fatalf("at the ceiling: %v", err)
	}
}

// TestResetsRacing: a leader's first two calls each commit a ceiling; the
// answer of the earlier entry arrives after the later one's. The late,
// lower reset must not hand out again what was served since.
func TestResetsRacing(t *testing.T) {
	var a Allocator
	const c0, c1, c2 = 1000, 4000, 7000 // ceiling before, after entry 1, after entry 2
	a.Reset(c1, c2)                     // entry 2 answered first: serve from c1
	first, err := a.Next(2000, 10)
	if err != nil || Physical(first) != c1 {
		t.Fatalf("after the later reset: %d.%d, %v", Physical(first), Logical(first), err)
	}
	a.Reset(c0, c1) // entry 1's answer, late
	next, err := a.Next(2000, 1)
	if err != nil || next <= first+9 {
		t.Fatalf("after the late reset served %d.%d, at or below %d.%d served before (%v)",
			Physical(next), Logical(next), Physical(first+9), Logical(first+9), err)
	}
	if a.CeilingMs() != c2 {
		t.Fatalf("ceiling %d, want %d", a.CeilingMs(), c2)
	}
	a.Stop()
	a.Reset(c0, c1) // a stale answer after losing and regaining leadership
	if again, err := a.Next(2000, 1); err != nil || again <= next {
		t.Fatalf("after stop and reset served %d, at or below %d (%v)", again, next, err)
	}
}
