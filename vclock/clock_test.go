package vclock

import "testing"

// TestMonoNowIsClockMonotonic: MonoNow reads the same clock as
// clock_gettime(CLOCK_MONOTONIC), which other processes read the shared
// page against: each reading lies between two system-call readings.
func TestMonoNowIsClockMonotonic(t *testing.T) {
	for range 1000 {
		before := monoSyscall()
		m := MonoNow()
		after := monoSyscall()
		if m < before || m > after {
			t.Fatalf("MonoNow %d outside [%d, %d] of clock_gettime(CLOCK_MONOTONIC)", m, before, after)
		}
	}
}

func BenchmarkMonoNow(b *testing.B) {
	for b.Loop() {
		MonoNow()
	}
}

func BenchmarkMonoSyscall(b *testing.B) {
	for b.Loop() {
		monoSyscall()
	}
}
