package consensus

import (
	"cmp"
	"slices"
)

// leadership is the state a node holds only while it leads.
type leadership struct {
	ballot Ballot
	// nextSlot is the next slot to decide; every slot below it is chosen
	// or has a proposal at this ballot. A proposal goes only to a slot
	// at or below commit + α (the activation rule); nextSlot may pass that
	// only over slots already known chosen.
	nextSlot uint64

	// inflight holds proposed, not yet chosen slots of this ballot.
	inflight map[uint64]*slotState

	// promises are Phase 1 answers for this ballot, from the campaign and
	// from voters of later configurations asked since.
	promises map[NodeID]*promiseState
	// inherited is the merged report of the promises, per slot not yet
	// decided; top is its highest slot. Every value a previous leader may
	// have chosen is at or below top.
	inherited map[uint64]Entry
	top       uint64

	pending      []Command // proposals waiting for a slot
	pendingBytes int

	confQueued *Membership // a membership change waiting for a slot
	confSlot   uint64      // slot of a proposed, not yet chosen change

	fresh []Entry // proposals made since the last Ready, sent as one Accept per peer

	lease leaseState

	heartbeatElapsed int
	quorumElapsed    int
	active           map[NodeID]bool   // peers heard from in this check-quorum period
	peerCommit       map[NodeID]uint64 // each peer's reported chosen prefix
}

// slotState tracks the acknowledgements of one in-flight slot.
type slotState struct {
	acks  []NodeID // voters and learners that accepted; few, so a slice
	value Value
	age   int // heartbeats since last (re)sent
}

func newLeadership(b Ballot) *leadership {
	return &leadership{ballot: b, inflight: map[uint64]*slotState{}, active: map[NodeID]bool{},
		peerCommit: map[NodeID]uint64{},
		inherited:  map[uint64]Entry{},
		lease:      leaseState{sentAt: map[uint64]int64{}, acks: map[uint64][]NodeID{}}}
}

// alpha is the activation distance of configurations and the depth of the
// Phase 2 pipeline.
func (n *Node) alpha() uint64 { return uint64(n.cfg.MaxInflightSlots) }

// promisedFor reports whether the leader may decide slot t: a quorum of
// t's configuration has promised this ballot for t.
func (n *Node) promisedFor(t uint64) bool {
	l := n.lead
	if n.cfg.Knobs.SingleConfigPhase1 {
		return true
	}
	return n.quorumOf(n.confAt(t), func(id NodeID) bool {
		p := l.promises[id]
		return p != nil && p.done() && p.from <= t
	})
}

// nextWork says what the leader would put in its next slot, if anything.
type slotWork uint8

const (
	workNone slotWork = iota
	workInherited
	workConf
	workPad
	workCommands
)

func (n *Node) nextWork() slotWork {
	l := n.lead
	t := l.nextSlot
	if t > n.hs.Commit+n.alpha() || !n.promisedFor(t) || !n.confAt(t).isVoter(n.id) {
		return workNone
	}
	switch {
	case t <= l.top:
		return workInherited
	case l.confQueued != nil && l.confSlot == 0 && l.lease.transferTo == 0:
		return workConf
	case len(l.pending) > 0:
		return workCommands
	case n.confs[len(n.confs)-1].activation > t:
		return workPad // a chosen change becomes active only once slots reach it
	}
	return workNone
}

// decide fills slots, in order, while there is work and the activation
// rule and the promises allow: inherited values first, then a queued
// membership change, then client commands batched up to MaxBatchBytes.
func (n *Node) decide() {
	l := n.lead
	for {
		t := l.nextSlot
		if e := n.log.ref(t); e != nil && e.Chosen {
			delete(l.inherited, t) // learned chosen meanwhile: nothing to propose
			l.nextSlot++
			continue
		}
		switch n.nextWork() {
		case workNone:
			n.askPromises(t)
			if len(l.pending) == 0 {
				l.pending = nil
			}
			return
		case workInherited:
			n.decideInherited(t)
		case workConf:
			l.confSlot = t
			n.proposeSlot(t, Value{Conf: l.confQueued})
			l.confQueued = nil
		case workPad:
			n.proposeSlot(t, Value{})
		case workCommands:
			n.proposeSlot(t, Value{Cmds: n.takeBatch()})
		}
		l.nextSlot++
	}
}

func (n *Node) decideInherited(t uint64) {
	l := n.lead
	e, ok := l.inherited[t]
	delete(l.inherited, t)
	if n.cfg.Knobs.IgnorePromisedValues {
		e, ok = Entry{}, false
	}
	switch {
	case ok && e.Chosen:
		if cur := n.log.ref(t); cur == nil || !cur.Chosen {
			n.write(Entry{Slot: t, Ballot: e.Ballot, Chosen: true, Value: e.Value})
		}
	case ok:
		if e.Value.Conf != nil {
			l.confSlot = t
		}
		n.proposeSlot(t, e.Value)
	default:
		n.proposeSlot(t, Value{})
	}
}

