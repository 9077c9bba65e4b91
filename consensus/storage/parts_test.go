package storage

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clockd/clockd/consensus"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// parts returns how many part keys slot has in the file.
func parts(t *testing.T, s *Store, slot uint64) int {
	t.Helper()
	n := 0
	for p := 0; p < maxParts; p++ {
		var l raft.Log
		err := s.db.GetLog(logKey(slot, p), &l)
		if errors.Is(err, raft.ErrLogNotFound) {
			return n
		}
		if err != nil {
			t.Fatalf("get slot %d part %d: %v", slot, p, err)
		}
		n++
	}
	return n
}

// TestParts: records of every size round-trip through their parts, a
// shorter record over a longer one of the same slot wins over the longer
// one's leftover parts, and Compact deletes every part.
func TestParts(t *testing.T) {
	b := ballot(1, 1)
	path := filepath.Join(t.TempDir(), "acceptor.db")
	s := openT(t, path)
	big := func(slot uint64, n int) consensus.Entry {
		return ent(slot, b, false, strings.Repeat(string(rune('a'+slot)), n))
	}
	ents := []consensus.Entry{
		ent(1, b, false, "small"),
		big(2, partBytes-60),    // about one part whole
		big(3, partBytes),       // just over one part
		big(4, 5*partBytes+123), // six parts
		big(5, 3*partBytes),
	}
	if err := s.Save(hardState(b, 0), true, ents); err != nil {
		t.Fatalf("save: %v", err)
	}
	for slot, want := range map[uint64]int{1: 1, 4: 6} {
		if got := parts(t, s, slot); got != want {
			t.Errorf("slot %d in %d parts, want %d", slot, got, want)
		}
	}
	// Slot 4 again, shorter, at a higher ballot: its last parts stay
	// behind in the file.
	b2 := ballot(2, 1)
	short := ent(4, b2, false, "short")
	if err := s.Save(hardState(b2, 0), true, []consensus.Entry{short}); err != nil {
		t.Fatalf("save: %v", err)
	}
	ents[3] = short
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = openT(t, path)
	defer s.Close()
	if got := parts(t, s, 4); got != 6 {
		t.Errorf("slot 4 has %d part keys, want 6 (one live, five left over)", got)
	}
	hs, got, err := s.Load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !reflect.DeepEqual(got, ents) || hs.Promised != b2 {
		t.Errorf("load = %v %d entries, want %v %d entries as saved", hs.Promised, len(got), b2, len(ents))
	}
	if err := s.Compact(4); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if first, err := s.db.FirstIndex(); err != nil || first != logKey(5, 0) {
		t.Errorf("first key after compact = %#x, %v; want slot 5's first part %#x", first, err, logKey(5, 0))
	}
	if _, got, err := s.Load(); err != nil || !reflect.DeepEqual(got, ents[4:]) {
		t.Errorf("load after compact = %d entries, %v; want slot 5 only", len(got), err)
	}
}

// TestPartFitsInPages: the leaves holding whole parts, at the highest
// slot (the longest key encoding raft-boltdb frames them with), take no
// more pages than 32 KiB for each part they hold (partSlack).
func TestPartFitsInPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acceptor.db")
	s := openT(t, path)
	b := ballot(1<<40, 1<<20)
	e := ent(maxSlot, b, true, strings.Repeat("p", 4*partBytes)) // four whole parts and a short one
	if err := s.Save(hardState(b, maxSlot), true, []consensus.Entry{e}); err != nil {
		t.Fatalf("save: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatalf("open %s with bolt: %v", path, err)
	}
	defer db.Close()
	pageSize := db.Info().PageSize
	parts := 0 // in leaves of 32 KiB or more
	err = db.View(func(tx *bbolt.Tx) error {
		for id := 2; ; {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				return err
			}
			size := (p.OverflowCount + 1) * pageSize
			if p.Type == "leaf" && size >= 32<<10 {
				parts += p.Count
				if limit := (p.Count*32<<10 + pageSize - 1) / pageSize * pageSize; size > limit {
					t.Errorf("leaf page %d of %d values spans %d bytes (%d pages), more than %d", id, p.Count, size, p.OverflowCount+1, limit)
				}
			}
			id += p.OverflowCount + 1
		}
	})
	if err != nil {
		t.Fatalf("walk pages: %v", err)
	}
	if parts < 4 {
		t.Errorf("%d values in leaves of 32 KiB or more, want the 4 whole parts at least", parts)
	}
}

