package ordering

import (
	"bytes"
	"fmt"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ingest"
)

// Events is one batch of trace events, stamped on their host, committed
// together. Apply numbers the new ones with global sequence numbers
// (GSNs) in batch order and drops the ones already committed: an event is
// known by (Host, Source, SourceSeq), and each source's SourceSeq only
// grows.
//
// A sequenced batch (Origin not 0) also has a place in its host's
// pipeline: Apply takes it only if it is the next one, Batch+1 of the same
// Epoch, or Batch 1 of a larger Epoch, and otherwise rejects it whole
// (EventsResult.Rejected). A host may then keep many batches in flight
// and still commit them in its own order, and a copy of a batch that
// arrives late (a retry, a forwarded proposal overtaken by the next one,
// a value a new leader re-proposes) never commits twice or out of turn.
type Events struct {
	// Origin is the node whose pipeline proposed the batch; 0 for an
	// unsequenced batch, applied whenever it comes.
	Origin consensus.NodeID
	// Epoch names one run of Origin's pipeline: a new run takes a larger
	// epoch than any before it and numbers its batches from 1.
	Epoch, Batch uint64
	Events       []ingest.Event
}

// EventsResult is what Apply returns for Events.
type EventsResult struct {
	// FirstGSN is the GSN of the first accepted event, 0 when none was.
	// The accepted events have consecutive GSNs, in batch order.
	FirstGSN   uint64
	Accepted   int
	Duplicates int
	// DuplicateAt lists the batch indexes of the duplicates, ascending;
	// nil when there are none.
	DuplicateAt []int
	// Rejected: a sequenced batch that was not the next of its pipeline;
	// nothing of it was applied.
	Rejected bool
	// Epoch and Batch are Origin's pipeline position once Apply is done:
	// the batch's own when it was applied, the last one applied when it
	// was rejected.
	Epoch, Batch uint64
}

// LogEvent is a committed event and its place in the total order.
type LogEvent struct {
	GSN   uint64
	Event ingest.Event
}

// GSNOf is e's GSN, for the helpers that take a sequence number's
// accessor (package internal/spans).
func GSNOf(e LogEvent) uint64 { return e.GSN }

// pipeState is a pipeline's position: the last batch applied.
type pipeState struct{ epoch, batch uint64 }

// eventHead is what Apply needs of one event: its source and sequence
// number, aliasing the command.
type eventHead struct {
	host, source []byte
	seq          uint64
}

// applyEncodedEvents applies an Events command without decoding its
// events into strings: it checks every event first, as Decode would, so a
// malformed command changes nothing, then hands what it took to OnEvents.
func (m *Machine) applyEncodedEvents(cmd []byte) any {
	if len(cmd) < 2 || cmd[1] != codecVersion {
		_, _, err := Decode(cmd) // the same error
		return err
	}
	b, body, err := decodeEventsPlace(Kind(cmd[0]), cmd[2:])
	if err != nil {
		return err
	}
	heads, err := m.scanEvents(Kind(cmd[0]), body)
	defer clear(heads) // the scratch must not keep the command alive
	if err != nil {
		return err
	}
	m.mu.Lock()
	var res EventsResult
	if b.Origin != 0 && !m.takeBatch(&b, &res) {
		m.mu.Unlock()
		return res
	}
	m.dedupe(heads, &res)
	m.mu.Unlock()
	if m.OnEvents != nil && res.Accepted > 0 {
		m.OnEvents(Committed{First: res.FirstGSN, Len: res.Accepted, kind: Kind(cmd[0]), body: body,
			dups: res.DuplicateAt})
	}
	if m.OnBatch != nil && b.Origin != 0 {
		m.OnBatch(b.Origin, b.Epoch, b.Batch, res)
	}
	return res
}

// scanEvents checks a command's body and returns its events' heads, in
// the machine's scratch. A compressed batch is decompressed into scratch
// too, which the heads alias until the next Apply.
func (m *Machine) scanEvents(kind Kind, body []byte) ([]eventHead, error) {
	var err error
	if kind == KindEventBatchS2 {
		if m.unpacked, err = decompressInto(m.unpacked, body); err != nil {
			return m.heads[:0], err
		}
		kind, body = KindEventBatch, m.unpacked
		if cap(m.unpacked) > maxScratch {
			m.unpacked = nil // the heads keep it alive until they are cleared
		}
	}
	heads, err := scanEvents(kind, body, m.heads[:0])
	m.heads = heads[:0]
	return heads, err
}

