package consensus

import "slices"

// Elections: a follower that stops hearing from a leader first runs a
// pre-check (would a majority support a campaign?), then Phase 1.

// preCheck is a pending pre-check round.
type preCheck struct {
	grants map[NodeID]bool
}

// campaign is a Phase 1 in progress.
type campaign struct {
	ballot   Ballot
	from     uint64
	promises map[NodeID]*promiseState
}

// promiseState gathers one acceptor's chunked promise for the slots from
// `from` on.
type promiseState struct {
	from    uint64
	next    uint64             // first slot not yet covered; LastOpen when complete
	commit  uint64             // the acceptor's chosen prefix
	entries []Entry            // accepted records, slot >= from
	early   map[uint64]Message // chunks that arrived ahead of next
}

func (p *promiseState) done() bool { return p.next == LastOpen }

// maxBackoffShift caps the exponential back-off of dueling proposers.
const maxBackoffShift = 4

// resetElectionTimer draws a new randomized timeout. Each failed campaign
// in a row doubles the random spread, so dueling proposers drift apart.
func (n *Node) resetElectionTimer() {
	e := n.cfg.ElectionTicks
	spread := e << min(n.backoff, maxBackoffShift)
	n.electionElapsed = 0
	n.electionTimeout = e + n.cfg.Rand.IntN(spread)
}

func (n *Node) tickElection() {
	n.electionElapsed++
	n.sinceLeader++
	if n.electionElapsed < n.electionTimeout {
		return
	}
	if !n.isVoter(n.id) {
		// Learners and removed members never campaign, but they probe:
		// a voter that lags behind them gets what they know (see
		// onPreCheckResp), so it can learn a configuration it needs.
		n.resetElectionTimer()
		n.broadcast(Message{Type: MsgPreCheck, Ballot: Ballot{Round: n.maxRound + 1, Node: n.id}, Commit: n.hs.Commit})
		return
	}
	if n.camp != nil || n.pre != nil {
		n.backoff++ // the last attempt went nowhere
	}
	n.camp = nil
	n.role = Follower
	n.leader = 0
	n.startPreCheck()
}

// startPreCheck asks every peer whether it would support a campaign. It
// changes no durable state, so a node cut off from the majority can retry
// forever without raising its ballot and deposing a healthy leader later.
func (n *Node) startPreCheck() {
	n.resetElectionTimer()
	n.pre = &preCheck{grants: map[NodeID]bool{n.id: true}}
	if n.preCheckPassed() {
		n.startCampaign(0)
		return
	}
	b := Ballot{Round: n.maxRound + 1, Node: n.id}
	n.broadcast(Message{Type: MsgPreCheck, Ballot: b, Commit: n.hs.Commit})
}

// onPreCheck grants support only if this node has not heard from a live
// leader for a full election timeout, and the asker knows at least as much
// of the chosen prefix (so a stale node cannot lead and then stall on a
// huge Phase 1).
func (n *Node) onPreCheck(m *Message) {
	healthy := n.role == Leader || (n.leader != 0 && n.sinceLeader < n.cfg.ElectionTicks)
	grant := !healthy && m.Commit >= n.hs.Commit
	n.send(Message{Type: MsgPreCheckResp, To: m.From, Ballot: n.hs.Promised, Reject: !grant, Commit: n.hs.Commit})
	if m.Commit < n.hs.Commit {
		// The asker lags: bring it up to date, so it learns the
		// configurations it does not know yet even when no leader can be
		// elected without it.
		n.sendLearn(m.From, m.Commit+1)
	}
}

func (n *Node) onPreCheckResp(m *Message) {
	if m.Commit < n.hs.Commit {
		n.sendLearn(m.From, m.Commit+1) // the answerer lags behind us
	}
	if n.pre == nil || m.Reject {
		return
	}
	n.pre.grants[m.From] = true
	if n.preCheckPassed() {
		n.startCampaign(0)
	}
}

func (n *Node) preCheckPassed() bool {
	return n.quorumOf(n.current(), func(id NodeID) bool { return n.pre.grants[id] })
}

