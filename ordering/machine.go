package ordering

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering/runbook"
)

// Machine is the replicated state: the last tick, the timestamp oracle's
// ceiling, the VMs, and the ordered event log's numbering. It implements
// driver.StateMachine and driver.Capturer. Apply, Capture, Snapshot and
// Restore run on the driver goroutine (the write Capture returns runs on
// any); the accessors may be called from any goroutine.
type Machine struct {
	// OnTick, if set, is called on the driver goroutine for every tick
	// applied, in log order, after the state includes it. It must not
	// block. It is not called for ticks a snapshot restores: those are
	// history, not news.
	OnTick func(Tick)
	// OnEvents, if set, receives every run of newly committed events, in
	// GSN order, on the driver goroutine (the host's event store). The
	// events' bytes alias the command, which nobody changes: the callee
	// may keep them.
	OnEvents func(Committed)
	// OnBatch, if set, hears on the driver goroutine of every sequenced
	// batch applied (not rejected), after OnEvents: its origin, place and
	// result. A host answers with it for its own batches whose answer it
	// lost (package daemon). It must not block.
	OnBatch func(origin consensus.NodeID, epoch, batch uint64, res EventsResult)
	// BeforeSnapshot, if set, is called when a snapshot is captured, on
	// the driver goroutine, and the snapshot is written only once the
	// function it returns has returned nil: the event store syncs
	// everything handed to it so far there, because once the snapshot
	// exists the log before it may be compacted and the store holds the
	// only copy of those events here.
	BeforeSnapshot func() (wait func() error)
	// OnRunbooks, if set, is called on the driver goroutine after every
	// run-book command applied, and after a restore. It must not block.
	OnRunbooks func()

	mu sync.Mutex
	// Invariant: last.Seq == ticks (0 before the first tick).
	ticks     uint64
	last      Tick
	ceilingMs uint64
	vms       map[string]*vmEntry
	gsn       uint64            // the last GSN assigned
	sources   map[string]uint64 // host\x00source → last SourceSeq committed
	// pipes holds every event pipeline's last batch applied, by origin.
	pipes    map[consensus.NodeID]pipeState
	runbooks runbook.State
	heads    []eventHead // Apply's scratch; only the driver goroutine applies
	unpacked []byte      // Apply's scratch: a compressed batch's events
}

// TickResult is what Apply returns for a tick.
type TickResult struct{ Seq uint64 }

// CeilingResult is what Apply returns for a ceiling: the ceiling in force
// before it, and after it.
type CeilingResult struct{ PrevMs, Ms uint64 }

// Apply applies one command. A command that does not decode changes
// nothing, and its error is the result: every replica agrees on that too.
func (m *Machine) Apply(_ uint64, cmd []byte) any {
	if len(cmd) > 0 && Kind(cmd[0]).IsEvents() {
		return m.applyEncodedEvents(cmd)
	}
	_, v, err := Decode(cmd)
	if err != nil {
		return err
	}
	switch v := v.(type) {
	case Tick:
		return m.applyTick(v)
	case Ceiling:
		return m.applyCeiling(v)
	case VMFreeze, VMResume, VMRelease:
		return m.applyVM(v)
	case runbook.Submit, runbook.Start, runbook.Finish, runbook.Abandon, runbook.Cancel:
		m.mu.Lock()
		res := m.runbooks.Apply(v)
		m.mu.Unlock()
		if m.OnRunbooks != nil {
			m.OnRunbooks()
		}
		return res
	}
	panic(fmt.Sprintf("ordering: decoded %T has no apply", v))
}

func (m *Machine) applyTick(t Tick) TickResult {
	m.mu.Lock()
	m.ticks++
	t.Seq = m.ticks
	m.last = t
	m.mu.Unlock()
	if m.OnTick != nil {
		m.OnTick(t)
	}
	return TickResult{Seq: t.Seq}
}

func (m *Machine) applyCeiling(c Ceiling) CeilingResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.ceilingMs
	m.ceilingMs = max(prev, c.Ms)
	return CeilingResult{PrevMs: prev, Ms: m.ceilingMs}
}

// LastTick returns the latest tick applied or restored, and false before
// the first. The caller owns the copy's Anchors.
func (m *Machine) LastTick() (Tick, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.last
	t.Anchors = append([]Anchor(nil), t.Anchors...)
	return t, m.ticks > 0
}

// CeilingMs is the timestamp oracle's committed ceiling.
func (m *Machine) CeilingMs() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ceilingMs
}

// snapshotVersion 2 added the VM records, 3 the event sequence, 4 the
// event pipelines' positions, 5 the run-books; Restore reads every
// earlier version.
const snapshotVersion = 5

// Snapshot writes the whole state.
func (m *Machine) Snapshot(w io.Writer) error {
	write, err := m.Capture()
	if err != nil {
		return err
	}
	return write(w)
}

