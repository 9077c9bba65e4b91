package vclock

import (
	"math"
	"testing"
	"testing/quick"
)

func TestSegmentMonotoneAndBoundContainsTarget(t *testing.T) {
	f := func(off int32, errNs uint16, drift uint8, rho uint16, freq int32, steps [16]uint32) bool {
		s := Segment{Status: StatusSynchronized, MonoNs: 1e9, TargetNs: 1.7e18,
			ErrNs: int64(errNs), DriftPPM: int64(drift), SlewPPM: int64(rho%999) + 1, FreqPPB: int64(freq % 1_000_000),
			HoldoverAtNs: math.MaxInt64, UnsyncAtNs: math.MaxInt64}
		s.TimeNs = s.TargetNs + int64(off)
		m, prev := s.MonoNs, s.At(s.MonoNs)
		for _, st := range steps {
			m += int64(st)
			r := s.At(m)
			d := m - s.MonoNs
			target := s.TargetNs + d + int64(float64(d)*float64(s.FreqPPB)/1e9) // within a ns
			if r.Time < prev.Time || r.Earliest > target-int64(errNs)+1 || r.Latest < target+int64(errNs)-1 {
				t.Logf("m=%d reading %+v target %d prev %+v", m, r, target, prev)
				return false
			}
			prev = r
		}
		return true
	}
	if err := quick.Check(f, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSegmentStatusAndConvergence(t *testing.T) {
	s := Segment{Status: StatusSynchronized, MonoNs: 0, TimeNs: 1000, TargetNs: 2000, ErrNs: 10,
		SlewPPM: 500, HoldoverAtNs: 5e9, UnsyncAtNs: 9e9}
	if got := s.ConvergedAt(); got != 2_000_000 {
		t.Fatalf("converged at %d, want 2000000 (1µs behind at 500 ppm)", got)
	}
	if r := s.At(2_000_000); r.Time != s.TargetNs+2_000_000 {
		t.Fatalf("at convergence the output reads %d, want the target %d", r.Time, s.TargetNs+2_000_000)
	}
	for _, c := range []struct {
		m    int64
		want Status
	}{{0, StatusSynchronized}, {5e9 - 1, StatusSynchronized}, {5e9, StatusHoldover}, {9e9, StatusUnsynchronized}} {
		if got := s.At(c.m).Status; got != c.want {
			t.Errorf("status at %d = %v, want %v", c.m, got, c.want)
		}
	}
	// With a rate correction the target runs faster (or slower), and the
	// output meets it at the monotonic time that takes.
	for _, freq := range []int64{-100_000, 37, 250_000} {
		s := Segment{Status: StatusSynchronized, TimeNs: 1000, TargetNs: 50_000, ErrNs: 10, SlewPPM: 500, FreqPPB: freq,
			HoldoverAtNs: math.MaxInt64, UnsyncAtNs: math.MaxInt64}
		c := s.ConvergedAt()
		at, before := s.At(c), s.At(c-1)
		target := func(m int64) int64 { return s.TargetNs + m + ppb(m, freq) }
		if at.Time != target(c) || before.Time == target(c-1) {
			t.Fatalf("freq %d ppb: converged at %d reads %d (target %d), a ns before %d (target %d)", freq, c,
				at.Time, target(c), before.Time, target(c-1))
		}
		if want := s.ErrNs + ppb(c, abs(freq)+1); at.Uncertainty() != want {
			t.Fatalf("freq %d ppb: uncertainty %d at %d, want %d", freq, at.Uncertainty(), c, want)
		}
	}
	init := Segment{Status: StatusInitializing, TimeNs: 5, TargetNs: 5, ErrNs: -1}
	if r := init.At(10); r.Bounded() || r.Time != 15 || r.Uncertainty() != -1 {
		t.Fatalf("initializing reading %+v, want unbounded at 15", r)
	}
}
