package consensus

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Membership changes go through the log.
//
// Activation rule: a configuration chosen at slot s governs every slot from
// s+α on, where α is Config.MaxInflightSlots. A leader proposes slot t only
// once it knows every slot up to t-α is chosen, so it always knows which
// configuration governs t. After a change is chosen the leader pads the
// slots up to s+α with no-ops, so the change takes effect at once.
//
// Quorums are per slot: a slot is chosen by a majority of the voters of its
// configuration. Phase 1 must hold a quorum of every configuration that
// governs a slot the leader decides: a leader that reaches a slot whose
// configuration it has no quorum of promises from sends Prepare, with the
// same ballot, to that configuration's voters and waits.
//
// At most one change is in flight: a change is refused until the previous
// one is active. Learners replicate and apply but never count toward a
// quorum; a learner added with Promote is made a voter by the leader once
// its chosen prefix has caught up with the leader's.

// Member is one member of a configuration.
type Member struct {
	ID   NodeID
	Addr string // peer address, for transports that learn members from the log
	// Learner members replicate and apply but never vote.
	Learner bool
	// Promote asks the leader to make this learner a voter once it has
	// caught up.
	Promote bool
}

// Membership is the whole member list a configuration slot installs.
type Membership struct {
	Members []Member
}

// Errors refusing membership changes and transfers.
var (
	ErrChangeInFlight = errors.New("consensus: a membership change is already in flight")
	ErrMemberExists   = errors.New("consensus: member already exists")
	ErrLoseQuorum     = errors.New("consensus: change would leave the old voters without a quorum")
)

// conf is one configuration and the slots it governs.
type conf struct {
	slot       uint64 // the slot that chose it; 0 for the bootstrap
	activation uint64 // first slot it governs
	m          Membership
}

func (c *conf) member(id NodeID) *Member {
	for i := range c.m.Members {
		if c.m.Members[i].ID == id {
			return &c.m.Members[i]
		}
	}
	return nil
}

func (c *conf) isVoter(id NodeID) bool {
	m := c.member(id)
	return m != nil && !m.Learner
}

func (c *conf) voters() []NodeID {
	var out []NodeID
	for _, m := range c.m.Members {
		if !m.Learner {
			out = append(out, m.ID)
		}
	}
	return out
}

// quorumOf reports whether the voters for which has returns true form a
// quorum of c.
func (n *Node) quorumOf(c *conf, has func(NodeID) bool) bool {
	voters, yes := 0, 0
	for _, m := range c.m.Members {
		if m.Learner {
			continue
		}
		voters++
		if has(m.ID) {
			yes++
		}
	}
	need := voters/2 + 1
	if n.cfg.Knobs.HalfQuorum {
		need = max(1, voters/2)
	}
	return yes >= need
}

// confAt returns the configuration that governs slot s.
// Invariant: n.confs is sorted by activation and its first element
// governs every slot from 1.
func (n *Node) confAt(s uint64) *conf {
	for i := len(n.confs) - 1; i > 0; i-- {
		if n.confs[i].activation <= s {
			return &n.confs[i]
		}
	}
	return &n.confs[0]
}

// current is the configuration of the first undecided slot.
func (n *Node) current() *conf { return n.confAt(n.hs.Commit + 1) }

// isVoter reports whether id votes in the current configuration.
func (n *Node) isVoter(id NodeID) bool { return n.current().isVoter(id) }

// mayLead reports whether id votes in every configuration after the
// chosen prefix: a member being removed is not handed the leadership.
func (n *Node) mayLead(id NodeID) bool {
	ok := true
	n.eachPendingConf(func(c *conf, _ uint64) { ok = ok && c.isVoter(id) })
	return ok
}

// peers lists every member, learners included, of the configurations that
// govern undecided slots, except this node.
func (n *Node) peers() []NodeID {
	var out []NodeID
	from := n.hs.Commit + 1
	for i := range n.confs {
		c := &n.confs[i]
		if i+1 < len(n.confs) && n.confs[i+1].activation <= from {
			continue // superseded before the first undecided slot
		}
		for _, m := range c.m.Members {
			if m.ID != n.id && !slices.Contains(out, m.ID) {
				out = append(out, m.ID)
			}
		}
	}
	slices.Sort(out)
	return out
}

