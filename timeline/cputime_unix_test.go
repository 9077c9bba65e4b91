//go:build linux || darwin

package timeline

import (
	"syscall"
	"testing"
)

// cpuTime is the CPU time the process has used, user and system, in ns:
// unlike the wall time it leaves out the time other processes had the
// CPU.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
