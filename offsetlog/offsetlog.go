// Package offsetlog is each host's offset history: every tick's
// wall-clock offset of every host to the cluster reference, as the
// replicated log committed it, kept on disk with retention. `clockd
// offsets export` writes it out, and tracecat corrects trace files with
// it.
//
// # Model
//
// Every host applies the same ticks (package ordering), numbered in log
// order, so every host's history holds the same samples under the same
// tick numbers. The history is derived from the log, but it outlives it:
// once the log before a snapshot is compacted, the history has the only
// copy of those samples on this host. So clockd syncs it before every
// snapshot (Sync), as it does the event store.
//
// Files: Dir/<first tick, 20 digits>.jsonl, JSON lines in tick order, one
// per host per tick, in the format tracecat reads (Sample), so that
// `cat Dir/*.jsonl` is a valid offsets file too:
//
//	{"tick":7,"host":"hv1","ref_unix_nano":…,"offset_nanos":…,"err_nanos":…}
//
// A segment is closed at Config.SegmentBytes. Retention deletes whole
// closed segments, oldest first, beyond Config.MaxBytes or older than
// Config.MaxAge.
//
// # Gaps
//
// A host that installs a snapshot from another member skips the ticks
// committed while it was behind. The first tick after such a jump starts
// a new segment, so the missing run is a gap between two segments: Gaps
// lists it, Config.OnGap hears of it, and Fill stores the missing ticks,
// fetched from another host, as a segment of their own, in its place.
//
// # Guarantees
//
//   - Tick numbers only grow; Record skips ticks at or below the last one
//     stored (a replay of the log after a restart).
//   - Open cuts a torn line at the tail of the last segment (a crash
//     mid-write) and refuses a damaged line at the end of any other.
//   - A reader never sees a line half written: Each and Read read up to
//     the lines whole when they start.
//
// # Hazards
//
// A history written by clockd before tick numbers were recorded is one
// file, Config.Legacy, without them. It is read first (skipping the
// torn lines a crash left in it: it was never synced), the ticks it
// holds are recognised by their reference times when the log replays
// them, and retention deletes it like a segment.
package offsetlog

import (
	"bufio"
	"bytes"
	"encoding/json"
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
)

// Sample is one host's offset at one tick: at reference time RefUnixNano
// the host's wall clock read RefUnixNano+OffsetNanos, to within
// ±ErrNanos.
type Sample struct {
	Tick        uint64 `json:"tick,omitempty"`
	Host        string `json:"host"`
	RefUnixNano int64  `json:"ref_unix_nano"`
	OffsetNanos int64  `json:"offset_nanos"`
	ErrNanos    int64  `json:"err_nanos"`
}

// Tick is one tick's samples, one per host that answered it.
type Tick struct {
	Seq     uint64
	Samples []Sample
}

func tickSeq(t Tick) uint64 { return t.Seq }

// Gap is a run of tick numbers the history lacks between two it holds.
type Gap = spans.Gap

// ErrCorrupt reports a damaged line.
var ErrCorrupt = errors.New("offsetlog: corrupt line")

// Config configures a Log.
type Config struct {
	Dir string
	// Legacy, if set, names a history file from before tick numbers
	// (see Hazards). It is not created.
	Legacy string
	// SegmentBytes is when a segment is closed. Default 4 MiB.
	SegmentBytes int64
	// MaxBytes and MaxAge bound what is kept; zero MaxAge keeps samples
	// regardless of age. Default MaxBytes 1 GiB.
	MaxBytes int64
	MaxAge   time.Duration
	Logger   *zap.Logger
	// OnGap, if set, hears of each gap a Record opens. It runs with the
	// log locked: it must not block or call the log.
	OnGap func(Gap)
}

type segment struct {
	first, last uint64 // ticks; last == first-1 while empty, and for Legacy
	path        string
	size        int64
	modTime     time.Time
}

func segSpan(seg *segment) (first, last uint64) { return seg.first, seg.last }

// Log is one host's offset history. Its methods are safe for concurrent
// use.
type Log struct {
	cfg Config
	log *zap.Logger

	mu        sync.Mutex
	segs      []*segment // oldest first; the last one is active unless it is the legacy file
	active    *os.File
	total     int64
	legacyRef int64 // the last reference time in the legacy file
	buf       []byte
}

