// Package eventlog is each host's store of the committed trace events: the
// ordered event log, kept in segment files by global sequence number
// (GSN), with retention, read by GSN range and followed live.
//
// # Model
//
// Every host applies the same committed batches (package ordering), so
// every host's store holds the same events under the same GSNs. The store
// is derived from the replicated log, but it outlives the log: once the
// log before a snapshot is compacted, the store has the only copy of those
// events on this host. So the state machine syncs the store before every
// snapshot (ordering.Machine.BeforeSnapshot), and an acknowledged event is
// on a majority of hosts' disks, in the log or in the store, until
// retention removes it.
//
// Files: Dir/<first GSN, 20 digits>.seg, a sequence of frames (AppendFrame)
// whose payload is either one event, the uvarint GSN followed by
// ordering.AppendEvent's encoding (Append), or a block of events, a
// uvarint 0 followed by the block ordering.ParseBlock reads: the events
// one command committed, as the log carried them, compressed or not
// (AppendCommitted). The sparse index points at every block and at every
// 64th single event.
//
// # Memory
//
// The store is written once and read seldom, mostly at its tail, so its
// files do not keep the kernel's page cache: after each Sync the active
// segment's cache is dropped but for its last 16 MiB, and a closed
// segment's all of it (posix_fadvise DONTNEED, Linux). Retention of
// gigabytes would otherwise fill a host's free memory with cache that
// its VMs need, and writing new pages costs the kernel less when it can
// reuse pages it just freed than when it takes ones it has not touched in
// a while (in a VM, pages returned to the host are faulted in and zeroed
// again).
//
// The store syncs only when asked (clockd asks before each state-machine
// snapshot, and every few megabytes between them), but it starts the
// writeback of its data to the disk every 4 MiB appended
// (sync_file_range, Linux), so that the data goes out at an even pace
// instead of in one burst at each Sync, which would delay the consensus
// log's writes on the same disk.
//
// # Guarantees
//
//   - GSNs in the store only grow; Append skips events at or below the
//     last GSN stored (a replay of the log after a restart).
//   - Open truncates a torn record at the tail of the last segment (a
//     crash mid-write) and refuses a corrupt record anywhere else.
//   - Retention deletes whole segments, oldest first, never the one being
//     written; Read from a deleted GSN starts at the first one kept and
//     says so.
//
// # Hazards
//
// A host that installs a state-machine snapshot from another member skips
// the events committed while it was behind. The first event after such a
// jump starts a new segment, so the missing run is a gap between two
// segments: Gaps lists it, Config.OnGap hears of it, and Fill stores the
// missing events, fetched from another host, as a segment of their own,
// in its place. Until then Read reports the gap as a jump in GSNs (and
// WaitFilled waits for it to close); a Read from a GSN before it returns
// the filled events once they are in.
// Gaps left inside a segment by a clockd from before this are not listed.
//
// Block records are newer than single-event ones, and compressed blocks
// newer still: a clockd from before them cannot read a store that holds
// them.
package eventlog

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/internal/segfile"
	"github.com/clockd/clockd/internal/spans"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering"
)

// Config configures a Store.
type Config struct {
	Dir string
	// SegmentBytes is when a segment is closed and a new one begun.
	// Default 64 MiB.
	SegmentBytes int64
	// MaxBytes and MaxAge bound what is kept; zero MaxAge keeps events
	// regardless of age. Defaults 4 GiB and 0.
	MaxBytes int64
	MaxAge   time.Duration
	Logger   *zap.Logger
	// OnGap, if set, hears of each gap an append opens. It runs with the
	// store locked: it must not block or call the store.
	OnGap func(Gap)
}

// Gap is a run of GSNs the store lacks between two it holds.
type Gap = spans.Gap

// ErrCorrupt reports a damaged record before the tail.
var ErrCorrupt = errors.New("eventlog: corrupt record")

// indexEvery is the sparse index's stride, in records.
const indexEvery = 64

