package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/clockd/clockd/consensus"
)

// Options describe one simulated run. Everything random is drawn from Seed.
type Options struct {
	Seed  uint64
	Nodes int // acceptors; default 3

	ChaosMs int64 // how long faults are injected, virtual ms; default 4000
	CalmMs  int64 // how long the healed cluster gets to finish; default 4000

	TickMs         int64   // node tick period; default 10
	DropRate       float64 // per message, during chaos
	DupRate        float64
	CrashRate      float64 // per node per tick, during chaos
	PartitionRate  float64 // per tick, during chaos: a new partition
	Clients        int     // concurrent proposers; default 3
	Spares         int     // nodes outside the bootstrap configuration, for membership changes
	MemberRate     float64 // per tick, during chaos: the leader is asked for a membership change
	SnapshotEvery  uint64  // applied slots between snapshots; 0: never
	CmdsPerClient  int     // default 20
	ClientPatience int64   // ms a client waits for its command before retrying; default 300

	// MaxDriftPPM bounds each node's clock rate error; nodes draw their
	// rate in [1-ρ, 1+ρ], and both their ticks and their lease clocks run
	// at that rate. Default 400000 (40%), far beyond real hardware, so a
	// lease margin that ignores drift fails quickly.
	MaxDriftPPM int
	LeaseMs     int64   // default 100
	ReadRate    float64 // chance a client step issues a read; default 0.02
	// TransferRate is the chance per tick, during chaos, that the leader
	// is asked to transfer its leadership.
	TransferRate float64

	// Trace, if set, receives a line per notable event: prepares,
	// membership writes, crashes, and every message and write touching
	// TraceSlot. For replaying a failing seed.
	Trace     func(format string, args ...any)
	TraceSlot uint64

	Knobs consensus.Knobs
	// ReplyBeforePersist breaks the driver: messages go out before the
	// Ready's writes are synced, and a crash loses the unsynced writes.
	ReplyBeforePersist bool

	// AsyncWrites drives nodes as a driver that writes on its own
	// goroutine does: a Ready without a HardState change is released at
	// once (Node.Release) and the node goes on stepping; its write, then
	// its messages, then Node.Persisted follow later, in Ready order. A
	// crash loses the writes still in flight. A Ready that changes the
	// HardState waits for those writes and is handled in place.
	AsyncWrites bool
	// EarlyPersisted breaks AsyncWrites: Persisted is called with
	// Release, so a node counts its own acceptance before it is durable.
	EarlyPersisted bool
}

// alpha is the pipeline depth and configuration activation distance the
// simulated nodes use; small, so changes activate within a run.
const alpha = 16

// DefaultOptions returns the fault mix CI runs, for seed.
func DefaultOptions(seed uint64) Options {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return Options{
		Seed:          seed,
		Nodes:         []int{3, 3, 5}[r.IntN(3)],
		DropRate:      r.Float64() * 0.2,
		DupRate:       r.Float64() * 0.1,
		CrashRate:     r.Float64() * 0.01,
		PartitionRate: r.Float64() * 0.05,
		Clients:       1 + r.IntN(5),
		CmdsPerClient: 10 + r.IntN(60),
		TransferRate:  r.Float64() * 0.01,
		Spares:        2,
		MemberRate:    r.Float64() * 0.1,
		SnapshotEvery: uint64(r.IntN(40)),
		AsyncWrites:   r.IntN(2) == 0,
	}
}

func (o *Options) fill() {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Clients <= 0 {
		o.Clients = 3
	}
	if o.CmdsPerClient <= 0 {
		o.CmdsPerClient = 20
	}
	def(&o.ChaosMs, 4000)
	def(&o.CalmMs, 4000)
	def(&o.TickMs, 10)
	def(&o.ClientPatience, 300)
	def(&o.LeaseMs, 100)
	if o.MaxDriftPPM <= 0 {
		o.MaxDriftPPM = 400000
	}
	if o.ReadRate <= 0 {
		o.ReadRate = 0.02
	}
}

// Result summarises a run that kept every invariant.
type Result struct {
	Chosen    int // slots chosen
	Messages  int // messages delivered
	Crashes   int
	Reads     int   // linearizable reads released and checked
	Transfers int   // leadership transfers asked for
	Changes   int   // membership changes accepted
	LeaseMs   int64 // ms during which some node held a valid lease
	Elapsed   int64 // virtual ms until every command was applied everywhere
}

