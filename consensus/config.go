package consensus

import (
	"fmt"
	"time"
)

// Config configures one node of the protocol core.
type Config struct {
	// ID is this node's identity. It must be non-zero and appear in Members.
	ID NodeID
	// Members lists the acceptors of the bootstrap configuration, which
	// governs the log until the first membership change is chosen. Every
	// member of a new cluster is started with the same list.
	Members []NodeID
	// Join starts a node that is not in Members: it learns its
	// membership from the log (or a snapshot) once a member adds it.
	Join bool

	// ElectionTicks is the base election timeout. A follower that hears
	// nothing from a leader for a random number of ticks in
	// [ElectionTicks, 2*ElectionTicks) starts a pre-check. Default 10.
	ElectionTicks int
	// HeartbeatTicks is how often a leader sends heartbeats and retransmits
	// unacknowledged accepts. It must be below ElectionTicks. Default 1.
	HeartbeatTicks int

	// MaxInflightSlots is α: the leader proposes a slot only once every
	// slot α before it is chosen, which bounds the Phase 2 pipeline, and a
	// configuration chosen at slot s governs slots from s+α. Every member
	// must use the same value. Default 256.
	MaxInflightSlots int
	// MaxBatchBytes bounds the command bytes in one slot; a larger command
	// is refused with ErrTooLarge. Default 256 KiB.
	MaxBatchBytes int
	// MaxPendingBytes bounds commands queued at the leader waiting for a
	// slot; Propose refuses with ErrBusy beyond it. Default 64 MiB.
	MaxPendingBytes int
	// MaxMsgEntries bounds the entries in one Accept, Promise or Learn
	// message. Default 64.
	MaxMsgEntries int
	// MaxMsgBytes bounds the command bytes in one Accept, Promise or Learn
	// message; a message always carries at least one entry. It must stay
	// below the transport's frame limit. Default 1 MiB.
	MaxMsgBytes int

	// Lease is how long an acceptor that heard from a leader refuses to
	// promise anyone else, measured on its own monotonic clock (SetClock).
	// The leader counts its lease from the moment it sent the heartbeat a
	// quorum answered, shortened by the drift margin, so that it expires
	// before any acceptor's refusal does. Zero disables leases: no lease
	// reads, and acceptors promise whenever the ballot allows.
	Lease time.Duration
	// MaxDriftPPM bounds how fast or slow any member's monotonic clock may
	// run, in parts per million. Default 100.
	MaxDriftPPM int

	// Rand supplies all randomness (election jitter, back-off). It must be
	// deterministic for the simulator; the driver seeds it from crypto/rand.
	Rand Rand

	// Knobs break the protocol on purpose, so tests can prove that the
	// simulator catches broken variants. Never set outside tests.
	Knobs Knobs
}

// Rand is the randomness the core needs. *math/rand/v2.Rand satisfies it.
type Rand interface {
	IntN(n int) int
}

// Knobs are deliberate protocol bugs for testing the simulator.
type Knobs struct {
	// IgnorePromisedValues makes a new leader ignore the values reported in
	// promises and fill every slot with a no-op.
	IgnorePromisedValues bool
	// HalfQuorum uses n/2 instead of n/2+1 as the quorum size.
	HalfQuorum bool
	// LeaseIgnoresDrift makes the leader trust its lease for the full
	// Lease, without the drift margin.
	LeaseIgnoresDrift bool
	// SingleConfigPhase1 makes a leader decide slots of a new
	// configuration on the strength of Phase 1 in the old one, so two
	// configurations can decide one slot.
	SingleConfigPhase1 bool
}

func (c *Config) withDefaults() (Config, error) {
	out := *c
	if out.ID == 0 {
		return out, fmt.Errorf("consensus: config: id must be non-zero")
	}
	seen := map[NodeID]bool{}
	for _, m := range out.Members {
		if m == 0 {
			return out, fmt.Errorf("consensus: config: member id 0")
		}
		if seen[m] {
			return out, fmt.Errorf("consensus: config: duplicate member %d", m)
		}
		seen[m] = true
	}
	if !seen[out.ID] && !out.Join {
		return out, fmt.Errorf("consensus: config: id %d is not among members %v", out.ID, out.Members)
	}
	if out.Rand == nil {
		return out, fmt.Errorf("consensus: config: Rand is required")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&out.ElectionTicks, 10)
	def(&out.HeartbeatTicks, 1)
	def(&out.MaxInflightSlots, 256)
	def(&out.MaxBatchBytes, 256<<10)
	def(&out.MaxPendingBytes, 64<<20)
	def(&out.MaxMsgEntries, 64)
	def(&out.MaxMsgBytes, 1<<20)
	def(&out.MaxDriftPPM, 100)
	if out.MaxDriftPPM >= 1e6 {
		return out, fmt.Errorf("consensus: config: max drift %d ppm must be below 1000000", out.MaxDriftPPM)
	}
	if out.HeartbeatTicks >= out.ElectionTicks {
		return out, fmt.Errorf("consensus: config: heartbeat ticks %d must be below election ticks %d",
			out.HeartbeatTicks, out.ElectionTicks)
	}
	return out, nil
}

// Ready is what the node asks its driver to do, in this order:
//
//  1. send Eager (it may also be sent during step 2);
//  2. persist HardState (if changed) and Entries, with fsync;
//  3. send Messages;
//  4. apply Committed in order;
//  5. call Advance(rd).
//
// Slices in a Ready belong to the driver after Ready returns, but the
// Values inside entries are shared with the core and must not be modified.
type Ready struct {
	// HardState is the state to persist; HardStateChanged says whether it
	// differs from the last Ready's.
	HardState        HardState
	HardStateChanged bool
	// Entries are acceptor records to persist, overwriting any record of the
	// same slot.
	Entries []Entry
	// Messages are sent only after HardState and Entries are durable.
	Messages []Message
	// Eager are the leader's Accepts: they may go out before the leader's
	// own records are durable, so its disk write overlaps the followers'.
	// The leader counts its own acceptance only in Advance.
	Eager []Message
	// Committed are chosen entries, in slot order, to apply.
	Committed []Entry
	// Dropped are proposals that were never given a slot (leadership was
	// lost first). They were not and will not be chosen; retrying is safe.
	Dropped []Command
	// ReadStates release linearizable reads: once the state machine has
	// applied Index, a read with that ID may be served from local state.
	ReadStates []ReadState
	// Snapshots names peers that lag behind the compacted log: the driver
	// sends each the latest snapshot.
	Snapshots []NodeID
	// Role and Leader describe the node now.
	Role   Role
	Leader NodeID
}

// MustSync reports whether the driver must write and fsync before sending.
func (rd *Ready) MustSync() bool { return rd.HardStateChanged || len(rd.Entries) > 0 }

// Status is a snapshot of a node's protocol state, for tests and metrics.
type Status struct {
	ID       NodeID
	Role     Role
	Leader   NodeID
	Promised Ballot
	Commit   uint64
	Applied  uint64
	LastSlot uint64
	Inflight int
	// LeaseHeld reports whether the node held a valid leader lease at the
	// last SetClock.
	LeaseHeld bool
	// LeaseUntil is, while LeaseHeld, the monotonic time (the clock given
	// to SetClock, ns) at which the lease ends unless renewed; 0 otherwise.
	LeaseUntil int64
}

// ReadState releases the read with ID once Index is applied.
type ReadState struct {
	ID    uint64
	Index uint64
}
