package consensus

import (
	"cmp"
	"fmt"
	"slices"
)

// Node is one member's protocol state machine. It is not safe for
// concurrent use: one driver goroutine owns it.
type Node struct {
	cfg Config
	id  NodeID
	// confs are the configurations that govern undecided slots, sorted by
	// activation; see membership.go.
	confs       []conf
	confVersion uint64 // bumped whenever confs gains a configuration

	hs        HardState
	hsChanged bool
	log       slotLog
	applied   uint64 // Invariant: applied <= hs.Commit.
	snapIndex uint64 // last slot of the latest durable snapshot

	ticks     int            // ticks since start
	snapAsked map[NodeID]int // peer -> tick a snapshot was last asked for
	snapshots []NodeID       // peers to send a snapshot, for the next Ready

	role   Role
	leader NodeID // last known leader, 0 if none

	// maxRound is the highest ballot round seen anywhere; a campaign picks
	// a round above it.
	maxRound uint64

	// Timers, in ticks.
	electionElapsed int
	electionTimeout int // randomized, includes back-off
	sinceLeader     int // ticks since the last message from a live leader
	backoff         int // consecutive failed campaigns

	pre  *preCheck
	camp *campaign
	lead *leadership

	// Lease, on the monotonic clock (ns) given by SetClock.
	clock       int64
	clockSet    bool
	leaseUntil  int64  // refuse promises to others until then
	leaseHolder NodeID // the leader the refusal protects

	// Output accumulated for the next Ready.
	msgs       []Message
	eager      []Message
	writes     []Entry
	dropped    []Command
	readStates []ReadState
}

// NewNode builds a node from its configuration and its durable state, as
// returned by storage. Entries may be in any order.
func NewNode(cfg Config, st State) (*Node, error) {
	hs, entries := st.Hard, st.Entries
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: c, id: c.ID, snapAsked: map[NodeID]int{}}
	boot := conf{activation: 1}
	for _, id := range c.Members {
		boot.m.Members = append(boot.m.Members, Member{ID: id})
	}
	slices.SortFunc(boot.m.Members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	n.confs = []conf{boot}
	if len(st.Configs) > 0 {
		n.setConfigs(st.Configs)
	}
	n.hs = hs
	n.log.base, n.snapIndex, n.applied = st.SnapIndex, st.SnapIndex, st.SnapIndex
	n.hs.Commit = max(n.hs.Commit, st.SnapIndex)
	n.maxRound = hs.Promised.Round
	for _, e := range entries {
		if e.Slot == 0 {
			return nil, fmt.Errorf("consensus: restore: entry with slot 0")
		}
		if e.Slot <= n.hs.Commit {
			e.Chosen = true
		}
		n.log.set(e)
	}
	for s := st.SnapIndex + 1; s <= n.hs.Commit; s++ {
		if !n.log.get(s).Chosen {
			return nil, fmt.Errorf("consensus: restore: commit %d but slot %d is missing", n.hs.Commit, s)
		}
	}
	// Replay the chosen prefix after the snapshot to rebuild the
	// configurations.
	n.hs.Commit = st.SnapIndex
	n.advanceCommit()
	n.resetElectionTimer()
	return n, nil
}

// ID returns the node's identity.
func (n *Node) ID() NodeID { return n.id }

// Tick advances the node's logical clock by one tick.
func (n *Node) Tick() {
	n.ticks++
	if n.role == Leader {
		n.tickLeader()
		return
	}
	n.tickElection()
}

// Step feeds one message from a peer into the node. It returns an error,
// and changes nothing, when the message is malformed or out of protocol.
func (n *Node) Step(m Message) error {
	if err := n.validate(&m); err != nil {
		return err
	}
	if m.Ballot.Round > n.maxRound {
		n.maxRound = m.Ballot.Round
	}
	switch m.Type {
	case MsgPrepare:
		n.onPrepare(&m)
	case MsgPromise:
		n.onPromise(&m)
	case MsgReject:
		n.onReject(&m)
	case MsgAccept:
		n.onAccept(&m)
	case MsgAccepted:
		n.onAccepted(&m)
	case MsgHeartbeat:
		n.onHeartbeat(&m)
	case MsgHeartbeatResp:
		n.onHeartbeatResp(&m)
	case MsgLearn:
		n.onLearn(&m)
	case MsgPreCheck:
		n.onPreCheck(&m)
	case MsgPreCheckResp:
		n.onPreCheckResp(&m)
	case MsgTimeoutNow:
		n.onTimeoutNow(&m)
	}
	return nil
}

