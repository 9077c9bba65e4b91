package driver

import (
	"errors"
	"sync"

	"github.com/clockd/clockd/consensus"
)

// writer persists Readies on its own goroutine, so the driver goroutine
// goes on stepping messages and proposals while the disk syncs. Every
// Ready queued while a write is under way goes into the next write: one
// transaction, one fsync, for all of them (group commit across Readies).
//
// The order is the one the core requires (see consensus.Node.Release):
// Readies are written in the order they were queued, a Ready's messages
// leave only once its write is durable, and the driver goroutine calls
// Persisted for them, in order, after that. A failed write stops the
// writer: nothing queued after it is written or sent (fail-stop).
type writer struct {
	store Storage
	tr    Transport

	mu    sync.Mutex
	queue []consensus.Ready
	wake  chan struct{} // capacity 1: work was queued
	quit  chan struct{} // closed by stop

	// done carries each durable group to the driver goroutine, which
	// calls Persisted on it. exited is closed when run returns: after
	// stop, or after a failed write, which err then holds.
	done   chan []consensus.Ready
	exited chan struct{}
	err    error
}

func newWriter(store Storage, tr Transport) *writer {
	w := &writer{store: store, tr: tr, wake: make(chan struct{}, 1), quit: make(chan struct{}),
		done: make(chan []consensus.Ready), exited: make(chan struct{})}
	go w.run()
	return w
}

// enqueue hands rd to the writer. It never blocks.
func (w *writer) enqueue(rd consensus.Ready) {
	w.mu.Lock()
	w.queue = append(w.queue, rd)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// stop makes the writer exit once its current write ends; what is still
// queued is neither written nor sent. It waits for the exit, so the store
// is free afterwards.
func (w *writer) stop() {
	close(w.quit)
	<-w.exited
}

// errStopped is what failed returns after stop.
var errStopped = errors.New("driver: writer stopped")

func (w *writer) run() {
	defer close(w.exited)
	var ents []consensus.Entry
	for {
		select {
		case <-w.wake:
		case <-w.quit:
			return
		}
		for {
			w.mu.Lock()
			group := w.queue
			w.queue = nil
			w.mu.Unlock()
			if len(group) == 0 {
				break
			}
			ents = ents[:0]
			for i := range group {
				ents = append(ents, group[i].Entries...)
			}
			// The last Ready's HardState is the newest; only its Commit
			// is written, as the hint every record carries. A Ready that
			// changes the promise never comes here.
			if len(ents) > 0 {
				if err := w.store.Save(group[len(group)-1].HardState, false, ents); err != nil {
					w.err = err
					return
				}
			}
			clear(ents) // drop references to the commands
			for i := range group {
				if len(group[i].Messages) > 0 {
					w.tr.Send(group[i].Messages)
				}
			}
			select {
			case w.done <- group:
			case <-w.quit:
				return
			}
		}
	}
}

// failed returns the write error that stopped the writer; call it only
// once exited is closed.
func (w *writer) failed() error {
	if w.err == nil {
		return errStopped
	}
	return w.err
}
