package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

// acceptTimeout bounds the wait for the acceptor's response header.
const acceptTimeout = 10 * time.Second

// errNotAccepted reports a stream that ended or answered wrongly before the
// acceptor confirmed it.
var errNotAccepted = errors.New("transport: stream not accepted")

// dialLoop keeps one stream up to p, a peer with a higher id, until Close
// or RemovePeer.
func (t *Transport) dialLoop(p *peer) {
	defer t.wg.Done()
	defer p.wg.Done()
	delay := t.cfg.BackoffMin
	var lastErr string
	for {
		addr, changed := p.address()
		if addr != "" {
			up, err := t.runDialed(p, addr)
			if p.ctx.Err() != nil {
				return
			}
			if up {
				delay, lastErr = t.cfg.BackoffMin, ""
			} else {
				lastErr = t.logDialError(p, addr, err, lastErr)
			}
		}
		if !backoff(p, addr == "", delay, changed) {
			return
		}
		delay = min(2*delay, t.cfg.BackoffMax)
	}
}

// backoff waits a jittered delay, or until the address changes, or for the
// address alone when it is unknown. It reports false once p is shut down.
func backoff(p *peer, forever bool, delay time.Duration, changed <-chan struct{}) bool {
	var timeout <-chan time.Time
	if !forever {
		timer := time.NewTimer(delay/2 + rand.N(delay/2+1))
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-p.ctx.Done():
		return false
	case <-changed:
	case <-timeout:
	}
	return true
}

// logDialError logs err at warn when it differs from the previous failure,
// so a peer that stays down does not flood the log.
func (t *Transport) logDialError(p *peer, addr string, err error, last string) string {
	fields := []zap.Field{zap.Uint64("peer-id", uint64(p.id)), zap.String("peer-addr", addr), zap.Error(err)}
	if err.Error() == last {
		t.log.Debug("peer dial failed", fields...)
	} else {
		t.log.Warn("peer dial failed", fields...)
	}
	return err.Error()
}

// runDialed opens one stream to p at addr and serves it until it fails. It
// reports whether the stream was accepted; err is never nil.
func (t *Transport) runDialed(p *peer, addr string) (up bool, err error) {
	conn, err := t.newConn(p, addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, nodeIDKey, idString(t.cfg.ID))
	cs, err := openStream(ctx, cancel, conn, streamDesc, streamMethod, p)
	if err != nil {
		return false, err
	}
	s := t.attach(p, cs)
	s.open()
	err = t.recvLoop(p, cs)
	cancel()
	t.detach(s, err)
	return true, err
}

// openStream opens a stream to p and waits up to acceptTimeout for p to
// accept it. cancel must cancel ctx; it is how the wait times out.
func openStream(ctx context.Context, cancel context.CancelFunc, conn *grpc.ClientConn,
	desc *grpc.StreamDesc, method string, p *peer) (grpc.ClientStream, error) {
	timer := time.AfterFunc(acceptTimeout, cancel)
	cs, err := conn.NewStream(ctx, desc, method)
	if err == nil {
		err = awaitAccept(cs, p)
	}
	if !timer.Stop() {
		err = fmt.Errorf("%w: no answer in %v", errNotAccepted, acceptTimeout)
	}
	return cs, err
}

// awaitAccept waits for the acceptor's header, which names the acceptor.
// A refusal comes as a trailers-only response; its status is the error.
func awaitAccept(cs grpc.ClientStream, p *peer) error {
	md, err := cs.Header()
	if err != nil {
		return err
	}
	if md == nil {
		if err := cs.RecvMsg(&frame{}); err != nil {
			return err
		}
		return fmt.Errorf("%w: stream ended", errNotAccepted)
	}
	if got := md.Get(nodeIDKey); !slices.Equal(got, []string{idString(p.id)}) {
		return fmt.Errorf("%w: acceptor says it is node %q, want %d", errNotAccepted, got, p.id)
	}
	return nil
}

// newConn makes a client connection to p at addr, verifying with TLS that
// the server is p.name. gRPC connects lazily, on the first call.
func (t *Transport) newConn(p *peer, addr string) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if t.tls != nil {
		creds = credentials.NewTLS(t.tls.clientConfig(p.name))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, dialOptions(creds, t.grpcMsgLimit())...)
	if err != nil {
		return nil, fmt.Errorf("transport: new client: %w", err)
	}
	return conn, nil
}

// dialOptions are those of every client connection; limit bounds one
// gRPC message each way.
func dialOptions(creds credentials.TransportCredentials, limit int) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(frameCodec{}),
			grpc.MaxCallRecvMsgSize(limit),
			grpc.MaxCallSendMsgSize(limit),
		),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true,
		}),
		grpc.WithReadBufferSize(peerBufferBytes),
		grpc.WithWriteBufferSize(peerBufferBytes),
		grpc.WithInitialWindowSize(peerStreamWindow),
		grpc.WithInitialConnWindowSize(peerConnWindow),
	}
}