// startCampaign runs Phase 1 with a fresh ballot for every slot after the
// chosen prefix. The node's own promise counts once it is durable.
// handover names the leader that asked for this campaign (a leadership
// transfer), 0 otherwise.
func (n *Node) startCampaign(handover NodeID) {
	n.pre = nil
	n.role = Candidate
	n.leader = 0
	b := Ballot{Round: max(n.maxRound, n.hs.Promised.Round) + 1, Node: n.id}
	n.maxRound = b.Round
	c := &campaign{ballot: b, from: n.hs.Commit + 1, promises: map[NodeID]*promiseState{}}
	n.camp = c
	n.promise(b)
	n.resetElectionTimer()
	for _, p := range n.peers() {
		c.promises[p] = &promiseState{from: c.from, next: c.from, early: map[uint64]Message{}}
		n.send(Message{Type: MsgPrepare, To: p, Ballot: b, Slot: c.from, Force: handover != 0, Leader: handover})
	}
}

func (n *Node) onSelfPromise() {
	c := n.camp
	p := &promiseState{from: c.from}
	n.selfPromise(p)
	c.promises[n.id] = p
	n.checkPromises()
}

// onPromise collects a promise chunk, for a campaign or, with the same
// ballot, for a leader that asked new voters for their promise.
func (n *Node) onPromise(m *Message) {
	var promises map[NodeID]*promiseState
	switch {
	case n.camp != nil && m.Ballot == n.camp.ballot:
		promises = n.camp.promises
	case n.role == Leader && m.Ballot == n.lead.ballot:
		promises = n.lead.promises
	default:
		return
	}
	p := promises[m.From]
	if p == nil || p.done() || m.Slot < p.next {
		return // unasked or duplicate
	}
	p.early[m.Slot] = *m
	for !p.done() {
		chunk, ok := p.early[p.next]
		if !ok {
			break
		}
		delete(p.early, p.next)
		p.entries = append(p.entries, chunk.Entries...)
		p.commit = max(p.commit, chunk.Commit)
		if chunk.Last == LastOpen {
			p.next = LastOpen
		} else {
			p.next = chunk.Last + 1
		}
	}
	if !p.done() {
		return
	}
	if n.camp != nil {
		n.checkPromises()
		return
	}
	n.inherit(p)
}

func (n *Node) checkPromises() {
	c := n.camp
	if n.quorumOf(n.confAt(c.from), func(id NodeID) bool { p := c.promises[id]; return p != nil && p.done() }) {
		n.becomeLeader()
	}
}

// becomeLeader ends Phase 1. The reported values are merged per slot and
// re-proposed, slot by slot, as decide reaches them.
func (n *Node) becomeLeader() {
	c := n.camp
	n.camp = nil
	n.role = Leader
	n.leader = n.id
	n.backoff = 0
	n.lead = newLeadership(c.ballot)
	n.lead.nextSlot = c.from
	n.lead.top = c.from - 1
	n.lead.promises = c.promises
	for _, id := range sortedIDs(c.promises) {
		if p := c.promises[id]; p.done() {
			n.inherit(p)
		}
	}
	n.advanceCommit()
	n.sendHeartbeat()
}

// inherit merges a complete promise into the values the leader must
// re-propose: a value some promiser knows chosen wins, otherwise the one
// with the highest ballot.
func (n *Node) inherit(p *promiseState) {
	l := n.lead
	for _, e := range p.entries {
		if e.Slot < l.nextSlot {
			continue // already decided
		}
		if e.Slot <= p.commit {
			e.Chosen = true
		}
		l.top = max(l.top, e.Slot)
		cur, ok := l.inherited[e.Slot]
		if !ok || (!cur.Chosen && (e.Chosen || cur.Ballot.Less(e.Ballot))) {
			l.inherited[e.Slot] = e
		}
	}
	p.entries = nil
}

func sortedIDs[V any](m map[NodeID]V) []NodeID {
	ids := make([]NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
