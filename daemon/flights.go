package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/ordering"
)

// flight is one numbered batch, from its first proposal until it is
// committed or given up to the spool. Flights are owned by the run
// goroutine; a try's goroutine only sends on done.
type flight struct {
	epoch  uint64 // its current number: batch of epoch
	batch  uint64
	events []ingest.Event
	bytes  int
	cmd    []byte    // the batch encoded under its current number
	segs   []segment // memory flights: whose events these are
	// spoolEnd is, for a flight read from the spool, the offset after its
	// events; -1 for a flight from memory.
	spoolEnd int64
	sent     time.Time // the first try, under any number

	// Under the current number:
	tries   int
	unknown bool // a try failed without an answer: it may have committed
	busy    bool // a try is under way; done will receive its outcome
	done    chan outcome
	out     outcome // the last outcome received
}

// segment is events [from, to) of a flight, sent by one waiter.
type segment struct {
	w        *waiter
	from, to int
}

type outcome struct {
	res ordering.EventsResult
	err error
}

// verdict is what a flight's last outcome says.
type verdict int

const (
	vCommitted       verdict = iota // applied by this try
	vCommittedUnseen                // a copy from an earlier try was applied; its result is lost
	vRetry                          // not applied: try again
	vConflict                       // the pipeline is at a position this run did not reach
)

func (p *eventPipeline) verdict(f *flight) verdict {
	o := f.out
	switch {
	case o.err != nil:
		return vRetry
	case !o.res.Rejected:
		return vCommitted
	case o.res.Epoch == f.epoch && o.res.Batch >= f.batch:
		// A copy of this batch was applied. Only this run's tries make
		// copies, and one whose answer was lost is the only candidate.
		if f.unknown {
			return vCommittedUnseen
		}
		return vConflict
	case o.res.Epoch > f.epoch:
		return vConflict
	}
	return vRetry // one before it was missing when it came
}

