package daemon

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/eventlog"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering"
)

// callEventsPropose: an encoded Events command → its encoded result.
const callEventsPropose = "events.propose"

// maxCommandBytes keeps one event batch under the consensus core's batch
// limit (MaxBatchBytes, 2 MiB as the daemon configures it).
const maxCommandBytes = 1536 << 10

// eventPipeline takes stamped events from every source on this host and
// commits them in batches, one batch in flight at a time: each source's
// events then commit in order, and a batch that failed is retried before
// anything after it, so the per-source dedupe in the state machine never
// mistakes a retried event for a duplicate. Events that wait while the
// cluster is out of reach go to the spool, within its bound; beyond it
// they are dropped and counted, never silently.
type eventPipeline struct {
	d     *Daemon
	store *eventlog.Store
	spool *spool

	mu      sync.Mutex
	queue   []*pendingBatch // FIFO, in memory
	queued  int             // bytes in queue
	wake    chan struct{}
	seqs    map[string]uint64 // next SourceSeq handed out, for events without one
	dropped atomic.Uint64
}

// pendingBatch is events waiting to be committed, and whoever waits for
// them (nil for sources that do not wait).
type pendingBatch struct {
	events []ingest.Event
	bytes  int
	done   chan batchResult // buffered; nil when nobody waits
}

type batchResult struct {
	res     ordering.EventsResult
	last    uint64 // the last GSN of the batch, 0 when none accepted
	spooled int
	err     error
}

// maxQueuedBytes bounds the events waiting in memory; beyond it they go
// to the spool.
const maxQueuedBytes = 64 << 20

func newEventPipeline(d *Daemon, store *eventlog.Store, sp *spool) *eventPipeline {
	return &eventPipeline{d: d, store: store, spool: sp, wake: make(chan struct{}, 1), seqs: map[string]uint64{}}
}

// stamp fills what the receiving host adds: its name where the event has
// no host, the reference interval now, and the next sequence number of a
// source that brought none.
func (p *eventPipeline) stamp(evs []ingest.Event) {
	r := p.d.host.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range evs {
		e := &evs[i]
		if e.Host == "" {
			e.Host = p.d.cfg.HostName
		}
		if r.Bounded() {
			e.RefEarliest, e.RefLatest = r.Earliest, r.Latest
		}
		k := e.Host + "\x00" + e.Source
		if e.SourceSeq == 0 {
			last, seen := p.seqs[k]
			if !seen { // first sight of the source since start: resume after what is committed
				last = p.d.machine.SourceSeq(e.Host, e.Source)
			}
			e.SourceSeq = last + 1
		}
		p.seqs[k] = max(p.seqs[k], e.SourceSeq)
	}
}

// submit queues stamped events; done (if not nil) receives the outcome.
func (p *eventPipeline) submit(evs []ingest.Event, done chan batchResult) {
	b := &pendingBatch{events: evs, bytes: encodedSize(evs), done: done}
	p.mu.Lock()
	if p.queued+b.bytes > maxQueuedBytes || p.spool.Len() > 0 {
		p.mu.Unlock()
		// The cluster is behind or out of reach: keep the events on disk,
		// in order after everything already spooled.
		n, err := p.spool.Push(evs)
		if dropped := len(evs) - n; dropped > 0 {
			p.drop(dropped, err)
		}
		if done != nil {
			done <- batchResult{spooled: n, err: err}
		}
		p.kick()
		return
	}
	p.queue = append(p.queue, b)
	p.queued += b.bytes
	p.mu.Unlock()
	p.kick()
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

// run commits batches until ctx ends: spooled events first, then the
// queue, each group cut to the command size limit. Spooled events leave
// the spool only once committed; at shutdown, events taken from the queue
// and not yet committed go to the spool for the next start.
func (p *eventPipeline) run(ctx context.Context) error {
	defer p.spillQueue()
	for ctx.Err() == nil {
		if p.spool.Len() > 0 {
			p.drainSpool(ctx)
			continue
		}
		evs, waiters := p.next()
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
			case <-p.wake:
			}
			continue
		}
		res, last, rest, err := p.commit(ctx, evs, time.Now().Add(spillAfter))
		spooled := 0
		if len(rest) > 0 {
			// Out of reach (or stopping): keep the rest on disk.
			n, perr := p.spool.Push(rest)
			if n < len(rest) {
				p.drop(len(rest)-n, perr)
			}
			spooled = n
		}
		for _, w := range waiters {
			w <- batchResult{res: res, last: last, spooled: spooled}
		}
		if err != nil {
			return nil
		}
	}
	return nil
}

// spillAfter is how long a batch from memory may wait for the cluster
// before it goes to the spool and its senders get their answer.
const spillAfter = 2 * time.Second

// drainSpool commits one group of spooled events.
func (p *eventPipeline) drainSpool(ctx context.Context) {
	evs, err := p.spool.Peek(maxCommandBytes)
	if err != nil {
		p.d.log.Error("spool unreadable; its events are dropped", zap.Error(err))
		p.drop(p.spool.Len(), err)
		p.spool.Reset()
		return
	}
	if _, _, _, err := p.commit(ctx, evs, time.Time{}); err != nil {
		return // ctx ended; the events stay spooled
	}
	if err := p.spool.Pop(len(evs)); err != nil {
		p.d.log.Error("spool", zap.Error(err))
	}
}