// Open opens or creates the history in cfg.Dir.
func Open(cfg Config) (*Log, error) {
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = 4 << 20
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("offsetlog: %w", err)
	}
	l := &Log{cfg: cfg, log: cfg.Logger}
	if cfg.Legacy != "" {
		if err := l.openLegacy(); err != nil {
			return nil, err
		}
	}
	if err := segfile.RemoveFills(cfg.Dir); err != nil { // a fill that did not finish is fetched again
		return nil, fmt.Errorf("offsetlog: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(cfg.Dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for i, name := range names {
		seg, err := scan(name, i == len(names)-1)
		if err != nil {
			return nil, err
		}
		l.segs = append(l.segs, seg)
		l.total += seg.size
	}
	if tail := l.tailLocked(); tail != nil && tail.path != cfg.Legacy {
		if err := l.openActive(tail); err != nil {
			return nil, err
		}
	}
	if err := l.retainLocked(); err != nil { // bounds lowered since the last run
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) openLegacy() error {
	st, err := os.Stat(l.cfg.Legacy)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("offsetlog: %w", err)
	}
	tail, err := readTail(l.cfg.Legacy, st.Size())
	if err != nil {
		return err
	}
	for line := range bytes.Lines(tail) {
		var s Sample
		if json.Unmarshal(line, &s) == nil { // the first may be cut, the last torn
			l.legacyRef = max(l.legacyRef, s.RefUnixNano)
		}
	}
	l.segs = append(l.segs, &segment{first: 1, last: 0, path: l.cfg.Legacy, size: st.Size(), modTime: st.ModTime()})
	l.total += st.Size()
	return nil
}

// readTail returns the last 64 KiB of the file at path, of size size.
func readTail(path string, size int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("offsetlog: %w", err)
	}
	defer f.Close()
	off := max(size-64<<10, 0)
	b := make([]byte, size-off)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("offsetlog: %w", err)
	}
	return b, nil
}

// scan learns a segment's last tick from its last line. The last
// segment's torn tail, a line without its newline, is cut off.
func scan(path string, last bool) (*segment, error) {
	first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), ".jsonl"), 10, 64)
	if err != nil || first == 0 {
		return nil, fmt.Errorf("offsetlog: segment name %s: not a tick number", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("offsetlog: %w", err)
	}
	seg := &segment{first: first, last: first - 1, path: path, size: st.Size(), modTime: st.ModTime()}
	tail, err := readTail(path, seg.size)
	if err != nil {
		return nil, err
	}
	if whole := bytes.LastIndexByte(tail, '\n') + 1; whole < len(tail) {
		if !last {
			return nil, fmt.Errorf("%w: %s ends in a line without its newline", ErrCorrupt, path)
		}
		seg.size -= int64(len(tail) - whole)
		if err := os.Truncate(path, seg.size); err != nil {
			return nil, fmt.Errorf("offsetlog: cut torn tail of %s: %w", path, err)
		}
		tail = tail[:whole]
	}
	if len(tail) == 0 {
		return seg, nil
	}
	line := tail[bytes.LastIndexByte(tail[:len(tail)-1], '\n')+1:]
	var s Sample
	if err := json.Unmarshal(line, &s); err != nil || s.Tick < first {
		return nil, fmt.Errorf("%w: %s: last line %q", ErrCorrupt, path, bytes.TrimSpace(line))
	}
	seg.last = s.Tick
	return seg, nil
}

func (l *Log) openActive(seg *segment) error {
	f, err := os.OpenFile(seg.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("offsetlog: %w", err)
	}
	l.active = f
	return nil
}

func (l *Log) tailLocked() *segment {
	if len(l.segs) == 0 {
		return nil
	}
	return l.segs[len(l.segs)-1]
}

// Last is the last tick stored, 0 when none is.
func (l *Log) Last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastLocked()
}

func (l *Log) lastLocked() uint64 {
	for i := len(l.segs) - 1; i >= 0; i-- {
		if l.segs[i].last >= l.segs[i].first {
			return l.segs[i].last
		}
	}
	return 0
}

