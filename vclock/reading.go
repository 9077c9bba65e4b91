package vclock

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/clockd/clockd/slew"
)

// Status says how far a reading can be trusted.
type Status int32

// The statuses, in the order a host normally passes through them. The
// numbers are part of the API, the NTP answers and the shared page.
const (
	// StatusInitializing: the host has not yet applied a tick that
	// anchors its output. The reading has no bound.
	StatusInitializing Status = 1
	// StatusSynchronized: the output follows a tick committed with the
	// support of a majority of the cluster, recently enough.
	StatusSynchronized Status = 2
	// StatusHoldover: no fresh tick (no quorum, or the host is cut off).
	// The output runs on the local oscillator and the bound grows by
	// max_drift_ppm.
	StatusHoldover Status = 3
	// StatusUnsynchronized: holdover lasted too long; the bound still
	// holds but is too wide to be useful.
	StatusUnsynchronized Status = 4
)

func (s Status) String() string {
	switch s {
	case StatusInitializing:
		return "INITIALIZING"
	case StatusSynchronized:
		return "SYNCHRONIZED"
	case StatusHoldover:
		return "HOLDOVER"
	case StatusUnsynchronized:
		return "UNSYNCHRONIZED"
	}
	return fmt.Sprintf("Status(%d)", int32(s))
}

// Reading is one read of the reference clock. Times are nanoseconds since
// the Unix epoch (UTC). The true time lies in [Earliest, Latest]; Time is
// monotone across reads on one host. An unbounded reading (INITIALIZING)
// has Earliest = math.MinInt64 and Latest = math.MaxInt64.
type Reading struct {
	Time, Earliest, Latest int64
	Status                 Status
}

// Bounded reports whether the reading carries a finite error bound.
func (r Reading) Bounded() bool {
	return r.Earliest != math.MinInt64 && r.Latest != math.MaxInt64
}

// Uncertainty is the half-width of the interval, or -1 when unbounded.
func (r Reading) Uncertainty() int64 {
	if !r.Bounded() {
		return -1
	}
	return max(r.Time-r.Earliest, r.Latest-r.Time)
}

// Segment is a host's reference output as a pure function of its local
// monotonic clock, from one anchor on. The daemon reads its own clock
// through it, and publishes it on the shared page so other processes
// compute the very same readings.
//
// At the anchor MonoNs the output read TimeNs and the target (the
// committed reference, as seen on this host) read TargetNs with error
// ErrNs. From there the target advances at rate 1+FreqPPB/10⁹ on the
// monotonic clock (FreqPPB corrects the monotonic clock's measured rate
// error against the reference), and the output slews toward it at a rate
// within 1±SlewPPM/10⁶ of the target's (package slew) until they meet,
// then follows it. With d = m−MonoNs, the bound is
//
//	ErrNs + d·(DriftPPM·10³ + |FreqPPB| + 1)/10⁹ + |output − target|
//
// on both sides of the output: the monotonic clock's own rate error is
// within DriftPPM, and a correction can add at most its own size (and a
// nanosecond per second for their product). ErrNs < 0 means unbounded.
//
// An INITIALIZING segment does not slew: its output holds at TimeNs (the
// restart floor) until the target passes it, then follows the target, so
// a restarted host never reads below what it read before, and never runs
// ahead of the reference once it joins it. TargetNs = NoTarget holds for
// ever (no tick yet).
//
// The status is Status until HoldoverAtNs, then HOLDOVER until UnsyncAtNs,
// then UNSYNCHRONIZED (either may be math.MaxInt64: never). A segment
// whose Status is not SYNCHRONIZED keeps it.
type Segment struct {
	Status       Status
	MonoNs       int64
	TimeNs       int64
	TargetNs     int64
	ErrNs        int64
	SlewPPM      int64
	DriftPPM     int64
	FreqPPB      int64
	HoldoverAtNs int64
	UnsyncAtNs   int64
}

