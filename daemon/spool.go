package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/clockd/clockd/eventlog"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering"
)

// ErrSpoolFull: the spool holds its bound of bytes.
var ErrSpoolFull = errors.New("daemon: event spool full")

// spool keeps events that wait for the cluster, on disk, first in first
// out, within maxBytes: frames as the event store writes them
// (eventlog.AppendFrame), each holding one event as ordering.AppendEvent
// encodes it. Events leave it (PopTo) only once committed; after a crash
// the whole file is proposed again and the state machine drops what was
// already committed (per-source dedupe).
type spool struct {
	path     string
	maxBytes int64

	mu    sync.Mutex
	f     *os.File
	size  int64 // bytes in the file
	head  int64 // offset of the first event not yet popped
	count int   // events from head on

	// seqs is the last sequence number of each source (host\x00source)
	// among the events the file held when opened.
	seqs map[string]uint64
}

func openSpool(path string, maxBytes int64) (*spool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &spool{path: path, maxBytes: maxBytes, f: f, seqs: map[string]uint64{}}
	// Count the records; a torn tail from a crash is cut off.
	r := bufio.NewReader(f)
	var off int64
	for {
		e, n, err := readSpoolRecord(r)
		if err != nil {
			break
		}
		off += int64(n)
		s.count++
		k := sourceKey(e.Host, e.Source)
		s.seqs[k] = max(s.seqs[k], e.SourceSeq)
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.size = off
	return s, nil
}

func readSpoolRecord(r *bufio.Reader) (ingest.Event, int, error) {
	payload, n, err := eventlog.ReadFrame(r)
	if err != nil {
		return ingest.Event{}, 0, err
	}
	d := wire.NewDecoder(payload, errors.New("spool: malformed record"))
	e := ordering.DecodeEvent(&d)
	if err := d.Finish(); err != nil {
		return ingest.Event{}, 0, err
	}
	return e, n, nil
}

// Len is how many events wait.
func (s *spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Push appends as many of evs as fit, synced, and returns how many.
func (s *spool) Push(evs []ingest.Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf []byte
	n := 0
	for i := range evs {
		rec := eventlog.AppendFrame(nil, ordering.AppendEvent(nil, &evs[i]))
		if s.size+int64(len(buf)+len(rec)) > s.maxBytes {
			break
		}
		buf = append(buf, rec...)
		n++
	}
	if n == 0 {
		if len(evs) == 0 {
			return 0, nil
		}
		return 0, ErrSpoolFull
	}
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	s.size += int64(len(buf))
	s.count += n
	if n < len(evs) {
		return n, ErrSpoolFull
	}
	return n, nil
}

// Head is the offset of the oldest event not yet popped.
func (s *spool) Head() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head
}

// Read returns the events from offset off on, up to about maxBytes of
// them, and the offset after the last one. off is Head or an offset an
// earlier Read returned, as long as the events before it are not popped.
func (s *spool) Read(off int64, maxBytes int) ([]ingest.Event, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off < s.head || off > s.size {
		return nil, off, fmt.Errorf("spool: read at %d, outside [%d, %d]", off, s.head, s.size)
	}
	r := bufio.NewReader(io.NewSectionReader(s.f, off, s.size-off))
	var out []ingest.Event
	size := 0
	for size < maxBytes {
		e, n, err := readSpoolRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, off, err
		}
		out = append(out, e)
		size += n
	}
	return out, off + int64(size), nil
}

// PopTo removes the n oldest events, which end at offset end (as Read
// returned it); an emptied spool is truncated.
func (s *spool) PopTo(end int64, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if end < s.head || end > s.size || n > s.count {
		return fmt.Errorf("spool: pop %d events to %d, outside [%d, %d] with %d events", n, end, s.head, s.size, s.count)
	}
	s.head = end
	s.count -= n
	if s.count == 0 {
		return s.resetLocked()
	}
	return nil
}

// Reset empties the spool.
func (s *spool) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resetLocked()
}

func (s *spool) resetLocked() error {
	s.head, s.size, s.count = 0, 0, 0
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return s.f.Sync()
}

// Sync flushes the file.
func (s *spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Sync()
}

func (s *spool) Close() error { return s.f.Close() }