// scanEvents checks the events of a command's body and appends each one's
// head to into.
func scanEvents(kind Kind, body []byte, into []eventHead) ([]eventHead, error) {
	r, err := newBatchReader(kind, body)
	if err != nil {
		return into, err
	}
	for r.next() {
		into = append(into, eventHead{host: r.cur.host, source: r.cur.source, seq: r.cur.seq})
	}
	return into, r.finish()
}

// dedupe numbers the events not yet committed. Events of one source come
// in runs: its entry is read at the start of a run and written back at
// its end. m.mu is held.
func (m *Machine) dedupe(heads []eventHead, res *EventsResult) {
	if m.sources == nil {
		m.sources = map[string]uint64{}
	}
	var key []byte
	var seq uint64
	changed := false
	endRun := func() {
		if changed {
			m.sources[string(key)] = seq
		}
	}
	for i := range heads {
		h := &heads[i]
		if i == 0 || !bytes.Equal(h.host, heads[i-1].host) || !bytes.Equal(h.source, heads[i-1].source) {
			endRun()
			key = append(append(append(key[:0], h.host...), 0), h.source...)
			seq, changed = m.sources[string(key)], false
		}
		if h.seq <= seq {
			res.Duplicates++
			res.DuplicateAt = append(res.DuplicateAt, i)
			continue
		}
		seq, changed = h.seq, true
		m.gsn++
		if res.FirstGSN == 0 {
			res.FirstGSN = m.gsn
		}
		res.Accepted++
	}
	endRun()
}

// takeBatch decides whether the sequenced batch b is its pipeline's next,
// and moves the pipeline on if so. res gets the position. m.mu is held.
func (m *Machine) takeBatch(b *Events, res *EventsResult) bool {
	p := m.pipes[b.Origin]
	next := (b.Epoch == p.epoch && b.Batch == p.batch+1) || (b.Epoch > p.epoch && b.Batch == 1)
	if !next {
		res.Rejected, res.Epoch, res.Batch = true, p.epoch, p.batch
		return false
	}
	if m.pipes == nil {
		m.pipes = map[consensus.NodeID]pipeState{}
	}
	m.pipes[b.Origin] = pipeState{epoch: b.Epoch, batch: b.Batch}
	res.Epoch, res.Batch = b.Epoch, b.Batch
	return true
}

// LastGSN is the GSN of the last event committed.
func (m *Machine) LastGSN() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gsn
}

// SourceSeq is the last sequence number committed for a source.
func (m *Machine) SourceSeq(host, source string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sources[host+"\x00"+source]
}

// Pipeline is the position of origin's pipeline: the epoch and batch of
// the last sequenced batch applied from it (0, 0 before the first).
func (m *Machine) Pipeline(origin consensus.NodeID) (epoch, batch uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pipes[origin]
	return p.epoch, p.batch
}

func (r EventsResult) String() string {
	if r.Rejected {
		return fmt.Sprintf("rejected at %d/%d", r.Epoch, r.Batch)
	}
	return fmt.Sprintf("first GSN %d, %d accepted, %d duplicates", r.FirstGSN, r.Accepted, r.Duplicates)
}

// BatchPlace reads the pipeline place of an encoded event batch without
// decoding its events: origin 0 for an unsequenced batch. It fails for
// any other command.
func BatchPlace(cmd []byte) (origin consensus.NodeID, epoch, batch uint64, err error) {
	if len(cmd) < 2 || !Kind(cmd[0]).IsEvents() {
		return 0, 0, 0, fmt.Errorf("%w: not an event batch", ErrCodec)
	}
	if cmd[1] != codecVersion {
		return 0, 0, 0, fmt.Errorf("%w: codec version %d", ErrCodec, cmd[1])
	}
	b, _, err := decodeEventsPlace(Kind(cmd[0]), cmd[2:])
	return b.Origin, b.Epoch, b.Batch, err
}