// run commits batches until ctx ends. At the end, events from memory not
// known to be committed go to the spool for the next start.
func (p *eventPipeline) run(ctx context.Context) error {
	defer p.shutdown()
	for ctx.Err() == nil {
		if err := p.fill(ctx); err != nil {
			return err
		}
		if len(p.flights) == 0 {
			select {
			case <-ctx.Done():
			case <-p.wake:
			}
			continue
		}
		if head := p.flights[0]; head.busy {
			select {
			case <-ctx.Done():
				continue
			case <-p.wake:
				continue
			case o := <-head.done:
				p.received(head, o)
			}
		}
		if err := p.settle(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (p *eventPipeline) received(f *flight, o outcome) {
	f.busy, f.out = false, o
	if o.err != nil {
		f.unknown = true
	}
}

// settle answers for committed flights at the head, and recovers when the
// head failed.
func (p *eventPipeline) settle(ctx context.Context) error {
	if p.popCommitted() {
		return p.recover(ctx)
	}
	return nil
}

// popCommitted answers for the flights at the head whose commit is known,
// in order, and drops them. It stops at the first still in flight, or
// not committed, and reports whether that one failed.
func (p *eventPipeline) popCommitted() (failed bool) {
	for len(p.flights) > 0 {
		head := p.flights[0]
		if head.busy {
			select {
			case o := <-head.done:
				p.received(head, o)
			default:
				return false
			}
		}
		if v := p.verdict(head); v != vCommitted && v != vCommittedUnseen {
			return true
		}
		p.finish(head)
		p.flights = p.flights[1:]
	}
	return false
}

// fill cuts new flights from the FIFO and proposes them, within the
// window.
func (p *eventPipeline) fill(ctx context.Context) error {
	for len(p.flights) < maxInflight && p.inflight < maxInflightBytes {
		f := p.cut()
		if f == nil {
			return nil
		}
		if p.epoch == 0 {
			if err := p.newEpoch(0); err != nil {
				return err
			}
		}
		p.lastBatch++
		p.number(f, p.lastBatch)
		p.flights = append(p.flights, f)
		p.inflight += f.bytes
		p.try(ctx, f)
	}
	return nil
}

// cut takes the next batch from the spool, or if it is empty, from the
// queue; nil when there is none.
func (p *eventPipeline) cut() *flight {
	if p.spool.Len() > 0 {
		evs, next, err := p.spool.Read(p.spoolNext, maxCommandBytes)
		if err != nil {
			p.spoolLost(err)
			return nil
		}
		if len(evs) == 0 {
			return nil
		}
		p.spoolNext = next
		return &flight{events: evs, bytes: encodedSize(evs), spoolEnd: next, done: make(chan outcome, 1)}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f := &flight{spoolEnd: -1, done: make(chan outcome, 1)}
	for len(p.queue) > 0 {
		b := p.queue[0]
		rest := b.events[b.taken:]
		k, size := 0, 0
		for k < len(rest) {
			s := encodedSize(rest[k : k+1])
			if f.bytes+size > 0 && f.bytes+size+s > maxCommandBytes {
				break
			}
			size += s
			k++
		}
		if k == 0 {
			break
		}
		from := len(f.events)
		if from == 0 {
			f.events = rest[:k:k]
		} else {
			f.events = append(f.events, rest[:k]...)
		}
		f.segs = append(f.segs, segment{w: b.w, from: from, to: from + k})
		f.bytes += size
		b.taken += k
		if b.taken < len(b.events) {
			break
		}
		p.queue[0] = nil
		p.queue = p.queue[1:]
	}
	if len(f.events) == 0 {
		return nil
	}
	return f
}

// errNotTried is the outcome of a flight not yet tried under its number.
var errNotTried = errors.New("daemon: not proposed yet")

// number gives f batch number n of the current epoch.
func (p *eventPipeline) number(f *flight, n uint64) {
	f.epoch, f.batch, f.tries, f.unknown, f.out = p.epoch, n, 0, false, outcome{err: errNotTried}
	f.cmd = p.encode(&ordering.Events{Origin: p.d.id, Epoch: p.epoch, Batch: n, Events: f.events})
}

// newEpoch starts a run of batch numbers above every epoch stored, the
// one the state shows for this node, and floor; it is stored before use.
func (p *eventPipeline) newEpoch(floor uint64) error {
	committed, _ := p.d.machine.Pipeline(p.d.id)
	e := max(p.stored, committed, floor) + 1
	if err := p.epochs.Store(int64(e)); err != nil {
		return fmt.Errorf("event pipeline: store epoch: %w", err)
	}
	p.stored, p.epoch, p.lastBatch = e, e, 0
	return nil
}

// try proposes f once.
func (p *eventPipeline) try(ctx context.Context, f *flight) {
	f.tries++
	f.busy = true
	if f.sent.IsZero() {
		f.sent = p.clock.Now()
	}
	p.send(ctx, f.cmd, f.done)
}

// sendToCluster proposes cmd, on this node if it leads, else through the
// leader, and sends the outcome on done. Commands sent one after another
// to the same leader reach its consensus core in that order, unless the
// calls to a remote leader overtake one another (see forwardOrder).
func (p *eventPipeline) sendToCluster(ctx context.Context, cmd []byte, done chan<- outcome) {
	cctx, cancel := context.WithTimeout(ctx, proposeTimeout)
	if st := p.d.replica.Status(); st.Role != consensus.Leader && st.Leader != 0 && st.Leader != p.d.id {
		go func() {
			defer cancel()
			out, err := p.d.tr.Call(cctx, st.Leader, callEventsPropose, cmd)
			var res ordering.EventsResult
			if err == nil {
				res, err = decodeEventsResult(out)
			}
			done <- outcome{res: res, err: err}
		}()
		return
	}
	pend, err := p.d.replica.Submit(cctx, cmd)
	if err != nil {
		cancel()
		done <- outcome{err: err}
		return
	}
	go func() {
		defer cancel()
		r, err := pend.Wait(cctx)
		done <- resultOutcome(r.Value, err)
	}()
}

func resultOutcome(v any, err error) outcome {
	if err != nil {
		return outcome{err: err}
	}
	res, ok := v.(ordering.EventsResult)
	if !ok {
		return outcome{err: fmt.Errorf("event batch applied as %v", v)}
	}
	return outcome{res: res}
}

// finish answers for a committed flight and lets go of it.
func (p *eventPipeline) finish(f *flight) {
	res := f.out.res
	if p.verdict(f) == vCommittedUnseen {
		// Committed by a try whose answer was lost: this host's state
		// machine heard what it accepted when it applied it. If it has
		// not applied it within appliedWait (it lags), the events count
		// as committed before: duplicates, without GSNs.
		var ok bool
		if res, ok = p.appliedResult(f); !ok {
			p.d.log.Warn("a batch committed by a try whose answer was lost is answered as duplicates: "+
				"this host has not applied it yet", zap.Uint64("epoch", f.epoch), zap.Uint64("batch", f.batch))
			res = ordering.EventsResult{Duplicates: len(f.events)}
			res.DuplicateAt = make([]int, len(f.events))
			for i := range res.DuplicateAt {
				res.DuplicateAt[i] = i
			}
		}
	}
	for _, s := range f.segs {
		d0, d1 := countBelow(res.DuplicateAt, s.from), countBelow(res.DuplicateAt, s.to)
		accepted := s.to - s.from - (d1 - d0)
		s.w.committed(accepted, d1-d0, res.FirstGSN+uint64(s.from-d0))
		s.w.resolve(s.to - s.from)
	}
	p.d.metrics.eventsCommitted.Add(float64(res.Accepted))
	p.inflight -= f.bytes
	p.retryDelay = 0
	if f.spoolEnd >= 0 {
		// Under p.mu: add checks whether the spool holds events and pushes
		// more in one step, so they are never pushed into a spool that
		// this pop empties (and truncates) in between, at offsets
		// p.spoolNext no longer points to.
		p.mu.Lock()
		err := p.spool.PopTo(f.spoolEnd, len(f.events))
		if p.spool.Len() == 0 {
			p.spoolNext = p.spool.Head()
		}
		p.mu.Unlock()
		if err != nil {
			p.d.log.Error("spool", zap.Error(err))
		}
		return
	}
	p.release(f.bytes)
}

// countBelow counts the values in sorted xs below v.
func countBelow(xs []int, v int) int { return sort.SearchInts(xs, v) }

// recover handles a head that failed: it waits for every try under way,
// gives up to the spool if the head has waited too long, starts a new
// epoch on a conflict, and proposes again, in order, every flight not
// known to be committed.
func (p *eventPipeline) recover(ctx context.Context) error {
	p.collect(ctx)
	if ctx.Err() != nil {
		return nil
	}
	head := p.flights[0]
	if v := p.verdict(head); v == vCommitted || v == vCommittedUnseen {
		return nil // its answer came while waiting for the others
	}
	if head.spoolEnd < 0 && p.clock.Now().Sub(head.sent) >= spillAfter {
		p.d.log.Info("event batches not committed in time; spooling them", zap.Error(head.out.err),
			zap.Stringer("result", head.out.res))
		p.spill(nil)
		return nil
	}
	var floor uint64
	conflict := false
	for _, f := range p.flights {
		if p.verdict(f) == vConflict {
			conflict = true
			floor = max(floor, f.out.res.Epoch)
		}
	}
	if conflict {
		p.d.log.Warn("event pipeline position is not this run's; starting a new epoch",
			zap.Uint64("epoch", p.epoch), zap.Uint64("seen-epoch", floor))
		if err := p.renumber(floor); err != nil {
			return err
		}
	} else if head.out.err != nil {
		if head.tries == 1 {
			p.d.log.Info("event batch not committed yet; retrying", zap.Error(head.out.err))
		}
		p.retryDelay = min(max(2*p.retryDelay, 50*time.Millisecond), time.Second)
		select {
		case <-ctx.Done():
			return nil
		case <-p.clock.After(p.retryDelay):
		}
	}
	for _, f := range p.flights {
		if v := p.verdict(f); v == vRetry || v == vConflict {
			p.try(ctx, f)
		}
	}
	return nil
}

// collect waits for the outcome of every try under way.
func (p *eventPipeline) collect(ctx context.Context) {
	for _, f := range p.flights {
		if !f.busy {
			continue
		}
		select {
		case o := <-f.done:
			p.received(f, o)
		case <-ctx.Done():
			return
		}
	}
}

// renumber starts a new epoch above floor and numbers every flight not
// known to be committed from 1, in order. A copy under the old number
// can then no longer commit after any of them: the first batch of the
// new epoch ends the old one.
func (p *eventPipeline) renumber(floor uint64) error {
	if err := p.newEpoch(floor); err != nil {
		return err
	}
	for _, f := range p.flights {
		if v := p.verdict(f); v == vCommitted || v == vCommittedUnseen {
			continue
		}
		p.lastBatch++
		p.number(f, p.lastBatch)
	}
	return nil
}

// spill gives up on the flights from memory and the queue: their events
// go to the spool, oldest first, and their senders get their answer
// (with err, if not nil). Memory flights already committed are answered
// first; flights read from the spool leave their events there. The next
// batch starts a new epoch.
func (p *eventPipeline) spill(err error) {
	var evs []ingest.Event
	var segs []segment
	bytes := 0
	take := func(es []ingest.Event, ss []segment, n int) {
		for _, s := range ss {
			segs = append(segs, segment{w: s.w, from: len(evs) + s.from, to: len(evs) + s.to})
		}
		evs = append(evs, es...)
		bytes += n
	}
	for _, f := range p.flights {
		if f.spoolEnd >= 0 {
			continue
		}
		if v := p.verdict(f); !f.busy && (v == vCommitted || v == vCommittedUnseen) {
			p.finish(f)
			continue
		}
		take(f.events, f.segs, f.bytes)
	}
	p.flights, p.inflight, p.epoch = nil, 0, 0
	p.mu.Lock()
	for _, b := range p.queue {
		rest := b.events[b.taken:]
		take(rest, []segment{{w: b.w, from: 0, to: len(rest)}}, encodedSize(rest))
	}
	p.queue = nil
	n, perr := p.spool.Push(evs)
	p.queued -= bytes
	close(p.room)
	p.room = make(chan struct{})
	p.spoolNext = p.spool.Head()
	p.mu.Unlock()
	if n < len(evs) {
		p.drop(len(evs)-n, perr)
	}
	for _, s := range segs {
		if s.w == nil {
			continue
		}
		s.w.r.spooled += max(0, min(s.to, n)-s.from)
		if s.to > n {
			s.w.r.err = perr
		} else if err != nil {
			s.w.r.err = err
		}
		s.w.resolve(s.to - s.from)
	}
}

// spoolLost drops the spool's events after it could not be read.
func (p *eventPipeline) spoolLost(err error) {
	p.d.log.Error("spool unreadable; its events are dropped", zap.Error(err))
	p.mu.Lock() // so that add pushes nothing between the count and the reset
	n := p.spool.Len()
	p.spool.Reset()
	p.mu.Unlock()
	p.drop(n, err)
	var keep []*flight
	for _, f := range p.flights {
		if f.spoolEnd >= 0 {
			p.inflight -= f.bytes
			continue
		}
		keep = append(keep, f)
	}
	p.flights, p.spoolNext = keep, 0
}

// shutdown answers for the flights at the head whose commit is known, so
// their events leave the spool, and moves what waits in memory to the
// spool for the next start.
func (p *eventPipeline) shutdown() {
	p.popCommitted()
	p.spill(errStopping)
	p.spool.Sync()
}

// batchPlace is a batch's place in this host's pipeline.
type batchPlace struct{ epoch, batch uint64 }

// appliedKeep is how far behind the newest of this host's batches
// applied noteBatch keeps their results: well beyond maxInflight.
const appliedKeep = 4 * maxInflight

// appliedWait bounds appliedResult's wait for this host to apply a batch
// the leader says is committed.
const appliedWait = time.Second

// noteBatch records the result of one of this host's batches as this
// host's state machine applied it (ordering.Machine.OnBatch).
func (p *eventPipeline) noteBatch(origin consensus.NodeID, epoch, batch uint64, res ordering.EventsResult) {
	if origin != p.d.id {
		return
	}
	p.appliedMu.Lock()
	defer p.appliedMu.Unlock()
	if p.applied == nil {
		p.applied = map[batchPlace]ordering.EventsResult{}
	}
	p.applied[batchPlace{epoch, batch}] = res
	if len(p.applied) > 2*appliedKeep {
		for k := range p.applied {
			if k.epoch < epoch || k.batch+appliedKeep < batch {
				delete(p.applied, k)
			}
		}
	}
	if p.appliedChanged != nil {
		close(p.appliedChanged)
		p.appliedChanged = nil
	}
}

// appliedResult is the result of f's batch as this host applied it,
// waiting up to appliedWait for it; false if it did not come.
func (p *eventPipeline) appliedResult(f *flight) (ordering.EventsResult, bool) {
	var timeout <-chan time.Time
	for {
		p.appliedMu.Lock()
		res, ok := p.applied[batchPlace{f.epoch, f.batch}]
		if ok {
			delete(p.applied, batchPlace{f.epoch, f.batch})
		} else if p.appliedChanged == nil {
			p.appliedChanged = make(chan struct{})
		}
		changed := p.appliedChanged
		p.appliedMu.Unlock()
		if ok {
			return res, true
		}
		if timeout == nil {
			timeout = p.clock.After(appliedWait)
		}
		select {
		case <-changed:
		case <-timeout:
			return res, false
		}
	}
}