type segment struct {
	first, last uint64 // GSNs; last == first-1 while empty
	path        string
	size        int64
	modTime     time.Time
	index       []indexEntry
	// uncached is how far from the start the page cache of the segment
	// was dropped (Store.dropCacheLocked); written, how far its writeback
	// was started (Store.writebackLocked).
	uncached, written int64
}

type indexEntry struct {
	gsn uint64
	off int64
}

// Store is one host's event log. Its methods are safe for concurrent use.
type Store struct {
	cfg Config
	log *zap.Logger

	mu      sync.Mutex
	segs    []*segment // oldest first; the last one is active
	active  *os.File
	w       *bufio.Writer
	total   int64
	changed chan struct{} // closed and replaced on every append
	filled  chan struct{} // closed and replaced on every Fill
	buf     []byte        // event scratch
	frame   []byte        // scratch for a frame's head and GSN
}

// Open opens or creates the store in cfg.Dir.
func Open(cfg Config) (*Store, error) {
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = 64 << 20
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 4 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	s := &Store{cfg: cfg, log: cfg.Logger, changed: make(chan struct{}), filled: make(chan struct{}),
		frame: make([]byte, 2*binary.MaxVarintLen64+4)}
	names, err := filepath.Glob(filepath.Join(cfg.Dir, "*.seg"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	// A fill that did not finish (see Fill) is started again from peers.
	if err := segfile.RemoveFills(cfg.Dir); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	for i, name := range names {
		seg, err := scan(name, i == len(names)-1)
		if err != nil {
			return nil, err
		}
		s.segs = append(s.segs, seg)
		s.total += seg.size
	}
	if len(s.segs) > 0 {
		if err := s.openActive(s.segs[len(s.segs)-1]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// scan reads a segment's records to build its index. At the tail of the
// last segment a torn record is cut off; anywhere else it is corruption.
func scan(path string, last bool) (*segment, error) {
	first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), ".seg"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("eventlog: segment name %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	seg := &segment{first: first, last: first - 1, path: path, modTime: st.ModTime()}
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var n int
	for {
		rec, size, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !last {
				return nil, fmt.Errorf("%w: %s at offset %d: %v", ErrCorrupt, path, off, err)
			}
			if terr := os.Truncate(path, off); terr != nil {
				return nil, fmt.Errorf("eventlog: cut torn tail of %s: %w", path, terr)
			}
			break
		}
		if n%indexEvery == 0 || rec.block != nil {
			seg.index = append(seg.index, indexEntry{gsn: rec.first, off: off})
		}
		seg.last = rec.last
		off += int64(size)
		n++
	}
	seg.size = off
	return seg, nil
}

// record is one record of a segment: one event, or a block of them.
type record struct {
	first, last uint64 // GSNs
	event       []byte // one event, as ordering.AppendEvent writes it
	block       []byte // a block, as ordering.ParseBlock reads it
}

// readRecord reads one record. size is its length on disk.
func readRecord(r *bufio.Reader) (rec record, size int, err error) {
	payload, size, err := ReadFrame(r)
	if err != nil {
		return rec, 0, err
	}
	gsn, k := binary.Uvarint(payload)
	if k <= 0 {
		return rec, 0, fmt.Errorf("%w: record's GSN", ErrCorrupt)
	}
	if gsn != 0 {
		return record{first: gsn, last: gsn, event: payload[k:]}, size, nil
	}
	first, n, err := ordering.BlockSpan(payload[k:])
	if err != nil {
		return rec, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return record{first: first, last: first + uint64(n) - 1, block: payload[k:]}, size, nil
}

// events decodes the record's events from GSN from on, up to max of them.
func (rec *record) events(from uint64, max int, into []ordering.LogEvent) ([]ordering.LogEvent, error) {
	if rec.last < from || max <= 0 {
		return into, nil
	}
	if rec.event != nil {
		d := wire.NewDecoder(rec.event, ErrCorrupt)
		e := ordering.DecodeEvent(&d)
		if err := d.Finish(); err != nil {
			return into, err
		}
		return append(into, ordering.LogEvent{GSN: rec.first, Event: e}), nil
	}
	c, err := ordering.ParseBlock(rec.block)
	if err != nil {
		return into, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if c.First != rec.first || c.Len != int(rec.last-rec.first+1) {
		return into, fmt.Errorf("%w: block %d..%d holds %d..", ErrCorrupt, rec.first, rec.last, c.First)
	}
	for _, e := range c.Events() {
		if e.GSN >= from && max > 0 {
			into = append(into, e)
			max--
		}
	}
	return into, nil
}

func (s *Store) openActive(seg *segment) error {
	f, err := os.OpenFile(seg.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	s.active, s.w = f, bufio.NewWriterSize(f, 1<<20)
	return nil
}

// Last is the last GSN stored, 0 when none is.
func (s *Store) Last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastLocked()
}

func (s *Store) lastLocked() uint64 {
	for i := len(s.segs) - 1; i >= 0; i-- {
		if s.segs[i].last >= s.segs[i].first {
			return s.segs[i].last
		}
	}
	return 0
}

// First is the first GSN kept, 0 when the store is empty.
func (s *Store) First() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segs {
		if seg.last >= seg.first {
			return seg.first
		}
	}
	return 0
}

// Append stores committed events in GSN order, skipping any at or below
// the last GSN stored. It does not sync; Sync does.
func (s *Store) Append(evs []ordering.LogEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.lastLocked()
	wrote := false
	for i := range evs {
		e := &evs[i]
		if e.GSN <= last {
			continue
		}
		s.buf = ordering.AppendEvent(s.buf[:0], &e.Event)
		if err := s.appendLocked(e.GSN, last, s.buf); err != nil {
			return err
		}
		last, wrote = e.GSN, true
	}
	return s.appendedLocked(wrote)
}

// AppendCommitted stores a run of committed events as the state machine
// hands them over: as one record, without decoding them, unless part of
// the run is stored already (a replay), which it skips.
// It does not sync; Sync does.
func (s *Store) AppendCommitted(c ordering.Committed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.lastLocked()
	end := c.First + uint64(c.Len) - 1
	switch {
	case c.Len == 0 || end <= last:
		return nil
	case c.First > last:
		if err := s.appendBlockLocked(c, last); err != nil {
			return err
		}
		return s.appendedLocked(true)
	}
	var err error
	c.Each(func(gsn uint64, event []byte) {
		if gsn > last && err == nil {
			err = s.appendLocked(gsn, last, event)
			last = gsn
		}
	})
	if err != nil {
		return err
	}
	return s.appendedLocked(true)
}

// appendBlockLocked writes one block record: GSN 0, then the block.
// last is the last GSN stored.
func (s *Store) appendBlockLocked(c ordering.Committed, last uint64) error {
	seg, err := s.segmentForLocked(c.First, last)
	if err != nil {
		return err
	}
	head := c.AppendBlockHead(append(s.buf[:0], 0))
	s.buf = head
	body := c.BlockBody()
	frame := appendFrameHead(s.frame[:0], head, body)
	for _, b := range [3][]byte{frame, head, body} {
		if _, err := s.w.Write(b); err != nil {
			return fmt.Errorf("eventlog: write: %w", err)
		}
	}
	seg.index = append(seg.index, indexEntry{gsn: c.First, off: seg.size})
	size := int64(len(frame) + len(head) + len(body))
	seg.size += size
	s.total += size
	seg.last = c.First + uint64(c.Len) - 1
	return nil
}

// appendedLocked wakes the waiters and applies retention after appends.
func (s *Store) appendedLocked(wrote bool) error {
	if !wrote {
		return nil
	}
	seg := s.tailLocked()
	if seg != nil {
		seg.modTime = time.Now()
	}
	close(s.changed)
	s.changed = make(chan struct{})
	if seg != nil {
		if err := s.writebackLocked(seg); err != nil {
			return err
		}
	}
	return s.retainLocked()
}

// appendLocked writes one record: the GSN, then the event's encoding.
// last is the last GSN stored.
func (s *Store) appendLocked(gsn, last uint64, event []byte) error {
	seg, err := s.segmentForLocked(gsn, last)
	if err != nil {
		return err
	}
	// The frame's head, then its payload: the GSN and the event.
	head := s.frame[:binary.MaxVarintLen64+4]
	g := binary.AppendUvarint(s.frame[len(head):len(head)], gsn)
	head = appendFrameHead(head[:0], g, event)
	for _, b := range [3][]byte{head, g, event} {
		if _, err := s.w.Write(b); err != nil {
			return fmt.Errorf("eventlog: write: %w", err)
		}
	}
	if (gsn-seg.first)%indexEvery == 0 || len(seg.index) == 0 {
		seg.index = append(seg.index, indexEntry{gsn: gsn, off: seg.size})
	}
	size := int64(len(head) + len(g) + len(event))
	seg.size += size
	s.total += size
	seg.last = gsn
	return nil
}

// segmentForLocked returns the segment to write GSN first to, after last,
// the last GSN stored: the tail, or a new one when there is none, the
// tail is full, or first does not follow last. Such a jump (a snapshot
// installed from another member) leaves a gap between two segments, which
// Fill can close; OnGap hears of it.
func (s *Store) segmentForLocked(first, last uint64) (*segment, error) {
	seg := s.tailLocked()
	jump := last > 0 && first > last+1
	if seg != nil && seg.size < s.cfg.SegmentBytes && !jump {
		return seg, nil
	}
	if err := s.rollLocked(first); err != nil {
		return nil, err
	}
	if jump {
		gap := Gap{First: last + 1, Last: first - 1}
		s.log.Warn("event store gap: the events between were committed while this host was behind",
			zap.Uint64("first-gsn", gap.First), zap.Uint64("last-gsn", gap.Last))
		if s.cfg.OnGap != nil {
			s.cfg.OnGap(gap)
		}
	}
	return s.tailLocked(), nil
}

func (s *Store) tailLocked() *segment {
	if len(s.segs) == 0 {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

// rollLocked closes the active segment and starts one at first. An
// active segment left empty (a crash right after a roll) is removed: it
// holds nothing, and its name may be the one a Fill needs.
func (s *Store) rollLocked(first uint64) error {
	if s.active != nil {
		if err := s.syncLocked(); err != nil {
			return err
		}
		s.dropCacheLocked(0) // a closed segment is read from disk
		s.active.Close()
		s.active, s.w = nil, nil
		if tail := s.tailLocked(); tail.last < tail.first {
			if err := os.Remove(tail.path); err != nil {
				return fmt.Errorf("eventlog: %w", err)
			}
			s.segs = s.segs[:len(s.segs)-1]
		}
	}
	seg := &segment{first: first, last: first - 1, path: filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d.seg", first)),
		modTime: time.Now()}
	if err := s.openActive(seg); err != nil {
		return err
	}
	s.segs = append(s.segs, seg)
	return segfile.SyncDir(s.cfg.Dir)
}

// retainLocked deletes the oldest closed segments beyond the bounds.
func (s *Store) retainLocked() error {
	var err error
	s.segs, s.total, err = segfile.Retain(s.segs, s.total, s.cfg.MaxBytes, s.cfg.MaxAge, segFile, func(old *segment) {
		s.log.Info("event segment removed by retention", zap.Uint64("first-gsn", old.first),
			zap.Uint64("last-gsn", old.last))
	})
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	return nil
}

// segFile is what retention needs of a segment.
func segFile(seg *segment) segfile.File {
	return segfile.File{Path: seg.path, Size: seg.size, ModTime: seg.modTime}
}

// Gaps returns the runs of GSNs the store lacks between two events it
// holds, oldest first. The events before the first GSN kept are not a gap:
// retention removed them, or the host joined after them.
func (s *Store) Gaps() []Gap {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gapsLocked()
}

func (s *Store) inGapLocked(gsn uint64) bool {
	return spans.In(s.gapsLocked(), gsn)
}

// WaitFilled returns once GSN gsn is not in a gap, checked now and after
// each Fill, or ctx ends.
func (s *Store) WaitFilled(ctx context.Context, gsn uint64) error {
	for {
		s.mu.Lock()
		in, ch := s.inGapLocked(gsn), s.filled
		s.mu.Unlock()
		if !in {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (s *Store) gapsLocked() []Gap {
	return spans.Gaps(s.segs, segSpan)
}

// segSpan is a segment's GSNs, for package spans.
func segSpan(seg *segment) (first, last uint64) { return seg.first, seg.last }

// Fill stores events that belong in a gap, as a segment of their own,
// synced before the store lists it: a crash leaves the gap as it was.
// evs must hold consecutive GSNs, all inside one gap.
func (s *Store) Fill(evs []ordering.LogEvent) error {
	if len(evs) == 0 {
		return nil
	}
	first, last := evs[0].GSN, evs[len(evs)-1].GSN
	if first == 0 {
		return errors.New("eventlog: fill: GSN 0")
	}
	if i := spans.Consecutive(evs, ordering.GSNOf, first); i < len(evs) {
		return fmt.Errorf("eventlog: fill: GSN %d after %d", evs[i].GSN, evs[i-1].GSN)
	}
	if _, err := s.fillPlace(first, last); err != nil {
		return err
	}
	seg, err := s.writeFill(evs)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at, err := s.fillPlaceLocked(first, last)
	if err != nil {
		os.Remove(seg.path + segfile.FillSuffix)
		return err
	}
	// Its events are older than the next segment's: retention by age
	// takes it with the segment before the gap, not after.
	seg.modTime = s.segs[at-1].modTime
	if err := segfile.Install(seg.path, seg.modTime); err != nil {
		return fmt.Errorf("eventlog: fill: %w", err)
	}
	s.segs = slices.Insert(s.segs, at, seg)
	s.total += seg.size
	close(s.filled)
	s.filled = make(chan struct{})
	s.log.Info("event store gap filled", zap.Uint64("first-gsn", first), zap.Uint64("last-gsn", last))
	return s.retainLocked()
}

func (s *Store) fillPlace(first, last uint64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fillPlaceLocked(first, last)
}

// fillPlaceLocked returns where in s.segs a fill of first..last goes.
func (s *Store) fillPlaceLocked(first, last uint64) (int, error) {
	at, err := spans.FillPlace(s.segs, segSpan, first, last)
	if err != nil {
		return 0, fmt.Errorf("eventlog: fill: GSNs %w", err)
	}
	return at, nil
}

// writeFill writes evs to a new segment file under its fill name, synced.
func (s *Store) writeFill(evs []ordering.LogEvent) (*segment, error) {
	first := evs[0].GSN
	seg := &segment{first: first, last: evs[len(evs)-1].GSN,
		path: filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d.seg", first)), modTime: time.Now()}
	var err error
	seg.size, err = segfile.WriteFill(seg.path, func(w *bufio.Writer) {
		var payload, head []byte
		var off int64
		for i := range evs {
			if i%indexEvery == 0 {
				seg.index = append(seg.index, indexEntry{gsn: evs[i].GSN, off: off})
			}
			payload = ordering.AppendEvent(binary.AppendUvarint(payload[:0], evs[i].GSN), &evs[i].Event)
			head = appendFrameHead(head[:0], payload, nil)
			w.Write(head)
			w.Write(payload)
			off += int64(len(head) + len(payload))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: fill: %w", err)
	}
	return seg, nil
}

// Sync puts everything appended on stable storage.
func (s *Store) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *Store) syncLocked() error {
	if s.w == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("eventlog: flush: %w", err)
	}
	if err := s.active.Sync(); err != nil {
		return err
	}
	s.dropCacheLocked(cacheKeepBytes)
	return nil
}

// writebackBytes is how much of the active segment is written to the
// store before its writeback to the disk is started.
const writebackBytes = 4 << 20

// writebackLocked starts the writeback of what was appended to the active
// segment seg since the last start, once that is writebackBytes or
// more. The store syncs only when asked, and the megabytes appended
// since the last Sync would otherwise reach the disk in one burst at the
// next, delaying the consensus log's writes on the same disk; started as
// they come, they go out at an even pace and each Sync has little to wait
// for.
func (s *Store) writebackLocked(seg *segment) error {
	if seg.size-seg.written < writebackBytes || s.active == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("eventlog: flush: %w", err)
	}
	if err := startWriteback(s.active, seg.written, seg.size-seg.written); err != nil {
		s.log.Debug("starting the writeback of an event segment failed", zap.String("path", seg.path), zap.Error(err))
	}
	seg.written = seg.size
	return nil
}

// cacheKeepBytes is how much of the active segment's synced tail keeps
// its page cache: what live readers (Subscribe, a tail) read next.
const cacheKeepBytes = 16 << 20

// dropCacheLocked drops the page cache of the active segment, which is
// synced, but for its last keep bytes. The store is written once and
// read seldom, mostly at its tail, so the cache of the rest would only
// crowd out memory that the host's VMs and other processes need, and a
// kernel that writes new data into pages just freed does less work than
// one that takes pages it has not touched in a while. Reads of dropped
// ranges go to the disk.
func (s *Store) dropCacheLocked(keep int64) {
	seg := s.tailLocked()
	if seg == nil || s.active == nil {
		return
	}
	// Whole pages only: the page holding the boundary stays.
	upTo := (seg.size - keep) &^ (4<<10 - 1)
	if upTo <= seg.uncached {
		return
	}
	if err := dropCache(s.active, seg.uncached, upTo-seg.uncached); err != nil {
		s.log.Debug("dropping the page cache of an event segment failed", zap.String("path", seg.path), zap.Error(err))
		return
	}
	seg.uncached = upTo
}

// Read returns up to max events from GSN from on, and the GSN to read
// next. Events before the first GSN kept are gone: Read starts at the
// first one kept (the returned events' GSNs show the jump).
func (s *Store) Read(from uint64, max int) ([]ordering.LogEvent, uint64, error) {
	s.mu.Lock()
	if s.w != nil {
		if err := s.w.Flush(); err != nil {
			s.mu.Unlock()
			return nil, from, err
		}
	}
	var segs []segment
	for _, seg := range s.segs {
		if seg.last >= from && seg.last >= seg.first {
			segs = append(segs, segment{first: seg.first, last: seg.last, path: seg.path, size: seg.size,
				index: slices.Clone(seg.index)})
		}
	}
	s.mu.Unlock()
	out := make([]ordering.LogEvent, 0, min(max, 4096))
	next := from
	for _, seg := range segs {
		evs, err := readSegment(&seg, from, max-len(out))
		if err != nil {
			return out, next, err
		}
		out = append(out, evs...)
		if len(evs) > 0 {
			next = evs[len(evs)-1].GSN + 1
		}
		if len(out) >= max {
			break
		}
	}
	return out, next, nil
}

func readSegment(seg *segment, from uint64, max int) ([]ordering.LogEvent, error) {
	f, err := os.Open(seg.path)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	defer f.Close()
	off := int64(0)
	if i := sort.Search(len(seg.index), func(i int) bool { return seg.index[i].gsn > from }); i > 0 {
		off = seg.index[i-1].off
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(io.LimitReader(f, seg.size-off), 256<<10)
	var out []ordering.LogEvent
	for len(out) < max {
		rec, _, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			out, err = rec.events(from, max-len(out), out)
		}
		if err != nil {
			return out, fmt.Errorf("%w: %s: %v", ErrCorrupt, seg.path, err)
		}
	}
	return out, nil
}

// Wait returns once the store holds a GSN above after, or ctx ends.
func (s *Store) Wait(ctx context.Context, after uint64) error {
	for {
		s.mu.Lock()
		last, ch := s.lastLocked(), s.changed
		s.mu.Unlock()
		if last > after {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Close syncs and closes the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.syncLocked()
	if s.active != nil {
		s.active.Close()
		s.active, s.w = nil, nil
	}
	return err
}
