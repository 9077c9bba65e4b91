package vmclock

import (
	"testing"
	"time"

	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
)

func TestVMClockBehindAheadAndFrozen(t *testing.T) {
	const ms = int64(time.Millisecond)
	ref := func(ns int64) vclock.Reading {
		return vclock.Reading{Time: ns, Earliest: ns - 5*ms, Latest: ns + 5*ms, Status: vclock.StatusSynchronized}
	}
	pol := ordering.VMPolicy{MaxSlewPPM: 1000}
	for _, c := range []struct {
		name   string
		offset int64 // floor minus the reference at resume
	}{{"behind", -300 * ms}, {"ahead", 300 * ms}} {
		t.Run(c.name, func(t *testing.T) {
			vm := ordering.VM{ID: "v", State: ordering.VMRunning, FloorNs: 1e12 + c.offset, ResumeRefNs: 1e12, Policy: pol}
			start, _ := At(vm, ref(1e12))
			if start.Time != vm.FloorNs || start.LagNs != -c.offset {
				t.Fatalf("at resume: %+v, want the floor", start)
			}
			// |offset|/ρ = 300 s of reference time to converge.
			mid, _ := At(vm, ref(1e12+150e9))
			if mid.Converged || mid.LagNs != -c.offset/2 {
				t.Fatalf("halfway: %+v, want half the lag", mid)
			}
			if mid.Earliest > 1e12+150e9 || mid.Latest < 1e12+150e9 {
				t.Fatalf("halfway the interval [%d, %d] misses the reference", mid.Earliest, mid.Latest)
			}
			end, _ := At(vm, ref(1e12+300e9))
			if !end.Converged || end.LagNs != 0 {
				t.Fatalf("after |offset|/ρ: %+v, want converged", end)
			}
		})
	}
	frozen, _ := At(ordering.VM{State: ordering.VMFrozen, FloorNs: 42}, ref(1e12))
	if frozen.Time != 42 || frozen.Bounded() {
		t.Fatalf("frozen VM reads %+v", frozen)
	}
	stepped, _ := At(ordering.VM{State: ordering.VMRunning, FloorNs: 0, ResumeRefNs: 10e9,
		Policy: ordering.VMPolicy{MaxSlewPPM: 500, MaxLagNs: 1e9}}, ref(10e9))
	if stepped.LagNs != 1e9 {
		t.Fatalf("10 s behind with max_lag 1s: lag %v", time.Duration(stepped.LagNs))
	}
	if err := Validate(ordering.VMPolicy{MaxSlewPPM: 0}); err == nil {
		t.Fatal("a zero slew rate validated")
	}
}
