package slew

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Policy bounds how the output may move relative to the target.
type Policy struct {
	// MaxRatePPM is ρ in parts per million: the output's rate stays within
	// [1-ρ, 1+ρ] of the target's. It must be in (0, 10⁶).
	MaxRatePPM int64
	// MaxLag, if positive, allows one forward step at the start so the
	// output never lags the target by more than MaxLag. Zero disables it.
	MaxLag time.Duration
}

// ErrPolicy reports an invalid policy.
var ErrPolicy = errors.New("slew: invalid policy")

// Validate checks the policy.
func (p Policy) Validate() error {
	if p.MaxRatePPM <= 0 || p.MaxRatePPM >= 1_000_000 {
		return fmt.Errorf("%w: max rate %d ppm, want 1..999999", ErrPolicy, p.MaxRatePPM)
	}
	if p.MaxLag < 0 {
		return fmt.Errorf("%w: negative max lag %v", ErrPolicy, p.MaxLag)
	}
	return nil
}

// Clock is a slewed clock. The zero value is not usable; build one with
// Start.
type Clock struct {
	rho     uint64 // ppm
	t0, o0  int64  // target and output readings at the start, ns
	stepped bool
}

// Start begins a clock whose output is at least floorNs when the target
// reads targetNs, and converges to the target under p.
func Start(p Policy, floorNs, targetNs int64) (Clock, error) {
	if err := p.Validate(); err != nil {
		return Clock{}, err
	}
	c := Clock{rho: uint64(p.MaxRatePPM), t0: targetNs, o0: floorNs}
	if lag := int64(p.MaxLag); lag > 0 && targetNs-floorNs > lag {
		c.o0, c.stepped = targetNs-lag, true
	}
	return c, nil
}

// Stepped reports whether the clock stepped forward at the start.
func (c Clock) Stepped() bool { return c.stepped }

// At returns the output when the target reads targetNs. Readings before
// the start are clamped to the start.
func (c Clock) At(targetNs int64) int64 {
	if targetNs <= c.t0 {
		return c.o0
	}
	d := uint64(targetNs - c.t0)
	adj := mulDiv(d, c.rho, 1_000_000)
	switch {
	case c.o0 > c.t0: // ahead: run slow until the target catches up
		return max(c.o0+int64(d-adj), targetNs)
	case c.o0 < c.t0: // behind: run fast until we catch up
		return min(c.o0+int64(d+adj), targetNs)
	}
	return targetNs
}

// ConvergedAt returns the first target reading from which the output
// equals the target.
func (c Clock) ConvergedAt() int64 {
	off := c.o0 - c.t0
	if off < 0 {
		off = -off
	}
	// The smallest d with ⌊d·ρ/10⁶⌋ >= off.
	d := ceilDiv(uint64(off), c.rho)
	if d > uint64(math.MaxInt64-c.t0) {
		return math.MaxInt64
	}
	return c.t0 + int64(d)
}

// Lag returns target minus output at targetNs: positive while the output
// is behind, negative while it is ahead.
func (c Clock) Lag(targetNs int64) int64 { return targetNs - c.At(targetNs) }

// mulDiv returns ⌊a·b/d⌋ exactly, saturating at the largest uint64.
func mulDiv(a, b, d uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, d)
	return q
}

// ceilDiv returns the smallest d with ⌊d·rho/10⁶⌋ >= off.
func ceilDiv(off, rho uint64) uint64 {
	hi, lo := bits.Mul64(off, 1_000_000)
	if hi >= rho {
		return ^uint64(0)
	}
	q, r := bits.Div64(hi, lo, rho)
	if r != 0 {
		q++
	}
	return q
}
