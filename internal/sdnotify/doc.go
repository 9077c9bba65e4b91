// Package sdnotify tells systemd about the daemon's life: READY=1 once it
// serves, STATUS= lines for `systemctl status`, STOPPING=1 on shutdown, and
// WATCHDOG=1 pings while a health check passes. It is a thin layer over
// github.com/coreos/go-systemd/v22/daemon that adds logging and the
// watchdog loop.
//
// # Usage
//
//	n := sdnotify.New(log)
//	... open stores, join the cluster, start listeners ...
//	n.Ready()
//	go n.Watchdog(ctx, healthCheck)
//	<-ctx.Done()
//	n.Stopping()
//
// # Guarantees
//
//   - Outside systemd (NOTIFY_SOCKET unset) every call does nothing, and
//     Watchdog returns at once; so it does when systemd runs no watchdog
//     for this process (WATCHDOG_USEC unset, or WATCHDOG_PID another's).
//   - Watchdog pings at half of WATCHDOG_USEC, and only right after
//     healthy returned nil. While healthy fails it withholds the pings, so
//     systemd restarts the daemon once the failure has lasted WatchdogSec;
//     a shorter failure ends with the pings resuming. It logs each change
//     between the two, not each withheld ping.
//   - A failed notification is logged, never returned: the daemon can do
//     nothing better than go on, and systemd acts on the missing message.
//
// # Hazards
//
// HAZARD: with Type=notify, systemd reports the start as done only on
// Ready; a daemon that never calls it is killed after TimeoutStartSec.
//
// HAZARD: child processes inherit NOTIFY_SOCKET. NotifyAccess=main makes
// systemd ignore what they send, but a child started under another unit
// must not be given the variable.
//
// HAZARD: healthy runs on the watchdog's goroutine and must not block: a
// check that hangs stops the pings just as a failing one does.
package sdnotify
