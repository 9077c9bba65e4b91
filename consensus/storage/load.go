package storage

import (
	"errors"
	"fmt"
	"math"

	"github.com/clockd/clockd/consensus"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.uber.org/zap"
)

// Load returns the persisted state: the HardState and every entry above the
// compaction floor, sorted by slot. Every entry with Slot <= hs.Commit is
// returned with Chosen=true.
//
// hs.Commit may be lower than the last Save's (lazy commit), is never below
// the compaction floor, and is clamped below the first missing slot above
// the floor; hs.Promised is at least the ballot of every entry not recorded
// as chosen. A value whose checksum does not match fails the Load with
// ErrCorrupt naming the file and the slot, "hardstate" or "compaction
// floor". See the package doc. The returned entries are the caller's and do
// not alias the store.
func (s *Store) Load() (consensus.HardState, []consensus.Entry, error) {
	if s.err != nil {
		return consensus.HardState{}, nil, s.err
	}
	hs, ents, floor, err := s.load()
	if err != nil {
		return consensus.HardState{}, nil, fmt.Errorf("storage: load %s: %w", s.path, err)
	}
	// Slots up to the floor are in a snapshot, so they are chosen.
	hs.Commit = max(hs.Commit, floor)
	hs.Commit = s.clampCommit(hs.Commit, floor, ents)

	for i := range ents {
		e := &ents[i]
		if !e.Chosen && hs.Promised.Less(e.Ballot) {
			s.log.Warn("promise raised to accepted ballot",
				zap.Stringer("promised", hs.Promised), zap.Stringer("ballot", e.Ballot),
				zap.Uint64("slot", e.Slot))
			hs.Promised = e.Ballot
		}
		if e.Slot <= hs.Commit {
			e.Chosen = true
		}
	}
	s.log.Info("acceptor state loaded",
		zap.Stringer("promised", hs.Promised), zap.Uint64("commit", hs.Commit),
		zap.Uint64("compacted-to", floor), zap.Int("entries", len(ents)))
	return hs, ents, nil
}

// load reads the state as stored: hs.Commit is raised to the highest commit
// hint but not yet clamped, and ents are the records above floor.
func (s *Store) load() (hs consensus.HardState, ents []consensus.Entry, floor uint64, err error) {
	if floor, err = s.loadFloor(); err != nil {
		return hs, nil, 0, err
	}
	if hs, err = s.loadHardState(); err != nil {
		return hs, nil, 0, err
	}
	first, last, err := s.span(floor, math.MaxUint64)
	if err != nil {
		return hs, nil, floor, err
	}
	if first > last {
		s.noteLoaded(consensus.Ballot{})
		return hs, nil, floor, nil
	}
	var accepted consensus.Ballot
	err = s.scan(first, last, func(hint uint64, e consensus.Entry) {
		hs.Commit = max(hs.Commit, hint)
		ents = append(ents, e)
		if !e.Chosen && accepted.Less(e.Ballot) {
			accepted = e.Ballot
		}
	})
	if err == nil {
		s.noteLoaded(accepted)
	}
	return hs, ents, floor, err
}

// noteLoaded records that every record in the file was read, the highest
// ballot not recorded as chosen among them being accepted.
func (s *Store) noteLoaded(accepted consensus.Ballot) {
	if s.accepted.Less(accepted) {
		s.accepted = accepted
	}
	s.acceptedKnown = true
}

// clampCommit returns commit lowered below the first slot above floor that
// has no record. ents are sorted and all above floor.
//
// Every slot in floor+1..commit must have a record; the first hole ends the
// prefix commit may claim. Slots up to floor were compacted, not lost.
func (s *Store) clampCommit(commit, floor uint64, ents []consensus.Entry) uint64 {
	held := floor
	for _, e := range ents {
		if e.Slot != held+1 {
			break
		}
		held++
	}
	if commit > held {
		s.log.Warn("commit clamped below missing slot",
			zap.Uint64("commit", commit), zap.Uint64("missing-slot", held+1))
		return held
	}
	return commit
}