// takeBatch removes up to MaxBatchBytes of pending commands.
func (n *Node) takeBatch() []Command {
	l := n.lead
	size, k := 0, 0
	for k < len(l.pending) {
		c := len(l.pending[k].Data) + 8
		if k > 0 && size+c > n.cfg.MaxBatchBytes {
			break
		}
		size += c
		k++
	}
	cmds := make([]Command, k)
	copy(cmds, l.pending[:k])
	l.pending = l.pending[k:]
	l.pendingBytes -= size
	return cmds
}

// askPromises sends Prepare, at this ballot and from slot t, to the voters
// of t's configuration that have not promised for t.
func (n *Node) askPromises(t uint64) {
	l := n.lead
	if t > n.hs.Commit+n.alpha() || n.promisedFor(t) {
		return
	}
	for _, v := range n.confAt(t).voters() {
		if p := l.promises[v]; p == nil || p.from > t {
			l.promises[v] = &promiseState{from: t, next: t, early: map[uint64]Message{}}
			if v == n.id {
				n.selfPromise(l.promises[v])
				continue
			}
			n.send(Message{Type: MsgPrepare, To: v, Ballot: l.ballot, Slot: t})
		}
	}
}

// needsAsk reports whether askPromises has Prepares to send.
func (n *Node) needsAsk() bool {
	l := n.lead
	t := l.nextSlot
	if t > n.hs.Commit+n.alpha() || n.promisedFor(t) {
		return false
	}
	for _, v := range n.confAt(t).voters() {
		if p := l.promises[v]; p == nil || p.from > t {
			return true
		}
	}
	return false
}

// selfPromise completes p from this node's own log: the leader has
// promised its own ballot since the campaign.
func (n *Node) selfPromise(p *promiseState) {
	for s := p.from; s <= n.log.last(); s++ {
		if e := n.log.ref(s); e != nil {
			p.entries = append(p.entries, *e)
		}
	}
	p.commit, p.next = n.hs.Commit, LastOpen
	if n.role == Leader {
		n.inherit(p)
	}
}

// reaskPromises resends the Prepares still unanswered; messages get lost.
// Slots the leader has decided since need no report, so it asks only from
// the next undecided slot: an acceptor may have compacted the earlier ones
// away.
func (n *Node) reaskPromises() {
	l := n.lead
	for _, id := range sortedIDs(l.promises) {
		p := l.promises[id]
		if p.done() || id == n.id {
			continue
		}
		if from := max(p.from, l.nextSlot); from != p.from {
			*p = promiseState{from: from, next: from, early: map[uint64]Message{}}
		}
		n.send(Message{Type: MsgPrepare, To: id, Ballot: l.ballot, Slot: p.from})
	}
}

// proposeSlot starts Phase 2 for slot s with v at the current ballot. The
// leader's own acceptance counts once the record is durable (Advance).
func (n *Node) proposeSlot(s uint64, v Value) {
	l := n.lead
	n.write(Entry{Slot: s, Ballot: l.ballot, Value: v})
	l.inflight[s] = &slotState{value: v}
	l.fresh = append(l.fresh, Entry{Slot: s, Ballot: l.ballot, Value: v})
}

// flushAccepts sends the proposals made since the last Ready to every peer,
// in as few messages as the size bounds allow.
func (n *Node) flushAccepts() {
	l := n.lead
	if len(l.fresh) == 0 {
		return
	}
	for _, p := range n.peers() {
		n.sendAccepts(p, l.fresh)
	}
	l.fresh = nil
}

// sendAccepts sends ents to peer p, chunked by MaxMsgEntries and MaxMsgBytes.
func (n *Node) sendAccepts(p NodeID, ents []Entry) {
	for len(ents) > 0 {
		k, bytes := 0, 0
		for k < len(ents) && k < n.cfg.MaxMsgEntries {
			b := ents[k].Value.Bytes()
			if k > 0 && bytes+b > n.cfg.MaxMsgBytes {
				break
			}
			bytes += b
			k++
		}
		// Accepts may leave before the leader's own write is durable: the
		// leader counts its own acceptance only after Advance.
		n.eager = append(n.eager, Message{Type: MsgAccept, From: n.id, To: p, Ballot: n.lead.ballot,
			Commit: n.hs.Commit, Entries: ents[:k:k]})
		ents = ents[k:]
	}
}

