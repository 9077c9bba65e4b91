package transport

import (
	"context"
	"errors"
	"fmt"
	"net"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
)

// JoinRequest is what a node that wants to join tells a member.
type JoinRequest struct {
	ID   consensus.NodeID
	Addr string // host:port where the joiner listens for peer streams
	// Name is the joiner's TLS identity. With TLS, the certificate the
	// joiner calls with must carry it as a DNS SAN.
	Name string
}

// JoinResponse is a member's answer. A member that cannot admit the joiner
// itself, typically because it is not the leader, answers Accepted false
// with a Reason and, when it knows one, the leader to ask instead.
type JoinResponse struct {
	Accepted   bool
	LeaderID   consensus.NodeID // zero when unknown
	LeaderAddr string
	Members    []Peer // the cluster as the member knows it
	Reason     string // why not accepted; free text
}

// Join asks the member listening at addr to admit req, for a node that
// knows no more of the cluster than that address. It is a package
// function because the joiner has no Transport for the cluster yet.
//
// With tlsFiles, the call uses mutual TLS and verifies that the member's
// certificate is for serverName; the joiner's own certificate must carry
// req.Name. insecure runs in plaintext instead; exactly one of the two is
// required. maxFrame bounds the response, like Config.MaxFrameBytes (zero
// for the default), and should match the cluster's.
//
// A refusal is a response with Accepted false, not an error. An error
// from the member's OnJoin comes back in the returned error's text.
func Join(ctx context.Context, addr string, req JoinRequest, tlsFiles *TLSFiles, serverName string,
	insecure bool, maxFrame int) (JoinResponse, error) {
	creds, limit, err := joinOptions(addr, &req, tlsFiles, serverName, insecure, maxFrame)
	if err != nil {
		return JoinResponse{}, err
	}
	resp, err := callJoin(ctx, addr, &req, creds, limit)
	if err != nil {
		return JoinResponse{}, fmt.Errorf("transport: join via %s: %w", addr, err)
	}
	return resp, nil
}

// joinOptions checks Join's arguments and returns its credentials and
// gRPC message limit.
func joinOptions(addr string, req *JoinRequest, tlsFiles *TLSFiles, serverName string, plain bool,
	maxFrame int) (credentials.TransportCredentials, int, error) {
	if err := checkHostPort("join", addr); err != nil {
		return nil, 0, err
	}
	if err := checkJoinRequest(req, tlsFiles != nil); err != nil {
		return nil, 0, invalid("join request: %v", err)
	}
	c := Config{MaxFrameBytes: maxFrame}
	if err := c.fillLimits(); err != nil {
		return nil, 0, err
	}
	limit := c.MaxFrameBytes + grpcSlackBytes
	switch {
	case tlsFiles == nil && !plain:
		return nil, 0, invalid("TLS files are required unless insecure is set")
	case tlsFiles != nil && plain:
		return nil, 0, invalid("TLS and insecure are exclusive")
	case plain:
		return insecure.NewCredentials(), limit, nil
	case serverName == "":
		return nil, 0, invalid("server name is required with TLS")
	}
	m, err := loadTLS(tlsFiles)
	if err != nil {
		return nil, 0, err
	}
	return credentials.NewTLS(m.clientConfig(serverName)), limit, nil
}

func callJoin(ctx context.Context, addr string, req *JoinRequest, creds credentials.TransportCredentials,
	limit int) (JoinResponse, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr, dialOptions(creds, limit)...)
	if err != nil {
		return JoinResponse{}, fmt.Errorf("new client: %w", err)
	}
	defer conn.Close()
	var out frame
	if err := conn.Invoke(ctx, joinMethod, &frame{buf: appendJoinRequest(nil, req)}, &out); err != nil {
		return JoinResponse{}, err
	}
	return decodeJoinResponse(out.buf)
}

// checkJoinRequest checks what the transport relies on; whether the node
// may join is OnJoin's call.
func checkJoinRequest(req *JoinRequest, withTLS bool) error {
	switch {
	case req.ID == 0:
		return errors.New("id 0")
	case withTLS && req.Name == "":
		return fmt.Errorf("node %d: Name is required with TLS", req.ID)
	}
	if _, _, err := net.SplitHostPort(req.Addr); err != nil {
		return fmt.Errorf("node %d: address %q is not host:port", req.ID, clip(req.Addr))
	}
	return nil
}

// serveJoin answers one Join call. The caller is not a member, so only
// its certificate vouches for it: it must name req.Name.
func (t *Transport) serveJoin(ctx context.Context, in *frame) (*frame, error) {
	if t.cfg.OnJoin == nil {
		return nil, status.Errorf(codes.Unimplemented, "node %d takes no joins", t.cfg.ID)
	}
	req, err := decodeJoinRequest(in.buf)
	if err != nil {
		return nil, t.refuseJoin(ctx, &req, status.Error(codes.InvalidArgument, err.Error()))
	}
	if t.tls != nil {
		if err := checkCertName(ctx, req.Name); err != nil {
			t.stats.refused.Add(1)
			return nil, t.refuseJoin(ctx, &req, status.Errorf(codes.PermissionDenied, "joining node %d: %v", req.ID, err))
		}
	}
	if err := checkJoinRequest(&req, t.tls != nil); err != nil {
		return nil, t.refuseJoin(ctx, &req, status.Error(codes.InvalidArgument, err.Error()))
	}
	if req.ID == t.cfg.ID {
		return nil, t.refuseJoin(ctx, &req, status.Errorf(codes.InvalidArgument, "node %d is this node", req.ID))
	}
	resp, err := t.cfg.OnJoin(req)
	if err != nil {
		return nil, t.refuseJoin(ctx, &req, handlerStatus("join handler", err))
	}
	out := appendJoinResponse(nil, &resp)
	if len(out) > t.cfg.MaxFrameBytes {
		return nil, t.refuseJoin(ctx, &req, status.Errorf(codes.ResourceExhausted,
			"join response of %d bytes exceeds MaxFrameBytes %d", len(out), t.cfg.MaxFrameBytes))
	}
	t.log.Info("join answered", joinFields(ctx, &req, zap.Bool("accepted", resp.Accepted),
		zap.String("reason", resp.Reason))...)
	return &frame{buf: out}, nil
}

// refuseJoin logs a failed Join call and returns err, its status.
func (t *Transport) refuseJoin(ctx context.Context, req *JoinRequest, err error) error {
	t.log.Warn("join refused", joinFields(ctx, req, zap.Error(err))...)
	return err
}

// joinFields describe a Join call. The request is unauthenticated input,
// so its strings are cut short.
func joinFields(ctx context.Context, req *JoinRequest, more ...zap.Field) []zap.Field {
	return append([]zap.Field{
		zap.String("remote-addr", remoteAddr(ctx)), zap.Uint64("join-id", uint64(req.ID)),
		zap.String("join-addr", clip(req.Addr)), zap.String("join-name", clip(req.Name)),
	}, more...)
}
