package daemon

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/eventlog"
	"github.com/clockd/clockd/ordering"
)

// storeWriter writes committed events to the host's event store on a
// goroutine of its own, in commit order, so the consensus driver that
// applies them does not wait for the store's writes. It syncs the store
// every storeSyncEvents, so the sync before a snapshot
// (ordering.Machine.BeforeSnapshot, through startFlush) has little left
// to do.
type storeWriter struct {
	store  *eventlog.Store
	log    *zap.Logger
	in     chan storeJob
	done   chan struct{}
	failed func(error) // a write or sync failed

	queued atomic.Uint64 // the last GSN handed over
}

type storeJob struct {
	c     ordering.Committed
	flush chan error // not nil: sync everything before, then answer
}

// storeSyncEvents is how many events the writer appends between syncs:
// some megabytes.
const storeSyncEvents = 40_000

// storeQueue bounds the runs of events waiting for the writer; beyond it
// the driver waits.
const storeQueue = 4096

func startStoreWriter(store *eventlog.Store, log *zap.Logger, failed func(error)) *storeWriter {
	w := &storeWriter{store: store, log: log, in: make(chan storeJob, storeQueue), done: make(chan struct{}),
		failed: failed}
	go w.run()
	return w
}

func (w *storeWriter) run() {
	defer close(w.done)
	var err error // sticky: after a failure nothing more is written
	unsynced := 0
	for job := range w.in {
		if job.flush != nil {
			if err == nil {
				err = w.store.Sync()
				unsynced = 0
			}
			job.flush <- err
			continue
		}
		if err != nil {
			continue
		}
		if err = w.store.AppendCommitted(job.c); err == nil {
			unsynced += job.c.Len
			if unsynced >= storeSyncEvents {
				err = w.store.Sync()
				unsynced = 0
			}
		}
		if err != nil {
			w.log.Error("event store write failed", zap.Error(err))
			w.failed(err)
		}
	}
}

// write hands over a run of committed events; it runs on the driver
// goroutine.
func (w *storeWriter) write(c ordering.Committed) {
	w.queued.Store(c.First + uint64(c.Len) - 1)
	w.in <- storeJob{c: c}
}

// startFlush asks for everything handed over so far to be written and
// synced, and returns a wait that returns once it is; it runs on the
// driver goroutine, in order with write.
func (w *storeWriter) startFlush() (wait func() error) {
	done := make(chan error, 1)
	w.in <- storeJob{flush: done}
	return func() error { return <-done }
}

// caughtUp returns once the store holds every event handed over when it
// was called (so a client reads its own appends), or ctx ends, or a
// while has passed.
func (w *storeWriter) caughtUp(ctx context.Context) {
	last := w.queued.Load()
	if last == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	w.store.Wait(ctx, last-1)
}

// Close stops the writer once everything handed over is written.
func (w *storeWriter) Close() error {
	close(w.in)
	<-w.done
	return nil
}
