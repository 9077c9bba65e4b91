// Package driver runs one consensus node on one goroutine and connects it
// to storage, the transport and the replicated state machine.
//
// # The loop
//
// Run owns the protocol core. It wakes on a tick, a peer message, a
// proposal or a finished write, then drains every message and proposal
// already waiting, so one Ready covers a whole batch. For every Ready it:
//
//  1. sends the leader's accepts (they may leave before its own write);
//  2. hands the entries and the messages to the writer goroutine;
//  3. applies the chosen commands in slot order (StateMachine.Apply);
//  4. releases the Ready (Node.Release) and goes on.
//
// The writer persists everything queued since its last write in one
// Storage.Save (one fsync), then sends those Readies' messages, then hands
// them back; the loop calls Node.Persisted, and only then do the node's
// own acceptances count towards a quorum. So the loop keeps stepping
// acknowledgements and proposals while the disk syncs, and messages never
// leave before the state they reflect is durable.
//
// A leader proposes one slot at a time, and batches: while its last slot
// is on its way to its disk or waits to be chosen, it holds new
// proposals; then it proposes together, in one slot, one accept per
// follower and one write, all that arrived meanwhile. It also gathers:
// callers answered together come back one by one, and the first alone
// would start a slot the others wait behind. So when a slot resolved n of
// its proposals while m were held, the next slot waits until n+m are
// held, or for Config.GatherWindow at most. After a slot of one proposal,
// with none held, it never waits. The protocol core pipelines slots; the
// loop does not ask it to, because on a disk that writes one batch at a
// time, slots in flight together only split the batch.
//
// A Ready that changes the promise (an election) waits for the writes in
// flight and is persisted and sent in place, as are snapshot installs,
// which use the store directly.
//
// # Snapshots
//
// Each replica snapshots after a threshold raised by a random 0-50% (see
// Config.SnapshotEntries), so that members, which apply the same log, do
// not all snapshot at the same slot. The loop only captures the state
// (Capturer; a plain StateMachine is snapshotted into memory); a
// goroutine of its own writes and commits the file, one snapshot at a
// time, while the loop goes on. Once the file is committed the loop
// compacts its log behind it, and hands the store's compaction to the
// writer, after the writes queued before it. A received snapshot is
// installed only after the one being written is finished; Run, when ctx
// ends, finishes it too. A snapshot that fails stops the replica, as a
// storage error does.
//
// # Proposals
//
// Propose returns only once the command is chosen and applied locally,
// with its slot and the state machine's result. On a follower it fails at
// once with *consensus.NotLeaderError naming the leader; proposals are
// never forwarded. If the node loses the leadership after giving the
// command a slot, Propose fails with ErrOutcomeUnknown: the command may
// still be chosen, and a blind retry may apply it twice.
//
// # Failure
//
// A storage error stops the replica at once (fail-stop) with the log line
// "storage write failed, stopping node": nothing is sent or applied on
// the strength of a write that may not be durable. Run returns the error,
// pending proposals fail with ErrStopped, and the process should exit.
//
// # Hazards
//
//   - The state machine is rebuilt by replaying the whole log on start;
//     Apply must be deterministic and must not do I/O that cannot repeat.
//   - Apply runs on the driver goroutine; a slow Apply slows consensus.
package driver
