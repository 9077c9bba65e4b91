package driver

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/snapshot"
)

// StateMachine is the replicated application. Apply is called from the
// driver goroutine, once per chosen command, in slot order; its result is
// handed to the proposer. It must be deterministic. Snapshot writes the
// whole state; Restore replaces the whole state with one Snapshot wrote.
// Both run on the driver goroutine.
type StateMachine interface {
	Apply(slot uint64, cmd []byte) any
	Snapshot(w io.Writer) error
	Restore(r io.Reader) error
}

// A Capturer is a StateMachine whose snapshot is taken in two steps, so
// that the driver goroutine only copies the state. Capture runs on the
// driver goroutine, after the last applied slot, and copies the state;
// the write it returns runs on a goroutine of its own while Apply goes
// on, makes durable whatever the snapshot needs to be (the snapshot's
// file is committed only after it returns nil), and writes the copy, as
// Snapshot would have. A StateMachine that is no Capturer is snapshotted
// into memory on the driver goroutine, and written from there.
type Capturer interface {
	Capture() (write func(w io.Writer) error, err error)
}

// Storage is the durable acceptor state; consensus/storage implements it.
// Save and Compact must not return before the data is on stable storage.
type Storage interface {
	Load() (consensus.HardState, []consensus.Entry, error)
	Save(hs consensus.HardState, hsChanged bool, ents []consensus.Entry) error
	Compact(upTo uint64) error
	Compacted() (uint64, error)
}

// Transport delivers messages to peers, best effort; consensus/transport
// implements it. Send must not block. SendSnapshot streams a snapshot file
// to a peer and blocks until it is delivered or fails.
type Transport interface {
	Send(msgs []consensus.Message)
	SendSnapshot(ctx context.Context, to consensus.NodeID, r io.Reader, size int64) error
}

// Snapshots stores state-machine snapshots; consensus/snapshot implements
// it.
type Snapshots interface {
	Create(meta snapshot.Meta) (*snapshot.Writer, error)
	Latest() (snapshot.Meta, bool, error)
	Open(index uint64) (snapshot.Meta, io.ReadCloser, int64, error)
	OpenFile(index uint64) (io.ReadCloser, int64, error)
	Import(r io.Reader) (snapshot.Meta, error)
	Prune(keep int) error
}

// Config configures a Replica.
type Config struct {
	// Core is the protocol configuration. Rand may be left nil: the driver
	// seeds one from crypto/rand.
	Core consensus.Config
	// TickInterval is the wall-clock length of one protocol tick. Default 50ms.
	TickInterval time.Duration
	// InboxLen bounds the peer messages waiting for the driver; beyond it
	// messages are dropped (the protocol retransmits). Default 4096.
	InboxLen int
	// SnapshotEntries and SnapshotBytes trigger a snapshot once that many
	// commands, or command bytes, were applied since the last one, each
	// raised by the same random 0-50% drawn anew after every snapshot, so
	// that members do not all snapshot at the same slot. Defaults 100000
	// and 64 MiB.
	SnapshotEntries int
	SnapshotBytes   int
	// SnapshotTrailing is how many slots behind a snapshot stay in the
	// log, so peers that lag a little catch up without a snapshot.
	// Default 10000.
	SnapshotTrailing uint64
	// SnapshotTrailingBytes, if set, also bounds the command bytes of
	// those slots: fewer stay when theirs would exceed it, so the log in
	// memory stays bounded however large slots are.
	SnapshotTrailingBytes int
	// GatherWindow bounds how long a leader with no slot in flight waits
	// for the proposals it expects, to put them into one slot (see "The
	// loop" in the package doc). Default 1ms; negative turns the wait
	// off.
	GatherWindow time.Duration
	Logger       *zap.Logger
}

// Errors returned by Propose besides *consensus.NotLeaderError.
var (
	// ErrOutcomeUnknown: the command got a slot, then this node lost the
	// leadership before learning whether it was chosen. It may still be
	// applied; a retry may apply it twice.
	ErrOutcomeUnknown = errors.New("driver: leadership lost, outcome unknown")
	// ErrStopped: the replica is not running.
	ErrStopped = errors.New("driver: replica stopped")
)

// Result is the outcome of a successful Propose.
type Result struct {
	Slot  uint64
	Value any // what StateMachine.Apply returned
}

type proposal struct {
	cmd   consensus.Command
	reply chan reply // buffered: the driver never blocks on it
}

type reply struct {
	res Result
	err error
}

