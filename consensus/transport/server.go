package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
)

const (
	serviceName    = "clockd.peer.v1.Peer"
	streamMethod   = "/" + serviceName + "/Stream"
	snapshotMethod = "/" + serviceName + "/Snapshot"
	joinMethod     = "/" + serviceName + "/Join"
	// nodeIDKey carries the dialer's node id in the request metadata and
	// the acceptor's in the response header, which also signals acceptance.
	nodeIDKey = "clockd-node-id"
)

// peerService is the handler type of serviceDesc; *Transport implements it.
type peerService interface {
	serveStream(ss grpc.ServerStream) error
	serveSnapshot(ss grpc.ServerStream) error
	serveJoin(ctx context.Context, req *frame) (*frame, error)
}

// serviceDesc replaces protobuf codegen. Every message is a frame:
// Stream carries batches of peer messages both ways, Snapshot carries
// snapshot chunks from the caller and one empty frame back, and Join one
// encoded JoinRequest and one JoinResponse, and Call one request payload
// and one answer for a Config.Handlers entry.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*peerService)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Join", Handler: joinHandler},
		{MethodName: "Call", Handler: callHandler},
	},
	Streams: []grpc.StreamDesc{{
		StreamName: "Stream",
		Handler: func(srv any, ss grpc.ServerStream) error {
			return srv.(peerService).serveStream(ss)
		},
		ServerStreams: true,
		ClientStreams: true,
	}, {
		StreamName: "Snapshot",
		Handler: func(srv any, ss grpc.ServerStream) error {
			return srv.(peerService).serveSnapshot(ss)
		},
		ClientStreams: true,
	}},
	Metadata: "clockd/peer/v1",
}

// The descriptors of the streaming methods, for clients.
var (
	streamDesc   = &serviceDesc.Streams[0]
	snapshotDesc = &serviceDesc.Streams[1]
)

func joinHandler(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
	req := new(frame)
	if err := dec(req); err != nil {
		return nil, err
	}
	call := func(ctx context.Context, req any) (any, error) {
		return srv.(peerService).serveJoin(ctx, req.(*frame))
	}
	if intercept == nil {
		return call(ctx, req)
	}
	return intercept(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: joinMethod}, call)
}

func idString(id consensus.NodeID) string { return strconv.FormatUint(uint64(id), 10) }

// serveStream runs one stream dialed by a lower-id peer until it ends or
// the peer is removed.
func (t *Transport) serveStream(ss grpc.ServerStream) error {
	p, err := t.admit(ss.Context(), "peer stream refused", true)
	if err != nil {
		return err
	}
	defer p.wg.Done()
	// Active before the header: once the dialer sees the stream up, this
	// side sends on it too.
	s := t.attach(p, ss)
	if err := ss.SendHeader(metadata.Pairs(nodeIDKey, idString(t.cfg.ID))); err != nil {
		t.detach(s, err)
		return err
	}
	s.open()
	// The receiver runs on its own goroutine so that this handler can end
	// the stream when the peer is removed: gRPC has no other way to
	// interrupt a server's RecvMsg. It returns once the handler has, as
	// gRPC then cancels the stream. p.wg.Add is safe: this handler holds
	// one count of p.wg. t.wg.Add is safe: Close waits for handlers first.
	ended := make(chan error, 1)
	t.wg.Add(1)
	p.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer p.wg.Done()
		ended <- t.recvLoop(p, ss)
	}()
	select {
	case err = <-ended:
	case <-p.ctx.Done():
		err = status.Errorf(codes.Unavailable, "node %d is no longer a peer of %d", p.id, t.cfg.ID)
	}
	t.detach(s, err)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// admit authenticates a new stream, counting and logging a refusal under
// msg. On success the caller holds one count of p.wg. dialRule requires
// the caller to have the lower id.
func (t *Transport) admit(ctx context.Context, msg string, dialRule bool) (*peer, error) {
	p, err := t.authenticate(ctx, dialRule)
	if err == nil && !p.enter() {
		err = status.Errorf(codes.PermissionDenied, "node %d is not a configured peer", p.id)
	}
	if err != nil {
		t.refuse(ctx, msg, err)
		return nil, err
	}
	return p, nil
}

func (t *Transport) refuse(ctx context.Context, msg string, err error) {
	t.stats.refused.Add(1)
	t.log.Warn(msg, zap.String("remote-addr", remoteAddr(ctx)),
		zap.String("claimed-id", claimedID(ctx)), zap.Error(err))
}

// authenticate finds the peer a new stream comes from. Its errors are gRPC
// statuses for the dialer. dialRule refuses a peer with a higher id, which
// must accept this node's stream rather than dial it.
func (t *Transport) authenticate(ctx context.Context, dialRule bool) (*peer, error) {
	vals := metadata.ValueFromIncomingContext(ctx, nodeIDKey)
	if len(vals) != 1 {
		return nil, status.Errorf(codes.Unauthenticated, "want one %s, got %d", nodeIDKey, len(vals))
	}
	n, err := strconv.ParseUint(vals[0], 10, 64)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "malformed %s %q", nodeIDKey, vals[0])
	}
	id := consensus.NodeID(n)
	p := t.peer(id)
	switch {
	case p == nil:
		return nil, status.Errorf(codes.PermissionDenied, "node %d is not a configured peer", id)
	case dialRule && id > t.cfg.ID:
		return nil, status.Errorf(codes.PermissionDenied, "node %d must accept from %d, not dial it", id, t.cfg.ID)
	}
	if t.tls != nil {
		if err := checkCertName(ctx, p.name); err != nil {
			return nil, status.Errorf(codes.PermissionDenied, "node %d: %v", id, err)
		}
	}
	return p, nil
}

// checkCertName requires a verified client certificate with name as a DNS
// SAN. The match is exact (no wildcards), so one certificate can speak for
// one node only.
func checkCertName(ctx context.Context, name string) error {
	pr, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return errors.New("no peer information")
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return errors.New("connection is not TLS")
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.PeerCertificates) == 0 {
		return errors.New("no verified client certificate")
	}
	leaf := info.State.PeerCertificates[0]
	for _, dns := range leaf.DNSNames {
		if strings.EqualFold(dns, name) {
			return nil
		}
	}
	return fmt.Errorf("certificate names %q, want %q", leaf.DNSNames, name)
}

func remoteAddr(ctx context.Context) string {
	if pr, ok := grpcpeer.FromContext(ctx); ok && pr.Addr != nil {
		return pr.Addr.String()
	}
	return ""
}

// claimedID is the id a refused dialer claimed.
func claimedID(ctx context.Context) string {
	return clip(strings.Join(metadata.ValueFromIncomingContext(ctx, nodeIDKey), ","))
}

// clip cuts unauthenticated input short on its way to the log.
func clip(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return s
}
