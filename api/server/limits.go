package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Limits bound what one client can ask of the API server.
type Limits struct {
	// MaxRecvMsgBytes caps one request message.
	MaxRecvMsgBytes int
	// MaxConcurrentStreams caps the calls in progress on one connection.
	MaxConcurrentStreams uint32
	// RatePerSec and Burst are a token bucket per client for the calls it
	// starts (a stream counts once). A client is its verified certificate,
	// or its IP address without one. RatePerSec 0 turns the limit off.
	RatePerSec float64
	Burst      int
	// MaxRateWait is how long a call over the rate waits for a token
	// before it fails with codes.ResourceExhausted. The wait slows a
	// batching client down, which then sends bigger batches.
	MaxRateWait time.Duration
	// MaxClients bounds the buckets kept; past it, the least recently
	// seen client's bucket is dropped.
	MaxClients int
}

// DefaultLimits are the limits of the clockd API server.
func DefaultLimits() Limits {
	return Limits{
		MaxRecvMsgBytes:      64 << 10,
		MaxConcurrentStreams: 256,
		RatePerSec:           2000,
		Burst:                200,
		MaxRateWait:          250 * time.Millisecond,
		MaxClients:           10000,
	}
}

// ServerOptions are the options that enforce l. The rate limit is an
// interceptor; it chains after interceptors given earlier.
func (l Limits) ServerOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(l.MaxRecvMsgBytes),
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
	}
	if l.RatePerSec <= 0 {
		return opts
	}
	rl := &rateLimiter{limits: l, clients: make(map[string]*clientBucket)}
	unary := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := rl.wait(ctx); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := rl.wait(ss.Context()); err != nil {
			return err
		}
		return h(srv, ss)
	}
	return append(opts, grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
}

type rateLimiter struct {
	limits  Limits
	mu      sync.Mutex
	clients map[string]*clientBucket
}

type clientBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// wait takes a token for the caller, waiting up to MaxRateWait for it.
func (rl *rateLimiter) wait(ctx context.Context) error {
	now := time.Now()
	rl.mu.Lock()
	res := rl.bucket(clientKey(ctx), now).lim.ReserveN(now, 1)
	rl.mu.Unlock()
	d := res.DelayFrom(now)
	if !res.OK() || d > rl.limits.MaxRateWait {
		res.CancelAt(now)
		return status.Errorf(codes.ResourceExhausted, "rate limit: at most %g calls/s per client (burst %d)",
			rl.limits.RatePerSec, rl.limits.Burst)
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		res.Cancel()
		return status.FromContextError(ctx.Err()).Err()
	case <-t.C:
		return nil
	}
}

// bucket returns the caller's bucket, making room for it if needed.
// rl.mu is held.
func (rl *rateLimiter) bucket(key string, now time.Time) *clientBucket {
	b := rl.clients[key]
	if b == nil {
		if len(rl.clients) >= max(rl.limits.MaxClients, 1) {
			rl.dropOldest()
		}
		b = &clientBucket{lim: rate.NewLimiter(rate.Limit(rl.limits.RatePerSec), rl.limits.Burst)}
		rl.clients[key] = b
	}
	b.seen = now
	return b
}

func (rl *rateLimiter) dropOldest() {
	var oldest string
	var at time.Time
	for k, b := range rl.clients {
		if oldest == "" || b.seen.Before(at) {
			oldest, at = k, b.seen
		}
	}
	delete(rl.clients, oldest)
}

// clientKey names the caller: its verified leaf certificate, else its IP.
func clientKey(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.VerifiedChains) > 0 {
		sum := sha256.Sum256(info.State.VerifiedChains[0][0].Raw)
		return "cert:" + hex.EncodeToString(sum[:16])
	}
	if p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return "addr:" + p.Addr.String()
	}
	return "ip:" + host
}
