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
//	hs, ents, err := st.Load() // ErrCorrupt: refuse to start, see Checksums
//	floor, err := st.Compacted() // the newest snapshot must reach floor
//	// ... restore the snapshot, start the node from hs and ents ...
//	for rd := range ready {
//		if rd.MustSync() {
//			if err := st.Save(rd.HardState, rd.HardStateChanged, rd.Entries); err != nil {
//				// stop the node: the store is fail-stopped, see below
//			}
//		}
//		// send rd.Messages, apply rd.Committed, Advance(rd)
//	}
//	// once a snapshot covering slot n is durable (package snapshot):
//	err = st.Compact(n)
//
// A Store is used from one goroutine; it does no locking of its own.
//
// # Layout
//
// raft-boltdb keeps two buckets. The log bucket holds each slot's record
//
//	record = uvarint(commitHint) || consensus.AppendEntry(entry) || crc
//
// where commitHint is HardState.Commit as passed to the Save that wrote the
// record, cut into n parts of at most 32 KiB less 128 bytes (so that each
// is at most 32 KiB as stored; see partBytes). Part p is a raft.Log with
//
//	Index = slot<<16 | p, Term = n, Type = raft.LogCommand, Data = the part
//
// so a slot's parts are adjacent keys and slots stay in key order. Save
// refuses a slot above 2^48-1 (ErrSlotHigh) and a record of more than 2^16
// parts (ErrRecordSize); consensus messages are far smaller. Parts keep each
// value small: bolt keeps at least two values in a leaf page and writes
// the whole leaf again when a key is added to it, so whole records of a
// few hundred KiB (slots of trace events) would be written again by the
// next Saves, about 4.6 times their size in all; in parts a Save writes
// again at most a few parts before its own. A record written over a longer
// one of the same slot leaves the longer one's last parts behind; Load
// reads only the n parts the first names, and Compact deletes the rest
// with the slot. The stable bucket holds:
//
//	"hardstate" = uvarint(Promised.Round) || uvarint(Promised.Node) || uvarint(Commit) || crc
//	"compacted" = uvarint(floor) || crc
//	"layout"    = uvarint(2) || crc
//
// "compacted" is absent until the first Compact. "layout" is written when
// Open finds an empty file; Open refuses, with ErrLayout, a file that has
// records and no "layout" (one whole record per key, as an earlier version
// wrote) or another layout. In a record and in every stable value, crc is
// the CRC-32C (Castagnoli) of all the bytes before it, 4 bytes big-endian,
// appended as a trailer. Slot 0 is reserved (Commit 0 means nothing is
// chosen) and Save refuses it.
//
// # Durability
//
// Nothing returns before fsync. Save writes all of its entries in one
// StoreLogs call, which is one bolt transaction and one fsync however many
// entries the Ready carries (group commit). When hsChanged is true it then
// writes "hardstate" in a second transaction with its own fsync. Entries go
// first so that a durable Commit never covers entries that are not yet
// durable. Compact writes in up to three transactions, each fsynced; see
// Compaction. Open also fsyncs the directory holding the file, so a newly
// created file survives a crash.
//
// # Checksums
//
// bolt checks its meta pages but not the values it stores: a flipped bit in
// a record would decode into a different, valid-looking entry, and an
// acceptor that reports a value it never accepted breaks Paxos. So every
// record (joined from its parts) and every stable value carries the CRC-32C
// trailer above, and Load checks it before it decodes anything; a missing
// part, or one that disagrees with the first about their number, is
// corrupt too. A mismatch (or a value that passes the check and still
// does not decode) fails Load with an error wrapping ErrCorrupt that names
// the file and the slot, "hardstate" or "compaction floor":
//
//	storage: load /var/lib/clockd/paxos.db: slot 7: storage: corrupt record: checksum mismatch: ...
//
// The node then refuses to start. Load does not skip or repair a corrupt
// value: dropping a record could drop an acceptance, and guessing a promise
// could lower it. The slot's key is not covered by the checksum; a record
// under the wrong key is caught because every entry names its own slot.
// Compact checks the records it deletes in the same way when it reads them
// (see Compaction).
//
// # Lazy commit
//
// Commit need not be written on its own: each record carries the Commit known
// when it was saved, and Load returns
//
//	Commit = max(hardstate Commit, every record's commitHint)
//
// then raised to the compaction floor and clamped as described below. A Save with hsChanged false therefore still
// advances the durable Commit if it carries entries, and one that carries no
// entries advances nothing. So a Load may return a lower Commit than the last
// Save passed. That is safe: Commit only promises that a prefix is chosen,
// a lower one promises less, and the node re-learns the rest from its peers.
//
// # What Load repairs
//
// Load trusts no scalar beyond what the records can back up:
//
//   - If a slot k with floor < k <= Commit has no record, Commit becomes
//     k-1, where floor is the compaction floor (0 if never compacted).
//     Commit claims every slot up to it is held with its chosen value; a node
//     that believed it over a hole would apply past the hole or serve a Learn
//     it cannot fill. The core hands chosen entries to storage no later than
//     the Commit that covers them, so a hole means a lost or skipped write,
//     and the node must re-learn from the hole on. Slots at or below the
//     floor were compacted, not lost: they never clamp, and Commit never
//     drops below the floor.
//   - Every returned entry with Slot <= Commit has Chosen set: Commit is the
//     proof, whatever the record said when it was written.
//   - Promised is raised to the highest ballot of any entry not recorded as
//     chosen. A crash between the entries' fsync and the hardstate's can
//     leave entries accepted at a ballot above the durable promise; an
//     acceptor has promised at least every ballot it accepted, and raising a
//     promise only makes the acceptor refuse more.
//
// # Compaction
//
// Once a snapshot covering slot n is durable, Compact(n) drops the log up to
// n. It writes, in order, each step its own fsynced transaction:
//
//  1. "hardstate", only if a record about to go is not recorded as chosen
//     and has a ballot above the durable promise: Promised is raised to it.
//     Load's promise repair reads those records; after the deletion only
//     the hardstate can remember the ballot. Once Load has read the file,
//     the Store knows the highest such ballot of any record it holds, and
//     reads nothing when the durable promise is at least that.
//  2. "compacted" = n, the compaction floor. It only ever rises.
//  3. Every part of every record with slot <= n, deleted in one DeleteRange
//     transaction.
//
// Load reads records only above the floor and treats the floor as chosen: a
// crash between steps 2 and 3 leaves records at or below it, which Load
// ignores and the next Compact deletes. A record that Save writes at or
// below the floor later is ignored in the same way. Compacted returns the
// floor so that the driver can check it has a snapshot reaching it.
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
// HAZARD: the log is truncated only by Compact. Until then the file grows
// with every slot, and Load reads every index from the first slot above the
// floor to the last, so its cost grows with that span, holes included.
// Compact reads the records it deletes once. bolt reuses the freed pages
// but never shrinks the file.
//
// HAZARD: Compact trusts its caller. It deletes slots up to n whether or not
// a snapshot covers them, and raises Commit to n on the next Load. Compact
// only after the snapshot is durable, and refuse to start a node whose
// newest snapshot is below Compacted: its state up to the floor is gone.
//
// HAZARD: a corrupt store cannot be repaired in place. Do not delete the
// file to get the node running: an acceptor that forgets its promises and
// acceptances and rejoins under the same identity can break Paxos. Replace
// the node under a new identity instead. Files written before the checksums
// existed fail the same way.
//
// HAZARD: one process per file. bolt takes an exclusive file lock; Open gives
// up with an error after a second rather than wait for another holder. Two
// processes acting as one acceptor would break Paxos.
//
// HAZARD: the guarantees are only as good as fsync. They hold with raft-boltdb's
// NoSync left false, as here, and on a disk that honours cache flushes.
package storage
