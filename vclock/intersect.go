package vclock

import (
	"cmp"
	"slices"

	"github.com/clockd/clockd/consensus"
)

// Interval is one host's claim that the reference time lies in [Lo, Hi]
// (ns), all claims taken at the same instant.
type Interval struct {
	Host   consensus.NodeID
	Lo, Hi int64
}

// Agreement is the outcome of Intersect.
type Agreement struct {
	// Lo and Hi bound the region covered by the most intervals.
	Lo, Hi int64
	// Support lists the hosts whose intervals cover [Lo, Hi]; the rest
	// are the falsetickers.
	Support      []consensus.NodeID
	Falsetickers []consensus.NodeID
}

// Intersect is Marzullo's algorithm: it finds the smallest region that
// the largest number of intervals share. It fails (false) unless at least
// quorum intervals share it, so a minority of wrong clocks can never set
// the result, however wrong they are, and a minority of hosts on their
// own can never agree. Hosts whose interval misses the region are named
// falsetickers. Intervals with Lo > Hi are falsetickers by definition.
func Intersect(ivs []Interval, quorum int) (Agreement, bool) {
	type edge struct {
		at    int64
		delta int // +1 opens, -1 closes
	}
	edges := make([]edge, 0, 2*len(ivs))
	for _, iv := range ivs {
		if iv.Lo <= iv.Hi {
			edges = append(edges, edge{iv.Lo, +1}, edge{iv.Hi, -1})
		}
	}
	// At equal positions, openings come first: touching intervals share
	// the point.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(b.delta, a.delta)
	})
	best, count := 0, 0
	var lo, hi int64
	for i, e := range edges {
		count += e.delta
		if e.delta > 0 && count > best {
			best, lo = count, e.at
			hi = edges[i+1].at // the next edge ends the region; one exists since every opening closes
		}
	}
	if best == 0 || best < quorum {
		return Agreement{}, false
	}
	a := Agreement{Lo: lo, Hi: hi}
	for _, iv := range ivs {
		if iv.Lo <= lo && hi <= iv.Hi {
			a.Support = append(a.Support, iv.Host)
		} else {
			a.Falsetickers = append(a.Falsetickers, iv.Host)
		}
	}
	return a, true
}
