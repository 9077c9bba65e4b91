// Package kvtest is a small replicated key-value store, KV, used to prove
// that the whole stack — consensus core, driver, storage, snapshots and
// gRPC transport — gives clients linearizable operations on real nodes
// while they crash, restart and lose the network.
//
// # The state machine
//
// KV maps strings to strings. Writes are log commands (Command.Encode):
// Put, Append and CAS, each returning the key's previous value (and, for
// CAS, whether it swapped). Reads are not logged: a client calls the
// leader's driver.Replica.Read barrier and then KV.Get on that node.
//
// Every write carries a (Client, Seq) id. KV remembers each client's last
// applied Seq and its result, so a client that retries an operation whose
// outcome it never learned (driver.ErrOutcomeUnknown, a stopped node, a
// deadline) applies it at most once, and a late copy of an operation the
// client has given up on changes nothing. Snapshot and Restore carry this
// table along with the map.
//
// # What the tests prove
//
// TestLinearizableUnderFaults starts a 3-node devcluster (one bolt file,
// one snapshot directory and one loopback gRPC transport per node) and
// runs concurrent clients doing Get, Put, Append and CAS on a handful of
// keys. Meanwhile a fault injector, from one seed, kills the leader or a
// random node (devcluster Stop, then Restart from disk), cuts a node off
// through the cluster's message Filter, and heals everything. Every
// operation is recorded with call and return times from one monotonic
// clock and the history is checked with porcupine against a sequential
// model of the map, partitioned by key. The nodes snapshot every 100
// commands and keep a 20-slot log tail, so restarted nodes catch up both
// by log replay and by snapshot transfer. It runs once with read-index
// reads (a heartbeat round per read) and once with leader-lease reads.
//
// It also checks that, once healed, every node applies the same commands
// and holds the same map.
//
// How outcomes enter the history:
//
//   - Success: the operation with its output.
//   - *consensus.NotLeaderError, consensus.ErrBusy: the command never got
//     a slot; the attempt had no effect and is retried, not recorded.
//   - A read that never succeeds: left out, reads have no effect.
//   - A write whose attempts included one of unknown outcome and that
//     never succeeded: recorded as unknown, never dropped (dropping one
//     that did take effect would make a correct system look broken). The
//     model lets it take effect once at any point of its interval, with
//     any output, or never. Its interval runs from its call to the return
//     of the same client's next successful write: once a later operation
//     of the client applied, KV ignores every copy of this one, so it took
//     effect by then or never will. A write with no later success stays
//     pending to the end of the history. Without this bound every unknown
//     write stays concurrent with all later operations on its key, and
//     porcupine's search grows with the factorial of their number.
//
// The faults test fails if fewer than 100 operations succeeded or if any
// kind of fault (kill, restart, isolation, reconnection, heal-all) did not
// happen. Run against the protocol knobs that break Paxos on purpose
// (HalfQuorum, IgnorePromisedValues) or with reads served without the
// barrier, it reports the history as not linearizable.
//
// # Hazards
//
//   - Linearizability is checked, not proved: a run covers the schedules
//     its seed and the machine's timing produce. The seed is logged;
//     KVTEST_SEED replays its fault choices and client mix, though not the
//     exact timing.
//   - The session table grows with the number of clients, and Apply
//     trusts clients to number their operations and keep one in flight.
//   - Get alone is not linearizable; only Get right after a successful
//     Read on the node that holds the KV.
package kvtest
