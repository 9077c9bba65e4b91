// Package spans is the bookkeeping that clockd's segment stores (the
// event store, package eventlog, and the offset history, package
// offsetlog) share: which runs of sequence numbers their segments hold,
// where the runs a snapshot install skipped lie (gaps), and where a
// segment that fills one goes.
package spans

import "fmt"

// Gap is a run of sequence numbers a store lacks between two it holds.
type Gap struct{ First, Last uint64 }

// Span returns the first and last sequence numbers a segment holds; an
// empty segment has last < first.
type Span[S any] func(S) (first, last uint64)

// Gaps returns the gaps between segs, which are in order, oldest first.
// What comes before the first segment is not a gap.
func Gaps[S any](segs []S, span Span[S]) []Gap {
	var gaps []Gap
	var prevLast uint64
	seen := false
	for _, seg := range segs {
		first, last := span(seg)
		if last < first {
			continue
		}
		if seen && first > prevLast+1 {
			gaps = append(gaps, Gap{First: prevLast + 1, Last: first - 1})
		}
		prevLast, seen = last, true
	}
	return gaps
}

// In tells whether n lies in one of gaps.
func In(gaps []Gap, n uint64) bool {
	for _, g := range gaps {
		if g.First <= n && n <= g.Last {
			return true
		}
	}
	return false
}

// Consecutive returns how many of xs, from the first, hold the numbers
// first, first+1, and so on (seq gives an element's number): len(xs)
// when all do.
func Consecutive[T any](xs []T, seq func(T) uint64, first uint64) int {
	for i := range xs {
		if seq(xs[i]) != first+uint64(i) {
			return i
		}
	}
	return len(xs)
}

// FillPlace returns where in segs a segment holding first..last goes:
// after the segment holding the last number before first, where the next
// one holding any starts after last. It fails if first..last is not
// inside one gap.
func FillPlace[S any](segs []S, span Span[S], first, last uint64) (int, error) {
	for i, seg := range segs {
		f, l := span(seg)
		if l < f || l < first {
			continue
		}
		// seg is the first holding a number at or after first.
		if f <= last || i == 0 {
			break
		}
		for j := i - 1; j >= 0; j-- {
			if pf, pl := span(segs[j]); pl >= pf {
				return j + 1, nil
			}
		}
		break
	}
	return 0, fmt.Errorf("%d..%d are not inside a gap", first, last)
}