func (n *Node) validate(m *Message) error {
	// Any member, past or future, may speak: a node that lags does not
	// know every configuration yet. The transport authenticates peers.
	if m.From == 0 || m.From == n.id {
		return fmt.Errorf("%w: from %d", ErrUnknownPeer, m.From)
	}
	if m.To != n.id {
		return fmt.Errorf("%w: addressed to %d, this is %d", ErrBadMessage, m.To, n.id)
	}
	if m.Type == MsgInvalid || m.Type >= msgTypeCount {
		return fmt.Errorf("%w: type %d", ErrBadMessage, m.Type)
	}
	switch m.Type {
	case MsgPrepare, MsgAccept, MsgHeartbeat, MsgPreCheck, MsgTimeoutNow:
		// A proposer speaks only with its own ballot.
		if m.Ballot.Node != m.From || m.Ballot.Round == 0 {
			return fmt.Errorf("%w: %s from %d with ballot %s", ErrBadMessage, m.Type, m.From, m.Ballot)
		}
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Slot == 0 {
			return fmt.Errorf("%w: %s entry with slot 0", ErrBadMessage, m.Type)
		}
		if m.Type == MsgLearn && !e.Chosen {
			return fmt.Errorf("%w: learn entry %d not marked chosen", ErrBadMessage, e.Slot)
		}
		if m.Type == MsgPromise && (e.Slot < m.Slot || e.Slot > m.Last) {
			return fmt.Errorf("%w: promise entry %d outside [%d,%d]", ErrBadMessage, e.Slot, m.Slot, m.Last)
		}
	}
	if m.Type == MsgPromise && m.Last < m.Slot {
		return fmt.Errorf("%w: promise range [%d,%d]", ErrBadMessage, m.Slot, m.Last)
	}
	return nil
}

// Propose submits commands. On the leader they are queued and given slots
// at the next Ready; elsewhere Propose refuses with *NotLeaderError.
func (n *Node) Propose(cmds ...Command) error {
	if len(cmds) == 0 {
		return ErrProposalEmpty
	}
	if n.role != Leader {
		return &NotLeaderError{Leader: n.leader}
	}
	if n.lead.lease.transferTo != 0 {
		return ErrTransferring
	}
	size := 0
	for _, c := range cmds {
		if len(c.Data)+8 > n.cfg.MaxBatchBytes {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(c.Data), n.cfg.MaxBatchBytes-8)
		}
		size += len(c.Data) + 8
	}
	if n.lead.pendingBytes+size > n.cfg.MaxPendingBytes {
		return ErrBusy
	}
	n.lead.pending = append(n.lead.pending, cmds...)
	n.lead.pendingBytes += size
	return nil
}

// HasReady reports whether Ready would return anything to do.
func (n *Node) HasReady() bool {
	return n.hsChanged || len(n.writes) > 0 || len(n.msgs) > 0 || len(n.eager) > 0 || len(n.dropped) > 0 ||
		len(n.readStates) > 0 || len(n.snapshots) > 0 || n.applied < n.hs.Commit ||
		(n.role == Leader && (n.nextWork() != workNone || n.lead.lease.needRound || n.needsAsk()))
}

// Ready collects what the driver must do next. The driver must finish it
// and call Advance before calling Ready again.
func (n *Node) Ready() Ready {
	if n.role == Leader {
		n.decide()
		n.flushAccepts()
		if n.lead.lease.needRound {
			n.sendHeartbeat()
		}
		n.releaseReads() // reads wait for the leader to become authoritative too
	}
	rd := Ready{
		HardState:        n.hs,
		HardStateChanged: n.hsChanged,
		Entries:          n.writes,
		Messages:         n.msgs,
		Eager:            n.eager,
		Dropped:          n.dropped,
		ReadStates:       n.readStates,
		Snapshots:        n.snapshots,
		Role:             n.role,
		Leader:           n.leader,
	}
	for s := n.applied + 1; s <= n.hs.Commit; s++ {
		rd.Committed = append(rd.Committed, n.log.get(s))
	}
	n.hsChanged = false
	n.writes, n.msgs, n.eager, n.dropped, n.readStates, n.snapshots = nil, nil, nil, nil, nil, nil
	return rd
}

