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
//
// The writer also compacts the store, after the Readies queued before the
// compaction was asked for: bolt has one write transaction at a time, so
// a compaction waits for the writes anyway, and this way the driver
// goroutine does not wait for it.
type writer struct {
	store Storage
	tr    Transport

	mu        sync.Mutex
	queue     []consensus.Ready
	compactTo uint64        // the highest compaction asked for, not yet taken
	compacts  int           // how many compactions that covers
	wake      chan struct{} // capacity 1: work was queued
	quit      chan struct{} // closed by stop

	// done carries each durable group to the driver goroutine, which
	// calls Persisted on it. exited is closed when run returns: after
	// stop, or after a failed write, which err then holds.
	done   chan written
	exited chan struct{}
	err    error
}

// written is a durable group of Readies, and the number of compactions
// asked for that were carried out after it.
type written struct {
	rds      []consensus.Ready
	compacts int
}

func newWriter(store Storage, tr Transport) *writer {
	w := &writer{store: store, tr: tr, wake: make(chan struct{}, 1), quit: make(chan struct{}),
		done: make(chan written), exited: make(chan struct{})}
	go w.run()
	return w
}

// enqueue hands rd to the writer. It never blocks.
func (w *writer) enqueue(rd consensus.Ready) {
	w.mu.Lock()
	w.queue = append(w.queue, rd)
	w.mu.Unlock()
	w.poke()
}

// compact asks the writer to compact the store up to upTo once every
// Ready queued so far is durable. It never blocks; compactions asked for
// before the writer gets to them are done as one, up to the highest.
func (w *writer) compact(upTo uint64) {
	w.mu.Lock()
	w.compactTo = max(w.compactTo, upTo)
	w.compacts++
	w.mu.Unlock()
	w.poke()
}

func (w *writer) poke() {
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
			group, upTo, compacts := w.queue, w.compactTo, w.compacts
			w.queue, w.compactTo, w.compacts = nil, 0, 0
			w.mu.Unlock()
			if len(group) == 0 && compacts == 0 {
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
			if compacts > 0 {
				if err := w.store.Compact(upTo); err != nil {
					w.err = err
					return
				}
			}
			select {
			case w.done <- written{rds: group, compacts: compacts}:
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
