package storage

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// Errors returned by the store. Each is wrapped with the file's path.
var (
	ErrClosed   = errors.New("storage: store closed")
	ErrCorrupt  = errors.New("storage: corrupt record")
	ErrSlotZero = errors.New("storage: slot 0 is reserved")
	ErrSlotHigh = errors.New("storage: slot above 2^48-1")
	ErrLayout   = errors.New("storage: unknown layout")
	// ErrRecordSize: a record needs more than 2^16 parts (partBytes).
	ErrRecordSize = errors.New("storage: record larger than 2 GiB")
)

// openTimeout bounds the wait for bolt's exclusive file lock, so a second
// process on the same file fails instead of hanging.
const openTimeout = time.Second

// maxRetainedBytes caps the encode buffer kept between Saves; a rare huge
// batch must not pin its buffer for the life of the process. Saves of
// several megabytes are common (slots of trace events), and are encoded
// in the kept buffer.
const maxRetainedBytes = 16 << 20

// Store is the durable acceptor store. It is not safe for concurrent use:
// one goroutine, normally the driver's, calls every method.
type Store struct {
	path string
	db   *raftboltdb.BoltStore
	log  *zap.Logger

	// err is sticky: once set, by a failed write or by Close, every Save and
	// Load returns it and nothing more is written.
	err error

	// accepted is, once acceptedKnown (Load read every record), at least
	// the ballot of every record in the file not recorded as chosen: Save
	// raises it with each record it writes. Compact skips reading the
	// records it deletes when the durable promise is already this high.
	accepted      consensus.Ballot
	acceptedKnown bool

	// Scratch reused by Save, valid only during one call.
	order []int
	buf   []byte
	logs  []raft.Log
	ptrs  []*raft.Log
}

// Open opens or creates the bolt file at path. Its directory must exist.
func Open(path string) (*Store, error) {
	return OpenLogger(path, zap.NewNop())
}

// OpenLogger is Open with a logger for recovery repairs and write failures.
// It logs nothing per Save.
func OpenLogger(path string, log *zap.Logger) (*Store, error) {
	opts := *bbolt.DefaultOptions
	opts.Timeout = openTimeout
	db, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &opts})
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	err = syncDir(filepath.Dir(path))
	if err == nil {
		err = checkLayout(db)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	return &Store{path: path, db: db, log: log.With(zap.String("path", path))}, nil
}

// checkLayout makes sure the log bucket is in layoutParts: a new file is
// marked so before anything is saved, and a file with records but no mark
// (one record per key) or another mark is refused with ErrLayout.
func checkLayout(db *raftboltdb.BoltStore) error {
	buf, err := db.Get(keyLayout)
	switch {
	case errors.Is(err, raftboltdb.ErrKeyNotFound):
		first, err := db.FirstIndex()
		if err != nil {
			return err
		}
		if first != 0 {
			return fmt.Errorf("%w: records but no layout mark", ErrLayout)
		}
		return db.Set(keyLayout, appendLayout(nil))
	case err != nil:
		return fmt.Errorf("layout: %w", err)
	}
	var v [1]uint64
	body, err := openSum(buf)
	if err == nil {
		err = decodeUvarints(body, v[:])
	}
	if err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if v[0] != layoutParts {
		return fmt.Errorf("%w: %d, this version reads %d", ErrLayout, v[0], layoutParts)
	}
	return nil
}

// syncDir makes a newly created file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close releases the file. Afterwards Save, Compact, Compacted and Load
// return ErrClosed, and a second Close returns nil.
func (s *Store) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if s.err == nil {
		s.err = fmt.Errorf("storage: %s: %w", s.path, ErrClosed)
	}
	if err != nil {
		return fmt.Errorf("storage: close %s: %w", s.path, err)
	}
	return nil
}

// Save durably writes ents, overwriting records of the same slot, and, when
// hsChanged, hs. It returns only after every write is fsynced. Entries of
// the same slot within ents: the last wins. ents is not retained.
//
// hs.Commit is stored as the commit hint of every record written, so it
// becomes durable with the entries even when hsChanged is false.
//
// Any error is sticky: this and every later Save returns it, and the driver
// must stop the node.
func (s *Store) Save(hs consensus.HardState, hsChanged bool, ents []consensus.Entry) error {
	if s.err != nil {
		return s.err
	}
	for i := range ents {
		if ents[i].Slot == 0 {
			return s.fail("save", ErrSlotZero)
		}
		if ents[i].Slot > maxSlot {
			return s.fail("save", ErrSlotHigh)
		}
		if !ents[i].Chosen && s.accepted.Less(ents[i].Ballot) {
			s.accepted = ents[i].Ballot
		}
	}
	// Entries before hardstate: a durable Commit must never cover entries
	// that are not durable yet.
	if len(ents) > 0 {
		logs, err := s.batch(hs.Commit, ents)
		if err == nil {
			err = s.db.StoreLogs(logs)
		}
		if err != nil {
			return s.fail("save", err)
		}
	}
	if hsChanged {
		if err := s.db.Set(keyHardState, appendHardState(nil, hs)); err != nil {
			return s.fail("save", err)
		}
	}
	return nil
}

