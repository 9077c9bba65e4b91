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
	serviceName  = "clockd.peer.v1.Peer"
	streamMethod = "/" + serviceName + "/Stream"
	// nodeIDKey carries the dialer's node id in the request metadata and
	// the acceptor's in the response header, which also signals acceptance.
	nodeIDKey = "clockd-node-id"
)

// peerService is the handler type of serviceDesc; *Transport implements it.
type peerService interface {
	serveStream(ss grpc.ServerStream) error
}

// serviceDesc replaces protobuf codegen: one bidirectional stream of frames.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*peerService)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName: "Stream",
		Handler: func(srv any, ss grpc.ServerStream) error {
			return srv.(peerService).serveStream(ss)
		},
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "clockd/peer/v1",
}

func idString(id consensus.NodeID) string { return strconv.FormatUint(uint64(id), 10) }

// serveStream runs one stream dialed by a lower-id peer until it ends.
func (t *Transport) serveStream(ss grpc.ServerStream) error {
	p, err := t.authenticate(ss.Context())
	if err != nil {
		t.stats.refused.Add(1)
		t.log.Warn("peer stream refused", zap.String("remote-addr", remoteAddr(ss.Context())),
			zap.String("claimed-id", claimedID(ss.Context())), zap.Error(err))
		return err
	}
	if err := ss.SendHeader(metadata.Pairs(nodeIDKey, idString(t.cfg.ID))); err != nil {
		return err
	}
	s := t.attach(p, ss)
	err = t.recvLoop(p, ss)
	t.detach(s, err)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// authenticate finds the peer a new stream comes from. Its errors are gRPC
// statuses for the dialer.
func (t *Transport) authenticate(ctx context.Context) (*peer, error) {
	vals := metadata.ValueFromIncomingContext(ctx, nodeIDKey)
	if len(vals) != 1 {
		return nil, status.Errorf(codes.Unauthenticated, "want one %s, got %d", nodeIDKey, len(vals))
	}
	n, err := strconv.ParseUint(vals[0], 10, 64)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "malformed %s %q", nodeIDKey, vals[0])
	}
	id := consensus.NodeID(n)
	p := t.peers[id]
	switch {
	case p == nil:
		return nil, status.Errorf(codes.PermissionDenied, "node %d is not a configured peer", id)
	case id > t.cfg.ID:
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

// claimedID is the id a refused dialer claimed, cut short: it is
// unauthenticated input on its way to the log.
func claimedID(ctx context.Context) string {
	const maxLen = 64
	s := strings.Join(metadata.ValueFromIncomingContext(ctx, nodeIDKey), ",")
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return s
}