func (n *Node) tickLeader() {
	l := n.lead
	l.heartbeatElapsed++
	l.quorumElapsed++
	if l.quorumElapsed >= n.cfg.ElectionTicks {
		// Check quorum: a leader cut off from a majority steps down, so
		// clients stop waiting on it and find the new leader.
		if !n.quorumOf(n.current(), func(id NodeID) bool { return id == n.id || l.active[id] }) {
			n.becomeFollower(0)
			n.resetElectionTimer()
			return
		}
		l.quorumElapsed = 0
		clear(l.active)
	}
	if l.heartbeatElapsed < n.cfg.HeartbeatTicks {
		return
	}
	l.heartbeatElapsed = 0
	n.tickTransfer()
	n.handOff()
	n.sendHeartbeat()
	n.retransmit()
	n.reaskPromises()
}

// retransmit resends every in-flight slot that has waited two heartbeat
// intervals to the peers that have not accepted it. Messages may be lost;
// this is what makes Phase 2 live again once the network heals.
func (n *Node) retransmit() {
	l := n.lead
	var per map[NodeID][]Entry
	peers := n.peers()
	for s, st := range l.inflight {
		st.age++
		if st.age < 2 {
			continue
		}
		st.age = 0
		for _, p := range peers {
			if !slices.Contains(st.acks, p) {
				if per == nil {
					per = map[NodeID][]Entry{}
				}
				per[p] = append(per[p], Entry{Slot: s, Ballot: l.ballot, Value: st.value})
			}
		}
	}
	for _, p := range peers {
		if ents := per[p]; len(ents) > 0 {
			slices.SortFunc(ents, func(a, b Entry) int { return cmp.Compare(a.Slot, b.Slot) })
			n.sendAccepts(p, ents)
		}
	}
}

// ack counts p's acceptance of slot s at the current ballot.
func (n *Node) ack(p NodeID, s uint64) {
	st, ok := n.lead.inflight[s]
	if !ok {
		return
	}
	if !slices.Contains(st.acks, p) {
		st.acks = append(st.acks, p)
	}
	if n.quorumOf(n.confAt(s), func(id NodeID) bool { return slices.Contains(st.acks, id) }) {
		n.chosen(s)
	}
}

func (n *Node) chosen(s uint64) {
	delete(n.lead.inflight, s)
	n.markChosen(s)
}

func (n *Node) onAccepted(m *Message) {
	if n.role != Leader || m.Ballot != n.lead.ballot {
		return
	}
	n.lead.active[m.From] = true
	for _, e := range m.Entries {
		n.ack(m.From, e.Slot)
	}
	n.peerCommitted(m.Commit)
	n.advanceCommit()
	n.followerProgress(m.From, m.Commit)
}

func (n *Node) onHeartbeatResp(m *Message) {
	if n.role != Leader {
		// The answer to a Learn this node sent a lagging peer: go on.
		if m.Slot == 0 && m.Commit < n.hs.Commit {
			n.sendLearn(m.From, m.Commit+1)
		}
		return
	}
	if m.Ballot != n.lead.ballot {
		return
	}
	n.lead.active[m.From] = true
	n.roundAcked(m.From, m.Slot)
	n.peerCommitted(m.Commit)
	n.advanceCommit() // may remove this leader
	if n.role == Leader && n.lacksRecords(m.Slot, m.Commit) {
		n.sendLearn(m.From, m.Commit+1)
	}
	n.followerProgress(m.From, m.Commit)
}

// followerProgress acts on a peer's chosen prefix: a transfer may proceed,
// a learner may be promoted.
func (n *Node) followerProgress(p NodeID, commit uint64) {
	if n.role != Leader {
		return
	}
	n.lead.peerCommit[p] = max(n.lead.peerCommit[p], commit)
	n.checkTransfer(p, commit)
	if n.role == Leader {
		n.maybePromote(p, commit)
	}
}

// peerCommitted uses a peer's chosen prefix: every in-flight slot at or
// below it is chosen, and our proposal there carries the chosen value
// (a proposal above the choosing ballot always does).
func (n *Node) peerCommitted(c uint64) {
	if n.role != Leader {
		return
	}
	for s := n.hs.Commit + 1; s <= min(c, n.lead.nextSlot-1); s++ {
		if _, ok := n.lead.inflight[s]; ok {
			n.chosen(s)
		}
	}
}

// sendLearn sends chosen values from slot from on to a peer that lags.
// Values compacted into a snapshot go as a snapshot instead. Any node may
// do this, not only the leader: chosen values are the same everywhere.
func (n *Node) sendLearn(p NodeID, from uint64) {
	if from < n.log.first() {
		n.needSnapshot(p)
		return
	}
	m := Message{Type: MsgLearn, To: p, Ballot: n.hs.Promised}
	bytes := 0
	for s := from; s <= n.hs.Commit && len(m.Entries) < n.cfg.MaxMsgEntries; s++ {
		e := n.log.get(s)
		if len(m.Entries) > 0 && bytes+e.Value.Bytes() > n.cfg.MaxMsgBytes {
			break
		}
		bytes += e.Value.Bytes()
		m.Entries = append(m.Entries, e)
	}
	n.send(m)
}
