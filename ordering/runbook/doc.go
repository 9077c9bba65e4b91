// Package runbook orders orchestration run-books through the replicated
// log: which host runs which step, when, and how each attempt ended.
//
// A run-book (Book) is a list of steps. Each step names the hosts that run
// it, the command (argv, run without a shell), the earlier steps it
// depends on, a timeout, a number of retries and whether it is
// idempotent. A step without a command is a barrier: every host it names
// must reach it, which is how an upgrade waits for all hosts at one point.
// A barrier with a minimum version is a version gate: a host reaches it
// only while it runs that clockd version or a later one, so what comes
// after it waits until every host it names has been upgraded.
//
// # The commands
//
// Everything is decided by commands applied in log order (State.Apply),
// so every host sees the same history:
//
//   - Submit commits a book. Its steps must list their dependencies
//     before them, so the book's order is an order they allow.
//   - Start is a host's claim on one of its runs. It is granted only when
//     every earlier run of that host, across books in submission order,
//     has ended, and the step's dependencies have succeeded on all their
//     hosts. So each host runs its steps one at a time, in the committed
//     order. A granted start gets a fencing token, larger than any before.
//   - Finish records an attempt's exit status, its output's SHA-256 and
//     the output's end. Only the latest token counts, so a host that lost
//     its claim cannot overwrite a newer attempt. A failure with retries
//     left makes the run pending again; the last failure fails it, and
//     skips every step that depends on it.
//   - Abandon ends a run as unknown: its host restarted while running a
//     step that is not idempotent, so whether the step took effect is not
//     known, and it is not run again. An idempotent step is claimed again
//     instead (Start under a new claim) and re-run.
//   - Cancel skips every run that has not started.
//
// Hosts execute (package daemon); this package only decides. Apply
// depends on the command and the state alone, never on clocks: the
// times in the commands are the ones the hosts report.
//
// # Hazards
//
// A step waiting on a host that never comes back waits for ever, and so
// do that host's later steps: cancel the book, or remove the host (its
// runs then wait for a host that no longer exists; cancel such books).
//
// A step must not stop or restart the clockd that runs it: the stop kills
// the step with clockd's control group before it can report its end, so
// an idempotent step would restart clockd for ever, and any other would
// end unknown. Restart clockd from outside, or with a step that schedules
// the restart (systemd-run --on-active=5s systemctl restart clockd) and
// returns.
//
// The state keeps KeptFinished finished books; older finished ones are
// dropped when a new book is submitted. A book dropped so is forgotten: a
// Submit under its id afterwards is a new book, and runs again.
package runbook
