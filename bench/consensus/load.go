package main

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// cmdBytes is the size of every proposed command.
const cmdBytes = 64

// proposeTimeout bounds one proposal; one that takes longer counts as an
// error.
const proposeTimeout = 10 * time.Second

// loadSpec is one "load" request.
type loadSpec struct {
	Clients  int
	Duration time.Duration // measured window
	Warmup   time.Duration // before the window; not measured
}

// loadResult is what the leader's process reports for one load run.
// Ops and the latencies cover only proposals that completed inside the
// measured window.
type loadResult struct {
	Clients    int    `json:"clients"`
	Ops        uint64 `json:"ops"`
	Errors     uint64 `json:"errors"` // failed proposals in the window
	FirstError string `json:"first_error,omitempty"`
	WindowNs   int64  `json:"window_ns"`
	P50Ns      int64  `json:"p50_ns"`
	P99Ns      int64  `json:"p99_ns"`
	P999Ns     int64  `json:"p999_ns"`
	MeanNs     int64  `json:"mean_ns"`
	MaxNs      int64  `json:"max_ns"`
}

// OpsPerSec is the committed-command rate over the window.
func (r loadResult) OpsPerSec() float64 {
	if r.WindowNs <= 0 {
		return 0
	}
	return float64(r.Ops) / (float64(r.WindowNs) / 1e9)
}

// runLoad runs spec.Clients closed-loop clients, each proposing one fresh
// 64-byte command at a time, for the warm-up and then the window. mark is
// called with "window-start" and "window-end" as the window opens and
// closes, so the caller can sample CPU counters at the same moments.
// In-flight proposals finish after the window but are not counted.
func runLoad(ctx context.Context, propose func(context.Context, []byte) error, spec loadSpec, mark func(string)) loadResult {
	begin := time.Now()
	from, to := begin.Add(spec.Warmup), begin.Add(spec.Warmup+spec.Duration)
	l := &loadRun{propose: propose, from: from, to: to}
	var wg sync.WaitGroup
	for c := range spec.Clients {
		wg.Go(func() { l.client(ctx, uint64(c)) })
	}
	waitUntil(ctx, from)
	mark("window-start")
	waitUntil(ctx, to)
	l.stop.Store(true)
	mark("window-end")
	wg.Wait()
	res := loadResult{Clients: spec.Clients, Ops: l.h.Count(), Errors: l.errors.Load(), WindowNs: int64(spec.Duration),
		P50Ns: l.h.Quantile(0.50), P99Ns: l.h.Quantile(0.99), P999Ns: l.h.Quantile(0.999),
		MeanNs: l.h.MeanNs(), MaxNs: l.h.MaxNs()}
	if e := l.firstErr.Load(); e != nil {
		res.FirstError = *e
	}
	return res
}

// loadRun is the state the clients of one run share.
type loadRun struct {
	propose  func(context.Context, []byte) error
	from, to time.Time // the measured window
	stop     atomic.Bool
	h        hist
	errors   atomic.Uint64
	firstErr atomic.Pointer[string]
}

func (l *loadRun) client(ctx context.Context, id uint64) {
	for seq := uint64(0); !l.stop.Load() && ctx.Err() == nil; seq++ {
		cmd := make([]byte, cmdBytes) // fresh: the engines keep it in their logs
		binary.LittleEndian.PutUint64(cmd[0:], id)
		binary.LittleEndian.PutUint64(cmd[8:], seq)
		pctx, cancel := context.WithTimeout(ctx, proposeTimeout)
		t0 := time.Now()
		err := l.propose(pctx, cmd)
		t1 := time.Now()
		cancel()
		inWindow := !t1.Before(l.from) && !t1.After(l.to)
		switch {
		case err == nil && inWindow:
			l.h.Record(int64(t1.Sub(t0)))
		case err != nil:
			if inWindow {
				l.errors.Add(1)
			}
			msg := err.Error()
			l.firstErr.CompareAndSwap(nil, &msg)
			// Pace a client whose proposals fail at once (no leader), so
			// it does not spin on two cores.
			waitUntil(ctx, time.Now().Add(10*time.Millisecond))
		}
	}
}

// waitUntil blocks until t or until ctx is done.
func waitUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}
