package shm

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/clockd/clockd/vclock"
)

// readAttempts bounds the seqlock retries of one read. A writer holds the
// page odd for a dozen stores, so only a writer that died or was
// descheduled mid-write exhausts it.
const readAttempts = 1000

// Reader maps a page read-only. Its methods may be called concurrently,
// except Close, which must come after every other call has returned.
type Reader struct {
	path string
	mem  []byte // the mapping; nil for a page not backed by a file
	p    page   // zero once closed
}

// Open maps the page at path read-only and checks its header. A Reader
// follows the file it opened: a writer that starts later replaces the
// path with a new file, which a new Open picks up.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open page: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open page %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open page %s: mode %v, want a regular file: %w", path, fi.Mode(), ErrNotPage)
	}
	if err := checkSize(fi.Size()); err != nil {
		return nil, fmt.Errorf("open page %s: %w", path, err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, PageSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("open page %s: mmap: %w", path, err)
	}
	r := &Reader{path: path, mem: mem, p: pageOf(mem)}
	if err := checkHeader(r.p); err != nil {
		_ = unix.Munmap(mem)
		return nil, fmt.Errorf("open page %s: %w", path, err)
	}
	return r, nil
}

// Snapshot reads the page under its seqlock. It fails with ErrBusy when
// every attempt overlapped a write, with ErrNotPublished before the
// writer's first Publish, and with ErrMalformed on an unknown status.
func (r *Reader) Snapshot() (Snapshot, error) {
	if r.p.w == nil {
		return Snapshot{}, fmt.Errorf("read page %s: %w", r.path, ErrClosed)
	}
	w, seq, ok := readWords(r.p, readAttempts, runtime.Gosched)
	if !ok {
		return Snapshot{}, fmt.Errorf("read page %s: sequence %d after %d attempts: %w", r.path, seq, readAttempts, ErrBusy)
	}
	c, err := decode(w)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read page %s: %w", r.path, err)
	}
	if c.Segment.Status == 0 {
		return Snapshot{}, fmt.Errorf("read page %s: %w", r.path, ErrNotPublished)
	}
	return c, nil
}

// Segment is the published segment with the writer's liveness folded in
// as of now (see Snapshot.Effective): a caller may keep it and evaluate it
// later, and it turns UNSYNCHRONIZED once the writer stops or misses its
// heartbeat, as far as a segment can express.
func (r *Reader) Segment() (vclock.Segment, error) {
	c, err := r.Snapshot()
	if err != nil {
		return vclock.Segment{}, err
	}
	return c.Effective(vclock.MonoNow()), nil
}

// Now reads the reference clock: the page, then CLOCK_MONOTONIC, in that
// order so the clock is never older than the heartbeat read.
func (r *Reader) Now() (vclock.Reading, error) {
	c, err := r.Snapshot()
	if err != nil {
		return vclock.Reading{}, err
	}
	return c.At(vclock.MonoNow()), nil
}

// Close unmaps the page. The file stays.
func (r *Reader) Close() error {
	if r.p.w == nil {
		return fmt.Errorf("close page %s: %w", r.path, ErrClosed)
	}
	r.p = page{}
	if r.mem == nil {
		return nil
	}
	mem := r.mem
	r.mem = nil
	if err := unix.Munmap(mem); err != nil {
		return fmt.Errorf("close page %s: munmap: %w", r.path, err)
	}
	return nil
}
