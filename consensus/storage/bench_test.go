package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/clockd/clockd/consensus"
)

// writtenBytes is the bytes this process has passed to write calls
// (wchar in /proc/self/io), the page cache's copies included.
func writtenBytes(b *testing.B) int64 {
	buf, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range bytes.Split(buf, []byte("\n")) {
		var v int64
		if n, _ := fmt.Sscanf(string(line), "wchar: %d", &v); n == 1 {
			return v
		}
	}
	b.Fatal("no wchar in /proc/self/io")
	return 0
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSaveLarge saves one 300 KiB record per Save, as a slot of
// trace events is, compacting every 100 slots to keep 200, and reports
// the bytes written per Save (written-KiB/op) and the CPU time per Save,
// the kernel's included (cpu-µs/op): bolt writes a leaf again
// when a key is added to it, so what else a Save writes depends on the
// layout.
func BenchmarkSaveLarge(b *testing.B) {
	s := openT(b, filepath.Join(b.TempDir(), "acceptor.db"))
	defer s.Close()
	bal := ballot(1, 1)
	data := bytes.Repeat([]byte{'x'}, 300<<10)
	ent := consensus.Entry{Ballot: bal, Value: consensus.Value{Cmds: []consensus.Command{{Data: data}}}}
	b.SetBytes(int64(len(data)))
	slot := uint64(0)
	w0, c0 := writtenBytes(b), cpuTime(b)
	for b.Loop() {
		slot++
		ent.Slot, ent.Value.Cmds[0].ID = slot, slot
		if err := s.Save(hardState(bal, slot-1), false, []consensus.Entry{ent}); err != nil {
			b.Fatal(err)
		}
		if slot%100 == 0 && slot > 200 {
			if err := s.Compact(slot - 200); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(writtenBytes(b)-w0)/1024/float64(slot), "written-KiB/op")
	b.ReportMetric(float64((cpuTime(b)-c0).Microseconds())/float64(slot), "cpu-µs/op")
}
