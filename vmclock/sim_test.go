package vmclock

import (
	"flag"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
)

var (
	vmSeedFlag  = flag.Uint64("vmseed", 0, "replay one seed of TestVMMigrationSimulation")
	vmSeedsFlag = flag.Int("vmseeds", 0, "run TestVMMigrationSimulation over seeds 1..N")
)

const (
	simVMs  = 100
	simSpan = 2 * time.Hour // of virtual time, after the VMs register
)

// TestVMMigrationSimulation migrates 100 VMs among five hosts for two
// hours of virtual time, every fault drawn from one seed: clock offsets
// and drift, ticks and samples lost, partitions, crashes with replay,
// wall clock steps, racing resumes, retried requests and stale owners.
// At every step it checks each VM reading its owner serves:
//
//   - it never decreases, across migrations and owner restarts, and each
//     committed floor is at least everything served before;
//   - against the owner's reference R it runs at 1±ρ_vm, from the resume
//     point (F, R_res) on, F stepped forward only as MaxLagNs allows;
//   - |lag| never grows, stays within MaxLagNs, and is 0, with Converged
//     set, once R has passed R_res + |F − R_res|/ρ_vm + one tick;
//   - its interval contains the reference's, and so the true time.
//
// Every stale freeze must be refused with VMFailedPrecondition, every
// resume race must have exactly one winner, a retry must get its first
// answer, and every host and replay must answer every log entry alike.
func TestVMMigrationSimulation(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	switch {
	case *vmSeedFlag != 0:
		seeds = []uint64{*vmSeedFlag}
	case *vmSeedsFlag > 0:
		seeds = seeds[:0]
		for i := range *vmSeedsFlag {
			seeds = append(seeds, uint64(i+1))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			stats, err := runVMSim(seed, simSpan)
			if err != nil {
				t.Fatalf("seed %d: %v (replay: go test ./vmclock -run TestVMMigrationSimulation -vmseed %d)", seed, err, seed)
			}
			t.Logf("seed %d, %v: %v", seed, simSpan, stats)
		})
	}
}

// simVM is one VM as the simulation tracks it: its committed record, and
// what its clock has served.
type simVM struct {
	id     string
	rec    ordering.VM
	policy ordering.VMPolicy
	// past holds the records of earlier generations; their owners try
	// stale freezes.
	past []ordering.VM
	// lastNs is the greatest VM time served or committed as a floor.
	// Invariant: every later reading and floor is >= lastNs.
	lastNs int64
	// prevRefNs and prevVMNs are the last point (reference, VM clock)
	// served since the latest resume, starting at the resume point, and
	// prevLagNs the |lag| there.
	prevRefNs, prevVMNs, prevLagNs int64
	// convergeByNs is the owner's reference reading from which the VM
	// clock must equal it.
	convergeByNs int64
	converged    bool // a reading at or past convergeByNs was checked
	move         *simMove
}

// simMove is a migration under way: the VM is frozen, and resumes on
// dest, or another host if dest cannot, at dueNs (UTC).
type simMove struct {
	dueNs int64
	dest  int
}

// simRetry is a command to send again, with the same request id, from
// the same host; it must get the same answer.
type simRetry struct {
	node  int
	cmd   []byte
	want  ordering.VMResult
	dueNs int64
}

type vmSim struct {
	*simCluster
	vms     []*simVM
	retries []simRetry
	rids    int
}

func runVMSim(seed uint64, span time.Duration) (simStats, error) {
	c, err := newSimCluster(seed)
	if err != nil {
		return simStats{}, err
	}
	s := &vmSim{simCluster: c}
	if err := s.run(int64(span)); err != nil {
		return s.stats, fmt.Errorf("at %v of virtual time: %w", time.Duration(s.utc-s.startNs), err)
	}
	return s.stats, nil
}

func (s *vmSim) run(spanNs int64) error {
	for range 5 { // the hosts synchronize before the first VM registers
		if err := s.tick(); err != nil {
			return err
		}
		s.utc += simTickNs
	}
	for i := range simVMs {
		if err := s.register(i); err != nil {
			return err
		}
	}
	end, nextTick := s.utc+spanNs, s.utc+simTickNs
	for s.utc < end {
		// A tick round or a live migration may have carried utc past
		// nextTick already; virtual time never goes back.
		s.utc = min(s.utc+100*simMs+s.rng.Int64N(400*simMs), max(nextTick, s.utc))
		if s.utc >= nextTick {
			nextTick += simTickNs
			if err := s.tick(); err != nil {
				return err
			}
		}
		if err := s.step(); err != nil {
			return err
		}
	}
	return s.finish()
}

