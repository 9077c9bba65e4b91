package transport

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
)

// Handler answers one peer call: from is the authenticated caller, req the
// payload it sent. The returned bytes go back as the answer; an error
// reaches the caller with its gRPC status, or codes.Unknown.
type Handler func(ctx context.Context, from consensus.NodeID, req []byte) ([]byte, error)

// callMethod carries every application call between members: the handler
// is named in the request metadata, and the payload is one frame each way.
// Services above consensus (clock sampling, forwarding to the leader) use
// it, so they share the peer port, its mTLS and its identity checks.
const (
	callMethod  = "/" + serviceName + "/Call"
	callNameKey = "clockd-call"
)

func callHandler(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
	req := new(frame)
	if err := dec(req); err != nil {
		return nil, err
	}
	call := func(ctx context.Context, req any) (any, error) {
		return srv.(*Transport).serveCall(ctx, req.(*frame))
	}
	if intercept == nil {
		return call(ctx, req)
	}
	return intercept(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: callMethod}, call)
}

func (t *Transport) serveCall(ctx context.Context, in *frame) (*frame, error) {
	p, err := t.authenticate(ctx, false)
	if err != nil {
		return nil, err
	}
	names := metadata.ValueFromIncomingContext(ctx, callNameKey)
	if len(names) != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "want one %s, got %d", callNameKey, len(names))
	}
	h := t.cfg.Handlers[names[0]]
	if h == nil {
		return nil, status.Errorf(codes.Unimplemented, "node %d has no handler %q", t.cfg.ID, clip(names[0]))
	}
	out, err := h(ctx, p.id, in.buf)
	if err != nil {
		return nil, err
	}
	return &frame{buf: out}, nil
}

// callConns caches one client connection per peer for Call, separate from
// the consensus stream so a large batch never delays a clock sample.
type callConns struct {
	mu    sync.Mutex
	conns map[consensus.NodeID]callConn
}

type callConn struct {
	addr string
	conn *grpc.ClientConn
}

// Call invokes handler name on peer to and returns its answer. Any member
// may call any other, whichever of the two dials the consensus stream.
func (t *Transport) Call(ctx context.Context, to consensus.NodeID, name string, req []byte) ([]byte, error) {
	p := t.peer(to)
	if p == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownPeer, to)
	}
	if t.isClosed() {
		return nil, ErrClosed
	}
	addr, _ := p.address()
	if addr == "" {
		return nil, fmt.Errorf("transport: call %s: address of node %d unknown", name, to)
	}
	conn, err := t.callConn(p, addr)
	if err != nil {
		return nil, err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, nodeIDKey, idString(t.cfg.ID), callNameKey, name)
	var out frame
	if err := conn.Invoke(ctx, callMethod, &frame{buf: req}, &out); err != nil {
		return nil, err
	}
	return out.buf, nil
}

func (t *Transport) callConn(p *peer, addr string) (*grpc.ClientConn, error) {
	t.calls.mu.Lock()
	defer t.calls.mu.Unlock()
	if c, ok := t.calls.conns[p.id]; ok {
		if c.addr == addr {
			return c.conn, nil
		}
		c.conn.Close()
		delete(t.calls.conns, p.id)
	}
	conn, err := t.newConn(p, addr)
	if err != nil {
		return nil, err
	}
	if t.calls.conns == nil {
		t.calls.conns = make(map[consensus.NodeID]callConn)
	}
	t.calls.conns[p.id] = callConn{addr: addr, conn: conn}
	return conn, nil
}

// closeCalls closes the cached connections of id, or of every peer when
// all is set.
func (t *Transport) closeCalls(id consensus.NodeID, all bool) {
	t.calls.mu.Lock()
	defer t.calls.mu.Unlock()
	for pid, c := range t.calls.conns {
		if all || pid == id {
			c.conn.Close()
			delete(t.calls.conns, pid)
		}
	}
}
