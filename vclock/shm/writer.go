package shm

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clockd/clockd/vclock"
)

// DefaultMaxAge is the heartbeat promise a new page carries. A writer
// calls Touch well within it, e.g. every second.
const DefaultMaxAge = 5 * time.Second

// Writer owns a page. Its methods may be called from several goroutines;
// they are serialised, as a seqlock needs a single writer at a time.
type Writer struct {
	path string
	mono func() int64 // CLOCK_MONOTONIC, ns; tests age the heartbeat through it

	mu     sync.Mutex
	p      page
	mem    []byte // the mapping; nil for a page not backed by a file
	closed bool
	cur    Snapshot // what the page holds
	// Invariant: seq is even and equals the page's sequence word whenever
	// mu is not held.
	seq uint64
}

// Create makes a fresh page at path, replacing any file there, and maps it
// read-write. The page is written in full in a temporary file in the same
// directory, made mode 0644 whatever the umask, and renamed over path, so
// a reader never maps a half-written header. It carries no segment until
// the first Publish, and DefaultMaxAge.
func Create(path string) (*Writer, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create page %s: %w", path, err)
	}
	tmp := f.Name()
	mem, err := mapFresh(f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	var w *Writer
	if err == nil {
		w = newWriter(path, pageOf(mem), mem, vclock.MonoNow)
		err = os.Rename(tmp, path)
	}
	if err != nil {
		if mem != nil {
			_ = unix.Munmap(mem)
		}
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("create page %s: %w", path, err)
	}
	return w, nil
}

// mapFresh sizes the new, empty file f and maps it read-write.
func mapFresh(f *os.File) ([]byte, error) {
	if err := f.Chmod(0o644); err != nil {
		return nil, err
	}
	if err := f.Truncate(PageSize); err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return mem, nil
}

// newWriter initialises p, which no reader has mapped yet, and owns it.
func newWriter(path string, p page, mem []byte, mono func() int64) *Writer {
	w := &Writer{path: path, mono: mono, p: p, mem: mem,
		cur: Snapshot{HeartbeatNs: mono(), MaxAgeNs: int64(DefaultMaxAge)}}
	initPage(p, w.cur)
	return w
}

// Publish makes s the page's segment and counts as a heartbeat. s.Status
// must be one of the four statuses.
func (w *Writer) Publish(s vclock.Segment) {
	if s.Status < vclock.StatusInitializing || s.Status > vclock.StatusUnsynchronized {
		panic(fmt.Sprintf("shm: publish segment with status %d: %+v", s.Status, s))
	}
	w.write(func(c *Snapshot) {
		c.Segment = s
		c.HeartbeatNs = w.mono()
	})
}

// Touch records a heartbeat without changing the segment.
func (w *Writer) Touch() {
	w.write(func(c *Snapshot) { c.HeartbeatNs = w.mono() })
}

// SetMaxAge sets the heartbeat promise: readers report UNSYNCHRONIZED once
// the last Publish or Touch is more than d old. d <= 0 promises nothing;
// the page then goes stale only when closed.
func (w *Writer) SetMaxAge(d time.Duration) {
	ns := int64(d)
	if ns <= 0 {
		ns = math.MaxInt64
	}
	w.write(func(c *Snapshot) { c.MaxAgeNs = ns })
}

// Close marks the page stopped, so every reader reports UNSYNCHRONIZED,
// and unmaps it. The file stays: a reader that opens it later sees the
// same stopped page rather than no page.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("close page %s: %w", w.path, ErrClosed)
	}
	w.writeLocked(func(c *Snapshot) { c.Stopped = true })
	w.closed = true
	w.p = page{}
	mem := w.mem
	w.mem = nil
	if mem == nil {
		return nil
	}
	if err := unix.Munmap(mem); err != nil {
		return fmt.Errorf("close page %s: munmap: %w", w.path, err)
	}
	return nil
}

func (w *Writer) write(change func(*Snapshot)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeLocked(change)
}

// writeLocked applies change to the page content under the seqlock: the
// sequence goes odd, every data word is stored, the sequence goes even.
// w.mu is held.
func (w *Writer) writeLocked(change func(*Snapshot)) {
	if w.closed {
		panic("shm: write to closed page " + w.path)
	}
	change(&w.cur)
	words := encode(w.cur)
	w.p.store(wSeq, w.seq+1)
	for i, v := range words {
		w.p.store(wData+i, v)
	}
	w.seq += 2
	w.p.store(wSeq, w.seq)
}