// Capture copies the whole state as Snapshot writes it, and starts
// BeforeSnapshot; the write it returns waits for BeforeSnapshot, then
// writes the copy. Only the copy is made on the driver goroutine: the
// write may run on another, while Apply goes on.
func (m *Machine) Capture() (write func(io.Writer) error, err error) {
	var wait func() error
	if m.BeforeSnapshot != nil {
		wait = m.BeforeSnapshot()
	}
	b := m.encode()
	return func(w io.Writer) error {
		if wait != nil {
			if err := wait(); err != nil {
				return err
			}
		}
		_, err := w.Write(b)
		return err
	}, nil
}

// encode returns the whole state in Snapshot's format.
func (m *Machine) encode() []byte {
	m.mu.Lock()
	b := []byte{snapshotVersion}
	b = binary.AppendUvarint(b, m.ticks)
	b = binary.AppendUvarint(b, m.ceilingMs)
	b = wire.AppendBytes(b, EncodeTick(&m.last))
	ids := make([]string, 0, len(m.vms))
	for id := range m.vms {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the same state writes the same bytes
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		e := m.vms[id]
		b = appendVM(b, e.rec)
		b = binary.AppendUvarint(b, uint64(len(e.answers)))
		for _, a := range e.answers {
			b = wire.AppendString(b, a.id)
			b = appendVMResult(b, a.res)
		}
	}
	b = binary.AppendUvarint(b, m.gsn)
	keys := make([]string, 0, len(m.sources))
	for k := range m.sources {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = wire.AppendString(b, k)
		b = binary.AppendUvarint(b, m.sources[k])
	}
	b = m.appendPipes(b)
	b = m.runbooks.AppendState(b)
	m.mu.Unlock()
	return b
}

// Restore replaces the state with one Snapshot wrote.
func (m *Machine) Restore(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		return fmt.Errorf("ordering: read snapshot: %w", err)
	}
	raw := buf.Bytes()
	version := byte(0)
	if len(raw) > 0 {
		version = raw[0]
	}
	if version < 1 || version > snapshotVersion {
		version = snapshotVersion // Version fails with a clear error
	}
	d := wire.NewDecoder(raw, ErrCodec)
	d.Version(version)
	ticks := d.Uvarint()
	ceiling := d.Uvarint()
	tickCmd := d.Bytes()
	vms := map[string]*vmEntry{}
	if version >= 2 {
		for n := d.Count(8); n > 0 && d.Err == nil; n-- {
			e := &vmEntry{rec: decodeVM(&d)}
			for k := d.Count(8); k > 0 && d.Err == nil; k-- {
				e.answers = append(e.answers, vmAnswer{id: d.String(), res: decodeVMResult(&d)})
			}
			vms[e.rec.ID] = e
		}
	}
	var gsn uint64
	sources := map[string]uint64{}
	if version >= 3 {
		gsn = d.Uvarint()
		for n := d.Count(2); n > 0 && d.Err == nil; n-- {
			k := d.String()
			sources[k] = d.Uvarint()
		}
	}
	pipes := map[consensus.NodeID]pipeState{}
	if version >= 4 {
		for n := d.Count(3); n > 0 && d.Err == nil; n-- {
			id := consensus.NodeID(d.Uvarint())
			pipes[id] = pipeState{epoch: d.Uvarint(), batch: d.Uvarint()}
		}
	}
	var books runbook.State
	if version >= 5 {
		books = runbook.DecodeState(&d)
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("ordering: snapshot: %w", err)
	}
	_, v, err := Decode(tickCmd)
	if err != nil {
		return fmt.Errorf("ordering: snapshot's tick: %w", err)
	}
	last := v.(Tick)
	if last.Seq != ticks {
		return fmt.Errorf("%w: snapshot's tick has seq %d, count is %d", ErrCodec, last.Seq, ticks)
	}
	m.mu.Lock()
	m.ticks, m.ceilingMs, m.last, m.vms, m.gsn, m.sources = ticks, ceiling, last, vms, gsn, sources
	m.pipes, m.runbooks = pipes, books
	m.mu.Unlock()
	if m.OnRunbooks != nil {
		m.OnRunbooks()
	}
	return nil
}

// Runbook returns a copy of the run-book called id, and where it stands.
func (m *Machine) Runbook(id string) (runbook.Entry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runbooks.Entry(id)
}

// Runbooks returns a copy of every run-book kept, in submission order.
func (m *Machine) Runbooks() []runbook.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runbooks.Entries()
}

// NextRun returns host's next run-book step in the committed order
// (runbook.State.Next).
func (m *Machine) NextRun(host consensus.NodeID) (runbook.Work, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runbooks.Next(host)
}

// appendPipes writes the pipelines' positions, by origin. m.mu is held.
func (m *Machine) appendPipes(b []byte) []byte {
	ids := make([]consensus.NodeID, 0, len(m.pipes))
	for id := range m.pipes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		p := m.pipes[id]
		b = binary.AppendUvarint(b, uint64(id))
		b = binary.AppendUvarint(b, p.epoch)
		b = binary.AppendUvarint(b, p.batch)
	}
	return b
}
