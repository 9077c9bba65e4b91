// Package daemon assembles one clockd node: `clockd run` is flags →
// Config → New → Run.
//
// # Parts
//
//   - consensus: a driver.Replica over raft-boltdb storage, snapshots and
//     the gRPC peer transport (mTLS unless insecure), applying
//     ordering.Machine;
//   - the reference clock: a vclock.Host fed by the ticks the machine
//     applies; while this node leads and holds its lease, a ticker samples
//     every member (transport.Call "clock.sample") and commits a tick;
//   - the timestamp oracle (package vclock/tso) on the leader, committing
//     window ceilings through the log; followers forward requests to it;
//   - the ordered event log: trace events from the API (OrderingService),
//     tailed files and the ingest socket go through one event pipeline
//     into the log (events.go, flights.go), and a store writer puts what
//     commits into this host's event store (package eventlog) on a
//     goroutine of its own (storewriter.go), and fills from the other
//     members any run of events it skipped (backfill.go);
//   - run-books (runbooks.go): an executor that runs this host's steps
//     one at a time in the committed order (package ordering/runbook
//     decides; the executor claims, runs and reports, fenced by the
//     tokens the log hands out), and recovers a step a restart
//     interrupted;
//   - the services: the gRPC API (TimeService, AdminService,
//     OrderingService, MigrationService, RunbookService, health,
//     reflection), the NTP server, the shared page and /metrics (and
//     /debug/pprof/ when pprof is set).
//
// Membership changes and leader transfers asked of a follower are
// forwarded to the leader over the peer link, so clients may talk to any
// member. A read that must see everything committed before it (a
// run-book this node does not know yet) passes a read barrier on the
// leader (peer call "read.index") and waits to apply up to the slot the
// leader names.
//
// # Start-up
//
// New first locks the data directory (flock on data_dir/LOCK, which holds
// the process ID), so a second clockd on it is refused before it touches
// the running node's store, shared page or ingest socket; then it opens
// every file and binds every port, so a bad configuration or a port in
// use fails before anything runs. Run starts the parts; once the
// node has joined (when configured to join) and applied everything the
// leader has committed, it calls Config.OnReady (sd_notify READY=1).
// Healthy is what the systemd watchdog checks.
//
// # The event pipeline
//
// Events wait in one FIFO: the spool on disk while it holds anything,
// else a queue in memory (bounded: adding waits for room). The pipeline
// cuts them into batches of up to 256 KiB, numbers each within an epoch,
// compresses it unless event_compression is none (ordering's
// KindEventBatchS2), and proposes up to 64 at a time, in order; a member that does not lead
// forwards them to the leader ("events.propose"), which submits each
// origin's batches in batch order. The state machine applies a batch only
// if it is its pipeline's next (package ordering), so they commit in
// order. When the batch at the head fails, the pipeline waits for every
// try under way and proposes again, in order, every batch not known to be
// committed. A batch that the retry finds committed already, by a try
// whose answer was lost (a leader change), is answered with what that
// try accepted, as this host's state machine heard it when applying it
// (ordering.Machine.OnBatch); only if this host has not applied it
// within a second are its events answered as duplicates, without GSNs.
// A batch from memory that has not committed after 2 s goes to
// the spool, with everything queued behind it, and its sender is told so;
// the next batch starts a new epoch. Epochs are stored
// (data_dir/events-epoch) before use and only grow.
//
// # Guarantees
//
//   - Every host holds the same events in the same order; each source's
//     events commit in the order this host received them; a batch, or a
//     client's retry, never commits an event twice; an acknowledged
//     event is in the log of a majority.
//   - While the cluster is out of reach, events wait in the spool, within
//     spool_max_bytes; beyond it they are dropped and counted
//     (clockd_events_dropped_total), never silently.
//   - An event whose host, source or kind holds a control character is
//     refused: Append answers InvalidArgument, and the files and the
//     ingest socket log it and count it (clockd_events_refused_total).
//     A NUL would otherwise make two sources one (checkNames).
//   - Timestamps are unique and increasing across leaders: a new leader
//     commits a ceiling of its own before serving, and starts above the
//     one before it (package vclock/tso). It serves only while its lease
//     holds, checked against the clock at each request.
//   - A storage failure stops the node (Run returns the error), and
//     systemd restarts it.
//
// # Hazards
//
//   - After a failover the timestamps' physical part may run ahead of the
//     reference by up to tso_window, until the reference catches up.
//   - A node that joins must advertise an address the others can dial
//     (peer_advertise, or a concrete peer_listen).
//   - The consensus log keeps little behind a snapshot (SnapshotBytes and
//     SnapshotTrailingBytes in driverConfig): a member further behind
//     catches up by installing a snapshot, and its event store skips the
//     events in between. The backfiller (backfill.go) fetches them from
//     the other members ("events.read") and fills the gap
//     (eventlog.Store.Fill). Until it has, Read on that host shows a jump
//     in GSNs, and Subscribe waits at the gap for the fill, up to 10 s,
//     before it goes on past it. Events no member holds any more
//     (retention removed them everywhere) stay missing, logged and counted
//     (clockd_events_unrecoverable_total). The offset history (package
//     offsetlog, DataDir/offsets) skips those ticks the same way, and a
//     second backfiller fills it from the other members ("offsets.read",
//     clockd_offset_ticks_backfilled_total and
//     clockd_offset_ticks_unrecoverable_total).
//   - The event store and the offset history hold the only copy on this
//     host of what the log compacts behind a snapshot, so both are synced
//     before the snapshot commits (beforeSnapshot); a host that cannot
//     write either fails its health check.
//   - An acknowledged append is readable from this host's store at once
//     (Read waits for the store writer), but a Subscribe elsewhere may
//     see it a moment later.
package daemon
