package vclock

import (
	"time"

	"golang.org/x/sys/unix"
)

// Clock is a host's two clocks. Mono is the monotonic clock, trusted for
// rate to within max_drift_ppm and never stepped; Wall is the host's
// estimate of UTC, which may be wrong by any amount and may jump. Both are
// nanoseconds. Tests inject clocks with offsets, drift and jumps.
type Clock interface {
	Mono() int64
	Wall() int64
}

// SystemClock reads CLOCK_MONOTONIC and CLOCK_REALTIME. CLOCK_MONOTONIC is
// shared by every process on the host, which the shared page relies on.
type SystemClock struct{}

// Mono reads CLOCK_MONOTONIC.
func (SystemClock) Mono() int64 { return MonoNow() }

// Wall reads CLOCK_REALTIME.
func (SystemClock) Wall() int64 { return time.Now().UnixNano() }

// MonoNow reads CLOCK_MONOTONIC in nanoseconds (mono_linux.go: through
// the vDSO on Linux; elsewhere a clock_gettime system call).
func MonoNow() int64 { return monoNow() }

// monoSyscall reads CLOCK_MONOTONIC with a clock_gettime system call.
func monoSyscall() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}

// SkewedClock is the system clock with the wall clock moved by Offset and
// running DriftPPM fast (negative: slow), measured from when it was made.
// It stands in for a host with a bad clock in tests and in `clockd dev`.
type SkewedClock struct {
	Offset   time.Duration
	DriftPPM int64
	base     int64
}

// NewSkewedClock returns a SkewedClock starting now.
func NewSkewedClock(offset time.Duration, driftPPM int64) *SkewedClock {
	return &SkewedClock{Offset: offset, DriftPPM: driftPPM, base: MonoNow()}
}

// Mono reads CLOCK_MONOTONIC.
func (c *SkewedClock) Mono() int64 { return MonoNow() }

// Wall is the real wall clock plus the offset and the accumulated drift.
func (c *SkewedClock) Wall() int64 {
	d := MonoNow() - c.base
	return time.Now().UnixNano() + int64(c.Offset) + d*c.DriftPPM/1_000_000
}
