package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/clockd/clockd/api/auth"
	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/api/server"
	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ntpserver"
	"github.com/clockd/clockd/vclock"
	"github.com/clockd/clockd/vclock/shm"
)

// openShm creates the shared page, if configured, and returns what the
// host publishes its segments with.
func (d *Daemon) openShm() (func(vclock.Segment), error) {
	if d.cfg.ShmPath == "" {
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Dir(d.cfg.ShmPath), 0o755); err != nil {
		return nil, fmt.Errorf("shm_path: %w", err)
	}
	w, err := shm.Create(d.cfg.ShmPath)
	if err != nil {
		return nil, fmt.Errorf("shm_path: %w", err)
	}
	// Readers report UNSYNCHRONIZED if the daemon stops refreshing the
	// page for a few seconds (it touches it every 250ms).
	w.SetMaxAge(3 * time.Second)
	d.closers = append(d.closers, w.Close)
	d.services = append(d.services, &shmService{w: w})
	return w.Publish, nil
}

type shmService struct{ w *shm.Writer }

func (s *shmService) Name() string { return "shared page" }

func (s *shmService) Serve(ctx context.Context) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.w.Touch()
		}
	}
}

// openServices binds the API, NTP and metrics listeners, so New fails
// early on a port in use.
func (d *Daemon) openServices() error {
	api, err := d.openAPI()
	if err != nil {
		return err
	}
	d.services = append(d.services, api)
	if d.cfg.NTPListen != "" {
		ntp, err := ntpserver.New(ntpserver.Config{Listen: d.cfg.NTPListen, Source: d.host.Now, Logger: d.log,
			RateLimit: rate.Limit(d.cfg.NTPRateLimit), Burst: int(d.cfg.NTPBurst)})
		if err != nil {
			return fmt.Errorf("ntp_listen: %w", err)
		}
		d.closers = append(d.closers, ntp.Close)
		d.services = append(d.services, &ntpService{s: ntp})
	}
	if d.cfg.IngestSocket != "" {
		src, err := d.openSocketSource()
		if err != nil {
			return err
		}
		d.services = append(d.services, src)
	}
	files, err := d.fileSources()
	if err != nil {
		return err
	}
	for _, f := range files {
		d.services = append(d.services, f)
	}
	if d.cfg.MetricsListen != "" {
		lis, err := net.Listen("tcp", d.cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		d.closers = append(d.closers, func() error { lis.Close(); return nil })
		d.metrics.gauges(d)
		d.services = append(d.services, &metricsService{d: d, lis: lis})
	}
	return nil
}

type ntpService struct{ s *ntpserver.Server }

func (s *ntpService) Name() string                    { return "NTP server" }
func (s *ntpService) Serve(ctx context.Context) error { return s.s.Serve(ctx) }

// NTPAddr is the NTP server's bound address, or "" without one.
func (d *Daemon) NTPAddr() string {
	for _, s := range d.services {
		if n, ok := s.(*ntpService); ok {
			return n.s.Addr()
		}
	}
	return ""
}

// apiService serves TimeService and AdminService over gRPC.
type apiService struct {
	srv *grpc.Server
	lis net.Listener
}

func (d *Daemon) openAPI() (*apiService, error) {
	// Append messages carry batches of trace events: up to 4 MiB each.
	limits := server.DefaultLimits()
	limits.MaxRecvMsgBytes = 4 << 20
	limits.RatePerSec, limits.Burst = float64(d.cfg.APIRateLimit), int(d.cfg.APIBurst)
	opts := append(limits.ServerOptions(),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ForceServerCodecV2(newAppendCodec()))
	if !d.cfg.Insecure {
		tc, err := auth.ServerTLS(d.cfg.TLSCA, d.cfg.TLSCert, d.cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	opts = append(opts, auth.Interceptors(d.cfg.Insecure)...)
	srv := grpc.NewServer(opts...)
	server.Register(srv, timeBackend{d}, adminBackend{d})
	clockdv1.RegisterMigrationServiceServer(srv, &migrationServer{d: d})
	clockdv1.RegisterRunbookServiceServer(srv, &runbookServer{d: d})
	clockdv1.RegisterOrderingServiceServer(srv, &orderingServer{d: d})
	lis, err := net.Listen("tcp", d.cfg.APIListen)
	if err != nil {
		return nil, fmt.Errorf("api_listen: %w", err)
	}
	return &apiService{srv: srv, lis: lis}, nil
}

func (a *apiService) Name() string { return "API server" }

func (a *apiService) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		a.srv.Stop()
	}()
	if err := a.srv.Serve(a.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// APIAddr is the API server's bound address.
func (d *Daemon) APIAddr() string {
	for _, s := range d.services {
		if a, ok := s.(*apiService); ok {
			return a.lis.Addr().String()
		}
	}
	return ""
}

// timeBackend serves TimeService from the host and the oracle.
type timeBackend struct{ d *Daemon }

func (b timeBackend) Now() vclock.Reading { return b.d.host.Now() }

func (b timeBackend) Timestamp(ctx context.Context, n uint32) (uint64, error) {
	first, err := b.d.oracle.Timestamp(ctx, n)
	return first, grpcError(err)
}

func (b timeBackend) StatusChanges(ctx context.Context) <-chan vclock.Reading {
	return b.d.host.StatusChanges(ctx)
}

// adminBackend serves AdminService; changes go to the leader.
type adminBackend struct{ d *Daemon }

func (b adminBackend) Status(ctx context.Context) (*clockdv1.StatusResponse, error) {
	d := b.d
	st := d.replica.Status()
	in := d.host.Info()
	resp := &clockdv1.StatusResponse{
		NodeId: uint64(d.id), LeaderId: uint64(st.Leader),
		Ballot: &clockdv1.Ballot{Round: st.Promised.Round, Node: uint64(st.Promised.Node)},
		Role:   roleOf(st.Role), Reference: clockdv1.NewReading(in.Reading),
		LocalOffsetNanos: in.WallOffsetNs, DriftPpb: in.DriftPPB,
		CommitSlot: st.Commit, AppliedSlot: st.Applied,
		LastTickAgeNanos: -1, Version: d.runbooks.version,
	}
	if in.Anchored {
		resp.LastTickAgeNanos = int64(in.AnchorAge)
	}
	if in.Ticked {
		resp.LastTickSeq = in.Tick.Seq
		for _, h := range in.Tick.Falsetickers() {
			resp.Falsetickers = append(resp.Falsetickers, uint64(h))
		}
	}
	cur, _, err := d.replica.Members(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	resp.Members = d.members(cur)
	resp.EventsLastGsn = d.events.store.Last()
	resp.EventsSpooled = uint64(d.events.spool.Len())
	resp.EventsDropped, resp.EventsRefused = d.events.dropped.Load(), d.events.refused.Load()
	return resp, nil
}

func roleOf(r consensus.Role) clockdv1.Role {
	switch r {
	case consensus.Leader:
		return clockdv1.Role_ROLE_LEADER
	case consensus.Candidate:
		return clockdv1.Role_ROLE_CANDIDATE
	}
	return clockdv1.Role_ROLE_FOLLOWER
}

// members lists a configuration with each member's peer address: the
// log's, or the transport's for bootstrap members (the log names those by
// id only).
func (d *Daemon) members(m consensus.Membership) []*clockdv1.Member {
	addrs := map[consensus.NodeID]string{d.id: d.advertised()}
	for _, p := range d.tr.Peers() {
		addrs[p.ID] = p.Addr
	}
	out := make([]*clockdv1.Member, 0, len(m.Members))
	for _, x := range m.Members {
		addr := x.Addr
		if addr == "" {
			addr = addrs[x.ID]
		}
		out = append(out, &clockdv1.Member{Id: uint64(x.ID), Addr: addr, Learner: x.Learner})
	}
	return out
}

func (b adminBackend) Members(ctx context.Context) (*clockdv1.MembersResponse, error) {
	cur, next, err := b.d.replica.Members(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &clockdv1.MembersResponse{Members: b.d.members(cur)}
	if next != nil {
		resp.Pending = b.d.members(*next)
	}
	return resp, nil
}

func (b adminBackend) AddMember(ctx context.Context, id uint64, addr string, learner bool) error {
	// A voter joins as a learner and is promoted once it has caught up,
	// so adding it never stalls the quorum; learner asks for one that stays.
	m := consensus.Member{ID: consensus.NodeID(id), Addr: addr, Learner: true, Promote: !learner}
	_, err := b.d.onLeader(ctx, func() ([]byte, error) { return nil, b.d.replica.AddMember(ctx, m) },
		callAdd, encodeMember(m))
	return grpcError(err)
}

func (b adminBackend) RemoveMember(ctx context.Context, id uint64) error {
	_, err := b.d.onLeader(ctx, func() ([]byte, error) {
		return nil, b.d.replica.RemoveMember(ctx, consensus.NodeID(id))
	}, callRemove, uvarint(id))
	return grpcError(err)
}

func (b adminBackend) TransferLeader(ctx context.Context, id uint64) error {
	_, err := b.d.onLeader(ctx, func() ([]byte, error) {
		return nil, b.d.replica.TransferLeader(ctx, consensus.NodeID(id))
	}, callTransfer, uvarint(id))
	return grpcError(err)
}