// Replica runs one consensus node: a single goroutine owns the protocol
// core, and for every Ready it persists, then sends, then applies.
type Replica struct {
	cfg   Config
	log   *zap.Logger
	store Storage
	snaps Snapshots
	sm    StateMachine
	tr    Transport
	start time.Time // the monotonic clock's zero for the core

	ops      chan func() // admin work run on the driver goroutine
	installs chan install

	inbox     chan consensus.Message
	proposals chan proposal
	done      chan struct{}
	stopErr   error // set before done is closed

	mu     sync.Mutex
	status consensus.Status

	// Owned by the Run goroutine.
	node       *consensus.Node
	nextID     uint64
	waiters    map[uint64]chan reply
	role       consensus.Role
	reads      map[uint64]*readWait // by read id, until released
	released   []*readWait          // released reads waiting for their index to be applied
	watchers   []*watcher
	applyWaits []applyWait
	sending    map[consensus.NodeID]bool // snapshot transfers under way
	sinceSnap  struct{ entries, bytes int }
	// snapAt is where sinceSnap triggers the next snapshot (nextSnapshotAt).
	snapAt struct{ entries, bytes int }
	// trail holds, while SnapshotTrailingBytes is set, every applied slot
	// with commands above the compaction point, oldest first, with the
	// bytes applied through it.
	trail    []slotBytes
	applied  int64  // command bytes applied since start
	peersVer uint64 // the core's configuration version last pushed to the transport
	w        *writer
	writing  int // Readies handed to w and not yet Persisted
	// compacting counts compactions asked of w and not yet done.
	compacting int
	// snapping is the snapshot being written, nil when none is.
	snapping *snapJob
	held     []proposal // proposals a leader holds while a slot is in flight, or gathers
	// The gather (gathered): expect is how many proposals the leader
	// expects, the callers of those the latest apply resolved and of
	// those held then; gather fires at gatherUntil, the end of an open
	// gather's window (zero when none is open).
	expect      int
	gather      *time.Timer
	gatherUntil time.Time
}

// New restores a replica from its latest snapshot and storage. Call Run to
// start it.
func New(cfg Config, store Storage, snaps Snapshots, tr Transport, sm StateMachine) (*Replica, error) {
	if cfg.Logger == nil {
		return nil, fmt.Errorf("driver: config: Logger is required")
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 50 * time.Millisecond
	}
	if cfg.InboxLen <= 0 {
		cfg.InboxLen = 4096
	}
	if cfg.SnapshotEntries <= 0 {
		cfg.SnapshotEntries = 100000
	}
	if cfg.SnapshotBytes <= 0 {
		cfg.SnapshotBytes = 64 << 20
	}
	if cfg.GatherWindow == 0 {
		cfg.GatherWindow = time.Millisecond
	}
	if cfg.SnapshotTrailing == 0 {
		cfg.SnapshotTrailing = 10000
	}
	if cfg.Core.Lease == 0 {
		e := cfg.Core.ElectionTicks
		if e <= 0 {
			e = 10
		}
		cfg.Core.Lease = time.Duration(e) * cfg.TickInterval
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("driver: seed: %w", err)
	}
	if cfg.Core.Rand == nil {
		cfg.Core.Rand = rand.New(rand.NewChaCha8(seed))
	}
	r := &Replica{
		cfg: cfg, log: cfg.Logger.With(zap.Uint64("node", uint64(cfg.Core.ID))),
		store: store, snaps: snaps, sm: sm, tr: tr, start: time.Now(),
		inbox:     make(chan consensus.Message, cfg.InboxLen),
		proposals: make(chan proposal, 1024),
		ops:       make(chan func(), 64),
		installs:  make(chan install),
		done:      make(chan struct{}),
		// Command IDs start at a random point so a restarted node never
		// mistakes an old log entry for one of its new proposals.
		nextID:  binary.LittleEndian.Uint64(seed[:8]),
		waiters: map[uint64]chan reply{},
		reads:   map[uint64]*readWait{},
		sending: map[consensus.NodeID]bool{},
	}
	r.nextSnapshotAt()
	st, err := r.restore()
	if err != nil {
		return nil, err
	}
	if r.node, err = consensus.NewNode(cfg.Core, st); err != nil {
		return nil, err
	}
	r.setClock()
	r.status = r.node.Status()
	r.log.Info("replica restored", zap.Uint64("snapshot", st.SnapIndex), zap.Uint64("commit", st.Hard.Commit),
		zap.Int("entries", len(st.Entries)), zap.Stringer("promised", st.Hard.Promised))
	return r, nil
}