// Record stores tick t's samples, setting their Tick. A tick at or
// below the last one stored is skipped, as is one whose samples the
// legacy file holds already. A tick without samples stores nothing
// (every tick clockd commits carries its leader's). It does not sync;
// Sync does.
func (l *Log) Record(t Tick) error {
	if t.Seq == 0 {
		return errors.New("offsetlog: tick 0")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	last := l.lastLocked()
	if t.Seq <= last || len(t.Samples) == 0 {
		return nil
	}
	if last == 0 && l.legacyRef > 0 && maxRef(t.Samples) <= l.legacyRef {
		return nil // replayed after the upgrade: the legacy file has it
	}
	seg, err := l.segmentForLocked(t.Seq, last)
	if err != nil {
		return err
	}
	l.buf = l.buf[:0]
	for _, s := range t.Samples {
		s.Tick = t.Seq
		l.buf, _ = appendJSON(l.buf, s)
	}
	if _, err := l.active.Write(l.buf); err != nil {
		// A short write (a full disk) must not leave half a line for the
		// next tick's lines to follow.
		if terr := l.active.Truncate(seg.size); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("offsetlog: %w", err)
	}
	seg.size += int64(len(l.buf))
	l.total += int64(len(l.buf))
	seg.last = t.Seq
	return nil
}

func maxRef(ss []Sample) int64 {
	var m int64
	for _, s := range ss {
		m = max(m, s.RefUnixNano)
	}
	return m
}

func appendJSON(b []byte, s Sample) ([]byte, error) {
	j, err := json.Marshal(s)
	return append(append(b, j...), '\n'), err
}

// segmentForLocked returns the segment to write tick seq to, after last,
// the last tick stored: the tail, or a new one when there is none, the
// tail is full or the legacy file, or seq does not follow last. Such a
// jump leaves a gap that Fill can close; OnGap hears of it.
func (l *Log) segmentForLocked(seq, last uint64) (*segment, error) {
	seg := l.tailLocked()
	jump := last > 0 && seq > last+1
	// An empty tail (a crash right after a roll) is named for the tick
	// it was opened for.
	fits := seg != nil && (seg.last >= seg.first || seg.first == seq)
	if fits && l.active != nil && seg.size < l.cfg.SegmentBytes && !jump {
		return seg, nil
	}
	if err := l.rollLocked(seq); err != nil {
		return nil, err
	}
	if jump {
		gap := Gap{First: last + 1, Last: seq - 1}
		l.log.Warn("offset history gap: the ticks between were committed while this host was behind",
			zap.Uint64("first-tick", gap.First), zap.Uint64("last-tick", gap.Last))
		if l.cfg.OnGap != nil {
			l.cfg.OnGap(gap)
		}
	}
	return l.tailLocked(), l.retainLocked()
}

// rollLocked closes the active segment and starts one at tick first. An
// active segment left empty is removed: its name may be the one a Fill
// needs.
func (l *Log) rollLocked(first uint64) error {
	if l.active != nil {
		if err := l.active.Sync(); err != nil {
			return fmt.Errorf("offsetlog: %w", err)
		}
		l.active.Close()
		l.active = nil
		if tail := l.tailLocked(); tail.last < tail.first {
			if err := os.Remove(tail.path); err != nil {
				return fmt.Errorf("offsetlog: %w", err)
			}
			l.segs = l.segs[:len(l.segs)-1]
		}
	}
	seg := &segment{first: first, last: first - 1, path: l.segPath(first), modTime: time.Now()}
	if err := l.openActive(seg); err != nil {
		return err
	}
	l.segs = append(l.segs, seg)
	return segfile.SyncDir(l.cfg.Dir)
}

func (l *Log) segPath(first uint64) string {
	return filepath.Join(l.cfg.Dir, fmt.Sprintf("%020d.jsonl", first))
}

// retainLocked deletes the oldest closed segments beyond the bounds.
func (l *Log) retainLocked() error {
	var err error
	l.segs, l.total, err = segfile.Retain(l.segs, l.total, l.cfg.MaxBytes, l.cfg.MaxAge, segFile, func(old *segment) {
		l.log.Info("offset history segment removed by retention", zap.String("path", old.path),
			zap.Uint64("first-tick", old.first), zap.Uint64("last-tick", old.last))
	})
	if err != nil {
		return fmt.Errorf("offsetlog: %w", err)
	}
	return nil
}

func segFile(seg *segment) segfile.File {
	return segfile.File{Path: seg.path, Size: seg.size, ModTime: seg.modTime}
}

// Sync puts every sample recorded on stable storage.
func (l *Log) Sync() error {
	l.mu.Lock()
	f := l.active
	l.mu.Unlock()
	if f == nil {
		return nil
	}
	// A roll may close f meanwhile; it syncs it first.
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("offsetlog: %w", err)
	}
	return nil
}

// Gaps returns the runs of ticks the history lacks between two it holds,
// oldest first.
func (l *Log) Gaps() []Gap {
	l.mu.Lock()
	defer l.mu.Unlock()
	return spans.Gaps(l.segs, segSpan)
}

