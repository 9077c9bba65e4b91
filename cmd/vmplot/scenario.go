package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
	"github.com/clockd/clockd/vmclock"
)

// scenario is one live migration. Times are nanoseconds; t = 0 is the
// freeze, and t runs on the destination's reference.
type scenario struct {
	name string
	// offsetNs is the floor minus the destination's reference at resume:
	// negative, the VM resumes behind; positive, ahead.
	offsetNs   int64
	downtimeNs int64
	policy     ordering.VMPolicy
	// beforeNs of the timeline precede the freeze, afterNs follow the
	// convergence.
	beforeNs, afterNs int64
	// stepNs is the sampling grid; the freeze, the resume and the
	// convergence are sampled exactly as well.
	stepNs int64
}

// skewNs is the source's reference minus the destination's: the floor is
// the source's reading at the freeze, and the destination's reference
// has moved on by the downtime when the VM resumes.
func (s scenario) skewNs() int64 { return s.offsetNs + s.downtimeNs }

type phase uint8

const (
	onSource phase = iota
	frozen
	onDestination
)

// sample is the VM's clock at one instant of the timeline.
type sample struct {
	tNs   int64
	phase phase
	// ownerRef is the reading vmclock.At was given: the source's
	// reference until the resume, the destination's after.
	ownerRef vclock.Reading
	// srcNs and dstNs are both hosts' references at tNs.
	srcNs, dstNs int64
	vm           vmclock.Reading
}

// offsetNs is the VM clock minus the reference it is served against.
func (s sample) offsetNs() int64 { return s.vm.Time - s.ownerRef.Time }

// migration is a scenario played through the ordering state machine and
// vmclock. samples is in increasing tNs.
type migration struct {
	sc                     scenario
	floorNs                int64
	resumeNs, convergedNs  int64 // t of the resume and of the first converged reading
	srcEpochNs, dstEpochNs int64 // the references at t = 0
	samples                []sample
	source, destination    consensus.NodeID
}

// epochNs is where the destination's reference stands at the freeze;
// any value works, a realistic one keeps the arithmetic honest.
const epochNs = int64(1_750_000_000) * int64(time.Second)

// uncertaintyNs is the half-width of every reference reading.
const uncertaintyNs = int64(time.Millisecond)

// simulate walks a VM through its registration on the source, the
// freeze and the resume on the destination, applying each command to an
// ordering.Machine, and reads the VM's clock with vmclock.At from the
// committed record in force at every sample.
func simulate(sc scenario) (*migration, error) {
	if err := vmclock.Validate(sc.policy); err != nil {
		return nil, err
	}
	if sc.downtimeNs <= 0 || sc.stepNs <= 0 || sc.beforeNs < 0 || sc.afterNs < 0 {
		return nil, fmt.Errorf("scenario %s: downtime, step and margins must be positive", sc.name)
	}
	m := &migration{sc: sc, resumeNs: sc.downtimeNs, source: 1, destination: 2,
		dstEpochNs: epochNs, srcEpochNs: epochNs + sc.skewNs()}
	var sm ordering.Machine
	registered, err := apply(&sm, ordering.EncodeVMResume(ordering.VMResume{VM: "vm", Host: m.source,
		Generation: 1, RefNs: m.srcEpochNs - sc.beforeNs - int64(time.Second), Policy: sc.policy}))
	if err != nil {
		return nil, err
	}
	atFreeze, err := vmclock.At(registered, m.ref(m.srcEpochNs, 0))
	if err != nil {
		return nil, err
	}
	m.floorNs = atFreeze.Time
	frozenRec, err := apply(&sm, ordering.EncodeVMFreeze(ordering.VMFreeze{VM: "vm", Owner: m.source,
		Generation: 1, TimeNs: m.floorNs}))
	if err != nil {
		return nil, err
	}
	resumed, err := apply(&sm, ordering.EncodeVMResume(ordering.VMResume{VM: "vm", Host: m.destination,
		Generation: 2, RefNs: m.dstEpochNs + m.resumeNs, Policy: sc.policy}))
	if err != nil {
		return nil, err
	}
	if m.convergedNs, err = m.firstConverged(resumed); err != nil {
		return nil, err
	}
	for _, t := range m.times() {
		s := sample{tNs: t, srcNs: m.srcEpochNs + t, dstNs: m.dstEpochNs + t}
		rec := registered
		switch {
		case t >= m.resumeNs:
			s.phase, rec, s.ownerRef = onDestination, resumed, m.ref(m.dstEpochNs, t)
		case t >= 0:
			s.phase, rec, s.ownerRef = frozen, frozenRec, m.ref(m.srcEpochNs, t)
		default:
			s.ownerRef = m.ref(m.srcEpochNs, t)
		}
		if s.vm, err = vmclock.At(rec, s.ownerRef); err != nil {
			return nil, err
		}
		m.samples = append(m.samples, s)
	}
	return m, nil
}

// ref is a synchronized reading of a reference that stood at epoch at
// t = 0.
func (m *migration) ref(epoch, t int64) vclock.Reading {
	at := epoch + t
	return vclock.Reading{Time: at, Earliest: at - uncertaintyNs, Latest: at + uncertaintyNs,
		Status: vclock.StatusSynchronized}
}

// firstConverged bisects on the destination's reference for the first t
// at which vmclock reports the VM converged.
func (m *migration) firstConverged(rec ordering.VM) (int64, error) {
	lo, hi := m.resumeNs, m.resumeNs+int64(time.Hour)
	for lo < hi {
		mid := lo + (hi-lo)/2
		r, err := vmclock.At(rec, m.ref(m.dstEpochNs, mid))
		if err != nil {
			return 0, err
		}
		if r.Converged {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == m.resumeNs+int64(time.Hour) {
		return 0, fmt.Errorf("scenario %s: no convergence within an hour of the resume", m.sc.name)
	}
	return lo, nil
}

// times is the sampling grid plus the instants where the curves bend;
// the last frozen instant sits 1 ns before the resume so the handover to
// the destination's reference is drawn vertical.
func (m *migration) times() []int64 {
	end := m.convergedNs + m.sc.afterNs
	ts := []int64{0, m.resumeNs - 1, m.resumeNs, m.convergedNs, end}
	for t := -m.sc.beforeNs; t < end; t += m.sc.stepNs {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// firstOn is the index of the first sample in phase p, or -1.
func (m *migration) firstOn(p phase) int {
	for i, s := range m.samples {
		if s.phase == p {
			return i
		}
	}
	return -1
}

func apply(sm *ordering.Machine, cmd []byte) (ordering.VM, error) {
	out := sm.Apply(1, cmd)
	res, ok := out.(ordering.VMResult)
	if !ok {
		return ordering.VM{}, fmt.Errorf("apply: %v", out)
	}
	return res.VM, res.Err()
}
