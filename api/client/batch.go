package client

import (
	"context"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
)

// batcher coalesces concurrent Timestamp calls. At most one request is in
// flight; callers that arrive meanwhile queue, and the next request asks
// for up to maxBatch of them at once. The i-th caller of a batch gets
// first+i.
type batcher struct {
	fetch    func(ctx context.Context, n uint32) (uint64, error)
	base     context.Context // ends when the client closes
	maxBatch int
	// onQueued, when set, runs after each caller has queued.
	onQueued func()

	mu    sync.Mutex
	queue []*tsWaiter
	// Invariant: busy iff a run goroutine is sending or about to.
	busy bool
}

// tsWaiter is one caller.
type tsWaiter struct {
	ctx  context.Context
	done chan tsResult // buffered: run never blocks on a caller that left
	// batch is set once the caller's request is on its way; guarded by
	// batcher.mu.
	batch *tsBatch
}

// tsBatch is one request's shared state.
type tsBatch struct {
	// live counts the callers still waiting for it; when the last one
	// leaves, cancel ends the request. Guarded by batcher.mu.
	live   int
	cancel context.CancelFunc
}

type tsResult struct {
	ts  uint64
	err error
}

func newBatcher(base context.Context, fetch func(context.Context, uint32) (uint64, error)) *batcher {
	return &batcher{fetch: fetch, base: base, maxBatch: clockdv1.MaxTimestampBatch}
}

func (b *batcher) get(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, status.FromContextError(err).Err()
	}
	w := waiters.Get().(*tsWaiter)
	w.ctx = ctx
	b.mu.Lock()
	b.queue = append(b.queue, w)
	if !b.busy {
		b.busy = true
		go b.run()
	}
	b.mu.Unlock()
	if b.onQueued != nil {
		b.onQueued()
	}
	var r tsResult
	if done := ctx.Done(); done == nil {
		r = <-w.done
	} else {
		select {
		case r = <-w.done:
		case <-done:
			// w stays out of the pool: run may still send to it.
			b.leave(w)
			return 0, status.FromContextError(ctx.Err()).Err()
		}
	}
	// run has sent its one result and let go of w.
	*w = tsWaiter{done: w.done}
	waiters.Put(w)
	if r.err != nil {
		return 0, r.err
	}
	return r.ts, nil
}

// waiters recycles callers that got their answer, with their channels:
// at hundreds of thousands of timestamps a second, making them was most
// of a caller's cost.
var waiters = sync.Pool{New: func() any { return &tsWaiter{done: make(chan tsResult, 1)} }}

// run sends requests until the queue is empty.
func (b *batcher) run() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.maxBatch)
		if n == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		batch := b.queue[:n:n]
		b.queue = slices.Clone(b.queue[n:])
		ctx, cancel := b.requestContext(batch)
		tb := &tsBatch{live: n, cancel: cancel}
		for _, w := range batch {
			w.batch = tb
		}
		b.mu.Unlock()

		first, err := b.fetch(ctx, uint32(n))
		cancel()
		for i, w := range batch {
			w.done <- tsResult{ts: first + uint64(i), err: err}
		}
	}
}

// requestContext ends with the client, or when the last of the batch's
// callers gives up: at the latest of their deadlines, when they all have
// one, or through leave.
func (b *batcher) requestContext(batch []*tsWaiter) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, w := range batch {
		d, ok := w.ctx.Deadline()
		if !ok {
			return context.WithCancel(b.base)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(b.base, latest)
}

// leave takes w out of the queue, or out of its request's callers.
func (b *batcher) leave(w *tsWaiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.batch == nil {
		b.queue = slices.DeleteFunc(b.queue, func(x *tsWaiter) bool { return x == w })
		return
	}
	w.batch.live--
	if w.batch.live == 0 {
		w.batch.cancel()
	}
}