// spillQueue moves what waits in memory to the spool at shutdown.
func (p *eventPipeline) spillQueue() {
	p.mu.Lock()
	q := p.queue
	p.queue, p.queued = nil, 0
	p.mu.Unlock()
	for _, b := range q {
		n, err := p.spool.Push(b.events)
		if n < len(b.events) {
			p.drop(len(b.events)-n, err)
		}
		if b.done != nil {
			b.done <- batchResult{spooled: n, err: errors.New("daemon: stopping")}
		}
	}
	p.spool.Sync()
}

// next takes whole batches from the queue up to the command limit.
func (p *eventPipeline) next() ([]ingest.Event, []chan batchResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var evs []ingest.Event
	var waiters []chan batchResult
	size := 0
	for len(p.queue) > 0 {
		b := p.queue[0]
		if size > 0 && size+b.bytes > maxCommandBytes {
			break
		}
		p.queue = p.queue[1:]
		p.queued -= b.bytes
		size += b.bytes
		evs = append(evs, b.events...)
		if b.done != nil {
			waiters = append(waiters, b.done)
		}
	}
	return evs, waiters
}

// commit proposes evs (in chunks under the command limit) until each is
// committed, retrying through leader changes. It gives up when ctx ends
// (with an error) or, when spillAt is set, once that time has passed (with
// none); either way it returns the events not committed, in order.
func (p *eventPipeline) commit(ctx context.Context, evs []ingest.Event, spillAt time.Time) (ordering.EventsResult, uint64, []ingest.Event, error) {
	var total ordering.EventsResult
	var last uint64
	for len(evs) > 0 {
		n, cmd := chunk(evs)
		for attempt := 0; ; attempt++ {
			res, err := p.proposeOnce(ctx, cmd)
			if err == nil {
				if total.FirstGSN == 0 {
					total.FirstGSN = res.FirstGSN
				}
				total.Accepted += res.Accepted
				total.Duplicates += res.Duplicates
				if res.Accepted > 0 {
					last = res.FirstGSN + uint64(res.Accepted) - 1
				}
				p.d.metrics.eventsCommitted.Add(float64(res.Accepted))
				break
			}
			if ctx.Err() != nil {
				return total, last, evs, ctx.Err()
			}
			if !spillAt.IsZero() && time.Now().After(spillAt) {
				return total, last, evs, nil
			}
			if attempt == 0 {
				p.d.log.Info("event batch not committed yet; retrying", zap.Error(err))
			}
			select {
			case <-ctx.Done():
				return total, last, evs, ctx.Err()
			case <-time.After(min(time.Duration(attempt+1)*50*time.Millisecond, time.Second)):
			}
		}
		evs = evs[n:]
	}
	return total, last, nil, nil
}

// chunk encodes the longest prefix of evs under maxCommandBytes (at least
// one event).
func chunk(evs []ingest.Event) (int, []byte) {
	size, n := 0, 0
	for n < len(evs) {
		s := encodedSize(evs[n : n+1])
		if n > 0 && size+s > maxCommandBytes {
			break
		}
		size += s
		n++
	}
	return n, ordering.EncodeEvents(evs[:n])
}

func (p *eventPipeline) proposeOnce(ctx context.Context, cmd []byte) (ordering.EventsResult, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := p.d.onLeader(cctx, func() ([]byte, error) { return p.proposeLocal(cctx, cmd) }, callEventsPropose, cmd)
	if err != nil {
		return ordering.EventsResult{}, err
	}
	return decodeEventsResult(out)
}

func (p *eventPipeline) proposeLocal(ctx context.Context, cmd []byte) ([]byte, error) {
	res, err := p.d.replica.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	r, ok := res.Value.(ordering.EventsResult)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "not an event batch: %v", res.Value)
	}
	return encodeEventsResult(r), nil
}

// serveProposal is the leader's side of callEventsPropose.
func (p *eventPipeline) serveProposal(ctx context.Context, _ consensus.NodeID, cmd []byte) ([]byte, error) {
	if k, _, err := ordering.Decode(cmd); err != nil || k != ordering.KindEvents {
		return nil, status.Errorf(codes.InvalidArgument, "not an event batch (kind %d): %v", k, err)
	}
	out, err := p.proposeLocal(ctx, cmd)
	return out, grpcError(err)
}

func encodeEventsResult(r ordering.EventsResult) []byte {
	b := uvarint(r.FirstGSN)
	b = append(b, uvarint(uint64(r.Accepted))...)
	return append(b, uvarint(uint64(r.Duplicates))...)
}

func decodeEventsResult(b []byte) (ordering.EventsResult, error) {
	d := wire.NewDecoder(b, errors.New("daemon: malformed events result"))
	r := ordering.EventsResult{FirstGSN: d.Uvarint(), Accepted: int(d.Uvarint()), Duplicates: int(d.Uvarint())}
	return r, d.Finish()
}

// Append stamps and commits one client batch and waits for the outcome.
func (p *eventPipeline) Append(ctx context.Context, evs []ingest.Event) (batchResult, error) {
	p.stamp(evs)
	done := make(chan batchResult, 1)
	p.submit(evs, done)
	select {
	case r := <-done:
		return r, r.err
	case <-ctx.Done():
		return batchResult{}, ctx.Err()
	}
}
