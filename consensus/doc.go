// Package consensus is clockd's Multi-Paxos engine: a pure, deterministic
// state machine with no goroutines, no clock, no I/O and no randomness but
// the source it is given. Subpackages connect it to the world: driver runs
// one node on a goroutine, storage makes acceptor state durable with
// raft-boltdb, transport carries messages over gRPC, and sim runs whole
// clusters from one seed.
//
// # The loop
//
// A driver owns one Node and repeats:
//
//	node.Tick()                      // every tick interval
//	node.Step(msg)                   // for every peer message
//	node.Propose(cmds...)            // leader only, see below
//	for node.HasReady() {
//		rd := node.Ready()
//		persist rd.HardState (if changed) and rd.Entries, with fsync
//		send rd.Messages
//		apply rd.Committed, in order
//		node.Advance(rd)
//	}
//
// Messages must never be sent before the state in the same Ready is
// durable: a promise or an acceptance that a crash can take back breaks
// Paxos. The node counts its own promise and its own acceptances only in
// Advance, once they are durable.
//
// # The protocol
//
// Ballots are (round, node) pairs. A node that hears no leader for a
// randomized election timeout first runs a pre-check: it asks its peers
// whether they would support a campaign, and they refuse while they hear a
// live leader or when the asker knows less of the chosen prefix than they
// do. The pre-check changes no durable state, so a node cut off from the
// majority cannot raise its ballot and later depose a healthy leader.
//
// Phase 1 is run once for every slot from the candidate's first unchosen
// slot on. Acceptors promise and report, in chunks, every record they hold
// from that slot; records they know to be chosen are marked so. The new
// leader takes a chosen value where one is reported, otherwise the value
// with the highest ballot, and fills gaps with no-ops; it re-proposes all of
// them in its own ballot.
//
// Phase 2 is pipelined: up to MaxInflightSlots slots may await a quorum,
// each slot carrying a batch of commands. Proposals arriving while the
// pipeline is full queue at the leader and are batched into the next free
// slots. Unacknowledged accepts are retransmitted every other heartbeat.
//
// Chosen slots are announced as a commit index piggybacked on accepts and
// heartbeats. A follower marks slot s chosen if it holds s at the
// announcing leader's ballot. A follower that lacks chosen values reports a
// lower commit in its replies and the leader sends it Learn messages.
//
// A leader that has not heard from a majority for an election timeout steps
// down. Consecutive failed campaigns double the random spread of the next
// election timeout, so dueling proposers drift apart.
//
// # Proposals on followers
//
// Propose on a node that is not the leader fails with *NotLeaderError,
// which names the leader when one is known. Proposals are refused, never
// forwarded: the caller retries at the leader. A proposal the leader had
// queued but not yet given a slot when it lost the leadership comes back in
// Ready.Dropped and was certainly not chosen.
//
// # Invariants
//
//   - At most one value is chosen per slot, and it never changes.
//   - An acceptor never accepts a ballot below one it promised.
//   - Every slot at or below HardState.Commit holds its chosen value.
//   - Entries are applied in slot order, so every node's applied sequence is
//     a prefix of every other's.
//
// The sim package checks all of these after every simulated step.
//
// # Hazards
//
//   - The whole log is kept in memory and replayed to the state machine on
//     restart; there is no compaction yet.
//   - Acceptor sets are fixed by Config.Members and limited to 64 nodes.
//   - Knobs break the protocol on purpose and exist only for the simulator.
package consensus