// Compact durably deletes every record with slot <= upTo and records upTo as
// the compaction floor. Load then returns only the records above the floor
// and never a Commit below it. See "Compaction" in the package doc.
//
// The caller must only compact slots that a durable snapshot covers: the
// records are gone once Compact returns. A Compact at or below the current
// floor moves nothing back; it only finishes a deletion a crash interrupted.
//
// Compact reads every record it deletes, once, to carry their ballots into
// the durable promise. Any error is sticky, as for Save.
func (s *Store) Compact(upTo uint64) error {
	if s.err != nil {
		return s.err
	}
	if upTo == 0 {
		return nil
	}
	floor, err := s.loadFloor()
	if err != nil {
		return s.fail("compact", err)
	}
	if upTo > floor {
		if err := s.keepPromise(floor, upTo); err != nil {
			return s.fail("compact", err)
		}
		// The floor before the deletion: a crash in between leaves records
		// at or below the floor, which Load ignores and the next Compact
		// deletes.
		if err := s.db.Set(keyCompacted, appendCompacted(nil, upTo)); err != nil {
			return s.fail("compact", err)
		}
		floor = upTo
	}
	// One transaction, one fsync, however many records it deletes.
	if err := s.db.DeleteRange(0, logKey(min(floor, maxSlot), maxParts-1)); err != nil {
		return s.fail("compact", err)
	}
	s.log.Info("log compacted", zap.Uint64("compacted-to", floor))
	return nil
}

// keepPromise makes the durable promise at least the ballot of every record
// in floor+1..upTo not recorded as chosen. Load raises the promise from
// those records (a crash between Save's two fsyncs can leave the promise
// behind them); once they are deleted, only the hardstate can remember it.
func (s *Store) keepPromise(floor, upTo uint64) error {
	hs, err := s.loadHardState()
	if err != nil || (s.acceptedKnown && !hs.Promised.Less(s.accepted)) {
		return err // no record in the file has a ballot above the promise
	}
	first, last, err := s.span(floor, upTo)
	if err != nil || first > last {
		return err
	}
	var accepted consensus.Ballot
	err = s.scan(first, last, func(_ uint64, e consensus.Entry) {
		if !e.Chosen && accepted.Less(e.Ballot) {
			accepted = e.Ballot
		}
	})
	if err != nil || !hs.Promised.Less(accepted) {
		return err
	}
	s.log.Warn("promise raised to accepted ballot before compaction",
		zap.Stringer("promised", hs.Promised), zap.Stringer("ballot", accepted))
	hs.Promised = accepted
	if err := s.db.Set(keyHardState, appendHardState(nil, hs)); err != nil {
		return fmt.Errorf("hardstate: %w", err)
	}
	return nil
}

// Compacted returns the compaction floor: every slot <= it was deleted by
// Compact. It is 0 if the log was never compacted. The driver checks that
// its newest snapshot reaches the floor before it starts the node.
func (s *Store) Compacted() (uint64, error) {
	if s.err != nil {
		return 0, s.err
	}
	floor, err := s.loadFloor()
	if err != nil {
		return 0, fmt.Errorf("storage: load %s: %w", s.path, err)
	}
	return floor, nil
}

// fail makes err sticky, wrapped with op and the path.
func (s *Store) fail(op string, err error) error {
	s.err = fmt.Errorf("storage: %s %s: %w", op, s.path, err)
	s.log.Error("write failed, store is fail-stopped", zap.String("op", op), zap.Error(err))
	return s.err
}

// recordParts is the number of parts a record of n bytes is stored in.
func recordParts(n int) int { return max(1, (n+partBytes-1)/partBytes) }

// batch encodes ents as the parts of one record per distinct slot, in slot
// order, the last of equal slots winning. The result aliases s's scratch
// buffers and is valid until the next call. A record too long for
// maxParts parts is refused with ErrRecordSize.
func (s *Store) batch(commit uint64, ents []consensus.Entry) ([]*raft.Log, error) {
	s.order = s.order[:0]
	for i := range ents {
		s.order = append(s.order, i)
	}
	// Stable, so equal slots keep their order and the last one is the winner.
	slices.SortStableFunc(s.order, func(a, b int) int { return cmp.Compare(ents[a].Slot, ents[b].Slot) })
	kept := s.order[:0]
	for j, i := range s.order {
		if j+1 < len(s.order) && ents[s.order[j+1]].Slot == ents[i].Slot {
			continue
		}
		kept = append(kept, i)
	}

	// Encode everything first and slice afterwards: appending may move buf.
	size := 0
	for _, i := range kept {
		v := &ents[i].Value
		size += 48 + v.Bytes() + 16*len(v.Cmds)
	}
	if cap(s.buf) > maxRetainedBytes || cap(s.buf) < size {
		s.buf = make([]byte, 0, max(size, min(2*cap(s.buf), maxRetainedBytes))) // at once, not by doubling
	}
	s.buf = s.buf[:0]
	ends := make([]int, len(kept))
	for k, i := range kept {
		s.buf = appendRecord(s.buf, commit, &ents[i])
		ends[k] = len(s.buf)
	}
	s.logs = s.logs[:0]
	start := 0
	for k, i := range kept {
		rec := s.buf[start:ends[k]:ends[k]]
		n := recordParts(len(rec))
		if n > maxParts {
			return nil, fmt.Errorf("%w: slot %d: %d bytes", ErrRecordSize, ents[i].Slot, len(rec))
		}
		for p := range n {
			lo, hi := p*partBytes, min((p+1)*partBytes, len(rec))
			s.logs = append(s.logs, raft.Log{Index: logKey(ents[i].Slot, p), Term: uint64(n), Type: raft.LogCommand, Data: rec[lo:hi:hi]})
		}
		start = ends[k]
	}
	// Pointers last: appending may have moved s.logs.
	s.ptrs = s.ptrs[:0]
	for i := range s.logs {
		s.ptrs = append(s.ptrs, &s.logs[i])
	}
	return s.ptrs, nil
}
