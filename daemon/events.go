package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/eventlog"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
)

// The event pipeline's bounds.
const (
	// maxCommandBytes bounds one batch's events (as encodedSize counts
	// them). A slot packs several batches, up to the consensus core's
	// MaxBatchBytes.
	maxCommandBytes = 256 << 10
	// maxInflight bounds the batches proposed and not yet resolved, and
	// maxInflightBytes their events.
	maxInflight      = 64
	maxInflightBytes = 16 << 20
	// maxQueuedBytes bounds the events held in memory, queued or in
	// flight; beyond it, adding events waits for room.
	maxQueuedBytes = 64 << 20
	// proposeTimeout bounds one try of one batch.
	proposeTimeout = 2 * time.Second
	// spillAfter is how long a batch from memory may go uncommitted
	// before it, and everything queued behind it, goes to the spool and
	// its senders get their answer.
	spillAfter = 2 * time.Second
)

// eventPipeline takes stamped events from every source on this host and
// commits them in order, keeping many batches in flight.
//
// Events wait in one FIFO: the spool (on disk) while it holds anything,
// else the queue (in memory). The pipeline cuts them into batches,
// numbers each batch within an epoch, and proposes them in that order;
// the state machine applies a batch only if it is its pipeline's next
// (ordering.Events), so the batches commit in order even though several
// are in flight. When a batch fails (its try timed out, the leader
// changed, or it was rejected because one before it was missing), the
// pipeline waits for every try under way and proposes again, in order,
// every batch not known to be committed (go-back-N). A batch keeps its
// number and its events until it is committed, so a late copy of it is
// rejected as stale and nothing commits twice.
//
// An epoch is a run of numbers: a new one starts when the pipeline starts,
// after batches were given up to the spool, and whenever the state shows
// a position this pipeline did not reach itself. Epochs are stored
// durably before use (epochs) and only grow, so an old batch, from
// an earlier run or proposed before a spill, can never pass for a new
// one. Events proposed again under a new epoch are dropped by the
// per-source dedupe if an old copy did commit.
//
// Invariant: while the spool holds events, nothing is queued or in
// flight from memory; so the spool's events are older than the queue's,
// and the FIFO order is the commit order.
type eventPipeline struct {
	d      *Daemon
	store  *eventlog.Store
	writer *storeWriter
	spool  *spool
	epochs vclock.HWMStore // the last epoch taken

	mu     sync.Mutex
	queue  []*pendingBatch // FIFO, in memory
	queued int             // bytes of events in memory: queued or in flight
	room   chan struct{}   // closed and replaced when queued shrinks
	wake   chan struct{}
	seqs   map[string]uint64 // the last SourceSeq handed out or seen, by source

	dropped atomic.Uint64 // events dropped because the spool was full
	refused atomic.Uint64 // events from sources refused by checkNames (clockd_events_refused_total)
	forward forwardOrder

	// send proposes a batch and reports its outcome on done
	// (sendToCluster); clock times tries. Tests replace both.
	send  func(ctx context.Context, cmd []byte, done chan<- outcome)
	clock pipelineClock
	// encode makes a batch's command, compressed unless the config's
	// event_compression is none.
	encode func(*ordering.Events) []byte

	// applied holds the results of this host's batches as its state
	// machine applied them (noteBatch), by place, for the batches whose
	// committing try's answer was lost (finish, appliedResult); closing
	// appliedChanged tells of a new one.
	appliedMu      sync.Mutex
	applied        map[batchPlace]ordering.EventsResult
	appliedChanged chan struct{}

	// Owned by run.
	epoch      uint64 // 0: take a new one before the next batch
	lastBatch  uint64 // the last number given in epoch
	stored     uint64 // the largest epoch stored
	flights    []*flight
	inflight   int   // bytes of events in flights
	spoolNext  int64 // spool offset of the first event in no flight
	retryDelay time.Duration
}

// pendingBatch is events waiting in the queue, and whoever waits for them
// (nil for sources that do not wait).
type pendingBatch struct {
	events []ingest.Event
	taken  int // events already cut into flights
	bytes  int
	w      *waiter
}

// waiter is one Append waiting for the outcome of all its events, which
// may be cut into several batches. It is updated on the run goroutine.
type waiter struct {
	left int // events without an outcome yet
	r    appendResult
	done chan appendResult // buffered
}

type appendResult struct {
	accepted, duplicates int
	firstGSN, lastGSN    uint64 // of the accepted events, 0 when none
	spooled              int
	err                  error
}

// resolve records the outcome of n more events and answers once all have
// one.
func (w *waiter) resolve(n int) {
	if w == nil {
		return
	}
	w.left -= n
	if w.left == 0 {
		w.done <- w.r
	}
}

func (w *waiter) committed(accepted, duplicates int, first uint64) {
	if w == nil {
		return
	}
	w.r.accepted += accepted
	w.r.duplicates += duplicates
	if accepted > 0 {
		if w.r.firstGSN == 0 {
			w.r.firstGSN = first
		}
		w.r.lastGSN = first + uint64(accepted) - 1
	}
}

func newEventPipeline(d *Daemon, store *eventlog.Store, sp *spool, epochs vclock.HWMStore) (*eventPipeline, error) {
	stored, _, err := epochs.Load()
	if err != nil {
		return nil, err
	}
	p := &eventPipeline{d: d, store: store, spool: sp, epochs: epochs, stored: uint64(stored),
		room: make(chan struct{}), wake: make(chan struct{}, 1), seqs: map[string]uint64{}, clock: realClock{}}
	p.send = p.sendToCluster
	p.encode = ordering.EncodeEventsS2
	if d.cfg.EventCompression == "none" {
		p.encode = ordering.EncodeEvents
	}
	if sp.Len() > 0 {
		p.spoolNext = sp.Head()
	}
	return p, nil
}

