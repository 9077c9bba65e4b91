// Package tso is the cluster timestamp oracle: it hands out timestamps
// that are unique and strictly increasing across the whole cluster and
// across leader changes.
//
// # Model
//
// A timestamp is a uint64: physical milliseconds of reference time in the
// high bits and a logical counter in the low LogicalBits bits,
//
//	ts = physicalMs<<LogicalBits | logical
//
// so timestamps compare as integers and read as times (Physical).
//
// Only the leader serves. It may hand out timestamps whose physical part
// is below the window ceiling committed through the log (an
// ordering.Ceiling command), and raises the ceiling, through the log,
// before it runs out. A new leader commits a ceiling of its own first; the
// state machine answers with the ceiling in force before it, which covers
// every timestamp any earlier leader could have served, and the new
// leader starts at that ceiling (Allocator.Reset).
//
// # Guarantees
//
//   - Uniqueness and order across leaders: an old leader served only below
//     a ceiling committed before the new leader's own command, so below
//     the floor the new leader starts at.
//   - Real-time order (a timestamp served after another completed is
//     larger): the daemon serves only while its consensus lease holds,
//     and a new leader's lease starts only after the old one's has ended.
//
// # Hazards
//
// The allocator is pure and does not know whether it is still the leader:
// its caller must check the lease before every call to Next.
package tso

import (
	"errors"
	"fmt"
)

// LogicalBits is how many low bits hold the logical counter: 262,144
// timestamps per millisecond.
const LogicalBits = 18

const logicalMax = 1 << LogicalBits

// Compose builds a timestamp.
func Compose(physicalMs, logical uint64) uint64 { return physicalMs<<LogicalBits | logical }

// Physical returns a timestamp's milliseconds of reference time.
func Physical(ts uint64) uint64 { return ts >> LogicalBits }

// Logical returns a timestamp's counter.
func Logical(ts uint64) uint64 { return ts & (logicalMax - 1) }

// ErrNotReady: Reset has not been called since the allocator was made.
var ErrNotReady = errors.New("tso: not serving")

// Allocator hands out timestamps below a committed ceiling. It is not
// safe for concurrent use.
type Allocator struct {
	ready bool
	// Invariant: every timestamp served is < Compose(phys, logical), and
	// phys < ceilingMs once anything was served.
	phys, logical uint64
	ceilingMs     uint64
}

// Reset starts serving at or above floorMs (the ceiling before this
// leader's own) with the committed ceiling ceilingMs. It never moves the
// allocator back: when two resets race (two first calls each committing a
// ceiling) and the earlier entry's answer arrives last, its lower floor
// would hand out again what the later one's reset already served.
// Everything this allocator served before stays below the floor of any
// later entry, so keeping the higher point is always safe.
func (a *Allocator) Reset(floorMs, ceilingMs uint64) {
	a.ready = true
	if floorMs > a.phys {
		a.phys, a.logical = floorMs, 0
	}
	a.ceilingMs = max(a.ceilingMs, ceilingMs)
}

// Stop stops serving until the next Reset.
func (a *Allocator) Stop() { a.ready = false }

// Ready reports whether Reset was called since the last Stop.
func (a *Allocator) Ready() bool { return a.ready }

// SetCeiling raises the ceiling once a higher one is committed.
func (a *Allocator) SetCeiling(ms uint64) { a.ceilingMs = max(a.ceilingMs, ms) }

// CeilingMs is the ceiling in force.
func (a *Allocator) CeilingMs() uint64 { return a.ceilingMs }

// Next serves n timestamps at reference time nowMs: first, first+1, …,
// first+n-1. It fails with a *NeedCeiling when they would reach the
// ceiling; the caller commits a higher one and retries.
func (a *Allocator) Next(nowMs uint64, n uint32) (uint64, error) {
	if !a.ready {
		return 0, ErrNotReady
	}
	if n == 0 || n > logicalMax {
		return 0, fmt.Errorf("tso: %d timestamps in one call, want 1..%d", n, logicalMax)
	}
	phys, logical := a.phys, a.logical
	if nowMs > phys {
		phys, logical = nowMs, 0
	}
	if logical+uint64(n) > logicalMax {
		phys, logical = phys+1, 0
	}
	if phys >= a.ceilingMs {
		return 0, &NeedCeiling{AtLeastMs: phys + 1}
	}
	a.phys, a.logical = phys, logical+uint64(n)
	return Compose(phys, logical), nil
}

// NeedCeiling asks for a ceiling above AtLeastMs before Next can serve.
type NeedCeiling struct{ AtLeastMs uint64 }

func (e *NeedCeiling) Error() string {
	return fmt.Sprintf("tso: ceiling must rise above %d ms", e.AtLeastMs)
}
