// Package vclock is the cluster's reference clock: how hosts sample their
// clocks, how the leader turns the samples into committed ticks, and how
// each host serves a monotone reading with an honest error bound.
//
// # Model
//
// Every host has a monotonic clock M (trusted for rate to within
// max_drift_ppm, never stepped) and a wall clock W (untrusted). Clock is
// the interface to both; tests inject offsets, drift and steps.
//
//  1. Samples. A host's Source estimates UTC as W ± e: e is upstream NTP's
//     root distance (Upstream) where configured, else wall_error
//     (WallSource). Sample pairs that estimate with the host's M.
//
//  2. Ticks. Every tick_interval the leader asks each member for a Sample
//     over the peer link, NTP-style: an answer that took a round trip r is
//     widened by r/2. BuildTick moves every interval to one instant of the
//     leader's M, intersects them (Intersect, Marzullo's algorithm), and
//     fails unless a majority of the voting members agree. Hosts whose
//     interval misses the agreement are falsetickers: named in the tick,
//     never followed. The agreement is narrowed by what the previous tick
//     already proved, carried forward with drift (TickInput.Prior), so the
//     reference tightens instead of wandering with whoever answered. The
//     reference itself moves from the prior's centre toward the
//     agreement's by at most RefSlewPPM of the tick interval a tick
//     (TickInput.MaxStepNs), always inside the agreement, so hosts that
//     miss a tick are not left behind by a jump. The tick carries one
//     ordering.Anchor per host: "when your M read m, the reference read
//     ref ± err", err reaching the agreement's farther edge.
//
//  3. Output. Each Host estimates its M's rate against the reference, f,
//     from its anchors 16 to 128 s apart (clamped to ±max_drift_ppm,
//     restarted when the reference moves more than drift allows). On
//     applying a tick with its own anchor it sets its target
//     T(m) = ref + (m − m_anchor)(1 + f) and moves its output O toward T
//     through package slew: O never decreases and its rate stays within
//     1 ± slew_ppm of T's. A reading at m is
//
//     O ± (err + (drift + |f|)·(m − m_anchor) + |O − T|)
//
//     as Segment.At computes it. The same Segment goes to the shared page
//     (package vclock/shm), so local readers compute identical readings.
//
//  4. Status. INITIALIZING until the first anchor; SYNCHRONIZED while the
//     anchor is younger than holdover_after; HOLDOVER after that (no
//     quorum, or this host is cut off: the bound keeps growing with
//     drift); UNSYNCHRONIZED after unsync_after.
//
//  5. Restart floor. The host persists a high-water mark a window ahead of
//     O (FileHWM) and never serves a reading above it. A new process
//     starts INITIALIZING with its output held at the mark, so it never
//     reads lower than the old one did. If the first tick finds the
//     reference behind the mark (a restart within the window), the output
//     keeps holding until the reference passes it, then follows it: a
//     wait of at most hwm_window, instead of running ahead of the
//     reference for the |lead|/slew_ppm a slew down would take (2000 s
//     for 1 s at 500 ppm).
//
// # Guarantees
//
//   - Readings on one host never decrease, across ticks, leader changes
//     and restarts of the daemon.
//   - If at most a minority of hosts have wrong clocks (their true error
//     exceeds their claimed bound), and monotonic clocks drift within
//     max_drift_ppm, every SYNCHRONIZED or HOLDOVER reading contains the
//     true time. A minority of hosts cannot commit ticks at all: on their
//     own they fall to HOLDOVER, then UNSYNCHRONIZED, and never claim sync.
//
// # Hazards
//
//   - HAZARD: if a majority of hosts' wall clocks are wrong by more than
//     their claimed error, the reference follows them. Configure upstream
//     NTP or an honest wall_error.
//   - HAZARD: if a monotonic clock drifts beyond max_drift_ppm, bounds can
//     be too narrow, and a leader's lease (package consensus) too long.
//   - An anchor is meaningful only to the process that answered the
//     sample (ordering.Anchor.Incarnation); after a restart the host waits
//     for a fresh tick, reading INITIALIZING from its floor meanwhile.
//   - If storing the high-water mark fails, Now still answers (after
//     trying to store it synchronously) but Host.Err reports the failure,
//     and the daemon's watchdog stops pinging systemd.
package vclock
