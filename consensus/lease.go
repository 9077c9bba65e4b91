package consensus

import "slices"

// Leader leases, linearizable reads and leadership transfer.
//
// The lease: every heartbeat round r the leader sends carries r, and the
// leader remembers its own clock reading when it sent r. Each acceptor
// that hears from the leader refuses to promise anyone else for Lease, on
// its own clock, from the moment it heard. Once a quorum has answered
// round r, the leader holds its lease until sent(r) + Lease*(1-ρ)/(1+ρ) on
// its own clock: with every clock's rate within 1±ρ of true time, that
// instant comes no later than the first moment any of those acceptors
// could promise again, so no new leader can be elected while the old one
// still believes its lease.

// pendingRead waits for a heartbeat round that confirms leadership.
type pendingRead struct {
	id    uint64
	index uint64
	round uint64 // first round sent after the read arrived
}

// leaseState is the leader's side of leases and reads.
type leaseState struct {
	round     uint64           // last heartbeat round sent
	confirmed uint64           // highest round a quorum answered
	sentAt    map[uint64]int64 // round -> clock when sent, for unconfirmed rounds
	// sentCommit[r % len] is the commit index round r announced, for the
	// last few rounds: a follower that answers r with less lacks records.
	sentCommit [8]struct{ round, commit uint64 }
	acks       map[uint64][]NodeID
	start      int64 // clock when the last confirmed round was sent; valid if confirmed > 0
	reads      []pendingRead
	needRound  bool // a read waits for a round not yet sent

	transferTo      NodeID
	transferElapsed int // ticks
}

// SetClock tells the node its monotonic clock reading, in nanoseconds. The
// driver calls it before Tick, Step and ReadIndex. The first call after a
// start begins a grace period of one Lease in which the node promises no
// one: it may have promised a lease to a leader before it restarted.
func (n *Node) SetClock(nowNs int64) {
	n.clock = nowNs
	if !n.clockSet {
		n.clockSet = true
		n.leaseUntil = nowNs + int64(n.cfg.Lease)
	}
}

func (n *Node) leaseEnabled() bool { return n.cfg.Lease > 0 }

// leaderLease is how long, on the leader's clock, a confirmed round keeps
// the lease.
func (n *Node) leaderLease() int64 {
	d := int64(n.cfg.Lease)
	if n.cfg.Knobs.LeaseIgnoresDrift {
		return d
	}
	rho := int64(n.cfg.MaxDriftPPM)
	return d / (1e6 + rho) * (1e6 - rho)
}

// LeaseHolds reports whether this node is the leader and holds a valid
// lease at the last SetClock. A leader that is transferring its leadership
// has given the lease up.
func (n *Node) LeaseHolds() bool {
	if n.role != Leader || !n.leaseEnabled() {
		return false
	}
	ls := &n.lead.lease
	return ls.transferTo == 0 && ls.confirmed > 0 && n.clock < ls.start+n.leaderLease() && n.authoritative()
}

// authoritative reports whether this leader may answer for the whole log:
// it has decided and learned chosen every slot a previous leader may have
// used (so every configuration in the log is known to it), and it holds
// promises from a quorum of every configuration that governs a slot after
// its chosen prefix. A node that won Phase 1 in a configuration that is
// about to be replaced is not authoritative, and may not serve reads.
func (n *Node) authoritative() bool {
	l := n.lead
	if l.nextSlot <= l.top || n.hs.Commit < l.top {
		return false
	}
	ok := true
	n.eachPendingConf(func(c *conf, from uint64) {
		ok = ok && n.quorumOf(c, func(id NodeID) bool {
			p := l.promises[id]
			return p != nil && p.done() && p.from <= from
		})
	})
	return ok
}

// eachPendingConf calls fn for every configuration that governs a slot
// after the chosen prefix, with the first such slot.
func (n *Node) eachPendingConf(fn func(c *conf, from uint64)) {
	next := n.hs.Commit + 1
	for i := range n.confs {
		c := &n.confs[i]
		if i+1 < len(n.confs) && n.confs[i+1].activation <= next {
			continue
		}
		fn(c, max(c.activation, next))
	}
}

// quorumAll reports whether the nodes for which has returns true form a
// quorum of every configuration that governs a slot after the chosen
// prefix.
func (n *Node) quorumAll(has func(NodeID) bool) bool {
	ok := true
	n.eachPendingConf(func(c *conf, _ uint64) { ok = ok && n.quorumOf(c, has) })
	return ok
}

// refusesPrepare reports whether the lease of a leader other than the
// asker keeps this acceptor from promising m. A forced Prepare passes
// only when the lease holder itself handed over.
func (n *Node) refusesPrepare(m *Message) bool {
	if !n.leaseEnabled() || n.clock >= n.leaseUntil {
		return false
	}
	if m.Force && m.Leader == n.leaseHolder {
		return false
	}
	return n.role == Leader || m.From != n.leaseHolder
}

// refusesLeader reports whether the lease keeps this acceptor from
// following a leader other than the holder. Accepting a higher ballot's
// heartbeat would let that leader build its own lease while the holder's
// still runs. After a restart the holder is unknown; the leader this node
// last promised is trusted.
func (n *Node) refusesLeader(m *Message) bool {
	if !n.leaseEnabled() || n.clock >= n.leaseUntil || m.From == n.leaseHolder {
		return false
	}
	return n.leaseHolder != 0 || m.Ballot != n.hs.Promised
}

