package storage

import (
	"errors"
	"fmt"

	"github.com/clockd/clockd/consensus"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.uber.org/zap"
)

// Load returns the persisted state: the HardState and every entry, sorted by
// slot. Every entry with Slot <= hs.Commit is returned with Chosen=true.
//
// hs.Commit may be lower than the last Save's (lazy commit) and is clamped
// below the first missing slot; hs.Promised is at least the ballot of every
// entry not recorded as chosen. See the package doc. The returned entries
// are the caller's and do not alias the store.
func (s *Store) Load() (consensus.HardState, []consensus.Entry, error) {
	if s.err != nil {
		return consensus.HardState{}, nil, s.err
	}
	hs, err := s.loadHardState()
	if err != nil {
		return consensus.HardState{}, nil, err
	}
	ents, maxHint, err := s.loadEntries()
	if err != nil {
		return consensus.HardState{}, nil, err
	}
	hs.Commit = max(hs.Commit, maxHint)

	// Every slot in 1..Commit must have a record; the first hole ends the
	// prefix Commit may claim.
	held := uint64(0)
	for _, e := range ents {
		if e.Slot != held+1 {
			break
		}
		held++
	}
	if hs.Commit > held {
		s.log.Warn("commit clamped below missing slot",
			zap.Uint64("commit", hs.Commit), zap.Uint64("missing-slot", held+1))
		hs.Commit = held
	}

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
		zap.Int("entries", len(ents)))
	return hs, ents, nil
}

func (s *Store) loadHardState() (consensus.HardState, error) {
	buf, err := s.db.Get(keyHardState)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return consensus.HardState{}, nil
	}
	if err != nil {
		return consensus.HardState{}, fmt.Errorf("storage: load %s: %w", s.path, err)
	}
	hs, err := decodeHardState(buf)
	if err != nil {
		return consensus.HardState{}, fmt.Errorf("storage: load %s: %w", s.path, err)
	}
	return hs, nil
}

// loadEntries reads every record in slot order and returns the entries as
// stored and the highest commit hint among them.
func (s *Store) loadEntries() ([]consensus.Entry, uint64, error) {
	first, err := s.db.FirstIndex()
	if err != nil {
		return nil, 0, fmt.Errorf("storage: load %s: %w", s.path, err)
	}
	last, err := s.db.LastIndex()
	if err != nil {
		return nil, 0, fmt.Errorf("storage: load %s: %w", s.path, err)
	}
	if first == 0 && last == 0 {
		return nil, 0, nil
	}
	if first == 0 {
		return nil, 0, fmt.Errorf("storage: load %s: slot 0: %w", s.path, ErrSlotZero)
	}
	var (
		ents    []consensus.Entry
		maxHint uint64
		l       raft.Log
	)
	// Stop on idx == last rather than idx > last, which would never hold for
	// last == MaxUint64.
	for idx := first; ; idx++ {
		l = raft.Log{}
		err := s.db.GetLog(idx, &l)
		switch {
		case errors.Is(err, raft.ErrLogNotFound):
		case err != nil:
			return nil, 0, fmt.Errorf("storage: load %s: slot %d: %w", s.path, idx, err)
		case l.Type != raft.LogCommand || l.Index != idx:
			return nil, 0, fmt.Errorf("storage: load %s: slot %d: %w: log type %v index %d",
				s.path, idx, ErrCorrupt, l.Type, l.Index)
		default:
			hint, e, err := decodeRecord(idx, l.Data)
			if err != nil {
				return nil, 0, fmt.Errorf("storage: load %s: slot %d: %w", s.path, idx, err)
			}
			maxHint = max(maxHint, hint)
			ents = append(ents, e)
		}
		if idx == last {
			return ents, maxHint, nil
		}
	}
}
