package consensus

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

// promiseState gathers one acceptor's chunked promise.
type promiseState struct {
	next    uint64             // first slot not yet covered; LastOpen when complete
	commit  uint64             // the acceptor's chosen prefix
	entries []Entry            // accepted records, slot >= campaign.from
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
	if len(n.pre.grants) >= n.quorum {
		n.startCampaign(false)
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
	n.send(Message{Type: MsgPreCheckResp, To: m.From, Ballot: n.hs.Promised, Reject: !grant})
}

func (n *Node) onPreCheckResp(m *Message) {
	if n.pre == nil || m.Reject {
		return
	}
	n.pre.grants[m.From] = true
	if len(n.pre.grants) >= n.quorum {
		n.startCampaign(false)
	}
}

// startCampaign runs Phase 1 with a fresh ballot for every slot after the
// chosen prefix. The node's own promise counts once it is durable. force
// marks a campaign the old leader asked for (leadership transfer).
func (n *Node) startCampaign(force bool) {
	n.pre = nil
	n.role = Candidate
	n.leader = 0
	b := Ballot{Round: max(n.maxRound, n.hs.Promised.Round) + 1, Node: n.id}
	n.maxRound = b.Round
	n.camp = &campaign{ballot: b, from: n.hs.Commit + 1, promises: map[NodeID]*promiseState{}}
	n.promise(b)
	n.resetElectionTimer()
	n.broadcast(Message{Type: MsgPrepare, Ballot: b, Slot: n.camp.from, Force: force})
}

func (n *Node) onSelfPromise() {
	c := n.camp
	p := &promiseState{next: LastOpen, commit: n.hs.Commit}
	for s := c.from; s <= n.log.last(); s++ {
		if e := n.log.ref(s); e != nil {
			p.entries = append(p.entries, *e)
		}
	}
	c.promises[n.id] = p
	n.checkPromises()
}

func (n *Node) onPromise(m *Message) {
	c := n.camp
	if c == nil || m.Ballot != c.ballot || m.Slot < c.from {
		return
	}
	p := c.promises[m.From]
	if p == nil {
		p = &promiseState{next: c.from, early: map[uint64]Message{}}
		c.promises[m.From] = p
	}
	if p.done() || m.Slot < p.next {
		return // duplicate
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
	n.checkPromises()
}

func (n *Node) checkPromises() {
	done := 0
	for _, p := range n.camp.promises {
		if p.done() {
			done++
		}
	}
	if done >= n.quorum {
		n.becomeLeader()
	}
}

// becomeLeader ends Phase 1. For every slot from the campaign's first on it
// re-proposes the value with the highest ballot among the promises, takes
// any value a promiser already knows chosen, and fills gaps with no-ops.
func (n *Node) becomeLeader() {
	c := n.camp
	n.camp = nil
	n.role = Leader
	n.leader = n.id
	n.backoff = 0
	n.lead = newLeadership(c.ballot)

	best := map[uint64]Entry{}
	top := c.from - 1
	for _, p := range c.promises {
		for _, e := range p.entries {
			if e.Slot <= p.commit {
				e.Chosen = true
			}
			top = max(top, e.Slot)
			cur, ok := best[e.Slot]
			if !ok || (!cur.Chosen && (e.Chosen || cur.Ballot.Less(e.Ballot))) {
				best[e.Slot] = e
			}
		}
	}
	for s := c.from; s <= top; s++ {
		e, ok := best[s]
		if n.cfg.Knobs.IgnorePromisedValues {
			e, ok = Entry{}, false
		}
		switch {
		case ok && e.Chosen:
			if cur := n.log.ref(s); cur == nil || !cur.Chosen {
				n.write(Entry{Slot: s, Ballot: e.Ballot, Chosen: true, Value: e.Value})
			}
		case ok:
			n.proposeSlot(s, e.Value)
		default:
			n.proposeSlot(s, Value{})
		}
	}
	n.lead.nextSlot = top + 1
	n.lead.takeover = top
	n.advanceCommit()
	n.sendHeartbeat()
}