// restore loads the latest snapshot into the state machine, then the log.
func (r *Replica) restore() (consensus.State, error) {
	var st consensus.State
	meta, ok, err := r.snaps.Latest()
	if err != nil {
		return st, fmt.Errorf("driver: load snapshot: %w", err)
	}
	if ok {
		if st.Configs, err = r.restoreSnapshot(meta); err != nil {
			return st, err
		}
		st.SnapIndex = meta.Index
	}
	floor, err := r.store.Compacted()
	if err != nil {
		return st, fmt.Errorf("driver: load state: %w", err)
	}
	if floor > st.SnapIndex {
		return st, fmt.Errorf("driver: log compacted to slot %d but the latest snapshot ends at slot %d: refusing to start", floor, st.SnapIndex)
	}
	if st.Hard, st.Entries, err = r.store.Load(); err != nil {
		return st, fmt.Errorf("driver: load state: %w", err)
	}
	return st, nil
}

// setClock gives the core the monotonic clock, for leases.
func (r *Replica) setClock() { r.node.SetClock(int64(time.Since(r.start))) }

// Step hands a peer message to the replica. It never blocks: when the
// inbox is full the message is dropped, as the network might have done.
func (r *Replica) Step(m consensus.Message) {
	select {
	case r.inbox <- m:
	default:
	}
}

// Propose submits cmd and waits until it is chosen and applied locally.
// On a follower it fails at once with *consensus.NotLeaderError naming the
// leader; proposals are never forwarded.
func (r *Replica) Propose(ctx context.Context, cmd []byte) (Result, error) {
	p, err := r.Submit(ctx, cmd)
	if err != nil {
		return Result{}, err
	}
	return p.Wait(ctx)
}

// Pending is a proposal on its way; Wait returns its outcome.
type Pending struct {
	r     *Replica
	reply chan reply
}

