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
//
// # Guarantees
//
//   - Apply is deterministic: it depends on the command and the state
//     alone, never on the host's clocks. A command that does not decode
//     changes nothing on any host.
//   - Snapshot and Restore round-trip the whole state.
//
// # Hazards
//
// An Anchor is only meaningful on the host, and in the process, that
// answered the sample: Anchor.Incarnation names that process. Ticks
// replayed from the log after a restart carry old incarnations, and the
// host ignores them for its output.
package ordering
