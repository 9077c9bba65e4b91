package consensus

import (
	"errors"
	"fmt"
)

// NodeID names a member of the cluster. Zero means "none".
type NodeID uint64

// Ballot is a Paxos ballot number: (Round, Node). Ballots are totally ordered,
// first by Round, then by Node, so two proposers never share a ballot.
type Ballot struct {
	Round uint64
	Node  NodeID
}

// Less reports whether b orders strictly before o.
func (b Ballot) Less(o Ballot) bool {
	if b.Round != o.Round {
		return b.Round < o.Round
	}
	return b.Node < o.Node
}

// IsZero reports whether b is the zero ballot, which no proposer ever uses.
func (b Ballot) IsZero() bool { return b == Ballot{} }

func (b Ballot) String() string { return fmt.Sprintf("%d.%d", b.Round, b.Node) }

// Command is one opaque client command. ID is assigned by the proposing
// driver and is unique per node incarnation; the core never interprets it
// except to hand it back in Ready.Dropped.
type Command struct {
	ID   uint64
	Data []byte
}

// Value is what one slot decides: a batch of commands, or a new
// membership (never both). An empty value is a no-op, used to fill gaps
// when a new leader takes over.
type Value struct {
	Cmds []Command
	Conf *Membership
}

// IsNoop reports whether v carries neither commands nor a membership.
func (v Value) IsNoop() bool { return len(v.Cmds) == 0 && v.Conf == nil }

// Bytes is the payload size of v, for batching and flow control.
func (v Value) Bytes() int {
	n := 0
	for _, c := range v.Cmds {
		n += len(c.Data) + 8
	}
	if v.Conf != nil {
		for _, m := range v.Conf.Members {
			n += len(m.Addr) + 12
		}
	}
	return n
}

// Entry is one slot of the log as an acceptor holds it.
//
// Invariant: if Chosen is true, Value is the value chosen for Slot and no
// later write may change it. If Chosen is false, (Ballot, Value) is the
// highest-ballot proposal this acceptor accepted for Slot.
type Entry struct {
	Slot   uint64
	Ballot Ballot
	Chosen bool
	Value  Value
}

// HardState is the scalar acceptor state that must be durable before any
// message that depends on it is sent.
type HardState struct {
	// Promised is the highest ballot this acceptor has promised. It must be
	// persisted (with fsync) before a Promise or Accepted reply is sent.
	Promised Ballot
	// Commit is the highest slot s such that every slot <= s is chosen and
	// held with its chosen value. Storage may persist it lazily (with the next
	// batch of entries): a restart that returns a lower Commit is safe, the
	// node re-learns the rest from its peers.
	Commit uint64
}

// MsgType names a peer message.
type MsgType uint8

// The peer messages. Phase 1 is Prepare/Promise, Phase 2 is Accept/Accepted.
const (
	MsgInvalid       MsgType = iota
	MsgPrepare               // 1a: Ballot, Slot = first slot covered
	MsgPromise               // 1b: Ballot, Entries accepted in [Slot, Last], Commit; chunked
	MsgReject                // Ballot = the higher ballot the sender has promised
	MsgAccept                // 2a: Ballot, Entries (pipelined slots), Commit = leader's chosen prefix
	MsgAccepted              // 2b: Ballot, Entries (Slot only), Commit = sender's chosen prefix
	MsgHeartbeat             // Ballot, Commit, Slot = heartbeat round
	MsgHeartbeatResp         // Ballot, Commit = sender's chosen prefix, Slot = round answered
	MsgLearn                 // Entries known chosen, for a follower that lags
	MsgPreCheck              // Ballot the sender would campaign with, Commit
	MsgPreCheckResp          // Ballot, Reject = whether the check is refused, Commit
	MsgTimeoutNow            // leader to transfer target: campaign now
	msgTypeCount
)

var msgTypeNames = [...]string{"invalid", "prepare", "promise", "reject", "accept", "accepted",
	"heartbeat", "heartbeat-resp", "learn", "pre-check", "pre-check-resp", "timeout-now"}

func (t MsgType) String() string {
	if int(t) < len(msgTypeNames) {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("msg-type-%d", uint8(t))
}

// Message is one peer message. Which fields are meaningful depends on Type;
// see the MsgType constants.
type Message struct {
	Type   MsgType
	From   NodeID
	To     NodeID
	Ballot Ballot
	Slot   uint64
	Last   uint64
	Commit uint64
	Reject bool
	// Force marks a Prepare sent on a leadership transfer: acceptors
	// promise even while the old leader's lease runs, since the old leader
	// gave the lease up before asking.
	Force bool
	// Leader names, on a forced Prepare, the leader that handed over.
	Leader  NodeID
	Entries []Entry
}

// LastOpen marks a Promise chunk as the final one: it covers every slot from
// Slot on.
const LastOpen = ^uint64(0)

// Errors returned by the core.
var (
	ErrStopped       = errors.New("consensus: node stopped")
	ErrUnknownPeer   = errors.New("consensus: message from unknown peer")
	ErrBadMessage    = errors.New("consensus: malformed message")
	ErrProposalEmpty = errors.New("consensus: empty proposal")
	ErrBusy          = errors.New("consensus: too many pending proposals")
	ErrTooLarge      = errors.New("consensus: command larger than a slot's batch")
	ErrTransferring  = errors.New("consensus: leadership transfer in progress")
	ErrUnknownMember = errors.New("consensus: unknown member")
	ErrNotVoter      = errors.New("consensus: member is a learner, not an acceptor")
)

// NotLeaderError is returned by Propose on a node that is not the leader.
// Proposals are refused, never forwarded: the caller retries at Leader, which
// is zero when no leader is known. Refusing keeps at-most-once submission
// simple; forwarding would need cross-node retry and deduplication.
type NotLeaderError struct {
	Leader NodeID
}

func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return "consensus: not leader, no leader known"
	}
	return fmt.Sprintf("consensus: not leader, leader is %d", e.Leader)
}

// Role is a node's current part in the protocol.
type Role uint8

// The roles.
const (
	Follower Role = iota
	Candidate
	Leader
)

func (r Role) String() string {
	switch r {
	case Follower:
		return "follower"
	case Candidate:
		return "candidate"
	case Leader:
		return "leader"
	}
	return fmt.Sprintf("role-%d", uint8(r))
}
