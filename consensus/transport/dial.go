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

// dialLoop keeps one stream up to p, a peer with a higher id, until Close.
func (t *Transport) dialLoop(p *peer) {
	defer t.wg.Done()
	delay := t.cfg.BackoffMin
	var lastErr string
	for {
		addr, changed := p.address()
		if addr != "" {
			up, err := t.runDialed(p, addr)
			if t.ctx.Err() != nil {
				return
			}
			if up {
				delay, lastErr = t.cfg.BackoffMin, ""
			} else {
				lastErr = t.logDialError(p, addr, err, lastErr)
			}
		}
		if !t.backoff(addr == "", delay, changed) {
			return
		}
		delay = min(2*delay, t.cfg.BackoffMax)
	}
}

// backoff waits a jittered delay, or until the address changes, or for the
// address alone when it is unknown. It reports false on Close.
func (t *Transport) backoff(forever bool, delay time.Duration, changed <-chan struct{}) bool {
	var timeout <-chan time.Time
	if !forever {
		timer := time.NewTimer(delay/2 + rand.N(delay/2+1))
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-t.ctx.Done():
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
	conn, err := grpc.NewClient("passthrough:///"+addr, t.dialOptions(p)...)
	if err != nil {
		return false, fmt.Errorf("transport: new client: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, nodeIDKey, idString(t.cfg.ID))
	timer := time.AfterFunc(acceptTimeout, cancel)
	cs, err := conn.NewStream(ctx, &serviceDesc.Streams[0], streamMethod)
	if err == nil {
		err = awaitAccept(cs, p)
	}
	if !timer.Stop() {
		err = fmt.Errorf("%w: no answer in %v", errNotAccepted, acceptTimeout)
	}
	if err != nil {
		return false, err
	}
	s := t.attach(p, cs)
	err = t.recvLoop(p, cs)
	cancel()
	t.detach(s, err)
	return true, err
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

func (t *Transport) dialOptions(p *peer) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if t.tls != nil {
		creds = credentials.NewTLS(t.tls.clientConfig(p.name))
	}
	limit := t.grpcMsgLimit()
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
	}
}
