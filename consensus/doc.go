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
//	node.SetClock(monotonic ns)      // before each of the above, for leases
//	for node.HasReady() {
//		rd := node.Ready()
//		send rd.Eager                    // the leader's accepts, may overlap the write
//		persist rd.HardState (if changed) and rd.Entries, with fsync
//		send rd.Messages
//		apply rd.Committed, in order; release rd.ReadStates
//		send a snapshot to each of rd.Snapshots
//		node.Advance(rd)
//	}
//
// A driver that writes on another goroutine splits Advance: Release at
// once, so the loop goes on, and Persisted once the write is durable. It
// must then send rd.Messages only after the write, and handle Readies in
// order; the sim package drives half its runs this way.
//
// Messages must never be sent before the state in the same Ready is
// durable: a promise or an acceptance that a crash can take back breaks
// Paxos. The node counts its own promise and its own acceptances only in
// Advance, once they are durable; that is why the leader's own Accepts
// (rd.Eager) may leave before its write completes.
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
// # Membership
//
// Acceptors (voters) and learners change through the log; see
// membership.go for the activation rule (a configuration chosen at slot s
// governs slots from s+α, α = MaxInflightSlots) and the Phase 1 rule (a
// leader decides a slot only with promises from a quorum of that slot's
// configuration). At most one change is in flight. Learners replicate and
// apply but never vote; a learner added with Promote becomes a voter once
// it has caught up. A leader removed from the configuration steps down once
// the change is chosen.
//
// # Leases and reads
//
// See lease.go. An acceptor that hears from a leader refuses, for Lease on
// its own clock, to promise or follow anyone else; the leader trusts its
// lease for Lease*(1-ρ)/(1+ρ) from the send time of a heartbeat round a
// quorum answered, so it expires first. ReadIndex releases a read at once
// under the lease, otherwise after one quorum round; either way only once
// the leader is authoritative: it has learned every slot it inherited and
// holds promises from every configuration after its chosen prefix.
// TransferLeader hands the leadership to a caught-up voter, which campaigns
// at once with a forced Prepare that acceptors honor only from the lease
// holder's handover.
//
// # Snapshots
//
// See snapshot.go. The driver snapshots the state machine, then calls
// Compact to drop log records behind it; a peer whose chosen prefix ends
// before the oldest record left is named in Ready.Snapshots and catches up
// with RestoreSnapshot, then the log suffix through Learn.
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
// The sim package checks these too: no two nodes believe they hold a
// lease at the same instant, with every clock drifting; and every read
// reflects every write acknowledged before the read was issued.
//
// # Hazards
//
//   - The log after the last snapshot is kept in memory; the driver's
//     snapshot thresholds bound it.
//   - HAZARD: leases assume every member's monotonic clock runs within
//     MaxDriftPPM of true time. A clock that runs faster than that (or a
//     process paused across the lease while its clock stops) can let two
//     leaders believe in their leases at once; reads would then be stale.
//     Writes stay safe regardless: Paxos does not depend on time.
//   - Peers are authenticated by the transport; the core accepts messages
//     from any sender, since a node that lags may not know every member.
//   - Knobs break the protocol on purpose and exist only for the simulator.
package consensus
