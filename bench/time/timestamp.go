package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/clockd/clockd/api/client"
	"github.com/clockd/clockd/api/clockdv1"
)

// tsRun is one run of the Timestamp row.
type tsRun struct {
	Timestamps int // returned by client.Timestamp inside the window
	RPCs       int // Timestamp requests that completed inside the window
	Asked      int // timestamps those requests asked for
	Errors     int
	FirstError string
	Window     time.Duration
}

// tsCaller is one goroutine's tally. The padding makes it 64 bytes, so
// no two callers' counters n share a cache line.
type tsCaller struct {
	n      int
	errors int
	first  error
	_      [32]byte
}

// timestampRows measures client.Timestamp at every count of callers on
// one client, Repeat rounds each, the counts taking turns within a round.
func (b *bench) timestampRows(ctx context.Context) ([]TimestampRow, error) {
	runs := make([][]tsRun, len(b.cfg.TSCallers))
	for r := range b.cfg.Repeat {
		for i, callers := range b.cfg.TSCallers {
			b.progress("Timestamp, %d callers on one client (round %d of %d): %v warm-up, %v measured",
				callers, r+1, b.cfg.Repeat, b.cfg.Warmup, b.cfg.Duration)
			run, err := measureTimestamps(ctx, b.leader.APIAddr, callers, b.cfg.Warmup, b.cfg.Duration)
			if err != nil {
				return nil, err
			}
			b.progress("Timestamp, %d callers: %.0f timestamps/s in %.0f requests/s, %.1f per request, %d errors", callers,
				perSec(run.Timestamps, run.Window), perSec(run.RPCs, run.Window), div(float64(run.Asked), float64(run.RPCs)), run.Errors)
			runs[i] = append(runs[i], run)
		}
	}
	rows := make([]TimestampRow, len(runs))
	for i, callers := range b.cfg.TSCallers {
		rows[i] = newTimestampRow(callers, runs[i])
	}
	return rows, nil
}

// measureTimestamps dials addr as one client, as an application would,
// and has callers goroutines call Timestamp in a loop. A client
// interceptor counts the requests the client's batcher sends. Counting is
// switched on and off by a flag at the window's edges, so the callers
// read no clock.
func measureTimestamps(ctx context.Context, addr string, callers int, warmup, window time.Duration) (tsRun, error) {
	var counting atomic.Bool
	var rpcs, asked atomic.Int64
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if r, ok := req.(*clockdv1.TimestampRequest); ok && err == nil && counting.Load() {
			rpcs.Add(1)
			asked.Add(int64(r.GetCount()))
		}
		return err
	}
	c, err := client.Dial(ctx, addr, client.Options{Insecure: true,
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(count)}})
	if err != nil {
		return tsRun{}, err
	}
	defer c.Close()

	var stop atomic.Bool
	tally := make([]tsCaller, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			t := &tally[i]
			for !stop.Load() {
				_, err := c.Timestamp(ctx)
				switch {
				case err != nil && ctx.Err() == nil:
					t.errors++
					if t.first == nil {
						t.first = err
					}
				case err == nil && counting.Load():
					t.n++
				}
			}
		})
	}
	sleepCtx(ctx, warmup)
	counting.Store(true)
	begin := time.Now()
	sleepCtx(ctx, window)
	counting.Store(false)
	run := tsRun{Window: time.Since(begin)}
	stop.Store(true)
	wg.Wait()
	run.RPCs, run.Asked = int(rpcs.Load()), int(asked.Load())
	for _, t := range tally {
		run.Timestamps += t.n
		run.Errors += t.errors
		if t.first != nil && run.FirstError == "" {
			run.FirstError = t.first.Error()
		}
	}
	return run, ctx.Err()
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
