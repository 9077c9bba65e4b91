package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/clockd/clockd/api/client"
	"github.com/clockd/clockd/api/clockdv1"
)

// Call kinds of the gRPC rows.
const (
	kindNow    = "Now"
	kindHealth = "health"
)

// grpcSourceBlock is the second octet of the loopback addresses the gRPC
// pool dials from: connection i comes from 127.grpcSourceBlock.x.y.
const grpcSourceBlock = 2

// pool is the gRPC connections both kinds of call share. Connection i
// dials from its own loopback source address, so that the API server,
// which rate-limits each client IP address, sees Conns clients.
type pool struct {
	conns  []*client.Client
	health []healthpb.HealthClient
	now    []clockdv1.TimeServiceClient
}

func dialPool(ctx context.Context, addr string, n int) (*pool, error) {
	p := &pool{}
	for i := range n {
		src := loopbackAddr(grpcSourceBlock, i)
		c, err := client.Dial(ctx, addr, client.Options{Insecure: true,
			DialOptions: []grpc.DialOption{grpc.WithContextDialer(dialFrom(src))}})
		if err != nil {
			p.close()
			return nil, fmt.Errorf("connection %d from %s: %w", i, src, err)
		}
		p.conns = append(p.conns, c)
		p.health = append(p.health, healthpb.NewHealthClient(c.Conn()))
		p.now = append(p.now, c.Time())
	}
	return p, nil
}

func (p *pool) close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// call returns a function that makes one call of kind on connection i.
func (p *pool) call(kind string) func(ctx context.Context, i int) error {
	if kind == kindHealth {
		req := &healthpb.HealthCheckRequest{}
		return func(ctx context.Context, i int) error {
			resp, err := p.health[i].Check(ctx, req)
			if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				err = fmt.Errorf("health check: %v", resp.GetStatus())
			}
			return err
		}
	}
	req := &clockdv1.NowRequest{}
	return func(ctx context.Context, i int) error {
		_, err := p.now[i].Now(ctx, req)
		return err
	}
}

// dialFrom dials TCP from src.
func dialFrom(src netip.Addr) func(context.Context, string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}
}

// maxLoopbackIndex bounds the index of loopbackAddr.
const maxLoopbackIndex = 1<<16 - 1

// loopbackAddr is the i-th address of 127.block.0.0/16, from 127.block.0.1;
// 0 <= i < maxLoopbackIndex.
func loopbackAddr(block byte, i int) netip.Addr {
	if i < 0 || i >= maxLoopbackIndex {
		panic(fmt.Sprintf("loopbackAddr: index %d outside 0..%d", i, maxLoopbackIndex-1))
	}
	n := i + 1
	return netip.AddrFrom4([4]byte{127, block, byte(n >> 8), byte(n)})
}

// grpcSlice is how long one kind of call runs before the other takes
// over. Short slices put both kinds under the same background load.
const grpcSlice = 250 * time.Millisecond

// grpcRows measures Now and the health check at every client count, Repeat
// rounds each. A round warms both kinds up, then alternates them in
// slices of grpcSlice, in the order health, Now, Now, health, ..., until
// each has run for Duration.
func (b *bench) grpcRows(ctx context.Context) ([]GRPCRow, error) {
	p, err := dialPool(ctx, b.leader.APIAddr, b.cfg.Conns)
	if err != nil {
		return nil, err
	}
	defer p.close()
	runs := map[string][]loadResult{}
	for r := range b.cfg.Repeat {
		for _, clients := range b.cfg.Clients {
			b.progress("Now and health, %s (round %d of %d): %v warm-up each, then %v each in %v slices",
				clientsLabel(clients), r+1, b.cfg.Repeat, b.cfg.Warmup, b.cfg.Duration, min(grpcSlice, b.cfg.Duration))
			tallies := b.grpcRound(ctx, p, clients)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for _, kind := range []string{kindHealth, kindNow} {
				res := tallies[kind].result()
				b.progress("%s, %s: %.0f calls/s, p50 %v, p99 %v, %d errors", kind, clientsLabel(clients),
					res.opsPerSec(), res.P50, res.P99, res.Errors)
				k := fmt.Sprint(kind, clients)
				runs[k] = append(runs[k], res)
			}
		}
	}
	var rows []GRPCRow
	for _, clients := range b.cfg.Clients {
		for _, kind := range []string{kindNow, kindHealth} {
			rows = append(rows, newGRPCRow(kind, clients, runs[fmt.Sprint(kind, clients)]))
		}
	}
	return rows, nil
}