// Fill stores ticks that belong in a gap, as a segment of their own,
// synced before the history lists it: a crash leaves the gap as it was.
// ticks must be consecutive, all inside one gap.
func (l *Log) Fill(ticks []Tick) error {
	if len(ticks) == 0 {
		return nil
	}
	first, last := ticks[0].Seq, ticks[len(ticks)-1].Seq
	if i := spans.Consecutive(ticks, tickSeq, first); i < len(ticks) {
		return fmt.Errorf("offsetlog: fill: tick %d after %d", ticks[i].Seq, ticks[i-1].Seq)
	}
	if first == 0 {
		return errors.New("offsetlog: fill: tick 0")
	}
	l.mu.Lock()
	_, err := spans.FillPlace(l.segs, segSpan, first, last)
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("offsetlog: fill: ticks %w", err)
	}
	seg, err := l.writeFill(ticks)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	at, err := spans.FillPlace(l.segs, segSpan, first, last)
	if err != nil {
		os.Remove(seg.path + segfile.FillSuffix)
		return fmt.Errorf("offsetlog: fill: ticks %w", err)
	}
	// Its samples are older than the next segment's: retention by age
	// takes it with the segment before the gap.
	seg.modTime = l.segs[at-1].modTime
	if err := segfile.Install(seg.path, seg.modTime); err != nil {
		return fmt.Errorf("offsetlog: fill: %w", err)
	}
	l.segs = slices.Insert(l.segs, at, seg)
	l.total += seg.size
	l.log.Info("offset history gap filled", zap.Uint64("first-tick", first), zap.Uint64("last-tick", last))
	return l.retainLocked()
}

// writeFill writes ticks to a new segment file under its fill name,
// synced.
func (l *Log) writeFill(ticks []Tick) (*segment, error) {
	first := ticks[0].Seq
	seg := &segment{first: first, last: ticks[len(ticks)-1].Seq, path: l.segPath(first)}
	var err error
	seg.size, err = segfile.WriteFill(seg.path, func(w *bufio.Writer) {
		var b []byte
		for _, t := range ticks {
			for _, s := range t.Samples {
				s.Tick = t.Seq
				b, _ = appendJSON(b[:0], s)
				w.Write(b)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("offsetlog: fill: %w", err)
	}
	return seg, nil
}

// view is what a reader needs of a segment, copied under the lock.
type view struct {
	first, last uint64
	path        string
	size        int64
	legacy      bool // the legacy file: its torn lines are skipped, as clockd before did
}

func (l *Log) views() []view {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]view, len(l.segs))
	for i, seg := range l.segs {
		out[i] = view{first: seg.first, last: seg.last, path: seg.path, size: seg.size, legacy: seg.path == l.cfg.Legacy}
	}
	return out
}

// Each calls fn with every sample kept, oldest tick first. A damaged
// line is an error naming its file and line.
func (l *Log) Each(fn func(Sample) error) error {
	for _, v := range l.views() {
		if err := eachLine(v, fn); err != nil {
			return err
		}
	}
	return nil
}

var errStop = errors.New("stop")

// Read returns the ticks from first to last that the history holds, in
// order, whole, stopping once their lines reach maxBytes.
func (l *Log) Read(first, last uint64, maxBytes int) ([]Tick, error) {
	var out []Tick
	size := 0
	for _, v := range l.views() {
		if v.last < first || v.first > last || v.last < v.first {
			continue
		}
		err := eachLine(v, func(s Sample) error {
			if s.Tick < first {
				return nil
			}
			if s.Tick > last {
				return errStop
			}
			if n := len(out); n == 0 || out[n-1].Seq != s.Tick {
				if size >= maxBytes {
					return errStop
				}
				out = append(out, Tick{Seq: s.Tick})
			}
			t := &out[len(out)-1]
			t.Samples = append(t.Samples, s)
			size += len(s.Host) + 80
			return nil
		})
		if errors.Is(err, errStop) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// eachLine calls fn with each sample of the segment, up to its size when
// it was viewed.
func eachLine(v view, fn func(Sample) error) error {
	f, err := os.Open(v.path)
	if err != nil {
		return fmt.Errorf("offsetlog: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, v.size))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var s Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			if v.legacy {
				continue
			}
			return fmt.Errorf("%w: %s:%d: %v", ErrCorrupt, v.path, n, err)
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("offsetlog: %s: %w", v.path, err)
	}
	return nil
}

// Close syncs and closes the history.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active == nil {
		return nil
	}
	err := l.active.Sync()
	if cerr := l.active.Close(); err == nil {
		err = cerr
	}
	l.active = nil
	return err
}
