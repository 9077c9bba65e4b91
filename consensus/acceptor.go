package consensus

// The acceptor role: every member runs it, the leader included.

// onPrepare answers Phase 1. The acceptor promises b unless it has promised
// a higher ballot, and reports everything it accepted from the prepared
// slot on. The report is chunked so no message exceeds the size bounds;
// chunks cover consecutive slot ranges and the last one is open-ended.
func (n *Node) onPrepare(m *Message) {
	if m.Ballot.Less(n.hs.Promised) || n.refusesPrepare(m) {
		n.send(Message{Type: MsgReject, To: m.From, Ballot: n.hs.Promised})
		return
	}
	n.promise(m.Ballot)
	n.leaseHolder = m.From // a refusal still running now protects the asker
	if n.myBallotBelow(m.Ballot) {
		n.becomeFollower(0)
	}
	start := max(m.Slot, 1)
	if start < n.log.first() {
		// Slots the asker needs are compacted into our snapshot: they are
		// chosen, but we can no longer report them. A promise that starts
		// above the asked slot never completes at the asker; the snapshot
		// brings it up to date.
		start = n.log.first()
		n.needSnapshot(m.From)
	}
	chunk := Message{Type: MsgPromise, To: m.From, Ballot: m.Ballot, Slot: start, Commit: n.hs.Commit}
	bytes := 0
	for s := start; s <= n.log.last(); s++ {
		e := n.log.ref(s)
		if e == nil {
			continue
		}
		if len(chunk.Entries) > 0 && (len(chunk.Entries) >= n.cfg.MaxMsgEntries || bytes+e.Value.Bytes() > n.cfg.MaxMsgBytes) {
			chunk.Last = s - 1
			n.send(chunk)
			chunk = Message{Type: MsgPromise, To: m.From, Ballot: m.Ballot, Slot: s, Commit: n.hs.Commit}
			bytes = 0
		}
		chunk.Entries = append(chunk.Entries, *e)
		bytes += e.Value.Bytes()
	}
	chunk.Last = LastOpen
	n.send(chunk)
}

// myBallotBelow reports whether this node is proposing with a ballot that
// b supersedes.
func (n *Node) myBallotBelow(b Ballot) bool {
	switch {
	case n.role == Leader:
		return n.lead.ballot.Less(b)
	case n.camp != nil:
		return n.camp.ballot.Less(b)
	}
	return false
}

// onAccept answers Phase 2: accept every slot of the batch unless a higher
// ballot was promised. A slot already known chosen keeps its record (any
// proposal at a ballot this high carries the chosen value) but is still
// acknowledged.
func (n *Node) onAccept(m *Message) {
	if !n.hearLeader(m) {
		return
	}
	resp := Message{Type: MsgAccepted, To: m.From, Ballot: m.Ballot}
	resp.Entries = make([]Entry, 0, len(m.Entries))
	for _, e := range m.Entries {
		if cur := n.log.ref(e.Slot); cur == nil || !cur.Chosen {
			n.write(Entry{Slot: e.Slot, Ballot: m.Ballot, Value: e.Value})
		}
		resp.Entries = append(resp.Entries, Entry{Slot: e.Slot, Ballot: m.Ballot})
	}
	n.learnCommit(m.Ballot, m.Commit)
	resp.Commit = n.hs.Commit
	n.send(resp)
}

func (n *Node) onHeartbeat(m *Message) {
	if !n.hearLeader(m) {
		return
	}
	n.learnCommit(m.Ballot, m.Commit)
	n.send(Message{Type: MsgHeartbeatResp, To: m.From, Ballot: m.Ballot, Commit: n.hs.Commit, Slot: m.Slot})
}

// hearLeader handles the ballot of a message from a proposer in Phase 2.
// It returns false, after rejecting, if the ballot is stale. Otherwise it
// promises the ballot (a promise to a leader that already ran Phase 1 with
// others is always safe) and follows its sender.
func (n *Node) hearLeader(m *Message) bool {
	if m.Ballot.Less(n.hs.Promised) {
		n.send(Message{Type: MsgReject, To: m.From, Ballot: n.hs.Promised})
		return false
	}
	if n.refusesLeader(m) {
		return false // silently: the lease holder may still be serving
	}
	n.promise(m.Ballot)
	if n.role != Follower || n.leader != m.From || n.pre != nil {
		n.becomeFollower(m.From)
	}
	n.sinceLeader = 0
	n.backoff = 0
	n.heardLeader(m.From)
	n.resetElectionTimer()
	return true
}

// onLearn stores chosen values sent to a lagging node.
func (n *Node) onLearn(m *Message) {
	for _, e := range m.Entries {
		if cur := n.log.ref(e.Slot); cur == nil || !cur.Chosen {
			n.write(e)
		}
	}
	n.advanceCommit()
	// Report progress at once so the leader sends the next chunk.
	n.send(Message{Type: MsgHeartbeatResp, To: m.From, Ballot: m.Ballot, Commit: n.hs.Commit})
}

// onReject handles a peer's refusal: someone promised a higher ballot, so
// any proposal of ours below it is dead.
func (n *Node) onReject(m *Message) {
	if n.myBallotBelow(m.Ballot) {
		n.becomeFollower(0)
		n.backoff++
		n.resetElectionTimer()
	}
}
