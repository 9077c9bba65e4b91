// Package snapshot keeps durable, checksummed snapshots of the replicated
// state machine in one directory, so that the consensus log below a
// snapshot's index can be compacted (storage.Store.Compact) and a lagging
// peer can be sent the snapshot instead of the log.
//
// # Usage
//
// On start, the driver restores the newest snapshot, then replays the log
// above it:
//
//	st, err := snapshot.Open(dir, log)
//	meta, ok, err := st.Latest() // ErrCorrupt: refuse to start, see below
//	if ok {
//		meta, data, size, err := st.Open(meta.Index) // verified, data section only
//		// restore the state machine from data, size bytes; data.Close()
//	}
//
// To take a snapshot of the state applied up to slot n:
//
//	w, err := st.Create(snapshot.Meta{Index: n, Config: cfg})
//	defer w.Abort() // no-op after a successful Commit
//	// write the state machine to w
//	err = w.Commit() // durable once it returns nil
//	err = log.Compact(n) // only now
//	err = st.Prune(2)
//
// To ship one to a peer, send the bytes of st.OpenFile(n); the peer calls
// Import on the stream and gets the Meta it installed.
//
// # File format
//
// A snapshot at index n is the file snap-<n as %020d>.snap in the
// directory, so names sort in index order:
//
//	"CLKSNAP1"              8 bytes, magic and format version
//	uvarint(Index)          >= 1, must match the file name
//	uvarint(len(Config))
//	Config
//	data                    to the trailer
//	SHA-256                 32 bytes, of every byte before it
//
// The data section has no length field: it is the file size minus the
// header minus the 32-byte trailer. A truncated file therefore still
// parses, and is caught by the trailer, which then no longer matches.
//
// # Guarantees
//
//   - Atomicity. A Writer and an Import write to a *.tmp file in the same
//     directory and rename it into place only after the whole file, trailer
//     included, is fsynced; then the directory is fsynced. A crash at any
//     point leaves either no snapshot at that index or a complete one. Temp
//     files are never read, and Prune removes those that no Writer or
//     Import of the Store is using.
//   - Verification. Latest and Open read the whole file once and check the
//     magic, the trailer, the header and that the header's index matches
//     the name before they return anything; Import does the same before the
//     rename. Any mismatch, bad length or truncation is an error wrapping
//     ErrCorrupt whose message names the file.
//   - Latest returns the newest snapshot or an error, never an older one.
//     If the newest is corrupt, it fails with ErrCorrupt naming that file,
//     and the node refuses to start. Silently falling back would restore an
//     older state while the log may already be compacted past it, which
//     loses chosen slots without a trace; refusing makes the damage visible.
//     The operator deletes the named file; the node then starts from the
//     previous snapshot if the log still reaches back to it, or else must
//     be given a snapshot by a peer.
//
// # Hazards
//
// HAZARD: snapshots are read twice, once to verify and once to restore or
// send. That is fine for modest state machines; a multi-gigabyte one would
// want a verifying reader instead.
//
// HAZARD: OpenFile does not verify: a file damaged since it was last
// verified is sent as is, and the peer's Import rejects it.
//
// HAZARD: Import reads r to EOF with no size limit; the transport must bound
// what a peer may send.
//
// HAZARD: one process per directory. Nothing locks it, and Prune in one
// process removes the temp files of another.
//
// HAZARD: Prune does not fsync the directory. A removal that a crash undoes
// is redone by the next Prune; a kept snapshot is never at risk.
package snapshot
