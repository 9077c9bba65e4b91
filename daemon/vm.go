package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
	"github.com/clockd/clockd/vmclock"
)

// callVMPropose: an encoded VM command → its slot (uvarint) and encoded
// VMResult.
const callVMPropose = "vm.propose"

// vms is this node's side of the VM clocks: proposing the commands and
// serving the clocks of the VMs it owns.
type vms struct {
	d *Daemon
	// freezing holds the VMs this node is freezing: their clocks are not
	// served between computing the floor and committing it, so no reading
	// can exceed the floor.
	mu       sync.Mutex
	freezing map[string]bool
}

// VMStatus is what VMClock answers.
type VMStatus struct {
	Served    bool
	Owner     consensus.NodeID
	OwnerAddr string
	Record    ordering.VM
	Reading   vmclock.Reading
}

// validTime bounds floors to years 1970..2262.
func validTime(ns int64) bool { return ns > 0 && ns < math.MaxInt64-int64(24*time.Hour) }

// Freeze commits vm's floor as it leaves owner (0: this node).
func (v *vms) Freeze(ctx context.Context, vm string, vmTime *int64, owner consensus.NodeID, gen uint64, rid string) (ordering.VM, error) {
	if owner == 0 {
		owner = v.d.id
	}
	if vmTime != nil && !validTime(*vmTime) {
		return ordering.VM{}, status.Errorf(codes.InvalidArgument, "vm_time_unix_nano %d is not a valid time", *vmTime)
	}
	floor := int64(0)
	if vmTime != nil {
		floor = *vmTime
	}
	if owner == v.d.id {
		if !v.begin(vm) {
			return ordering.VM{}, status.Errorf(codes.Aborted, "VM %q: a freeze is already under way here", vm)
		}
		defer v.end(vm)
		if rec, ok := v.d.machine.VM(vm); ok && rec.Owner == v.d.id && rec.State == ordering.VMRunning {
			r, err := vmclock.At(rec, v.d.host.Now())
			if err != nil {
				return ordering.VM{}, status.Error(codes.Internal, err.Error())
			}
			floor = max(floor, r.Time)
		}
	}
	if floor == 0 {
		// No time to commit: answer from the record where it decides.
		rec, ok := v.d.machine.VM(vm)
		switch {
		case !ok:
			return ordering.VM{}, status.Errorf(codes.NotFound, "unknown VM %q", vm)
		case rec.State == ordering.VMFrozen && rec.Owner == owner && rec.Generation == gen:
			return rec, nil // a retry of a freeze already committed
		case rec.Owner != owner || rec.Generation != gen:
			return ordering.VM{}, status.Errorf(codes.FailedPrecondition,
				"VM %q is owned by host %d at generation %d; host %d at generation %d may not freeze it",
				vm, rec.Owner, rec.Generation, owner, gen)
		}
		return ordering.VM{}, status.Errorf(codes.InvalidArgument,
			"VM %q: vm_time_unix_nano is required when host %d, not the owner %d, serves the freeze", vm, v.d.id, owner)
	}
	rec, err := v.propose(ctx, ordering.EncodeVMFreeze(ordering.VMFreeze{VM: vm, Owner: owner, Generation: gen,
		TimeNs: floor, RequestID: rid}))
	if err == nil && (rec.Owner != owner || rec.Generation != gen) {
		return ordering.VM{}, status.Errorf(codes.FailedPrecondition,
			"VM %q is owned by host %d at generation %d: request id %q answered another freeze, not host %d's at generation %d",
			vm, rec.Owner, rec.Generation, rid, owner, gen)
	}
	return rec, err
}

func (v *vms) begin(vm string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.freezing[vm] {
		return false
	}
	if v.freezing == nil {
		v.freezing = map[string]bool{}
	}
	v.freezing[vm] = true
	return true
}

func (v *vms) end(vm string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.freezing, vm)
}