// Submit hands cmd to the driver and returns without waiting for the
// outcome. The driver takes proposals in the order they were submitted,
// and a leader gives them slots in that order, so commands one goroutine
// submits are chosen in its order unless some fail (leadership lost).
func (r *Replica) Submit(ctx context.Context, cmd []byte) (*Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := proposal{cmd: consensus.Command{Data: cmd}, reply: make(chan reply, 1)}
	select {
	case r.proposals <- p:
		return &Pending{r: r, reply: p.reply}, nil
	case <-r.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Wait returns the outcome, as Propose does. Giving up (ctx) leaves the
// proposal in place: it may still be chosen.
func (p *Pending) Wait(ctx context.Context) (Result, error) {
	select {
	case rep := <-p.reply:
		return rep.res, rep.err
	case <-p.r.done:
		return Result{}, ErrStopped
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Status returns the state as of the last processed Ready.
func (r *Replica) Status() consensus.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// LeaseValid reports whether this replica leads and its lease still holds
// now, on the clock the core runs on. A Status is as old as the last
// Ready; this checks the lease's end against the present, so a leader
// that stopped hearing from its peers stops claiming the lease in time.
func (r *Replica) LeaseValid() bool {
	st := r.Status()
	return st.LeaseHeld && int64(time.Since(r.start)) < st.LeaseUntil
}

// Done is closed when Run has returned.
func (r *Replica) Done() <-chan struct{} { return r.done }

// Err returns why Run stopped; valid once Done is closed.
func (r *Replica) Err() error {
	<-r.done
	return r.stopErr
}

// Run drives the node until ctx is cancelled or storage fails. A storage
// failure stops the node (fail-stop): it never goes on as if unsynced data
// were safe.
func (r *Replica) Run(ctx context.Context) error {
	r.w = newWriter(r.store, r.tr)
	err := r.loop(ctx)
	switch {
	case err == nil:
		// A snapshot under way is finished, its compaction included: the
		// snapshot files are the caller's too once Run returns.
		if err = r.awaitSnapshot(); err == nil {
			err = r.flushWrites()
		}
	case r.snapping != nil:
		<-r.snapping.done
		r.snapping = nil
	}
	r.w.stop() // the store is the caller's again once Run returns
	for _, p := range r.held {
		p.reply <- reply{err: ErrStopped}
	}
	r.held = nil
	r.failWaiters(ErrStopped)
	r.failReads(ErrStopped)
	for _, w := range r.applyWaits {
		w.done <- ErrStopped
	}
	r.applyWaits = nil
	r.stopErr = err
	close(r.done)
	return err
}

func (r *Replica) loop(ctx context.Context) error {
	ticker := time.NewTicker(r.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			r.log.Info("replica stopping")
			return nil
		case <-ticker.C:
			r.setClock()
			r.node.Tick()
		case m := <-r.inbox:
			r.setClock()
			r.step(m)
			r.drainInbox()
		case p := <-r.proposals:
			r.setClock()
			r.propose(p)
			r.drainProposals()
		case wr := <-r.w.done:
			r.setClock()
			r.persisted(wr)
		case <-r.w.exited:
			return r.storageFailed(r.w.failed())
		case op := <-r.ops:
			r.setClock()
			op()
		case in := <-r.installs:
			// The snapshot being written, if any, is older: it is
			// finished (or stops the node) before the state is replaced.
			if err := r.awaitSnapshot(); err != nil {
				in.done <- err
				return err
			}
			in.done <- r.install(in.meta)
		case <-r.gatherC():
			r.setClock()
		case err := <-r.snapDone():
			r.setClock()
			if err := r.snapshotted(err); err != nil {
				return err
			}
		}
		if err := r.handleReady(); err != nil {
			return err
		}
		if len(r.held) > 0 && !r.inFlight() && r.gathered() {
			r.proposeHeld()
			if err := r.handleReady(); err != nil {
				return err
			}
		}
	}
}

// drainInbox steps every message already waiting, so one Ready (one fsync)
// covers them all.
func (r *Replica) drainInbox() {
	for range cap(r.inbox) {
		select {
		case m := <-r.inbox:
			r.step(m)
		default:
			return
		}
	}
}

func (r *Replica) drainProposals() {
	for range cap(r.proposals) {
		select {
		case p := <-r.proposals:
			r.propose(p)
		default:
			return
		}
	}
}

func (r *Replica) step(m consensus.Message) {
	if err := r.node.Step(m); err != nil {
		r.log.Warn("peer message rejected", zap.Uint64("from", uint64(m.From)),
			zap.Stringer("type", m.Type), zap.Error(err))
	}
}

// propose gives p to the core, or holds it. A leader proposes one slot
// at a time: while its last slot is on its way to its disk or waits to be
// chosen, it holds new proposals, and then proposes together those it
// gathered (gathered). So every proposal that arrives meanwhile goes into
// one slot, one message to each follower and one write, as when callers
// waited for the disk themselves.
func (r *Replica) propose(p proposal) {
	if r.role == consensus.Leader && (r.inFlight() || r.expect > 1) {
		r.held = append(r.held, p)
		return
	}
	r.submit(p)
}

// inFlight tells whether a slot of this replica's is on its way to its
// disk or waits to be chosen: a write is under way, or a proposal of its
// waits for its outcome.
func (r *Replica) inFlight() bool { return r.writing > 0 || len(r.waiters) > 0 }

// submit gives p to the core.
func (r *Replica) submit(p proposal) {
	r.nextID++
	p.cmd.ID = r.nextID
	if err := r.node.Propose(p.cmd); err != nil {
		p.reply <- reply{err: err}
		return
	}
	r.waiters[p.cmd.ID] = p.reply
}

// gathered tells whether the proposals held by a leader with no slot in
// flight are to be proposed now. When a slot resolves proposals of this
// replica, their callers tend to propose again at once, but one by one,
// and so do those whose proposals arrived while the slot was in flight:
// expect counts both. Proposed as they come, the first would take a slot
// of its own and the others would wait for it. So the leader gathers
// until it holds as many as expect, or for GatherWindow at most from
// the time it could have proposed. A lone caller (expect 1) never waits.
func (r *Replica) gathered() bool {
	if len(r.held) >= r.expect || r.cfg.GatherWindow < 0 {
		return true
	}
	now := time.Now()
	if r.gatherUntil.IsZero() {
		r.gatherUntil = now.Add(r.cfg.GatherWindow)
		if r.gather == nil {
			r.gather = time.NewTimer(r.cfg.GatherWindow)
		} else {
			r.gather.Reset(r.cfg.GatherWindow)
		}
		return false
	}
	return !now.Before(r.gatherUntil)
}

// gatherC fires when the window of a gather is over; nil when none is
// open.
func (r *Replica) gatherC() <-chan time.Time {
	if r.gatherUntil.IsZero() {
		return nil
	}
	return r.gather.C
}

// proposeHeld gives the core, in order, the proposals held; it is called
// once no slot is in flight.
func (r *Replica) proposeHeld() {
	for _, p := range r.held {
		r.submit(p)
	}
	clear(r.held)
	r.held = r.held[:0]
	if r.gather != nil {
		r.gather.Stop()
	}
	r.gatherUntil = time.Time{}
}

// handleReady works off every Ready the core has. A Ready that writes
// entries goes to the writer and is released at once, so the loop goes on
// while the disk syncs; so does any Ready while writes are in flight,
// because its messages must follow them. A Ready that changes the promise
// is rare (elections) and is handled in place, after the writes in flight.
func (r *Replica) handleReady() error {
	for r.node.HasReady() {
		rd := r.node.Ready()
		if len(rd.Eager) > 0 {
			r.tr.Send(rd.Eager)
		}
		async := !rd.HardStateChanged && (len(rd.Entries) > 0 || len(rd.Messages) > 0 && r.writing > 0)
		switch {
		case async:
			r.w.enqueue(rd)
			r.writing++
		default:
			if rd.HardStateChanged {
				if err := r.flushWrites(); err != nil {
					return err
				}
			}
			if rd.MustSync() {
				if err := r.store.Save(rd.HardState, rd.HardStateChanged, rd.Entries); err != nil {
					return r.storageFailed(err)
				}
			}
			if len(rd.Messages) > 0 {
				r.tr.Send(rd.Messages)
			}
		}
		r.apply(rd.Committed)
		for _, c := range rd.Dropped {
			r.resolve(c.ID, reply{err: &consensus.NotLeaderError{Leader: rd.Leader}})
		}
		r.releaseReads(rd.ReadStates)
		for _, p := range rd.Snapshots {
			r.sendSnapshot(p)
		}
		if r.role == consensus.Leader && rd.Role != consensus.Leader {
			r.failWaiters(ErrOutcomeUnknown)
			r.failReads(&consensus.NotLeaderError{Leader: rd.Leader})
			// The callers it expected were a leader's: proposals still
			// held go to the core (and fail there) without a gather, and
			// a later term does not start by waiting for them.
			r.expect = 0
		}
		if r.role != rd.Role {
			r.log.Info("role changed", zap.Stringer("role", rd.Role), zap.Uint64("leader", uint64(rd.Leader)))
		}
		r.role = rd.Role
		if async {
			r.node.Release(rd)
		} else {
			r.node.Advance(rd)
		}
		if err := r.maybeSnapshot(); err != nil {
			r.log.Error("snapshot failed, stopping node", zap.Error(err))
			return fmt.Errorf("driver: snapshot: %w", err)
		}
	}
	r.checkWatchers()
	r.syncPeers()
	st := r.node.Status()
	r.mu.Lock()
	r.status = st
	r.mu.Unlock()
	return nil
}

// persisted tells the core that the writer made wr's Readies durable.
func (r *Replica) persisted(wr written) {
	for i := range wr.rds {
		r.node.Persisted(wr.rds[i])
	}
	r.writing -= len(wr.rds)
	r.compacting -= wr.compacts
}

// flushWrites waits until every Ready handed to the writer is durable and
// Persisted, and every compaction asked for is done; the store is then
// the loop's to use directly.
func (r *Replica) flushWrites() error {
	for r.writing > 0 || r.compacting > 0 {
		select {
		case wr := <-r.w.done:
			r.persisted(wr)
		case <-r.w.exited:
			return r.storageFailed(r.w.failed())
		}
	}
	return nil
}

func (r *Replica) storageFailed(err error) error {
	r.log.Error("storage write failed, stopping node", zap.Error(err))
	return fmt.Errorf("driver: storage: %w", err)
}

func (r *Replica) apply(ents []consensus.Entry) {
	resolved := 0
	for _, e := range ents {
		for _, c := range e.Value.Cmds {
			v := r.sm.Apply(e.Slot, c.Data)
			if r.resolve(c.ID, reply{res: Result{Slot: e.Slot, Value: v}}) {
				resolved++
			}
			r.sinceSnap.entries++
			r.sinceSnap.bytes += len(c.Data)
			r.applied += int64(len(c.Data))
		}
		if r.cfg.SnapshotTrailingBytes > 0 && len(e.Value.Cmds) > 0 {
			r.trail = append(r.trail, slotBytes{slot: e.Slot, through: r.applied})
		}
	}
	if resolved > 0 {
		r.expect = resolved + len(r.held)
	}
	if len(ents) > 0 {
		r.serveReads(ents[len(ents)-1].Slot)
		r.releaseApplied(ents[len(ents)-1].Slot)
	}
}

// resolve answers the proposal id, if it is this replica's; false when
// it is not.
func (r *Replica) resolve(id uint64, rep reply) bool {
	w, ok := r.waiters[id]
	if ok {
		w <- rep
		delete(r.waiters, id)
	}
	return ok
}

func (r *Replica) failWaiters(err error) {
	for id, w := range r.waiters {
		w <- reply{err: err}
		delete(r.waiters, id)
	}
}

// call runs fn on the driver goroutine and waits for its error.
func (r *Replica) call(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	select {
	case r.ops <- func() { errc <- fn() }:
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-errc:
		return err
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}
