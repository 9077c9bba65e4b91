package daemon

import (
	"context"
	"crypto/x509"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/auth"
	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
)

// migrationServer serves MigrationService. The interceptors have checked
// the caller's role for the method; here a host's certificate must also
// name the host that owns the VM (DNS node-<id>), and a VM's certificate
// may read its own clock only.
type migrationServer struct {
	clockdv1.UnimplementedMigrationServiceServer
	d *Daemon
}

// maxVMIDLen and maxRequestIDLen bound what a client may send.
const (
	maxVMIDLen      = 128
	maxRequestIDLen = 128
)

func checkVMRequest(vm, rid string, ridRequired bool) error {
	switch {
	case vm == "":
		return status.Error(codes.InvalidArgument, "vm is required")
	case len(vm) > maxVMIDLen:
		return status.Errorf(codes.InvalidArgument, "vm is %d bytes, at most %d", len(vm), maxVMIDLen)
	case ridRequired && rid == "":
		return status.Error(codes.InvalidArgument, "request_id is required, so a retry gets the same answer")
	case len(rid) > maxRequestIDLen:
		return status.Errorf(codes.InvalidArgument, "request_id is %d bytes, at most %d", len(rid), maxRequestIDLen)
	}
	return nil
}

// caller is what the client certificate says; dev mode (no TLS) may do
// anything.
type caller struct {
	dev   bool
	roles []auth.Role
	nodes []consensus.NodeID // from DNS names node-<id>
}

func callerOf(ctx context.Context) caller {
	if r, ok := auth.RoleFromContext(ctx); ok && r.Kind == auth.KindDev {
		return caller{dev: true}
	}
	var c caller
	p, ok := peer.FromContext(ctx)
	if !ok {
		return c
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return c
	}
	leaf := info.State.VerifiedChains[0][0]
	c.roles = rolesOf(leaf)
	for _, name := range leaf.DNSNames {
		if id, ok := strings.CutPrefix(name, "node-"); ok {
			if n, err := strconv.ParseUint(id, 10, 64); err == nil && n > 0 {
				c.nodes = append(c.nodes, consensus.NodeID(n))
			}
		}
	}
	return c
}

func rolesOf(cert *x509.Certificate) []auth.Role {
	var out []auth.Role
	for _, u := range cert.URIs {
		if r, err := auth.ParseRole(u); err == nil {
			out = append(out, r)
		}
	}
	return out
}

func (c caller) has(k auth.Kind) bool {
	for _, r := range c.roles {
		if r.Kind == k {
			return true
		}
	}
	return false
}

// mayActFor: admin and dev act for any host; a host only for itself.
func (c caller) mayActFor(host consensus.NodeID, vm string) error {
	if c.dev || c.has(auth.KindAdmin) {
		return nil
	}
	if c.has(auth.KindHost) {
		for _, n := range c.nodes {
			if n == host {
				return nil
			}
		}
		return status.Errorf(codes.PermissionDenied, "VM %q belongs to host %d; this certificate speaks for hosts %v", vm, host, c.nodes)
	}
	return status.Errorf(codes.PermissionDenied, "VM %q: this certificate's roles %v may not change VMs", vm, c.roles)
}

func (s *migrationServer) Freeze(ctx context.Context, req *clockdv1.FreezeRequest) (*clockdv1.VMRecord, error) {
	if err := checkVMRequest(req.Vm, req.RequestId, true); err != nil {
		return nil, err
	}
	if req.Generation == 0 {
		return nil, status.Error(codes.InvalidArgument, "generation is required: the fencing token of the current owner")
	}
	owner := consensus.NodeID(req.Owner)
	if owner == 0 {
		owner = s.d.id
	}
	if err := callerOf(ctx).mayActFor(owner, req.Vm); err != nil {
		return nil, err
	}
	rec, err := s.d.vms.Freeze(ctx, req.Vm, req.VmTimeUnixNano, owner, req.Generation, req.RequestId)
	if err != nil {
		return nil, err
	}
	return vmRecord(rec), nil
}

