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
//   - the services: the gRPC API (TimeService, AdminService, health,
//     reflection), the NTP server, the shared page and /metrics.
//
// Membership changes and leader transfers asked of a follower are
// forwarded to the leader over the peer link, so clients may talk to any
// member.
//
// # Start-up
//
// New opens every file and binds every port, so a bad configuration or a
// port in use fails before anything runs. Run starts the parts; once the
// node has joined (when configured to join) and applied everything the
// leader has committed, it calls Config.OnReady (sd_notify READY=1).
// Healthy is what the systemd watchdog checks.
//
// # Guarantees
//
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
package daemon
