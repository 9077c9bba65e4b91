// Package vmclock computes a migrated VM's clock: a pure function of the
// VM's committed record (its floor, the reference at resume, its policy)
// and the owner host's reference reading.
//
// # Model
//
// At resume the owner committed the reference reading R_res, and the VM's
// floor F (its time when it froze on the previous host). From then on the
// VM clock is slew.Clock started at F when the reference reads R_res:
//
//	V(R) = F + (R − R_res)·(1 ± ρ_vm)   until V meets R, then V = R
//
// so it starts at the floor, runs at most ρ_vm fast or slow relative to
// the reference, and follows the reference once it meets it. With
// MaxLagNs set, a VM further behind than that steps forward once, at
// resume, to MaxLagNs behind.
//
// # Guarantees
//
//   - V never decreases while the reference does not, and the host's
//     reference output never does, even across a daemon restart (its
//     high-water mark); so V never decreases on the owner.
//   - V at resume is at least F, the time the VM had when it left: a
//     migration never moves a VM's clock back.
//   - Everything V depends on is committed, so every host and every
//     restart computes the same V from the same reference reading.
//
// # Defaults
//
// DefaultPolicy is ρ_vm = 500 ppm and MaxLag = 1 s. 500 ppm is the slew
// limit ntpd and the Linux kernel's adjtime use, so software in the guest
// that tolerates NTP slewing tolerates this; a live migration pauses the
// VM for well under a second, which 500 ppm absorbs in under half an
// hour. The 1 s step bounds the lag after a long pause (a migration that
// stalled, a VM suspended in flight): without it, a VM 10 minutes behind
// would need two weeks to converge.
package vmclock

import (
	"fmt"
	"math"
	"time"

	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/slew"
	"github.com/clockd/clockd/vclock"
)

// DefaultPolicy is the cluster default, documented above.
var DefaultPolicy = ordering.VMPolicy{MaxSlewPPM: 500, MaxLagNs: int64(time.Second)}

// Validate checks a policy.
func Validate(p ordering.VMPolicy) error {
	if p.MaxSlewPPM <= 0 || p.MaxSlewPPM >= 1_000_000 {
		return fmt.Errorf("max_slew_ppm %d: want 1..999999", p.MaxSlewPPM)
	}
	if p.MaxLagNs < 0 {
		return fmt.Errorf("max_lag %v: negative", time.Duration(p.MaxLagNs))
	}
	return nil
}

// Reading is a VM clock reading. Its interval holds the true time when
// the reference's does: it is the reference's, widened by the lag.
type Reading struct {
	vclock.Reading
	// LagNs is the reference minus the VM clock: positive while the VM is
	// behind.
	LagNs int64
	// Converged: the VM clock has met the reference and follows it.
	Converged bool
	State     ordering.VMState
}

// At is the VM's clock when the owner's reference reads ref. A frozen VM
// reads its floor, unbounded.
func At(vm ordering.VM, ref vclock.Reading) (Reading, error) {
	if vm.State == ordering.VMFrozen {
		return Reading{Reading: vclock.Reading{Time: vm.FloorNs, Earliest: math.MinInt64, Latest: math.MaxInt64,
			Status: ref.Status}, State: vm.State}, nil
	}
	c, err := slew.Start(slew.Policy{MaxRatePPM: vm.Policy.MaxSlewPPM, MaxLag: time.Duration(vm.Policy.MaxLagNs)},
		vm.FloorNs, vm.ResumeRefNs)
	if err != nil {
		return Reading{}, fmt.Errorf("vmclock: VM %q: %w", vm.ID, err)
	}
	t := c.At(ref.Time)
	lag := ref.Time - t
	r := Reading{Reading: vclock.Reading{Time: t, Status: ref.Status}, LagNs: lag,
		Converged: ref.Time >= c.ConvergedAt(), State: vm.State}
	if !ref.Bounded() {
		r.Earliest, r.Latest = math.MinInt64, math.MaxInt64
		return r, nil
	}
	w := ref.Uncertainty() + abs(lag)
	r.Earliest, r.Latest = t-w, t+w
	return r, nil
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