// stamp fills what the receiving host adds: its name where the event has
// no host, and the reference interval now.
func (p *eventPipeline) stamp(evs []ingest.Event) {
	r := p.d.host.Now()
	for i := range evs {
		e := &evs[i]
		if e.Host == "" {
			e.Host = p.d.cfg.HostName
		}
		if r.Bounded() {
			e.RefEarliest, e.RefLatest = r.Earliest, r.Latest
		}
	}
}

// numberLocked gives events of a source that brought no sequence numbers
// the next ones. It runs under p.mu together with the enqueueing, so the
// numbers follow the FIFO order.
func (p *eventPipeline) numberLocked(evs []ingest.Event) {
	sourceRuns(evs, func(_ int, run []ingest.Event, key string) error {
		last, known := p.seqs[key] // the source's highest number, if known
		for i := range run {
			e := &run[i]
			if e.SourceSeq == 0 {
				if !known { // first sight since start: resume after what is committed or spooled
					last = max(p.d.machine.SourceSeq(e.Host, e.Source), p.spool.seqs[key])
				}
				e.SourceSeq = last + 1
			}
			last, known = max(last, e.SourceSeq), true
		}
		p.seqs[key] = last
		return nil
	})
}

// sourceKey keys a source in the daemon's per-source maps: its host, a
// NUL and its name.
func sourceKey(host, source string) string { return host + "\x00" + source }

// checkNames refuses an event whose host, source or kind holds a control
// character (below 0x20, or 0x7f). They name things, and a NUL in host or
// source would make two sources one: the state machine knows a source by
// host, a NUL, then source, so "a\x00b"/"c" and "a"/"b\x00c" would share
// their sequence numbers, and one's events be dropped as the other's
// duplicates.
func checkNames(e *ingest.Event) error {
	for _, f := range [3]struct{ what, v string }{{"host", e.Host}, {"source", e.Source}, {"kind", e.Kind}} {
		for i := 0; i < len(f.v); i++ {
			if c := f.v[i]; c < 0x20 || c == 0x7f {
				return fmt.Errorf("its %s %q holds a control character (0x%02x at byte %d)", f.what, f.v, c, i)
			}
		}
	}
	return nil
}

// sourceRuns calls fn with each run of evs from one source, in order:
// where the run starts in evs, the run, and its source's key. Events
// mostly come in such runs, so per-source state is looked up once a run.
// It stops at fn's first error.
func sourceRuns(evs []ingest.Event, fn func(from int, run []ingest.Event, key string) error) error {
	for from := 0; from < len(evs); {
		first := &evs[from]
		to := from + 1
		for to < len(evs) && evs[to].Host == first.Host && evs[to].Source == first.Source {
			to++
		}
		if err := fn(from, evs[from:to], sourceKey(first.Host, first.Source)); err != nil {
			return err
		}
		from = to
	}
	return nil
}

// add numbers and queues stamped events; w (if not nil) gets their
// outcome. While the memory bound is reached it waits for room, until
// ctx ends. While the spool holds events, the new ones go there too, and
// w is answered at once.
func (p *eventPipeline) add(ctx context.Context, evs []ingest.Event, w *waiter) error {
	b := &pendingBatch{events: evs, bytes: encodedSize(evs), w: w}
	p.mu.Lock()
	for p.spool.Len() == 0 && p.queued > 0 && p.queued+b.bytes > maxQueuedBytes {
		room := p.room
		p.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
	}
	p.numberLocked(evs)
	if p.spool.Len() > 0 {
		// The cluster is out of reach: keep the events on disk, in order
		// after everything already spooled.
		n, err := p.spool.Push(evs)
		p.mu.Unlock()
		if dropped := len(evs) - n; dropped > 0 {
			p.drop(dropped, err)
		}
		if w != nil {
			w.r.spooled, w.r.err = n, err
			w.resolve(len(evs))
		}
		p.kick()
		return nil
	}
	p.queue = append(p.queue, b)
	p.queued += b.bytes
	p.mu.Unlock()
	p.kick()
	return nil
}

// release returns n bytes of memory room.
func (p *eventPipeline) release(n int) {
	if n == 0 {
		return
	}
	p.mu.Lock()
	p.queued -= n
	close(p.room)
	p.room = make(chan struct{})
	p.mu.Unlock()
}

func (p *eventPipeline) drop(n int, err error) {
	total := p.dropped.Add(uint64(n))
	p.d.metrics.eventsDropped.Add(float64(n))
	p.d.log.Warn("events dropped: the spool is full", zap.Int("events", n), zap.Uint64("dropped-total", total),
		zap.Error(err))
}

func (p *eventPipeline) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// encodedSize estimates the events' size in a command.
func encodedSize(evs []ingest.Event) int {
	n := 0
	for i := range evs {
		e := &evs[i]
		n += 48 + len(e.Host) + len(e.Source) + len(e.Kind) + len(e.Name)
		for _, a := range e.Attrs {
			n += 4 + len(a.Key) + len(a.Value)
		}
	}
	return n
}

// Append stamps and commits one client batch and waits for the outcome.
func (p *eventPipeline) Append(ctx context.Context, evs []ingest.Event) (appendResult, error) {
	p.stamp(evs)
	w := &waiter{left: len(evs), done: make(chan appendResult, 1)}
	if err := p.add(ctx, evs, w); err != nil {
		return appendResult{}, err
	}
	select {
	case r := <-w.done:
		return r, r.err
	case <-ctx.Done():
		return appendResult{}, ctx.Err()
	}
}

// pipelineClock is the time the pipeline goes by.
type pipelineClock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// errStopping answers the senders of events spooled at shutdown.
var errStopping = errors.New("daemon: stopping")
