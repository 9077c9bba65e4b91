package vclock

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/clockd/clockd/consensus"
)

func TestIntersectTable(t *testing.T) {
	for _, c := range []struct {
		name   string
		ivs    []Interval
		quorum int
		ok     bool
		lo, hi int64
		false_ []consensus.NodeID
	}{
		{"agree", []Interval{{1, 0, 10}, {2, 5, 15}, {3, 8, 20}}, 2, true, 8, 10, nil},
		{"one far off", []Interval{{1, 0, 10}, {2, 5, 15}, {3, 1000, 1010}}, 2, true, 5, 10, []consensus.NodeID{3}},
		{"touching", []Interval{{1, 0, 10}, {2, 10, 20}}, 2, true, 10, 10, nil},
		{"no majority", []Interval{{1, 0, 1}, {2, 5, 6}, {3, 10, 11}}, 2, false, 0, 0, nil},
		{"minority alone", []Interval{{1, 0, 10}}, 2, false, 0, 0, nil},
		{"inverted is false", []Interval{{1, 0, 10}, {2, 2, 8}, {3, 9, 1}}, 2, true, 2, 8, []consensus.NodeID{3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, ok := Intersect(c.ivs, c.quorum)
			if ok != c.ok || ok && (a.Lo != c.lo || a.Hi != c.hi || !slices.Equal(a.Falsetickers, c.false_)) {
				t.Fatalf("Intersect = %+v %v, want [%d,%d] false %v ok %v", a, ok, c.lo, c.hi, c.false_, c.ok)
			}
		})
	}
}

// TestIntersectAgainstBruteForce checks the sweep against counting the
// cover of every candidate point.
func TestIntersectAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + rng.IntN(7)
		ivs := make([]Interval, n)
		for i := range ivs {
			lo := rng.Int64N(100)
			ivs[i] = Interval{Host: consensus.NodeID(i + 1), Lo: lo, Hi: lo + rng.Int64N(30)}
		}
		best := 0
		for x := int64(0); x < 140; x++ {
			c := 0
			for _, iv := range ivs {
				if iv.Lo <= x && x <= iv.Hi {
					c++
				}
			}
			best = max(best, c)
		}
		quorum := n/2 + 1
		a, ok := Intersect(ivs, quorum)
		if ok != (best >= quorum) {
			t.Fatalf("%v: ok %v, best cover %d quorum %d", ivs, ok, best, quorum)
		}
		if ok && len(a.Support) != best {
			t.Fatalf("%v: support %v, best cover %d", ivs, a.Support, best)
		}
	}
}
