// Package storage is the durable acceptor store: the HardState and the log
// entries a consensus node must not forget across a crash, kept in one bolt
// file through github.com/hashicorp/raft-boltdb/v2.
//
// # Usage
//
// The driver opens the store once, loads the state into a new node, and then
// hands every Ready to Save before sending the Ready's messages:
//
//	st, err := storage.Open(path)
//	hs, ents, err := st.Load()
//	// ... start the node from hs and ents ...
//	for rd := range ready {
//		if rd.MustSync() {
//			if err := st.Save(rd.HardState, rd.HardStateChanged, rd.Entries); err != nil {
//				// stop the node: the store is fail-stopped, see below
//			}
//		}
//		// send rd.Messages, apply rd.Committed, Advance(rd)
//	}
//
// A Store is used from one goroutine; it does no locking of its own.
//
// # Layout
//
// raft-boltdb keeps two buckets. The log bucket holds one raft.Log per slot,
// keyed by Index = slot, with Type = raft.LogCommand and
//
//	Data = uvarint(commitHint) || consensus.AppendEntry(entry)
//
// where commitHint is HardState.Commit as passed to the Save that wrote the
// record. The stable bucket holds one key, "hardstate", with three uvarints:
// Promised.Round, Promised.Node, Commit. Slot 0 is reserved (Commit 0 means
// nothing is chosen) and Save refuses it.
//
// # Durability
//
// Nothing returns before fsync. Save writes all of its entries in one
// StoreLogs call, which is one bolt transaction and one fsync however many
// entries the Ready carries (group commit). When hsChanged is true it then
// writes "hardstate" in a second transaction with its own fsync. Entries go
// first so that a durable Commit never covers entries that are not yet
// durable. Open also fsyncs the directory holding the file, so a newly
// created file survives a crash.
//
// # Lazy commit
//
// Commit need not be written on its own: each record carries the Commit known
// when it was saved, and Load returns
//
//	Commit = max(hardstate Commit, every record's commitHint)
//
// clamped as described below. A Save with hsChanged false therefore still
// advances the durable Commit if it carries entries, and one that carries no
// entries advances nothing. So a Load may return a lower Commit than the last
// Save passed. That is safe: Commit only promises that a prefix is chosen,
// a lower one promises less, and the node re-learns the rest from its peers.
//
// # What Load repairs
//
// Load trusts no scalar beyond what the records can back up:
//
//   - If a slot k with 1 <= k <= Commit has no record, Commit becomes k-1.
//     Commit claims every slot up to it is held with its chosen value; a node
//     that believed it over a hole would apply past the hole or serve a Learn
//     it cannot fill. The core hands chosen entries to storage no later than
//     the Commit that covers them, so a hole means a lost or skipped write,
//     and the node must re-learn from the hole on.
//   - Every returned entry with Slot <= Commit has Chosen set: Commit is the
//     proof, whatever the record said when it was written.
//   - Promised is raised to the highest ballot of any entry not recorded as
//     chosen. A crash between the entries' fsync and the hardstate's can
//     leave entries accepted at a ballot above the durable promise; an
//     acceptor has promised at least every ballot it accepted, and raising a
//     promise only makes the acceptor refuse more.
//
// # Hazards
//
// HAZARD: the store is fail-stop. Once a write fails (or the store is
// closed), the Store remembers the error and every later Save and Load
// returns it: after a failed fsync the file may hold either side of the
// write, and the node must not send anything that depends on it. The driver
// stops the node; a restart reopens the file and Loads what survived.
//
// HAZARD: the Chosen marking trusts the core's invariant that every slot up
// to Commit was saved with its chosen value. The clamp detects a missing
// slot, not a slot that holds the wrong value.
//
// HAZARD: the log is never truncated. The file grows with every slot, and
// Load reads every index from the first slot to the last, so its cost grows
// with the span of slots, holes included.
//
// HAZARD: one process per file. bolt takes an exclusive file lock; Open gives
// up with an error after a second rather than wait for another holder. Two
// processes acting as one acceptor would break Paxos.
//
// HAZARD: the guarantees are only as good as fsync. They hold with raft-boltdb's
// NoSync left false, as here, and on a disk that honours cache flushes.
package storage