// Advance tells the node that rd was persisted, sent and applied. It is
// Release then Persisted.
func (n *Node) Advance(rd Ready) {
	n.Release(rd)
	n.Persisted(rd)
}

// Release tells the node that rd's committed entries were applied and its
// work handed off, while its HardState and Entries may still be on their
// way to disk. A driver that writes on another goroutine calls Release at
// once and Persisted when the write is durable; Ready may be called again
// in between. Such a driver must then send rd.Messages only after the
// write, and must write and send the Readies in the order they came: a
// message reflects the state of every Ready before it.
func (n *Node) Release(rd Ready) {
	if k := len(rd.Committed); k > 0 {
		n.applied = rd.Committed[k-1].Slot
	}
}

// Persisted tells the node that rd's HardState and Entries are durable.
// Only then do its own promise and acceptances count: a promise or an
// acceptance that a crash can take back must never make up a quorum.
// Called late, it counts only what still matters: a promise for the
// campaign under way and acceptances in the ballot it still leads with.
func (n *Node) Persisted(rd Ready) {
	if n.camp != nil && rd.HardStateChanged && rd.HardState.Promised == n.camp.ballot {
		n.onSelfPromise()
	}
	if n.role == Leader {
		for i := range rd.Entries {
			if rd.Entries[i].Ballot == n.lead.ballot && !rd.Entries[i].Chosen {
				n.ack(n.id, rd.Entries[i].Slot)
			}
		}
		n.advanceCommit()
	}
}

// Status reports the node's state.
func (n *Node) Status() Status {
	st := Status{ID: n.id, Role: n.role, Leader: n.leader, Promised: n.hs.Promised,
		Commit: n.hs.Commit, Applied: n.applied, LastSlot: n.log.last(), LeaseHeld: n.LeaseHolds()}
	if n.lead != nil {
		st.Inflight = len(n.lead.inflight)
		if st.LeaseHeld {
			st.LeaseUntil = n.lead.lease.start + n.leaderLease()
		}
	}
	return st
}

func (n *Node) send(m Message) {
	m.From = n.id
	n.msgs = append(n.msgs, m)
}

func (n *Node) broadcast(m Message) {
	for _, p := range n.peers() {
		m.To = p
		n.send(m)
	}
}

// promise raises the promised ballot; the change is persisted before any
// message in the same Ready is sent.
func (n *Node) promise(b Ballot) {
	if n.hs.Promised.Less(b) {
		n.hs.Promised = b
		n.hsChanged = true
	}
}

// write records e in the log and queues it for persistence.
func (n *Node) write(e Entry) {
	n.log.set(e)
	n.writes = append(n.writes, e)
}

// markChosen records that slot s holds its chosen value.
func (n *Node) markChosen(s uint64) {
	if e := n.log.ref(s); e != nil && !e.Chosen {
		e.Chosen = true
	}
}

// advanceCommit moves the commit index over every contiguous chosen slot,
// and takes note of the configurations chosen on the way.
func (n *Node) advanceCommit() {
	for {
		e := n.log.ref(n.hs.Commit + 1)
		if e == nil || !e.Chosen {
			return
		}
		n.hs.Commit++
		if e.Value.Conf != nil {
			if n.role == Leader && n.lead.confSlot == e.Slot {
				n.lead.confSlot = 0
			}
			n.chosenConf(e.Slot, *e.Value.Conf)
		}
	}
}

// learnCommit applies a leader's announcement that every slot <= commit is
// chosen: a slot we hold at the announcing leader's ballot holds the value
// that ballot proposed, which is the chosen one.
func (n *Node) learnCommit(b Ballot, commit uint64) {
	last := min(commit, n.log.last())
	for s := n.hs.Commit + 1; s <= last; s++ {
		if e := n.log.ref(s); e != nil && e.Ballot == b {
			e.Chosen = true
		}
	}
	n.advanceCommit()
}

func (n *Node) becomeFollower(leader NodeID) {
	if n.role == Leader {
		n.dropped = append(n.dropped, n.lead.pending...)
		n.lead = nil
	}
	n.role = Follower
	n.leader = leader
	n.camp = nil
	n.pre = nil
}
