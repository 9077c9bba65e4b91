// Package ordering is clockd's replicated state machine: the commands the
// cluster agrees on through consensus, how every host applies them, and
// their snapshots.
//
// # Commands
//
// Every command starts with a Kind byte and a codec version byte:
//
//   - Tick: a reading of the reference clock the leader took from the
//     hosts' samples (package vclock). It carries one Anchor per host
//     that answered, tying that host's monotonic clock to the reference,
//     and names the falsetickers. Apply numbers ticks in log order.
//   - Ceiling: the timestamp oracle's window ceiling (package vclock/tso).
//     Apply keeps the maximum and answers with the ceiling before it, so
//     a new leader learns, through its own command, every ceiling an
//     earlier leader committed.
//   - VMFreeze, VMResume, VMRelease: the VM clock records (vm.go).
//   - Events: a batch of trace events (events.go). Apply gives the new
//     ones global sequence numbers (GSNs) in batch order, drops the ones
//     already committed (per source, by sequence number), and hands the
//     new ones to OnEvents (the host's event store) without decoding
//     them into strings.
//
// # Event pipelines
//
// A host keeps many event batches in flight at once. Each batch it
// proposes (KindEventBatch) carries its place in the host's pipeline:
// origin node, epoch, batch number. Apply takes a batch only if it is the
// pipeline's next one, batch n+1 of the same epoch or batch 1 of a larger
// epoch, and rejects anything else whole, changing nothing and answering
// with the pipeline's position. So batches commit in the order the host
// numbered them, whatever order their proposals arrive in, and a late
// copy of a batch (a retry whose first try did commit, a proposal a new
// leader re-proposes) is rejected instead of committing twice. The host
// proposes again, in order, every batch not known to be committed
// (package daemon). Unsequenced batches (KindEvents) are applied whenever
// they come; only the per-source dedupe guards them.
//
// In a sequenced batch each event is encoded against the one before it
// (eventcodec.go): a batch's events mostly share host, source, kind and
// reference interval, and their sequence numbers and times are close, so
// the log carries less than the events alone (a 100-byte event takes
// about 65 bytes). A host whose event_compression is s2, the default, also
// compresses those encoded events (KindEventBatchS2, S2 from
// github.com/klauspost/compress): trace lines repeat their words, and a
// 100-byte hypervisor trace event then takes about 30 bytes, not 70. Apply
// takes both kinds alike, so hosts may differ in the setting; a clockd
// from before KindEventBatchS2 cannot apply it, and refuses it as
// malformed. The event store keeps the batch as it is, compressed or not
// (Committed's blocks).
//
// # Guarantees
//
//   - Apply is deterministic: it depends on the command and the state
//     alone, never on the host's clocks. A command that does not decode
//     changes nothing on any host; Apply checks every event of a batch
//     before it applies any, exactly as Decode would.
//   - Every host applies the same batches in the same order, so every
//     host numbers the same events with the same GSNs.
//   - Snapshot and Restore round-trip the whole state, the pipelines'
//     positions included (snapshot version 4); Restore reads every
//     earlier version.
//
// # Hazards
//
// An Anchor is only meaningful on the host, and in the process, that
// answered the sample: Anchor.Incarnation names that process. Ticks
// replayed from the log after a restart carry old incarnations, and the
// host ignores them for its output.
//
// The bytes Committed hands to OnEvents alias the command in the
// consensus log: they stay valid, and must not be changed.
//
// A pipeline's epoch must be larger than every epoch its origin used
// before; the daemon stores the last one it took. An origin that reused
// an epoch would have batches taken for committed copies of its own.
package ordering
