package daemon

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering"
)

// ErrSpoolFull: the spool holds its bound of bytes.
var ErrSpoolFull = errors.New("daemon: event spool full")

var spoolCRC = crc32.MakeTable(crc32.Castagnoli)

// spool keeps events that wait for the cluster, on disk, first in first
// out, within maxBytes. A record is: uvarint length, CRC-32C, then the
// event as ordering.AppendEvent encodes it. Events leave it (Pop) only
// once committed; after a crash the whole file is proposed again and the
// state machine drops what was already committed (per-source dedupe).
type spool struct {
	path     string
	maxBytes int64

	mu    sync.Mutex
	f     *os.File
	size  int64 // bytes in the file
	head  int64 // offset of the first event not yet popped
	count int   // events from head on
}

func openSpool(path string, maxBytes int64) (*spool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &spool{path: path, maxBytes: maxBytes, f: f}
	// Count the records; a torn tail from a crash is cut off.
	r := bufio.NewReader(f)
	var off int64
	for {
		_, n, err := readSpoolRecord(r)
		if err != nil {
			break
		}
		off += int64(n)
		s.count++
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.size = off
	return s, nil
}

func readSpoolRecord(r *bufio.Reader) (ingest.Event, int, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return ingest.Event{}, 0, err
	}
	if n == 0 || n > 16<<20 {
		return ingest.Event{}, 0, fmt.Errorf("spool: record length %d", n)
	}
	buf := make([]byte, 4+n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return ingest.Event{}, 0, err
	}
	if crc32.Checksum(buf[4:], spoolCRC) != binary.LittleEndian.Uint32(buf) {
		return ingest.Event{}, 0, errors.New("spool: checksum mismatch")
	}
	d := wire.NewDecoder(buf[4:], errors.New("spool: malformed record"))
	e := ordering.DecodeEvent(&d)
	if err := d.Finish(); err != nil {
		return ingest.Event{}, 0, err
	}
	return e, uvarintLen(n) + 4 + int(n), nil
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
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
		payload := ordering.AppendEvent(nil, &evs[i])
		rec := binary.AppendUvarint(nil, uint64(len(payload)))
		rec = binary.LittleEndian.AppendUint32(rec, crc32.Checksum(payload, spoolCRC))
		rec = append(rec, payload...)
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

// Peek returns the oldest events, up to about maxBytes of them.
func (s *spool) Peek(maxBytes int) ([]ingest.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := bufio.NewReader(io.NewSectionReader(s.f, s.head, s.size-s.head))
	var out []ingest.Event
	size := 0
	for size < maxBytes {
		e, n, err := readSpoolRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		size += n
	}
	return out, nil
}

// Pop removes the n oldest events; an emptied spool is truncated.
func (s *spool) Pop(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := bufio.NewReader(io.NewSectionReader(s.f, s.head, s.size-s.head))
	for range n {
		_, k, err := readSpoolRecord(r)
		if err != nil {
			return err
		}
		s.head += int64(k)
		s.count--
	}
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