// loadFloor returns the compaction floor, 0 if the log was never compacted.
func (s *Store) loadFloor() (uint64, error) {
	buf, err := s.db.Get(keyCompacted)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("compaction floor: %w", err)
	}
	floor, err := decodeCompacted(buf)
	if err != nil {
		return 0, fmt.Errorf("compaction floor: %w", err)
	}
	return floor, nil
}

func (s *Store) loadHardState() (consensus.HardState, error) {
	buf, err := s.db.Get(keyHardState)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return consensus.HardState{}, nil
	}
	if err != nil {
		return consensus.HardState{}, fmt.Errorf("hardstate: %w", err)
	}
	hs, err := decodeHardState(buf)
	if err != nil {
		return consensus.HardState{}, fmt.Errorf("hardstate: %w", err)
	}
	return hs, nil
}

// span returns the slots of the stored records that lie in floor+1..upTo:
// first > last when there are none. Records at or below floor are left over
// from a Compact that a crash interrupted; they are never read.
func (s *Store) span(floor, upTo uint64) (first, last uint64, err error) {
	if first, err = s.db.FirstIndex(); err != nil {
		return 0, 0, err
	}
	if last, err = s.db.LastIndex(); err != nil {
		return 0, 0, err
	}
	if first == 0 && last == 0 {
		return 1, 0, nil
	}
	first, last = first>>partBits, last>>partBits
	if first == 0 {
		return 0, 0, fmt.Errorf("slot 0: %w", ErrSlotZero)
	}
	if floor == math.MaxUint64 {
		return 1, 0, nil
	}
	if first <= floor {
		s.log.Info("records at or below the compaction floor ignored",
			zap.Uint64("first-slot", first), zap.Uint64("compacted-to", floor))
	}
	return max(first, floor+1), min(last, upTo), nil
}

// scan checks and decodes the records from first to last inclusive, in slot
// order, skipping missing slots, and calls fn with each. 1 <= first <= last.
func (s *Store) scan(first, last uint64, fn func(hint uint64, e consensus.Entry)) error {
	var rec []byte
	// Stop on slot == last rather than slot > last, which would never hold
	// for last == MaxUint64.
	for slot := first; ; slot++ {
		var err error
		rec, err = s.record(slot, rec[:0])
		switch {
		case errors.Is(err, raft.ErrLogNotFound):
		case err != nil:
			return fmt.Errorf("slot %d: %w", slot, err)
		default:
			hint, e, err := decodeRecord(slot, rec)
			if err != nil {
				return fmt.Errorf("slot %d: %w", slot, err)
			}
			fn(hint, e)
		}
		if slot == last {
			return nil
		}
	}
}

// record appends slot's record, joined from its parts, to dst. It returns
// raft.ErrLogNotFound if the slot has none. Every part must be a command
// under its own key that gives the same number of parts as the first;
// parts beyond that number are left from an earlier, longer record of the
// slot and are not read.
func (s *Store) record(slot uint64, dst []byte) ([]byte, error) {
	var l raft.Log
	n := 1
	for p := 0; p < n; p++ {
		l = raft.Log{}
		err := s.db.GetLog(logKey(slot, p), &l)
		switch {
		case p == 0 && errors.Is(err, raft.ErrLogNotFound):
			return dst, err
		case errors.Is(err, raft.ErrLogNotFound):
			return dst, fmt.Errorf("%w: part %d of %d missing", ErrCorrupt, p, n)
		case err != nil:
			return dst, err
		case l.Type != raft.LogCommand || l.Index != logKey(slot, p):
			return dst, fmt.Errorf("%w: part %d: log type %v index %d", ErrCorrupt, p, l.Type, l.Index)
		case p == 0 && (l.Term < 1 || l.Term > maxParts):
			return dst, fmt.Errorf("%w: %d parts", ErrCorrupt, l.Term)
		case p == 0:
			n = int(l.Term)
		case l.Term != uint64(n):
			return dst, fmt.Errorf("%w: part %d of %d says %d parts", ErrCorrupt, p, n, l.Term)
		}
		dst = append(dst, l.Data...)
	}
	return dst, nil
}
