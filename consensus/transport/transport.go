package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/clockd/clockd/consensus"
)

// Keep-alive pings find dead connections so a half-open stream does not
// hold a peer "up" while messages vanish.
const (
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 5 * time.Second
	// grpcSlackBytes lets a frame slightly over MaxFrameBytes through gRPC
	// so the transport can reject it with a precise reason instead of the
	// stream failing.
	grpcSlackBytes = 1 << 10
)

// Transport carries consensus messages between this node and its peers.
// Its methods are safe for concurrent use.
type Transport struct {
	cfg     Config
	handler func(consensus.Message)
	log     *zap.Logger
	tls     *tlsMaterial // nil when Insecure
	stats   counters
	calls   callConns

	// peers maps every member to its state. The map is never modified:
	// AddPeer and RemovePeer swap in a copy, under mu, so Send reads it
	// without a lock.
	peers atomic.Pointer[map[consensus.NodeID]*peer]

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	// wg counts the serve loop, the dialers and the stream receivers.
	// Invariant: wg.Add happens under mu in stateStarted, or in a gRPC
	// handler, which Close's server Stop waits for before wg.Wait.
	wg sync.WaitGroup

	mu     sync.Mutex
	state  runState
	server *grpc.Server
	addr   string
}

type runState int

const (
	stateNew runState = iota
	stateStarted
	stateClosed
)

// Stats counts messages since New. Sent, Received, Dropped and Rejected
// count peer messages; Rejected also counts whole frames refused as a unit.
type Stats struct {
	Sent     uint64 // messages handed to gRPC
	Frames   uint64 // frames handed to gRPC
	Received uint64 // inbound messages given to the handler
	Dropped  uint64 // outbound messages given up: no stream, full queue, too large, send failed
	Rejected uint64 // inbound frames or messages that were malformed or misaddressed
	Refused  uint64 // inbound streams, snapshots and joins refused for identity
}

type counters struct {
	sent, frames, received, dropped, rejected, refused atomic.Uint64
}

// New checks cfg, loads the TLS files and returns a Transport that is not
// yet listening. handler receives every valid inbound message; it is called
// from one goroutine per peer stream, so it must be safe for concurrent use
// and must not block for long: while it runs, that peer's stream stalls.
func New(cfg Config, handler func(consensus.Message)) (*Transport, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if handler == nil {
		return nil, fmt.Errorf("%w: handler is nil", ErrInvalidConfig)
	}
	t := &Transport{cfg: c, handler: handler, log: c.Logger}
	if c.TLS != nil {
		if t.tls, err = loadTLS(c.TLS); err != nil {
			return nil, err
		}
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	peers := make(map[consensus.NodeID]*peer, len(c.Peers))
	for _, p := range c.Peers {
		peers[p.ID] = newPeer(t.ctx, p, c.QueueLen)
	}
	t.peers.Store(&peers)
	t.cfg.Peers = nil // the map is the truth from here on
	return t, nil
}

// Start listens on Config.Listen, serves streams from lower-id peers and
// dials every higher-id peer.
func (t *Transport) Start() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch t.state {
	case stateStarted:
		return ErrStarted
	case stateClosed:
		return ErrClosed
	}
	lis, err := net.Listen("tcp", t.cfg.Listen)
	if err != nil {
		return fmt.Errorf("transport: listen %s: %w", t.cfg.Listen, err)
	}
	t.server = grpc.NewServer(t.serverOptions()...)
	t.server.RegisterService(&serviceDesc, t)
	t.addr = lis.Addr().String()
	t.state = stateStarted
	t.wg.Add(1)
	go t.serve(t.server, lis)
	for _, p := range *t.peers.Load() {
		t.startDialer(p)
	}
	t.log.Info("transport started", zap.Uint64("node-id", uint64(t.cfg.ID)), zap.String("listen-addr", t.addr),
		zap.Bool("insecure", t.cfg.Insecure))
	return nil
}

func (t *Transport) serve(srv *grpc.Server, lis net.Listener) {
	defer t.wg.Done()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		t.log.Error("peer server failed", zap.Error(err))
	}
}

func (t *Transport) serverOptions() []grpc.ServerOption {
	limit := t.grpcMsgLimit()
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(frameCodec{}),
		grpc.MaxRecvMsgSize(limit),
		grpc.MaxSendMsgSize(limit),
		grpc.WaitForHandlers(true),
		grpc.ReadBufferSize(peerBufferBytes),
		grpc.WriteBufferSize(peerBufferBytes),
		grpc.InitialWindowSize(peerStreamWindow),
		grpc.InitialConnWindowSize(peerConnWindow),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: keepaliveTime / 2, PermitWithoutStream: true,
		}),
	}
	if t.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(t.tls.serverConfig())))
	}
	return opts
}

// peerBufferBytes sizes the read and write buffers of each peer
// connection, 32 KiB by gRPC's default. A leader streams every command to
// each follower: in larger pieces, the kernel takes fewer calls to
// move the same bytes, on both ends of the connection.
const peerBufferBytes = 256 << 10

// peerStreamWindow and peerConnWindow are the HTTP/2 flow-control windows
// of a peer stream and connection, fixed. A stream's fits two frames of
// the largest default size. Fixed windows turn off gRPC's bandwidth
// estimator, which otherwise answers the data a peer receives with a
// PING of its own and its acknowledgement: two more writes, and wakeups
// on both ends, for each message a commit waits on.
const (
	peerStreamWindow = 2 * DefaultMaxFrameBytes
	peerConnWindow   = 2 * peerStreamWindow
)

func (t *Transport) grpcMsgLimit() int { return t.cfg.MaxFrameBytes + grpcSlackBytes }

// Addr is the address Start bound, or "" before Start.
func (t *Transport) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addr
}

// SetPeerAddr changes where peer id is dialed. It is safe at any time; a
// stream already up stays up, and the next dial uses addr.
func (t *Transport) SetPeerAddr(id consensus.NodeID, addr string) error {
	p := t.peer(id)
	if p == nil {
		return fmt.Errorf("%w: %d", ErrUnknownPeer, id)
	}
	if err := checkHostPort(fmt.Sprintf("peer %d address", id), addr); err != nil {
		return err
	}
	p.setAddress(addr)
	return nil
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state == stateClosed
}

// Connected reports whether a stream to peer id is up.
func (t *Transport) Connected(id consensus.NodeID) bool {
	p := t.peer(id)
	return p != nil && p.active.Load() != nil
}

// Close stops serving and dialing and waits for every goroutine it started.
// The handler is not called after Close returns. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.state == stateClosed {
		t.mu.Unlock()
		return nil
	}
	t.state = stateClosed
	srv := t.server
	t.mu.Unlock()

	t.cancel()
	if srv != nil {
		srv.Stop()
	}
	t.wg.Wait()
	t.closeCalls(0, true)
	t.log.Info("transport closed", zap.Uint64("node-id", uint64(t.cfg.ID)))
	return nil
}

// Stats returns the counters. Each is read atomically, not all together.
func (t *Transport) Stats() Stats {
	return Stats{
		Sent:     t.stats.sent.Load(),
		Frames:   t.stats.frames.Load(),
		Received: t.stats.received.Load(),
		Dropped:  t.stats.dropped.Load(),
		Rejected: t.stats.rejected.Load(),
		Refused:  t.stats.refused.Load(),
	}
}