// Run simulates one cluster and returns an error naming the seed and the
// first invariant broken, if any.
func Run(opts Options) (Result, error) {
	opts.fill()
	s := newSim(opts)
	res, err := s.run()
	if err != nil {
		return res, fmt.Errorf("seed %d: t=%dms: %w", opts.Seed, s.now, err)
	}
	return res, nil
}

// disk is a node's simulated storage: what survives a crash.
type disk struct {
	hs       consensus.HardState
	entries  map[uint64]consensus.Entry
	snap     snapshotImage
	unsynced []consensus.Ready // written but not yet synced (broken driver only)
	// writing holds released Readies whose writes are in flight
	// (AsyncWrites), oldest first.
	writing []consensus.Ready
}

type simNode struct {
	id       consensus.NodeID
	node     *consensus.Node // nil while crashed
	disk     *disk
	downFor  int64
	rate     float64 // clock rate relative to true time
	offset   int64   // clock reading at true time 0, ns
	nextTick int64   // clock reading of the next tick
}

// clock is the node's monotonic clock reading at true time now (ms), in ns.
func (sn *simNode) clock(now int64) int64 {
	return sn.offset + int64(float64(now)*1e6*sn.rate)
}

type sim struct {
	opts    Options
	rng     *rand.Rand
	now     int64
	ids     []consensus.NodeID // every node, spares included
	boot    []consensus.NodeID // the bootstrap voters
	nodes   map[consensus.NodeID]*simNode
	net     *network
	check   *checker
	clients []*client
	res     Result
}

func newSim(opts Options) *sim {
	s := &sim{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 1)), net: newNetwork(),
		nodes: map[consensus.NodeID]*simNode{}}
	for i := 1; i <= opts.Nodes; i++ {
		s.ids = append(s.ids, consensus.NodeID(i))
	}
	s.boot = slices.Clone(s.ids)
	for i := range opts.Spares {
		s.ids = append(s.ids, consensus.NodeID(opts.Nodes+1+i))
	}
	s.check = newChecker(slices.Clone(s.boot), alpha)
	rho := float64(opts.MaxDriftPPM) / 1e6
	for _, id := range s.ids {
		// Half the clocks sit at an extreme of the allowed drift, where
		// lease margins are tightest.
		drift := 2*s.rng.Float64() - 1
		if s.rng.IntN(2) == 0 {
			drift = float64(2*s.rng.IntN(2) - 1)
		}
		s.nodes[id] = &simNode{id: id, disk: &disk{entries: map[uint64]consensus.Entry{}},
			rate: 1 + rho*drift, offset: s.rng.Int64N(1 << 40)}
		s.nodes[id].nextTick = s.nodes[id].offset
	}
	for i := range opts.Clients {
		s.clients = append(s.clients, newClient(i, opts.CmdsPerClient))
	}
	return s
}

func (s *sim) run() (Result, error) {
	for _, id := range s.ids {
		if err := s.start(id); err != nil {
			return s.res, err
		}
	}
	end := s.opts.ChaosMs + s.opts.CalmMs
	for s.now = 0; s.now <= end; s.now++ {
		chaos := s.now < s.opts.ChaosMs
		if s.now == s.opts.ChaosMs {
			if err := s.heal(); err != nil {
				return s.res, err
			}
		}
		if err := s.step(chaos); err != nil {
			return s.res, err
		}
		if !chaos && s.allDone() {
			s.res.Elapsed = s.now
			s.res.Reads = s.check.Reads
			return s.res, nil
		}
	}
	return s.res, s.livenessError()
}

// step advances virtual time by one millisecond.
func (s *sim) step(chaos bool) error {
	for {
		f, ok := s.net.next(s.now)
		if !ok {
			break
		}
		deliver := s.deliver
		if f.snap != nil {
			deliver = func(m consensus.Message) error { return s.installSnapshot(m.From, m.To, f.snap) }
		}
		if err := deliver(f.msg); err != nil {
			return err
		}
	}
	// Each node ticks every TickMs of its own, drifting clock.
	tickNs := s.opts.TickMs * 1e6
	for _, id := range s.ids {
		sn := s.nodes[id]
		for sn.clock(s.now) >= sn.nextTick {
			sn.nextTick += tickNs
			if err := s.tickNode(id, chaos); err != nil {
				return err
			}
		}
	}
	if chaos && s.now%s.opts.TickMs == 0 {
		s.maybePartition()
		if err := s.maybeTransfer(); err != nil {
			return err
		}
		if err := s.maybeChangeMembers(); err != nil {
			return err
		}
	}
	for _, c := range s.clients {
		if err := c.step(s); err != nil {
			return err
		}
	}
	return s.checkLeases()
}