// NoTarget is the TargetNs of a segment that has no target yet.
const NoTarget = math.MinInt64 / 2

// At is the reading at local monotonic time mono. Before the anchor it
// reads as at the anchor, so a reader never goes backwards.
func (s Segment) At(mono int64) Reading {
	d := max(mono-s.MonoNs, 0)
	target := SatAdd(s.TargetNs, SatAdd(d, ppb(d, s.FreqPPB)))
	out := target
	if s.Status == StatusInitializing {
		out = max(s.TimeNs, target)
	} else if s.TimeNs != s.TargetNs && s.SlewPPM > 0 && s.SlewPPM < 1_000_000 {
		c, err := slew.Start(slew.Policy{MaxRatePPM: s.SlewPPM}, s.TimeNs, s.TargetNs)
		if err == nil {
			out = c.At(target)
		}
	}
	r := Reading{Time: out, Status: s.statusAt(mono)}
	if s.ErrNs < 0 {
		r.Earliest, r.Latest = math.MinInt64, math.MaxInt64
		return r
	}
	gap := target - out
	if gap < 0 {
		gap = -gap
	}
	bound := SatAdd(SatAdd(s.ErrNs, s.growth(d)), gap)
	r.Earliest, r.Latest = SatAdd(out, -bound), SatAdd(out, bound)
	return r
}

// ConvergedAt is the monotonic time from which the output equals the
// target, or MonoNs when it already does.
func (s Segment) ConvergedAt() int64 {
	if s.Status == StatusInitializing {
		if s.TargetNs == NoTarget {
			return math.MaxInt64
		}
		return SatAdd(s.MonoNs, max(s.TimeNs-s.TargetNs, 0))
	}
	if s.TimeNs == s.TargetNs || s.SlewPPM <= 0 || s.SlewPPM >= 1_000_000 {
		return s.MonoNs
	}
	c, err := slew.Start(slew.Policy{MaxRatePPM: s.SlewPPM}, s.TimeNs, s.TargetNs)
	if err != nil {
		return s.MonoNs
	}
	return SatAdd(s.MonoNs, s.monoFor(c.ConvergedAt()-s.TargetNs))
}

// growth is how far the bound widens over d ns of the monotonic clock.
func (s Segment) growth(d int64) int64 {
	return SatAdd(ppm(d, s.DriftPPM), ppb(d, abs(s.FreqPPB)+1))
}

// monoFor is the monotonic time over which the target advances x >= 0:
// the inverse of x = d + ppb(d, FreqPPB), rounded up.
func (s Segment) monoFor(x int64) int64 {
	if s.FreqPPB == 0 || x <= 0 {
		return x
	}
	d := int64(float64(x) * 1e9 / (1e9 + float64(s.FreqPPB)))
	for d > 0 && SatAdd(d, ppb(d, s.FreqPPB)) >= x {
		d--
	}
	for SatAdd(d, ppb(d, s.FreqPPB)) < x {
		d++
	}
	return d
}

func (s Segment) statusAt(mono int64) Status {
	if s.Status != StatusSynchronized {
		return s.Status
	}
	switch {
	case mono >= s.UnsyncAtNs:
		return StatusUnsynchronized
	case mono >= s.HoldoverAtNs:
		return StatusHoldover
	}
	return StatusSynchronized
}

// ppb returns d·p/10⁹ for d >= 0 and |p| <= 10⁹, truncated toward zero.
func ppb(d, p int64) int64 {
	if d <= 0 || p == 0 {
		return 0
	}
	return d/1_000_000_000*p + d%1_000_000_000*p/1_000_000_000
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// ppm returns d·p/10⁶ for d, p >= 0, saturating.
func ppm(d, p int64) int64 {
	if d <= 0 || p <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(d), uint64(p))
	if hi >= 1_000_000 {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, 1_000_000)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// SatAdd adds without wrapping: the result saturates at the int64 limits.
func SatAdd(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}