// chosenConf records a configuration chosen at slot s. The leader that
// is no longer a voter of it steps down.
func (n *Node) chosenConf(s uint64, m Membership) {
	for _, c := range n.confs {
		if c.slot == s && s != 0 {
			return
		}
	}
	c := conf{slot: s, activation: s + uint64(n.cfg.MaxInflightSlots), m: m}
	n.confs = append(n.confs, c)
	n.confVersion++
	slices.SortStableFunc(n.confs, func(a, b conf) int { return cmp.Compare(a.activation, b.activation) })
	if n.role == Leader && !c.isVoter(n.id) {
		n.becomeFollower(0)
		n.resetElectionTimer()
	}
}

// ConfigVersion changes whenever the node learns a configuration, so a
// driver can tell cheaply whether Members changed.
func (n *Node) ConfigVersion() uint64 { return n.confVersion }

// Members returns the configuration governing the next undecided slot and
// the one after it, if a change is pending.
func (n *Node) Members() (cur Membership, next *Membership) {
	cur = n.current().m
	if last := n.confs[len(n.confs)-1]; last.activation > n.hs.Commit+1 {
		next = &last.m
	}
	return cur, next
}

// changePending reports whether a membership change is proposed and not
// yet active.
func (n *Node) changePending() bool {
	if n.lead.confSlot != 0 {
		return true
	}
	last := n.confs[len(n.confs)-1]
	return last.activation > n.lead.nextSlot
}

// ProposeMembership proposes a new member list. Only the leader takes it.
// It is refused when another change is in flight, when it changes nothing,
// or when the voters of the current configuration that remain voters
// would not form a quorum of it (removing a majority at once).
func (n *Node) ProposeMembership(m Membership) error {
	if n.role != Leader {
		return &NotLeaderError{Leader: n.leader}
	}
	if n.lead.lease.transferTo != 0 {
		return ErrTransferring
	}
	if n.changePending() {
		return ErrChangeInFlight
	}
	if err := n.checkMembership(m); err != nil {
		return err
	}
	sorted := Membership{Members: slices.Clone(m.Members)}
	slices.SortFunc(sorted.Members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	n.lead.confQueued = &sorted
	return nil
}

func (n *Node) checkMembership(m Membership) error {
	cur := n.current()
	seen := map[NodeID]bool{}
	voters := 0
	for _, mb := range m.Members {
		if mb.ID == 0 {
			return fmt.Errorf("%w: member id 0", ErrBadMessage)
		}
		if seen[mb.ID] {
			return fmt.Errorf("%w: %d listed twice", ErrMemberExists, mb.ID)
		}
		seen[mb.ID] = true
		if !mb.Learner {
			voters++
		}
	}
	if voters == 0 {
		return fmt.Errorf("%w: no voters left", ErrLoseQuorum)
	}
	if !n.quorumOf(cur, func(id NodeID) bool { return seen[id] && !memberOf(m, id).Learner }) {
		return fmt.Errorf("%w: voters %v, new list %v", ErrLoseQuorum, cur.voters(), m.Members)
	}
	return nil
}

func memberOf(m Membership, id NodeID) Member {
	for _, mb := range m.Members {
		if mb.ID == id {
			return mb
		}
	}
	return Member{}
}

// handOff runs on a leader that is not a voter of the configuration
// governing its next slot (it was removed, then led again to finish the
// slots before the change took effect): it proposes nothing there and
// transfers the leadership to the voter of that configuration that knows
// the most.
func (n *Node) handOff() {
	l := n.lead
	c := n.confAt(l.nextSlot)
	if c.isVoter(n.id) || l.lease.transferTo != 0 {
		return
	}
	// Prefer a voter of every pending configuration, which can lead
	// through all of them.
	var best NodeID
	better := func(v NodeID) bool {
		if best == 0 {
			return true
		}
		if a, b := n.mayLead(v), n.mayLead(best); a != b {
			return a
		}
		return l.peerCommit[v] > l.peerCommit[best]
	}
	for _, v := range c.voters() {
		if better(v) {
			best = v
		}
	}
	if best != 0 {
		n.startTransfer(best)
	}
}

// maybePromote proposes making learner p a voter once it has caught up.
func (n *Node) maybePromote(p NodeID, commit uint64) {
	cur := n.current()
	mb := cur.member(p)
	if mb == nil || !mb.Learner || !mb.Promote || commit < n.hs.Commit || n.changePending() ||
		n.lead.confQueued != nil || n.lead.lease.transferTo != 0 {
		return
	}
	next := Membership{Members: slices.Clone(cur.m.Members)}
	for i := range next.Members {
		if next.Members[i].ID == p {
			next.Members[i].Learner, next.Members[i].Promote = false, false
		}
	}
	n.lead.confQueued = &next
}