// checkLeases fails if two nodes believe they hold a valid lease at the
// same true instant.
func (s *sim) checkLeases() error {
	var holder consensus.NodeID
	for _, id := range s.ids {
		sn := s.nodes[id]
		if sn.node == nil {
			continue
		}
		sn.node.SetClock(sn.clock(s.now))
		if !sn.node.LeaseHolds() {
			continue
		}
		if holder != 0 {
			return fmt.Errorf("nodes %d and %d both hold a leader lease", holder, id)
		}
		holder = id
	}
	if holder != 0 {
		s.res.LeaseMs++
	}
	return nil
}

func (s *sim) tickNode(id consensus.NodeID, chaos bool) error {
	sn := s.nodes[id]
	if sn.node == nil {
		sn.downFor -= s.opts.TickMs
		if sn.downFor <= 0 {
			return s.start(id)
		}
		return nil
	}
	if chaos && s.rng.Float64() < s.opts.CrashRate {
		s.crash(id)
		return nil
	}
	sn.node.SetClock(sn.clock(s.now))
	if err := s.maybeCompleteWrites(sn, 0.5); err != nil {
		return err
	}
	sn.node.Tick()
	return s.process(sn)
}

func (s *sim) deliver(m consensus.Message) error {
	sn := s.nodes[m.To]
	if sn.node == nil || s.net.isCut(m.From, m.To) {
		return nil
	}
	s.res.Messages++
	sn.node.SetClock(sn.clock(s.now))
	if err := s.maybeCompleteWrites(sn, 0.3); err != nil {
		return err
	}
	if err := sn.node.Step(m); err != nil {
		return fmt.Errorf("node %d refused a %s from %d: %w", m.To, m.Type, m.From, err)
	}
	return s.process(sn)
}

// process runs the driver loop for one node: persist, send, apply, advance.
func (s *sim) process(sn *simNode) error {
	for sn.node.HasReady() {
		rd := sn.node.Ready()
		if err := s.observe(sn.id, rd.Eager, nil); err != nil {
			return err
		}
		for _, m := range rd.Eager {
			s.send(m)
		}
		if s.now < s.opts.ChaosMs && rd.MustSync() && s.rng.Float64() < s.opts.CrashRate {
			// Power fails during the write: nothing of this Ready is
			// durable and nothing of it was sent.
			s.crash(sn.id)
			return nil
		}
		async := s.opts.AsyncWrites && !rd.HardStateChanged
		if async {
			// Written, then sent, by completeWrites.
			sn.disk.writing = append(sn.disk.writing, rd)
		} else if err := s.persistAndSend(sn, &rd); err != nil {
			return err
		}
		for _, e := range rd.Committed {
			if err := s.check.apply(sn.id, e); err != nil {
				return err
			}
			s.res.Chosen = max(s.res.Chosen, int(e.Slot))
			for _, c := range s.clients {
				c.applied(s, e)
			}
		}
		for _, p := range rd.Snapshots {
			s.sendSnapshot(sn, p)
		}
		for _, r := range rd.ReadStates {
			if err := s.check.read(r, s.now); err != nil {
				return fmt.Errorf("node %d: %w", sn.id, err)
			}
		}
		switch {
		case !async:
			sn.node.Advance(rd)
		case s.opts.EarlyPersisted:
			sn.node.Advance(rd)
		default:
			sn.node.Release(rd)
		}
		if err := s.maybeSnapshot(sn); err != nil {
			return err
		}
	}
	return nil
}

// persistAndSend handles rd in place, after the writes in flight: it is
// written (or, for the broken ReplyBeforePersist driver, left to a lazy
// flusher), then its messages are sent.
func (s *sim) persistAndSend(sn *simNode, rd *consensus.Ready) error {
	if err := s.completeWrites(sn); err != nil {
		return err
	}
	if err := s.observe(sn.id, rd.Messages, rd.Entries); err != nil {
		return err
	}
	if s.opts.ReplyBeforePersist {
		// A lazy background flusher syncs every 50ms.
		sn.disk.unsynced = append(sn.disk.unsynced, *rd)
		if s.now%50 == 0 {
			sn.disk.sync()
		}
	} else {
		sn.disk.save(rd)
	}
	for _, m := range rd.Messages {
		s.send(m)
	}
	return nil
}

