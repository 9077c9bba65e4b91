package spans

import (
	"slices"
	"testing"
)

type seg struct{ first, last uint64 }

func span(s seg) (uint64, uint64) { return s.first, s.last }

func TestConsecutive(t *testing.T) {
	type ev struct{ gsn uint64 }
	evs := func(gsns ...uint64) []ev {
		var out []ev
		for _, g := range gsns {
			out = append(out, ev{gsn: g})
		}
		return out
	}
	for _, c := range []struct {
		in    []ev
		first uint64
		want  int
	}{
		{evs(5, 6, 7), 5, 3},
		{evs(5, 6, 8), 5, 2},
		{evs(5, 6, 7), 4, 0},
		{nil, 1, 0},
	} {
		if got := Consecutive(c.in, func(e ev) uint64 { return e.gsn }, c.first); got != c.want {
			t.Errorf("Consecutive(%v, %d) = %d, want %d", c.in, c.first, got, c.want)
		}
	}
}

func TestGapsAndFillPlace(t *testing.T) {
	// 1..10, an empty segment, 21..30, 41..50: gaps 11..20 and 31..40.
	segs := []seg{{1, 10}, {11, 10}, {21, 30}, {41, 50}}
	if got, want := Gaps(segs, span), []Gap{{11, 20}, {31, 40}}; !slices.Equal(got, want) {
		t.Fatalf("Gaps = %v, want %v", got, want)
	}
	if got := Gaps([]seg{{5, 9}}, span); len(got) != 0 {
		t.Fatalf("before the first segment is not a gap: %v", got)
	}
	for n, want := range map[uint64]bool{10: false, 11: true, 20: true, 21: false, 35: true, 51: false} {
		if In(Gaps(segs, span), n) != want {
			t.Fatalf("In(%d) = %v, want %v", n, !want, want)
		}
	}
	for _, c := range []struct {
		first, last uint64
		at          int // right after the segment before the gap; -1: refused
	}{
		{11, 20, 1}, {13, 15, 1}, {31, 40, 3}, {35, 35, 3},
		{9, 12, -1}, {18, 22, -1}, {51, 60, -1}, {1, 5, -1}, {25, 26, -1},
	} {
		at, err := FillPlace(segs, span, c.first, c.last)
		if c.at < 0 && err == nil || c.at >= 0 && (err != nil || at != c.at) {
			t.Fatalf("FillPlace(%d, %d) = %d, %v; want %d", c.first, c.last, at, err, c.at)
		}
	}
}
