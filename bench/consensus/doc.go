// Command bench-consensus measures clockd's consensus against
// github.com/hashicorp/raft on the machine it runs on, in one run, so the
// two are compared under the same disk, kernel and load. `make
// bench-consensus` runs it; BENCHMARKS.md records its output.
//
// # The model
//
// Each engine runs as a three-node cluster, one OS process per node, on
// 127.0.0.1: the coordinator re-executes its own binary as
// "bench-consensus node --engine clockd|raft --id N ..." and drives every
// node over stdin/stdout lines (see runNode). Every row of the table gets
// a fresh cluster, so each node's peak RSS belongs to that row alone.
//
//   - clockd: consensus/storage (raft-boltdb/v2, fsync on), a snapshot
//     store, the gRPC transport in plaintext (Insecure: the cluster is on
//     loopback) and the driver, every setting at its default.
//   - hashicorp/raft: raft.DefaultConfig() with only LocalID and Logger
//     set, raft-boltdb/v2 (fsync on) as log and stable store behind the
//     512-entry LogCache its own products use, a FileSnapshotStore, the
//     NetworkTransport from raft.NewTCPTransport, and a counting FSM.
//
// # The loop
//
//  1. Measure the floor: the median of fsync'd raft-boltdb StoreLog calls
//     of one 64-byte entry in the run's temporary directory, and the
//     median 64-byte TCP ping-pong on loopback. A commit needs at least one
//     durable write and one round trip, so their sum is what no engine
//     can beat on this machine. For context it also times the same write
//     with three writers at once, since the three nodes share one disk.
//  2. For every client count and engine: start the cluster, poll every
//     node's status until all name the same leader, and tell the leader's
//     process "load CLIENTS DURATION WARMUP". It runs that many closed-loop
//     clients, each proposing one fresh 64-byte command at a time
//     (Replica.Propose, or raft.Apply(...).Error()), prints "window-start"
//     and "window-end" around the measured window, and reports the count
//     and latency percentiles of the proposals that completed inside it.
//     The coordinator reads /proc/<pid>/stat of all three nodes at the two
//     marks (CPU per command) and /proc/<pid>/status at the end (VmHWM).
//     With --repeat N, steps 1 and 2 run N times, the engines alternating
//     within each round; every row reports its median run.
//  3. The paused-follower scenario: stop one follower with SIGSTOP, load
//     the leader for --pause-duration while sampling its VmRSS every
//     second, then SIGCONT the follower and time its catch-up.
//
// # Profiles
//
// With CLOCKD_BENCH_CPUPROFILE=DIR every node process writes a CPU
// profile of its first CLOCKD_BENCH_CPUPROFILE_FOR (default 10s) to
// DIR/ENGINE-ID.pprof, for go tool pprof with the bench binary:
//
//	CLOCKD_BENCH_CPUPROFILE=/tmp/prof CLOCKD_BENCH_CPUPROFILE_FOR=6s \
//	    bin/bench-consensus --clients 256 --engines clockd --pause-duration 0 --duration 8s
//
// The window starts with the process, so it covers the cluster's start
// and warm-up too; a node killed before it ends leaves an empty file.
//
// # Guarantees
//
//   - Nothing runs with fsync off.
//   - Every node process is killed and the temporary directory removed
//     when the run ends, fails, or is interrupted; a coordinator killed
//     outright takes its children with it (PR_SET_PDEATHSIG).
//   - Targets print PASS or FAIL but never change the exit code: 0 means
//     the run completed, 1 an error, 2 bad flags, 130 an interrupt.
//
// # Hazards
//
//   - The load generator runs inside the leader's process, so its CPU and
//     memory are counted with the leader's, for both engines alike.
//   - On a 2-CPU machine the three nodes, the clients and the coordinator
//     share two cores: the numbers say how the engines compare here, not
//     what either does on dedicated hosts.
//   - CPU time includes the kernel's work in fsync, which on virtual disks
//     can be most of it.
//   - A kernel that monitors memory with DAMON takes the machine's CPUs on
//     its own beat; the header names every such monitor running
//     ("kernel memory monitor:", benchmain.MemoryMonitors), since its
//     passes can show in the latency tails.
package main