// completeWrites finishes sn's writes in flight, in Ready order: each is
// written, then its messages are sent; then the node learns they are
// durable. The caller runs process afterwards for what that unblocked.
func (s *sim) completeWrites(sn *simNode) error {
	done := sn.disk.writing
	sn.disk.writing = nil
	for i := range done {
		if err := s.observe(sn.id, done[i].Messages, done[i].Entries); err != nil {
			return err
		}
		sn.disk.save(&done[i])
		for _, m := range done[i].Messages {
			s.send(m)
		}
	}
	if !s.opts.EarlyPersisted {
		for i := range done {
			sn.node.Persisted(done[i])
		}
	}
	return nil
}

// maybeCompleteWrites finishes sn's writes in flight with probability p,
// so they stay in flight across a varying number of steps.
func (s *sim) maybeCompleteWrites(sn *simNode, p float64) error {
	if len(sn.disk.writing) == 0 || s.rng.Float64() >= p {
		return nil
	}
	return s.completeWrites(sn)
}

func (s *sim) trace(format string, args ...any) {
	if s.opts.Trace != nil {
		s.opts.Trace("t=%dms "+format, append([]any{s.now}, args...)...)
	}
}

// observe feeds the checker with what a Ready says the node sent and
// wrote.
func (s *sim) observe(id consensus.NodeID, msgs []consensus.Message, writes []consensus.Entry) error {
	for _, m := range msgs {
		for _, e := range m.Entries {
			if e.Slot == s.opts.TraceSlot {
				s.trace("node %d sends %s to %d b=%s slot %d hash %x conf=%v", id, m.Type, m.To, m.Ballot, e.Slot, hashValue(e.Value), e.Value.Conf)
			}
		}
		if m.Type == consensus.MsgPrepare {
			s.trace("node %d prepare to %d b=%s from %d", id, m.To, m.Ballot, m.Slot)
		}
		switch m.Type {
		case consensus.MsgAccept:
			for _, e := range m.Entries {
				if err := s.check.proposed(e.Slot, m.Ballot, e.Value); err != nil {
					return err
				}
			}
		case consensus.MsgPromise:
			s.check.promise(id, m.Ballot)
		case consensus.MsgAccepted:
			for _, e := range m.Entries {
				if err := s.check.accept(id, e.Slot, m.Ballot); err != nil {
					return err
				}
			}
		}
	}
	// A leader accepts its own proposals by writing them.
	for _, e := range writes {
		if e.Slot == s.opts.TraceSlot {
			s.trace("node %d writes slot %d b=%s chosen=%v hash %x", id, e.Slot, e.Ballot, e.Chosen, hashValue(e.Value))
		}
		if e.Value.Conf != nil {
			s.trace("node %d writes conf at slot %d b=%s: %v", id, e.Slot, e.Ballot, e.Value.Conf.Members)
		}
		if e.Ballot.Node == id && !e.Chosen {
			if err := s.check.proposed(e.Slot, e.Ballot, e.Value); err != nil {
				return err
			}
			if err := s.check.accept(id, e.Slot, e.Ballot); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *disk) save(rd *consensus.Ready) {
	if rd.HardStateChanged {
		d.hs = rd.HardState
	}
	if len(rd.Entries) > 0 {
		// Like the bolt store: the commit index rides along with entries.
		d.hs.Commit = max(d.hs.Commit, rd.HardState.Commit)
		for _, e := range rd.Entries {
			d.entries[e.Slot] = e
		}
	}
}

func (d *disk) sync() {
	for i := range d.unsynced {
		d.save(&d.unsynced[i])
	}
	d.unsynced = nil
}

func (s *sim) send(m consensus.Message) {
	chaos := s.now < s.opts.ChaosMs
	if chaos && s.rng.Float64() < s.opts.DropRate {
		return
	}
	copies := 1
	if chaos && s.rng.Float64() < s.opts.DupRate {
		copies = 2
	}
	for range copies {
		delay := 1 + s.rng.Int64N(10)
		if chaos && s.rng.IntN(20) == 0 {
			delay += s.rng.Int64N(200) // a straggler, overtaken by later messages
		}
		s.net.push(s.now+delay, m, nil)
	}
}

func (s *sim) start(id consensus.NodeID) error {
	sn := s.nodes[id]
	ents := make([]consensus.Entry, 0, len(sn.disk.entries))
	for _, e := range sn.disk.entries {
		ents = append(ents, e)
	}
	slices.SortFunc(ents, func(a, b consensus.Entry) int { return int(a.Slot) - int(b.Slot) })
	cfg := consensus.Config{
		ID:               id,
		Members:          s.ids,
		Rand:             rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64())),
		Knobs:            s.opts.Knobs,
		Lease:            time.Duration(s.opts.LeaseMs) * time.Millisecond,
		MaxInflightSlots: alpha,
		MaxDriftPPM:      s.opts.MaxDriftPPM,
	}
	cfg.Join = !slices.Contains(s.boot, id)
	cfg.Members = s.boot
	n, err := consensus.NewNode(cfg, consensus.State{Hard: sn.disk.hs, Entries: ents,
		SnapIndex: sn.disk.snap.index, Configs: sn.disk.snap.configs})
	if err != nil {
		return fmt.Errorf("restart node %d: %w", id, err)
	}
	n.SetClock(sn.clock(s.now))
	sn.node = n
	s.check.restarted(id, sn.disk.snap.index)
	return s.process(sn)
}