// Resume makes this node vm's owner at gen, from its reference now.
func (v *vms) Resume(ctx context.Context, vm string, gen uint64, rid string, pol ordering.VMPolicy) (ordering.VM, error) {
	if err := vmclock.Validate(pol); err != nil {
		return ordering.VM{}, status.Errorf(codes.InvalidArgument, "VM %q: %v", vm, err)
	}
	ref := v.d.host.Now()
	if ref.Status == vclock.StatusInitializing {
		return ordering.VM{}, status.Errorf(codes.Unavailable, "host %d has no reference time yet", v.d.id)
	}
	rec, err := v.propose(ctx, ordering.EncodeVMResume(ordering.VMResume{VM: vm, Host: v.d.id, Generation: gen,
		RefNs: ref.Time, Policy: pol, RequestID: rid}))
	if err == nil && (rec.Owner != v.d.id || rec.Generation != gen) {
		// The log answered a request of the same id from another host
		// (request ids are per VM): that resume is not this one.
		return ordering.VM{}, status.Errorf(codes.FailedPrecondition,
			"VM %q is owned by host %d at generation %d: request id %q answered that host's resume, not host %d's",
			vm, rec.Owner, rec.Generation, rid, v.d.id)
	}
	return rec, err
}

// Release ends vm's record.
func (v *vms) Release(ctx context.Context, vm, rid string) (ordering.VM, error) {
	return v.propose(ctx, ordering.EncodeVMRelease(ordering.VMRelease{VM: vm, RequestID: rid}))
}

// propose commits a VM command through the leader.
func (v *vms) propose(ctx context.Context, cmd []byte) (ordering.VM, error) {
	out, err := v.d.onLeader(ctx, func() ([]byte, error) { return v.proposeLocal(ctx, cmd) }, callVMPropose, cmd)
	if err != nil {
		return ordering.VM{}, grpcError(err)
	}
	slot, k := binary.Uvarint(out)
	if k <= 0 {
		return ordering.VM{}, status.Error(codes.Internal, "VM result without a slot")
	}
	res, err := ordering.DecodeVMResult(out[k:])
	if err != nil {
		return ordering.VM{}, status.Errorf(codes.Internal, "VM result: %v", err)
	}
	// Read our own write: VMClock and List on this node see the change.
	if err := v.d.replica.WaitApplied(ctx, slot); err != nil {
		return ordering.VM{}, grpcError(err)
	}
	if err := vmStatus(res); err != nil {
		return ordering.VM{}, err
	}
	return res.VM, nil
}

func (v *vms) proposeLocal(ctx context.Context, cmd []byte) ([]byte, error) {
	res, err := v.d.replica.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	r, ok := res.Value.(ordering.VMResult)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "not a VM command: %v", res.Value)
	}
	return append(binary.AppendUvarint(nil, res.Slot), ordering.EncodeVMResult(r)...), nil
}

// serveProposal is the leader's side of callVMPropose.
func (v *vms) serveProposal(ctx context.Context, _ consensus.NodeID, cmd []byte) ([]byte, error) {
	k, _, err := ordering.Decode(cmd)
	if err != nil || (k != ordering.KindVMFreeze && k != ordering.KindVMResume && k != ordering.KindVMRelease) {
		return nil, status.Errorf(codes.InvalidArgument, "not a VM command (kind %d): %v", k, err)
	}
	out, err := v.proposeLocal(ctx, cmd)
	return out, grpcError(err)
}

func vmStatus(r ordering.VMResult) error {
	var ve *ordering.VMError
	if err := r.Err(); errors.As(err, &ve) {
		switch ve.Code {
		case ordering.VMNotFound:
			return status.Error(codes.NotFound, ve.Msg)
		case ordering.VMFailedPrecondition:
			return status.Error(codes.FailedPrecondition, ve.Msg)
		default:
			return status.Error(codes.InvalidArgument, ve.Msg)
		}
	}
	return nil
}

// Clock reads vm's clock, if this node owns it.
func (v *vms) Clock(vm string) (VMStatus, error) {
	rec, ok := v.d.machine.VM(vm)
	if !ok {
		return VMStatus{}, status.Errorf(codes.NotFound, "unknown VM %q", vm)
	}
	st := VMStatus{Owner: rec.Owner, Record: rec}
	if rec.Owner != v.d.id {
		for _, p := range v.d.tr.Peers() {
			if p.ID == rec.Owner {
				st.OwnerAddr = p.Addr
			}
		}
		return st, nil
	}
	v.mu.Lock()
	busy := v.freezing[vm]
	v.mu.Unlock()
	if busy {
		return VMStatus{}, status.Errorf(codes.Unavailable, "VM %q is being frozen", vm)
	}
	r, err := vmclock.At(rec, v.d.host.Now())
	if err != nil {
		return VMStatus{}, status.Error(codes.Internal, err.Error())
	}
	st.Served, st.Reading = true, r
	return st, nil
}

// List returns every VM's record.
func (v *vms) List() []ordering.VM { return v.d.machine.VMs() }