// setTerm returns a write that sets the part count (Term) stored with
// part p of slot 7 to n.
func setTerm(p int, n uint64) func(s *Store) error {
	return func(s *Store) error {
		var l raft.Log
		if err := s.db.GetLog(logKey(7, p), &l); err != nil {
			return err
		}
		l.Term = n
		return s.db.StoreLog(&l)
	}
}

// TestPartsCorrupt: a missing part or a part that disagrees with the
// first about their number fails the Load, naming the slot.
func TestPartsCorrupt(t *testing.T) {
	b := ballot(1, 1)
	for _, tc := range []struct {
		name  string
		write func(s *Store) error
	}{
		{"middle part missing", func(s *Store) error { return s.db.DeleteRange(logKey(7, 1), logKey(7, 1)) }},
		{"last part missing", func(s *Store) error { return s.db.DeleteRange(logKey(7, 2), logKey(7, 2)) }},
		{"part count disagrees", setTerm(1, 2)},
		{"first part says more parts", setTerm(0, 4)},
		{"first part says no parts", setTerm(0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acceptor.db")
			s := openT(t, path)
			defer s.Close()
			e := ent(7, b, false, strings.Repeat("x", 2*partBytes+1)) // three parts
			if err := s.Save(hardState(b, 0), true, []consensus.Entry{e}); err != nil {
				t.Fatalf("save: %v", err)
			}
			if err := tc.write(s); err != nil {
				t.Fatalf("corrupt: %v", err)
			}
			_, _, err := s.Load()
			checkCorrupt(t, err, []error{ErrCorrupt}, path, "slot 7")
		})
	}
}

// TestLayout: a file with records and no layout mark (one record per key)
// or with another layout's mark is refused at open, naming the file.
func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(db *raftboltdb.BoltStore) error
	}{
		{"records without a mark", func(db *raftboltdb.BoltStore) error {
			return db.StoreLog(&raft.Log{Index: 5, Type: raft.LogCommand, Data: []byte("x")})
		}},
		{"another layout", func(db *raftboltdb.BoltStore) error {
			return db.Set(keyLayout, appendSum([]byte{3}, []byte{3}))
		}},
		{"mark corrupt", func(db *raftboltdb.BoltStore) error {
			return db.Set(keyLayout, []byte{2, 0, 0, 0, 0})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acceptor.db")
			db, err := raftboltdb.New(raftboltdb.Options{Path: path})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if err := tc.write(db); err != nil {
				t.Fatalf("write: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("open succeeded")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "layout") {
				t.Errorf("open error %q does not name the file and its layout", err)
			}
		})
	}
	// An empty file gets the mark and opens again.
	path := filepath.Join(t.TempDir(), "acceptor.db")
	for range 2 {
		s := openT(t, path)
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
}

// TestSlotHigh: the highest slot a key can hold saves and loads; the one
// above it is refused.
func TestSlotHigh(t *testing.T) {
	b := ballot(1, 1)
	path := filepath.Join(t.TempDir(), "acceptor.db")
	s := openT(t, path)
	defer s.Close()
	top := ent(maxSlot, b, false, "top")
	if err := s.Save(hardState(b, 0), true, []consensus.Entry{top}); err != nil {
		t.Fatalf("save slot %d: %v", uint64(maxSlot), err)
	}
	if _, got, err := s.Load(); err != nil || !reflect.DeepEqual(got, []consensus.Entry{top}) {
		t.Fatalf("load = %v, %v; want slot %d", got, err, uint64(maxSlot))
	}
	err := s.Save(hardState(b, 0), true, []consensus.Entry{ent(maxSlot+1, b, false, "x")})
	if !errors.Is(err, ErrSlotHigh) || !strings.Contains(err.Error(), path) {
		t.Fatalf("save above slot %d = %v, want %v naming the file", uint64(maxSlot), err, ErrSlotHigh)
	}
}