// crash stops a node at once: whatever it had not synced is lost.
func (s *sim) crash(id consensus.NodeID) {
	s.trace("node %d crashes", id)
	sn := s.nodes[id]
	sn.node = nil
	sn.disk.unsynced = nil
	sn.disk.writing = nil
	sn.downFor = 50 + s.rng.Int64N(500)
	s.res.Crashes++
}

// maybePartition cuts or heals links: a symmetric split into two sides,
// or one direction of one link.
func (s *sim) maybePartition() {
	if s.rng.Float64() >= s.opts.PartitionRate {
		return
	}
	s.net.heal()
	switch s.rng.IntN(4) {
	case 0: // healed
	case 1:
		side := map[consensus.NodeID]bool{}
		for _, id := range s.ids {
			side[id] = s.rng.IntN(2) == 0
		}
		for _, a := range s.ids {
			for _, b := range s.ids {
				if side[a] != side[b] {
					s.net.setCut(a, b, true)
				}
			}
		}
	case 2:
		a := s.ids[s.rng.IntN(len(s.ids))]
		b := s.ids[s.rng.IntN(len(s.ids))]
		s.net.setCut(a, b, true)
	case 3: // the leader alone
		for _, l := range s.ids {
			if n := s.nodes[l].node; n != nil && n.Status().Role == consensus.Leader {
				for _, b := range s.ids {
					if b != l {
						s.net.setCut(l, b, true)
						s.net.setCut(b, l, true)
					}
				}
				break
			}
		}
	}
}

// maybeTransfer asks the leader, now and then, to hand over to a random
// member.
func (s *sim) maybeTransfer() error {
	if s.rng.Float64() >= s.opts.TransferRate {
		return nil
	}
	for _, id := range s.ids {
		sn := s.nodes[id]
		if sn.node == nil || sn.node.Status().Role != consensus.Leader {
			continue
		}
		target := s.ids[s.rng.IntN(len(s.ids))]
		sn.node.SetClock(sn.clock(s.now))
		err := sn.node.TransferLeader(target)
		if err != nil && !errors.Is(err, consensus.ErrUnknownMember) && !errors.Is(err, consensus.ErrNotVoter) {
			return fmt.Errorf("transfer %d -> %d: %w", id, target, err)
		}
		s.res.Transfers++
		return s.process(sn)
	}
	return nil
}

// heal ends the chaos: links are restored and crashed nodes restart.
func (s *sim) heal() error {
	s.net.heal()
	for _, id := range s.ids {
		if s.nodes[id].node == nil {
			if err := s.start(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// allDone reports whether every client's commands are applied on every node.
func (s *sim) allDone() bool {
	for _, c := range s.clients {
		if !c.done() {
			return false
		}
	}
	target := s.clientsMaxSlot()
	for _, id := range s.check.lastMembers() {
		if s.nodes[id].node.Status().Applied < target {
			return false
		}
	}
	return true
}

func (s *sim) clientsMaxSlot() uint64 {
	var m uint64
	for _, c := range s.clients {
		m = max(m, c.maxSlot)
	}
	return m
}

func (s *sim) livenessError() error {
	var st []string
	for _, id := range s.ids {
		n := s.nodes[id].node
		st = append(st, fmt.Sprintf("%+v", n.Status()))
	}
	for _, c := range s.clients {
		if !c.done() {
			return fmt.Errorf("liveness: client %d still waits for command %d after %dms of calm; nodes: %v",
				c.id, c.next, s.opts.CalmMs, st)
		}
	}
	return fmt.Errorf("liveness: not every node applied slot %d after %dms of calm; nodes: %v",
		s.clientsMaxSlot(), s.opts.CalmMs, st)
}