// grpcRound is one round at one client count; it returns each kind's
// tally over all its slices.
func (b *bench) grpcRound(ctx context.Context, p *pool, clients int) map[string]*loadTally {
	for _, kind := range []string{kindHealth, kindNow} {
		closedLoop(ctx, clients, len(p.conns), b.cfg.Warmup, p.call(kind))
	}
	out := map[string]*loadTally{kindHealth: newLoadTally(len(p.conns)), kindNow: newLoadTally(len(p.conns))}
	slice := min(grpcSlice, b.cfg.Duration)
	pairs := int((b.cfg.Duration + slice - 1) / slice)
	for i := range pairs {
		order := []string{kindHealth, kindNow}
		if i%2 == 1 {
			order = []string{kindNow, kindHealth}
		}
		for _, kind := range order {
			out[kind].add(closedLoop(ctx, clients, len(p.conns), slice, p.call(kind)))
		}
	}
	return out
}

// loadResult is a kind's outcome over a round. Ops and the latencies
// cover the calls that started and ended inside a measured window;
// Errors counts every failed call.
type loadResult struct {
	Ops        int
	Errors     int
	FirstError string
	Window     time.Duration
	P50, P99   time.Duration
	// BusiestConnOps is the number of calls on the connection that
	// carried the most.
	BusiestConnOps int
}

func (r loadResult) opsPerSec() float64 { return perSec(r.Ops, r.Window) }

// loadTally accumulates closed-loop windows.
type loadTally struct {
	latNs   []int64
	perConn []int
	window  time.Duration
	errors  int
	first   error
}

func newLoadTally(conns int) *loadTally { return &loadTally{perConn: make([]int, conns)} }

func (t *loadTally) add(u *loadTally) {
	t.latNs = append(t.latNs, u.latNs...)
	for c, n := range u.perConn {
		t.perConn[c] += n
	}
	t.window += u.window
	t.errors += u.errors
	if t.first == nil {
		t.first = u.first
	}
}

// result sorts the latencies and summarises them.
func (t *loadTally) result() loadResult {
	res := loadResult{Ops: len(t.latNs), Errors: t.errors, Window: t.window}
	if t.first != nil {
		res.FirstError = t.first.Error()
	}
	res.P50, res.P99 = quantiles(t.latNs)
	for _, n := range t.perConn {
		res.BusiestConnOps = max(res.BusiestConnOps, n)
	}
	return res
}

// closedLoop runs clients goroutines for window, each making one call at
// a time on the connections in turn, and tallies the calls that started
// and ended inside it.
func closedLoop(ctx context.Context, clients, conns int, window time.Duration, call func(context.Context, int) error) *loadTally {
	end := time.Now().Add(window)
	ws := make([]*loadTally, clients)
	var wg sync.WaitGroup
	for i := range clients {
		ws[i] = newLoadTally(conns)
		wg.Go(func() { ws[i].run(ctx, i, conns, end, call) })
	}
	wg.Wait()
	total := newLoadTally(conns)
	for _, w := range ws {
		total.add(w)
	}
	total.window = window
	return total
}

func (t *loadTally) run(ctx context.Context, id, conns int, end time.Time, call func(context.Context, int) error) {
	for k := id; ctx.Err() == nil; k++ {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		conn := k % conns
		err := call(ctx, conn)
		t1 := time.Now()
		switch {
		case err != nil:
			if !errors.Is(ctx.Err(), context.Canceled) {
				t.errors++
				if t.first == nil {
					t.first = err
				}
			}
		case !t1.After(end):
			t.latNs = append(t.latNs, t1.Sub(t0).Nanoseconds())
			t.perConn[conn]++
		}
	}
}

func clientsLabel(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}