func (s *migrationServer) Resume(ctx context.Context, req *clockdv1.ResumeRequest) (*clockdv1.VMRecord, error) {
	if err := checkVMRequest(req.Vm, req.RequestId, true); err != nil {
		return nil, err
	}
	if req.Generation == 0 {
		return nil, status.Error(codes.InvalidArgument, "generation is required: the frozen generation + 1, or 1 to register")
	}
	if err := callerOf(ctx).mayActFor(s.d.id, req.Vm); err != nil {
		return nil, err
	}
	pol := ordering.VMPolicy{MaxSlewPPM: s.d.cfg.VMMaxSlewPPM, MaxLagNs: int64(s.d.cfg.VMMaxLag)}
	if req.MaxSlewPpm != nil {
		pol.MaxSlewPPM = *req.MaxSlewPpm
	}
	if req.MaxLagNanos != nil {
		pol.MaxLagNs = *req.MaxLagNanos
	}
	rec, err := s.d.vms.Resume(ctx, req.Vm, req.Generation, req.RequestId, pol)
	if err != nil {
		return nil, err
	}
	return vmRecord(rec), nil
}

func (s *migrationServer) VMClock(ctx context.Context, req *clockdv1.VMClockRequest) (*clockdv1.VMClockResponse, error) {
	if err := checkVMRequest(req.Vm, "", false); err != nil {
		return nil, err
	}
	c := callerOf(ctx)
	if !c.dev && !c.has(auth.KindAdmin) && !c.has(auth.KindHost) {
		own := false
		for _, r := range c.roles {
			own = own || r.Kind == auth.KindVM && r.VM == req.Vm
		}
		if !own {
			return nil, status.Errorf(codes.PermissionDenied, "this certificate's roles %v may not read VM %q", c.roles, req.Vm)
		}
	}
	st, err := s.d.vms.Clock(req.Vm)
	if err != nil {
		return nil, err
	}
	resp := &clockdv1.VMClockResponse{Served: st.Served, Owner: uint64(st.Owner), OwnerPeerAddr: st.OwnerAddr,
		Record: vmRecord(st.Record)}
	if st.Served {
		resp.Reading = clockdv1.NewReading(st.Reading.Reading)
		resp.LagNanos, resp.Converged = st.Reading.LagNs, st.Reading.Converged
	}
	return resp, nil
}

func (s *migrationServer) Release(ctx context.Context, req *clockdv1.ReleaseRequest) (*clockdv1.ReleaseResponse, error) {
	if err := checkVMRequest(req.Vm, req.RequestId, false); err != nil {
		return nil, err
	}
	rec, ok := s.d.machine.VM(req.Vm)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown VM %q", req.Vm)
	}
	if err := callerOf(ctx).mayActFor(rec.Owner, req.Vm); err != nil {
		return nil, err
	}
	if _, err := s.d.vms.Release(ctx, req.Vm, req.RequestId); err != nil {
		return nil, err
	}
	return &clockdv1.ReleaseResponse{}, nil
}

func (s *migrationServer) List(ctx context.Context, _ *clockdv1.ListRequest) (*clockdv1.ListResponse, error) {
	resp := &clockdv1.ListResponse{}
	for _, v := range s.d.vms.List() {
		resp.Vms = append(resp.Vms, vmRecord(v))
	}
	return resp, nil
}

func vmRecord(v ordering.VM) *clockdv1.VMRecord {
	st := clockdv1.VMState_VM_STATE_RUNNING
	if v.State == ordering.VMFrozen {
		st = clockdv1.VMState_VM_STATE_FROZEN
	}
	return &clockdv1.VMRecord{Vm: v.ID, Owner: uint64(v.Owner), Generation: v.Generation, State: st,
		FloorUnixNano: v.FloorNs, ResumeRefUnixNano: v.ResumeRefNs, MaxSlewPpm: v.Policy.MaxSlewPPM,
		MaxLagNanos: v.Policy.MaxLagNs}
}
