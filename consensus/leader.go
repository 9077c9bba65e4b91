package consensus

import (
	"cmp"
	"math/bits"
	"slices"
)

// leadership is the state a node holds only while it leads.
type leadership struct {
	ballot   Ballot
	nextSlot uint64 // next slot to fill; every slot below has a proposal or is chosen

	// inflight holds proposed, not yet chosen slots of this ballot.
	// Invariant: len(inflight) <= MaxInflightSlots, except right after
	// taking over, when every inherited slot is re-proposed at once.
	inflight map[uint64]*slotState

	pending      []Command // proposals waiting for a slot
	pendingBytes int

	fresh []Entry // proposals made since the last Ready, sent as one Accept per peer

	// takeover is the highest slot inherited from Phase 1: every value a
	// previous leader may have chosen is at or below it.
	takeover uint64
	lease    leaseState

	heartbeatElapsed int
	quorumElapsed    int
	active           map[NodeID]bool // peers heard from in this check-quorum period
}

// slotState tracks the acknowledgements of one in-flight slot.
type slotState struct {
	acks  uint64 // bit i set: member i accepted
	value Value
	age   int // ticks since last (re)sent
}

func newLeadership(b Ballot) *leadership {
	return &leadership{ballot: b, inflight: map[uint64]*slotState{}, active: map[NodeID]bool{},
		lease: leaseState{sentAt: map[uint64]int64{}, acks: map[uint64]uint64{}}}
}

// canAssign reports whether pending proposals could get a slot now.
func (l *leadership) canAssign(n *Node) bool {
	return len(l.pending) > 0 && len(l.inflight) < n.cfg.MaxInflightSlots
}

// proposeSlot starts Phase 2 for slot s with v at the current ballot. The
// leader's own acceptance counts once the record is durable (Advance).
func (n *Node) proposeSlot(s uint64, v Value) {
	l := n.lead
	n.write(Entry{Slot: s, Ballot: l.ballot, Value: v})
	l.inflight[s] = &slotState{value: v}
	l.fresh = append(l.fresh, Entry{Slot: s, Ballot: l.ballot, Value: v})
}

// assignPending packs queued commands into new slots, up to MaxBatchBytes
// per slot, while the pipeline has room.
func (n *Node) assignPending() {
	l := n.lead
	for l.canAssign(n) {
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
		n.proposeSlot(l.nextSlot, Value{Cmds: cmds})
		l.nextSlot++
	}
	if len(l.pending) == 0 {
		l.pending = nil
	}
}

// flushAccepts sends the proposals made since the last Ready to every peer,
// in as few messages as the size bounds allow.
func (n *Node) flushAccepts() {
	l := n.lead
	if len(l.fresh) == 0 {
		return
	}
	for _, p := range n.members {
		if p != n.id {
			n.sendAccepts(p, l.fresh)
		}
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
		n.send(Message{Type: MsgAccept, To: p, Ballot: n.lead.ballot, Commit: n.hs.Commit, Entries: ents[:k:k]})
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
		if len(l.active)+1 < n.quorum {
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
	n.sendHeartbeat()
	n.retransmit()
}

// retransmit resends every in-flight slot that has waited a full heartbeat
// interval to the peers that have not accepted it. Messages may be lost;
// this is what makes Phase 2 live again once the network heals.
func (n *Node) retransmit() {
	l := n.lead
	var per map[NodeID][]Entry
	for s, st := range l.inflight {
		st.age++
		if st.age < 2 {
			continue
		}
		st.age = 0
		for _, p := range n.members {
			if p != n.id && st.acks&n.bit(p) == 0 {
				if per == nil {
					per = map[NodeID][]Entry{}
				}
				per[p] = append(per[p], Entry{Slot: s, Ballot: l.ballot, Value: st.value})
			}
		}
	}
	for _, p := range n.members {
		if ents := per[p]; len(ents) > 0 {
			slices.SortFunc(ents, func(a, b Entry) int { return cmp.Compare(a.Slot, b.Slot) })
			n.sendAccepts(p, ents)
		}
	}
}

func (n *Node) bit(p NodeID) uint64 { return 1 << n.index[p] }

// ack counts p's acceptance of slot s at the current ballot.
func (n *Node) ack(p NodeID, s uint64) {
	st, ok := n.lead.inflight[s]
	if !ok {
		return
	}
	st.acks |= n.bit(p)
	if bits.OnesCount64(st.acks) >= n.quorum {
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
	n.checkTransfer(m.From, m.Commit)
}

func (n *Node) onHeartbeatResp(m *Message) {
	if n.role != Leader || m.Ballot != n.lead.ballot {
		return
	}
	n.lead.active[m.From] = true
	n.roundAcked(m.From, m.Slot)
	n.peerCommitted(m.Commit)
	n.advanceCommit()
	if m.Commit < n.hs.Commit {
		n.sendLearn(m.From, m.Commit+1)
	}
	n.checkTransfer(m.From, m.Commit)
}

// peerCommitted uses a peer's chosen prefix: every in-flight slot at or
// below it is chosen, and our proposal there carries the chosen value
// (a proposal above the choosing ballot always does).
func (n *Node) peerCommitted(c uint64) {
	for s := n.hs.Commit + 1; s <= min(c, n.lead.nextSlot-1); s++ {
		if _, ok := n.lead.inflight[s]; ok {
			n.chosen(s)
		}
	}
}

// sendLearn sends chosen values from slot from on to a peer that lags.
func (n *Node) sendLearn(p NodeID, from uint64) {
	m := Message{Type: MsgLearn, To: p, Ballot: n.lead.ballot}
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