func (s *vmSim) step() error {
	if err := s.faults(); err != nil {
		return err
	}
	for i, n := range s.nodes {
		if n.host != nil {
			if _, err := s.now(i); err != nil {
				return err
			}
		}
	}
	if v := s.vms[s.rng.IntN(len(s.vms))]; v.move == nil && s.rng.IntN(6) == 0 {
		if err := s.freeze(v, s.pauseNs()); err != nil {
			return fmt.Errorf("freezing VM %s: %w", v.id, err)
		}
	}
	if err := s.evacuate(); err != nil {
		return err
	}
	for _, v := range s.vms {
		if v.move != nil && v.move.dueNs <= s.utc {
			if err := s.resume(v); err != nil {
				return fmt.Errorf("resuming VM %s: %w", v.id, err)
			}
		}
	}
	if s.rng.IntN(20) == 0 {
		if err := s.staleFreeze(s.vms[s.rng.IntN(len(s.vms))]); err != nil {
			return err
		}
	}
	if err := s.retry(); err != nil {
		return err
	}
	for _, v := range s.vms {
		if s.rng.IntN(4) == 0 {
			if _, _, err := s.serve(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// finish reads every VM once more, so each resume whose convergence
// deadline passed is checked, and insists the run exercised every path.
func (s *vmSim) finish() error {
	for _, v := range s.vms {
		if _, _, err := s.serve(v); err != nil {
			return err
		}
	}
	st := s.stats
	if st.staleRefused != st.staleFreezes {
		return fmt.Errorf("%d of %d stale freezes refused", st.staleRefused, st.staleFreezes)
	}
	for _, c := range []struct {
		n    int
		what string
	}{{st.migrations, "migrations"}, {st.races, "resume races"}, {st.ahead, "VMs resumed ahead of the reference"},
		{st.stepped, "resumes stepped by max lag"}, {st.staleFreezes, "stale freezes"}, {st.retries, "retries"},
		{st.convergeLong, "convergence checks past 10 s"}, {st.crashes, "crashes"}, {st.partitions, "partitions"},
		{st.wallSteps, "wall steps"}} {
		if c.n == 0 {
			return fmt.Errorf("the run had no %s: %v", c.what, st)
		}
	}
	return nil
}

func (s *vmSim) rid(vm string) string {
	s.rids++
	return fmt.Sprintf("%s/%d", vm, s.rids)
}

func (s *vmSim) policy() ordering.VMPolicy {
	if s.rng.IntN(2) == 0 {
		return DefaultPolicy
	}
	p := ordering.VMPolicy{MaxSlewPPM: 100 + s.rng.Int64N(4901)}
	if s.rng.IntN(2) == 0 {
		p.MaxLagNs = 1 + s.rng.Int64N(2*simSec)
	}
	return p
}

// synchronized says whether node i may take a resume: the daemon refuses
// one while its reference is INITIALIZING.
func (s *vmSim) synchronized(i int) bool {
	return s.reachable(i) && s.nodes[i].host.Now().Status != vclock.StatusInitializing
}

func (s *vmSim) proposeVM(from int, cmd []byte) (ordering.VMResult, bool, error) {
	res, ok, err := s.propose(from, cmd)
	if err != nil || !ok {
		return ordering.VMResult{}, ok, err
	}
	r, isVM := res.(ordering.VMResult)
	if !isVM {
		return ordering.VMResult{}, true, fmt.Errorf("a VM command answered %T %+v", res, res)
	}
	if s.rng.IntN(5) == 0 {
		s.retries = append(s.retries, simRetry{node: from, cmd: cmd, want: r, dueNs: s.utc + s.rng.Int64N(10*simSec)})
	}
	return r, true, nil
}

// register creates VM i at generation 1 on a random synchronized host.
func (s *vmSim) register(i int) error {
	v := &simVM{id: fmt.Sprintf("vm%03d", i), policy: s.policy()}
	if err := Validate(v.policy); err != nil {
		return fmt.Errorf("VM %s: drew an invalid policy: %w", v.id, err)
	}
	n, ok := s.pick(s.synchronized)
	if !ok {
		return fmt.Errorf("no host is synchronized to register VM %s on", v.id)
	}
	ref, err := s.now(n)
	if err != nil {
		return err
	}
	cmd := ordering.VMResume{VM: v.id, Host: s.nodes[n].id, Generation: 1, RefNs: ref.Time, Policy: v.policy,
		RequestID: s.rid(v.id)}
	res, ok, err := s.proposeVM(n, ordering.EncodeVMResume(cmd))
	switch {
	case err != nil:
		return err
	case !ok || res.Code != 0 || res.VM.FloorNs != ref.Time || res.VM.ResumeRefNs != ref.Time:
		return fmt.Errorf("registering VM %s at %d: committed %v, %+v", v.id, ref.Time, ok, res)
	}
	v.lastNs = ref.Time
	v.resumed(res.VM)
	s.vms = append(s.vms, v)
	return nil
}

// resumed starts tracking the VM from its resume point: its clock reads
// F at R_res, or R_res − MaxLagNs when F is further behind than that.
func (v *simVM) resumed(rec ordering.VM) {
	f, r := rec.FloorNs, rec.ResumeRefNs
	start := f
	if rec.Policy.MaxLagNs > 0 && r-f > rec.Policy.MaxLagNs {
		start = r - rec.Policy.MaxLagNs
	}
	v.rec, v.move, v.converged = rec, nil, false
	v.prevRefNs, v.prevVMNs, v.prevLagNs = r, start, simAbs(r-start)
	toMeet := math.Ceil(float64(simAbs(f-r)) * 1e6 / float64(rec.Policy.MaxSlewPPM))
	v.convergeByNs = math.MaxInt64
	if toMeet < 1e17 {
		v.convergeByNs = r + int64(toMeet) + simTickNs
	}
}

func simAbs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// serve reads v's clock as its owner serves it, from the owner's own
// record and reference, and checks the reading. served is false while the
// VM is frozen or its owner is down.
func (s *vmSim) serve(v *simVM) (r Reading, served bool, err error) {
	i := int(v.rec.Owner) - 1
	n := s.nodes[i]
	if n.host == nil || v.rec.State != ordering.VMRunning {
		return Reading{}, false, nil
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("VM %s on host %d (generation %d, floor %d, R_res %d, policy %+v): %w", v.id, n.id,
				v.rec.Generation, v.rec.FloorNs, v.rec.ResumeRefNs, v.rec.Policy, err)
		}
	}()
	if rec, ok := n.machine.VM(v.id); !ok || rec != v.rec {
		return Reading{}, false, fmt.Errorf("the owner holds %+v, the log says %+v", rec, v.rec)
	}
	ref, err := s.now(i)
	if err != nil {
		return Reading{}, false, err
	}
	if r, err = At(v.rec, ref); err != nil {
		return Reading{}, false, err
	}
	if err := v.check(r, ref, s.utc); err != nil {
		return Reading{}, false, err
	}
	s.stats.readings++
	if !v.converged && ref.Time >= v.convergeByNs {
		v.converged = true
		s.stats.converged++
		if v.convergeByNs-v.rec.ResumeRefNs > 10*simSec {
			s.stats.convergeLong++
		}
	}
	return r, true, nil
}

// check holds one reading against what the VM served before. ref is the
// owner's reference reading that r was computed from; utc the true time.
func (v *simVM) check(r Reading, ref vclock.Reading, utc int64) error {
	rho := v.rec.Policy.MaxSlewPPM
	dRef, dVM := ref.Time-v.prevRefNs, r.Time-v.prevVMNs
	slack := dRef*rho/1_000_000 + 2 // 2 ns: slew's integer rounding at either end
	lag := simAbs(r.LagNs)
	switch {
	case r.State != ordering.VMRunning || r.Status != ref.Status:
		return fmt.Errorf("read %v %v from a reference at %v", r.State, r.Status, ref.Status)
	case r.Time < v.lastNs:
		return fmt.Errorf("went back by %d ns, from %d to %d", v.lastNs-r.Time, v.lastNs, r.Time)
	case dRef < 0:
		return fmt.Errorf("the owner's reference read %d ns below the last reading or R_res", -dRef)
	case dVM < dRef-slack || dVM > dRef+slack:
		return fmt.Errorf("advanced %d ns while the reference advanced %d ns: outside 1±%d ppm", dVM, dRef, rho)
	case r.LagNs != ref.Time-r.Time:
		return fmt.Errorf("lag %d ns, yet it reads %d ns behind the reference", r.LagNs, ref.Time-r.Time)
	case lag > v.prevLagNs:
		return fmt.Errorf("|lag| grew from %d to %d ns", v.prevLagNs, lag)
	case v.rec.Policy.MaxLagNs > 0 && r.LagNs > v.rec.Policy.MaxLagNs:
		return fmt.Errorf("lags %d ns, beyond its max lag", r.LagNs)
	case r.Converged != (r.LagNs == 0):
		return fmt.Errorf("converged %v with a lag of %d ns", r.Converged, r.LagNs)
	case ref.Time >= v.convergeByNs && !r.Converged:
		return fmt.Errorf("still %d ns off the reference %d ns of reference time after resume, past the %d ns ρ_vm allows",
			r.LagNs, ref.Time-v.rec.ResumeRefNs, v.convergeByNs-v.rec.ResumeRefNs)
	}
	if err := checkInterval(r, ref, utc); err != nil {
		return err
	}
	v.lastNs, v.prevRefNs, v.prevVMNs, v.prevLagNs = r.Time, ref.Time, r.Time, lag
	return nil
}

// checkInterval: a VM reading's interval is the reference's widened by
// |lag|, so it holds the true time whenever the reference's does.
func checkInterval(r Reading, ref vclock.Reading, utc int64) error {
	if !ref.Bounded() {
		if r.Bounded() {
			return fmt.Errorf("bounded [%d, %d] over an unbounded reference", r.Earliest, r.Latest)
		}
		return nil
	}
	w := ref.Uncertainty() + simAbs(r.LagNs)
	switch {
	case r.Earliest > ref.Earliest || r.Latest < ref.Latest:
		return fmt.Errorf("interval [%d, %d] leaves out the reference's [%d, %d]", r.Earliest, r.Latest, ref.Earliest, ref.Latest)
	case r.Time-r.Earliest > w || r.Latest-r.Time > w:
		return fmt.Errorf("interval [%+d, %+d] around the reading is wider than ±%d (reference ± |lag|)",
			r.Earliest-r.Time, r.Latest-r.Time, w)
	case r.Earliest > utc || r.Latest < utc:
		return fmt.Errorf("%v interval [%+d, %+d] around the true time misses it", r.Status, r.Earliest-utc, r.Latest-utc)
	}
	return nil
}

// freeze starts a migration: the owner commits the VM's clock, read now,
// as its floor. An owner that is down or cut off cannot.
func (s *vmSim) freeze(v *simVM, pauseNs int64) error {
	src := int(v.rec.Owner) - 1
	r, served, err := s.serve(v)
	if err != nil || !served {
		return err
	}
	cmd := ordering.VMFreeze{VM: v.id, Owner: v.rec.Owner, Generation: v.rec.Generation, TimeNs: r.Time,
		RequestID: s.rid(v.id)}
	res, ok, err := s.proposeVM(src, ordering.EncodeVMFreeze(cmd))
	if err != nil || !ok {
		return err
	}
	want := v.rec
	want.State, want.FloorNs = ordering.VMFrozen, r.Time
	if res.Code != 0 || res.VM != want {
		return fmt.Errorf("freeze %+v by its owner answered %+v", cmd, res)
	}
	v.past = append(v.past, v.rec)
	v.rec, v.lastNs = res.VM, r.Time
	dest, _ := s.pick(func(i int) bool { return i != src })
	v.move = &simMove{dueNs: s.utc + pauseNs, dest: dest}
	if pauseNs < 100*simMs { // a live migration: resume before the next step
		s.utc += pauseNs
		return s.resume(v)
	}
	return nil
}

// evacuate live-migrates, now and then, the VMs off a host whose
// partition just healed, before its output, which ran on its own
// oscillator, has slewed back to the reference: the VMs that ran fast
// there resume ahead of the destination's reference.
func (s *vmSim) evacuate() error {
	for _, i := range s.healed {
		if s.rng.IntN(2) == 0 {
			continue
		}
		for _, v := range s.vms {
			if v.rec.Owner == s.nodes[i].id && v.move == nil {
				if err := s.freeze(v, s.rng.Int64N(2*simMs)); err != nil {
					return fmt.Errorf("evacuating VM %s: %w", v.id, err)
				}
			}
		}
	}
	return nil
}

// pauseNs draws how long a migration keeps the VM frozen.
func (s *vmSim) pauseNs() int64 {
	switch p := s.rng.IntN(100); {
	case p < 10:
		return s.rng.Int64N(2 * simMs)
	case p < 60:
		return simMs + s.rng.Int64N(100*simMs)
	case p < 90:
		return 100*simMs + s.rng.Int64N(3*simSec)
	case p < 98:
		return 3*simSec + s.rng.Int64N(30*simSec)
	}
	return 30*simSec + s.rng.Int64N(90*simSec)
}

// resume ends a migration on its destination, or on another synchronized
// host on the majority side. Now and then two hosts race: each reads its
// reference, then both propose generation+1; exactly one must win.
func (s *vmSim) resume(v *simVM) error {
	dest := v.move.dest
	if !s.quorum() || !s.synchronized(dest) {
		var ok bool
		if dest, ok = s.pick(s.synchronized); !ok || !s.quorum() {
			v.move.dueNs = s.utc + simSec
			return nil
		}
	}
	bidders := []int{dest}
	if other, ok := s.pick(func(i int) bool { return i != dest && s.synchronized(i) }); ok && s.rng.IntN(8) == 0 {
		bidders = append(bidders, other)
		s.rng.Shuffle(2, func(i, j int) { bidders[i], bidders[j] = bidders[j], bidders[i] })
	}
	cmds := make([]ordering.VMResume, len(bidders))
	for k, i := range bidders {
		ref, err := s.now(i)
		if err != nil {
			return err
		}
		cmds[k] = ordering.VMResume{VM: v.id, Host: s.nodes[i].id, Generation: v.rec.Generation + 1,
			RefNs: ref.Time, Policy: v.policy, RequestID: s.rid(v.id)}
	}
	var won []ordering.VMResult
	for k, i := range bidders {
		res, ok, err := s.proposeVM(i, ordering.EncodeVMResume(cmds[k]))
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("host %d could not commit a resume with a quorum up", s.nodes[i].id)
		case res.Code == 0:
			want := ordering.VM{ID: v.id, Owner: cmds[k].Host, Generation: cmds[k].Generation,
				State: ordering.VMRunning, FloorNs: v.rec.FloorNs, ResumeRefNs: cmds[k].RefNs, Policy: v.policy}
			if res.VM != want {
				return fmt.Errorf("resume %+v committed %+v", cmds[k], res.VM)
			}
			won = append(won, res)
		case res.Code != ordering.VMFailedPrecondition:
			return fmt.Errorf("racing resume %+v refused with code %d: %s", cmds[k], res.Code, res.Msg)
		}
	}
	if len(won) != 1 {
		return fmt.Errorf("%d of %d racing resumes at generation %d won", len(won), len(bidders), v.rec.Generation+1)
	}
	if len(bidders) > 1 {
		s.stats.races++
	}
	s.stats.migrations++
	rec := won[0].VM
	switch {
	case rec.FloorNs > rec.ResumeRefNs:
		s.stats.ahead++
	case rec.Policy.MaxLagNs > 0 && rec.ResumeRefNs-rec.FloorNs > rec.Policy.MaxLagNs:
		s.stats.stepped++
	}
	v.resumed(rec)
	_, _, err := s.serve(v) // the new owner's first reading, at once
	return err
}

// staleFreeze has an owner of an earlier generation freeze v as if it
// still ran there, from the stale record it kept. It must be refused, and
// change nothing.
func (s *vmSim) staleFreeze(v *simVM) error {
	if len(v.past) == 0 {
		return nil
	}
	old := v.past[s.rng.IntN(len(v.past))]
	i := int(old.Owner) - 1
	if old.Generation >= v.rec.Generation || s.nodes[i].host == nil {
		return nil // the generation is current, or its owner is down
	}
	ref, err := s.now(i)
	if err != nil {
		return err
	}
	r, err := At(old, ref)
	if err != nil {
		return err
	}
	cmd := ordering.VMFreeze{VM: v.id, Owner: old.Owner, Generation: old.Generation, TimeNs: r.Time, RequestID: s.rid(v.id)}
	res, ok, err := s.proposeVM(i, ordering.EncodeVMFreeze(cmd))
	if err != nil || !ok {
		return err
	}
	s.stats.staleFreezes++
	if res.Code != ordering.VMFailedPrecondition {
		return fmt.Errorf("stale freeze %+v, with the VM at %+v, answered code %d %+v", cmd, v.rec, res.Code, res.VM)
	}
	if rec, _ := s.nodes[i].machine.VM(v.id); rec != v.rec {
		return fmt.Errorf("a refused stale freeze %+v moved the record from %+v to %+v", cmd, v.rec, rec)
	}
	s.stats.staleRefused++
	return nil
}

// retry sends the due retries whose host can propose; each must get the
// first answer to its request id, whatever committed since.
func (s *vmSim) retry() error {
	kept := s.retries[:0]
	for _, r := range s.retries {
		if r.dueNs > s.utc || !s.reachable(r.node) || !s.quorum() {
			kept = append(kept, r)
			continue
		}
		res, _, err := s.propose(r.node, r.cmd)
		if err != nil {
			return err
		}
		if res != r.want {
			_, cmd, _ := ordering.Decode(r.cmd)
			return fmt.Errorf("retried %T %+v answered %+v; the first answer was %+v", cmd, cmd, res, r.want)
		}
		s.stats.retries++
	}
	s.retries = kept
	return nil
}