// heardLeader starts or extends the lease this acceptor grants.
func (n *Node) heardLeader(from NodeID) {
	n.leaseHolder = from
	n.leaseUntil = max(n.leaseUntil, n.clock+int64(n.cfg.Lease))
}

// sendHeartbeat starts a new heartbeat round.
func (n *Node) sendHeartbeat() {
	ls := &n.lead.lease
	ls.round++
	ls.sentAt[ls.round] = n.clock
	ls.sentCommit[ls.round%uint64(len(ls.sentCommit))] = struct{ round, commit uint64 }{ls.round, n.hs.Commit}
	ls.acks[ls.round] = []NodeID{n.id}
	ls.needRound = false
	n.heardLeader(n.id)
	n.broadcast(Message{Type: MsgHeartbeat, Ballot: n.lead.ballot, Commit: n.hs.Commit, Slot: ls.round})
	n.checkRound(ls.round)
}

// lacksRecords reports whether a follower's answer to round r (0 for an
// answer to Learn) shows it lacks records the leader had chosen, rather
// than merely not having heard of the latest commit yet.
func (n *Node) lacksRecords(r, commit uint64) bool {
	if r == 0 {
		return commit < n.hs.Commit // catching up: keep going
	}
	sc := n.lead.lease.sentCommit[r%uint64(len(n.lead.lease.sentCommit))]
	return sc.round == r && commit < sc.commit
}

// roundAcked counts p's answer to heartbeat round r.
func (n *Node) roundAcked(p NodeID, r uint64) {
	ls := &n.lead.lease
	if _, ok := ls.sentAt[r]; !ok {
		return
	}
	if !slices.Contains(ls.acks[r], p) {
		ls.acks[r] = append(ls.acks[r], p)
	}
	n.checkRound(r)
}

func (n *Node) checkRound(r uint64) {
	ls := &n.lead.lease
	if !n.quorumAll(func(id NodeID) bool { return slices.Contains(ls.acks[r], id) }) {
		return
	}
	if r > ls.confirmed {
		ls.confirmed = r
		ls.start = ls.sentAt[r]
	}
	for old := range ls.sentAt {
		if old <= ls.confirmed {
			delete(ls.sentAt, old)
			delete(ls.acks, old)
		}
	}
	n.releaseReads()
}

func (n *Node) releaseReads() {
	ls := &n.lead.lease
	if len(ls.reads) == 0 || !n.authoritative() {
		return
	}
	k := 0
	for _, rd := range ls.reads {
		if rd.round <= ls.confirmed {
			n.readStates = append(n.readStates, ReadState{ID: rd.id, Index: rd.index})
			continue
		}
		ls.reads[k] = rd
		k++
	}
	ls.reads = ls.reads[:k]
}

// ReadIndex asks for a linearizable read. When it is safe, a ReadState
// with the same id comes out in a Ready; the read may then be served from
// the state machine once it has applied ReadState.Index. Under a valid
// lease that is at once; otherwise after one heartbeat round answered by
// a quorum. Only the leader serves reads; elsewhere *NotLeaderError.
func (n *Node) ReadIndex(id uint64) error {
	if n.role != Leader {
		return &NotLeaderError{Leader: n.leader}
	}
	ls := &n.lead.lease
	if ls.transferTo != 0 {
		return ErrTransferring
	}
	// Everything a previous leader may have chosen is at or below the
	// slots this leader took over.
	index := max(n.hs.Commit, n.lead.top)
	if n.LeaseHolds() {
		n.readStates = append(n.readStates, ReadState{ID: id, Index: index})
		return nil
	}
	ls.reads = append(ls.reads, pendingRead{id: id, index: index, round: ls.round + 1})
	ls.needRound = true
	return nil
}

// TransferLeader hands the leadership to target: the leader stops taking
// proposals and gives up its lease, waits until target has every slot it
// proposed, then tells target to campaign at once. If that has not
// happened within an election timeout, the transfer is abandoned.
func (n *Node) TransferLeader(target NodeID) error {
	if n.role != Leader {
		return &NotLeaderError{Leader: n.leader}
	}
	if n.current().member(target) == nil {
		return ErrUnknownMember
	}
	if !n.mayLead(target) {
		return ErrNotVoter
	}
	if target == n.id {
		return nil
	}
	n.startTransfer(target)
	return nil
}

func (n *Node) startTransfer(target NodeID) {
	n.lead.lease.transferTo = target
	n.lead.lease.transferElapsed = 0
	n.sendHeartbeat() // the answer tells whether target has caught up
}

// checkTransfer runs when target reports its chosen prefix.
func (n *Node) checkTransfer(from NodeID, commit uint64) {
	ls := &n.lead.lease
	// Queued proposals never got a slot: they come back in Ready.Dropped.
	if ls.transferTo != from || len(n.lead.inflight) > 0 || commit < n.lead.nextSlot-1 {
		return
	}
	n.send(Message{Type: MsgTimeoutNow, To: from, Ballot: n.lead.ballot})
	n.becomeFollower(from)
	n.resetElectionTimer()
}

func (n *Node) tickTransfer() {
	ls := &n.lead.lease
	if ls.transferTo == 0 {
		return
	}
	ls.transferElapsed++
	if ls.transferElapsed > n.cfg.ElectionTicks {
		ls.transferTo = 0
	}
}

func (n *Node) onTimeoutNow(m *Message) {
	if m.From != n.leader || m.Ballot.Less(n.hs.Promised) || !n.isVoter(n.id) {
		return
	}
	n.startCampaign(m.From)
}
