package eventlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/ordering"
)

// resident is how many bytes of path's first n are in the page cache,
// whole pages counted.
func resident(t *testing.T, path string, n int64) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (n+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)),
		uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	var in int64
	for _, v := range vec {
		in += int64(v&1) * page
	}
	return in
}

// TestSyncDropsPageCache: after a Sync, the active segment keeps its
// page cache for its last cacheKeepBytes only, and a segment closed by a
// roll keeps none; the events still read back from the disk.
func TestSyncDropsPageCache(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, SegmentBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name := strings.Repeat("x", 4000)
	var evs []ordering.LogEvent
	for g := uint64(1); g <= 10_000; g++ { // about 40 MB
		evs = append(evs, ordering.LogEvent{GSN: g, Event: ingest.Event{Host: "h", Source: "s", SourceSeq: g,
			Kind: ingest.KindLog, Name: name}})
	}
	if err := s.Append(evs); err != nil {
		t.Fatal(err)
	}
	seg := s.tailLocked()
	written := seg.size - int64(s.w.Buffered()) // the rest waits in the writer's buffer
	if in := resident(t, seg.path, written); in < written-int64(os.Getpagesize()) {
		t.Fatalf("before Sync %d of %d bytes written are cached, want all: the test cannot tell a drop", in, written)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// The kernel may keep a few pages it still holds in per-CPU batches
	// when the advice comes: at most a twentieth stays.
	dropped := (seg.size - cacheKeepBytes) &^ (4<<10 - 1)
	if in := resident(t, seg.path, dropped); in > dropped/20 {
		t.Fatalf("after Sync %d of the first %d bytes are still cached", in, dropped)
	}
	if in := resident(t, seg.path, seg.size); in < cacheKeepBytes-int64(os.Getpagesize()) {
		t.Fatalf("after Sync only %d bytes are cached, want the last %d", in, cacheKeepBytes)
	}

	// A roll closes the segment: none of it stays cached.
	closed := seg.path
	if err := s.rollLocked(10_001); err != nil {
		t.Fatal(err)
	}
	if in := resident(t, closed, seg.size); in > seg.size/20 {
		t.Fatalf("a closed segment has %d of %d bytes cached", in, seg.size)
	}
	got, _, err := s.Read(1, 3)
	if err != nil || len(got) != 3 || got[2].GSN != 3 || got[2].Event.Name != name {
		t.Fatalf("read back %d events, %v", len(got), err)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) != 2 {
		t.Fatalf("%d segments, want 2", len(segs))
	}
}

// TestWritebackStartsAsAppended: the writeback of the active segment is
// started each time writebackBytes more were appended, and covers all
// that was written before it; the events read back.
func TestWritebackStartsAsAppended(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name := strings.Repeat("y", 1000)
	var starts int
	var before int64 // where the writeback was started up to
	gsn := uint64(1)
	for range 20 { // about 20 MB, in appends of about 1 MB
		var evs []ordering.LogEvent
		for range 1000 {
			evs = append(evs, ordering.LogEvent{GSN: gsn, Event: ingest.Event{Host: "h", Source: "s", SourceSeq: gsn,
				Kind: ingest.KindLog, Name: name}})
			gsn++
		}
		if err := s.Append(evs); err != nil {
			t.Fatal(err)
		}
		seg := s.tailLocked() // one segment: 20 MB is less than its 64 MiB
		switch {
		case seg.written == before:
			if seg.size-seg.written >= writebackBytes {
				t.Fatalf("%d bytes appended since the last writeback, none started", seg.size-seg.written)
			}
		case seg.written != seg.size || s.w.Buffered() != 0:
			t.Fatalf("writeback started up to %d of %d bytes, %d still buffered", seg.written, seg.size, s.w.Buffered())
		default:
			starts++
		}
		before = seg.written
	}
	if starts < 4 {
		t.Fatalf("writeback started %d times for %d bytes", starts, s.tailLocked().size)
	}
	got, _, err := s.Read(gsn-2, 5)
	if err != nil || len(got) != 2 || got[1].GSN != gsn-1 || got[1].Event.Name != name {
		t.Fatalf("read back %d events, %v", len(got), err)
	}
}
