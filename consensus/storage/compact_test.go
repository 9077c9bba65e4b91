package storage

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/clockd/clockd/consensus"
)

// op is one call on a Store.
type op func(s *Store) error

func saveOp(hs consensus.HardState, changed bool, ents ...consensus.Entry) op {
	return func(s *Store) error { return s.Save(hs, changed, ents) }
}

func compactOp(upTo uint64) op {
	return func(s *Store) error { return s.Compact(upTo) }
}

// runOps performs ops on a fresh file, closes it, and returns what a
// reopened store loads and its compaction floor.
func runOps(t *testing.T, ops []op) (consensus.HardState, []consensus.Entry, uint64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acceptor.db")
	s := openT(t, path)
	for i, o := range ops {
		if err := o(s); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = openT(t, path)
	defer s.Close()
	hs, ents, err := s.Load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	floor, err := s.Compacted()
	if err != nil {
		t.Fatalf("compacted: %v", err)
	}
	return hs, ents, floor
}

func TestCompact(t *testing.T) {
	lo, b, hi := ballot(1, 1), ballot(2, 1), ballot(3, 2)
	five := []consensus.Entry{
		ent(1, b, false, "a"), ent(2, b, false, "b"), ent(3, b, false, "c"), ent(4, b, false, "d"), ent(5, b, false, "e"),
	}
	cases := []struct {
		name      string
		ops       []op
		wantHS    consensus.HardState
		wantEnts  []consensus.Entry
		wantFloor uint64
	}{
		{
			name:      "a committed prefix",
			ops:       []op{saveOp(hardState(b, 3), true, five...), compactOp(2)},
			wantHS:    hardState(b, 3),
			wantEnts:  []consensus.Entry{ent(3, b, true, "c"), ent(4, b, false, "d"), ent(5, b, false, "e")},
			wantFloor: 2,
		},
		{
			name:      "every record",
			ops:       []op{saveOp(hardState(b, 5), true, five...), compactOp(5)},
			wantHS:    hardState(b, 5),
			wantFloor: 5,
		},
		{
			// A snapshot installed from a peer reaches past the local log.
			name:      "beyond the last slot raises commit",
			ops:       []op{saveOp(hardState(b, 1), true, five[:2]...), compactOp(10)},
			wantHS:    hardState(b, 10),
			wantFloor: 10,
		},
		{
			name:      "commit below the floor is raised to it",
			ops:       []op{saveOp(hardState(b, 1), true, five...), compactOp(4)},
			wantHS:    hardState(b, 4),
			wantEnts:  []consensus.Entry{ent(5, b, false, "e")},
			wantFloor: 4,
		},
		{
			name: "a hole above the floor still clamps",
			ops: []op{
				saveOp(hardState(b, 5), false, five[0], five[1], five[2], five[4]),
				compactOp(2),
			},
			wantHS:    hardState(b, 3),
			wantEnts:  []consensus.Entry{ent(3, b, true, "c"), ent(5, b, false, "e")},
			wantFloor: 2,
		},
		{
			name: "saves after compaction",
			ops: []op{
				saveOp(hardState(b, 3), true, five[:3]...),
				compactOp(3),
				saveOp(hardState(b, 5), true, five[3:]...),
			},
			wantHS:    hardState(b, 5),
			wantEnts:  []consensus.Entry{ent(4, b, true, "d"), ent(5, b, true, "e")},
			wantFloor: 3,
		},
		{
			name:      "a lower compaction keeps the floor",
			ops:       []op{saveOp(hardState(b, 5), true, five...), compactOp(3), compactOp(1), compactOp(0)},
			wantHS:    hardState(b, 5),
			wantEnts:  []consensus.Entry{ent(4, b, true, "d"), ent(5, b, true, "e")},
			wantFloor: 3,
		},
		{
			name:      "a record saved below the floor is ignored",
			ops:       []op{saveOp(hardState(b, 3), true, five[:3]...), compactOp(3), saveOp(hardState(b, 3), false, five[1])},
			wantHS:    hardState(b, 3),
			wantFloor: 3,
		},
		{
			name:     "zero compacts nothing",
			ops:      []op{saveOp(hardState(b, 1), true, five[:2]...), compactOp(0)},
			wantHS:   hardState(b, 1),
			wantEnts: []consensus.Entry{ent(1, b, true, "a"), ent(2, b, false, "b")},
		},
		{
			// What a crash between Save's two fsyncs leaves behind, then
			// compacted: the promise must not fall back to lo.
			name: "the promise outlives the records it was raised from",
			ops: []op{
				saveOp(hardState(lo, 0), true),
				saveOp(hardState(hi, 2), false, ent(1, hi, false, "a"), ent(2, hi, false, "b")),
				compactOp(2),
			},
			wantHS:    hardState(hi, 2),
			wantFloor: 2,
		},
		{
			name: "chosen records leave the promise",
			ops: []op{
				saveOp(hardState(lo, 2), true, ent(1, hi, true, "a"), ent(2, hi, true, "b")),
				compactOp(2),
			},
			wantHS:    hardState(lo, 2),
			wantFloor: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs, ents, floor := runOps(t, tc.ops)
			if hs != tc.wantHS {
				t.Errorf("hardstate = %+v, want %+v", hs, tc.wantHS)
			}
			if !reflect.DeepEqual(ents, tc.wantEnts) {
				t.Errorf("entries:\n got %+v\nwant %+v", ents, tc.wantEnts)
			}
			if floor != tc.wantFloor {
				t.Errorf("floor = %d, want %d", floor, tc.wantFloor)
			}
		})
	}
}

// TestCompactDeletes checks that the records are gone from the file, not
// merely hidden by the floor.
func TestCompactDeletes(t *testing.T) {
	b := ballot(1, 1)
	s := openT(t, filepath.Join(t.TempDir(), "acceptor.db"))
	defer s.Close()
	var ents []consensus.Entry
	for slot := uint64(1); slot <= 1000; slot++ {
		ents = append(ents, ent(slot, b, false, "some data"))
	}
	if err := s.Save(hardState(b, 1000), true, ents); err != nil {
		t.Fatalf("save: %v", err)
	}
	if err := s.Compact(700); err != nil {
		t.Fatalf("compact: %v", err)
	}
	first, err := s.db.FirstIndex()
	if err != nil || first != logKey(701, 0) {
		t.Errorf("first key = %#x, %v; want slot 701's first part %#x", first, err, logKey(701, 0))
	}
}

// TestCompactInterrupted recovers from a crash between the floor's write
// and the deletion.
func TestCompactInterrupted(t *testing.T) {
	b := ballot(1, 1)
	s := openT(t, filepath.Join(t.TempDir(), "acceptor.db"))
	defer s.Close()
	ents := []consensus.Entry{ent(1, b, false, "a"), ent(2, b, false, "b"), ent(3, b, false, "c")}
	if err := s.Save(hardState(b, 1), true, ents); err != nil {
		t.Fatalf("save: %v", err)
	}
	// Compact(2) up to the crash.
	if err := s.db.Set(keyCompacted, appendCompacted(nil, 2)); err != nil {
		t.Fatalf("set floor: %v", err)
	}
	hs, got, err := s.Load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if want := []consensus.Entry{ent(3, b, false, "c")}; hs.Commit != 2 || !reflect.DeepEqual(got, want) {
		t.Errorf("load = commit %d %+v, want commit 2 %+v", hs.Commit, got, want)
	}
	// A Compact at the floor finishes the deletion.
	if err := s.Compact(1); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if first, err := s.db.FirstIndex(); err != nil || first != logKey(3, 0) {
		t.Errorf("first key = %#x, %v; want slot 3's first part %#x", first, err, logKey(3, 0))
	}
}

func TestCompactCorrupt(t *testing.T) {
	b := ballot(1, 1)
	path := filepath.Join(t.TempDir(), "acceptor.db")
	s := openT(t, path)
	defer s.Close()
	if err := s.Save(hardState(b, 2), true, []consensus.Entry{ent(1, b, false, "a"), ent(2, b, false, "b")}); err != nil {
		t.Fatalf("save: %v", err)
	}
	l := rawLog(t, s, 2)
	l.Data[0] ^= 0xff
	if err := s.db.StoreLog(&l); err != nil {
		t.Fatalf("store: %v", err)
	}
	err := s.Compact(2)
	checkCorrupt(t, err, []error{ErrCorrupt}, path, "slot 2")
	if err2 := s.Save(hardState(b, 2), true, nil); err2 != err {
		t.Errorf("save after failed compact = %v, want the sticky %v", err2, err)
	}
	if floor, err := s.loadFloor(); err != nil || floor != 0 {
		t.Errorf("floor = %d, %v; want 0: nothing compacted", floor, err)
	}
}

func TestCompactClosed(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "acceptor.db"))
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Compact(1); !errors.Is(err, ErrClosed) {
		t.Errorf("compact = %v, want %v", err, ErrClosed)
	}
	if _, err := s.Compacted(); !errors.Is(err, ErrClosed) {
		t.Errorf("compacted = %v, want %v", err, ErrClosed)
	}
}

// TestCompactAfterLoad: once Load has read the file, Compact still raises
// the promise to a ballot a record holds above it, and otherwise keeps it.
func TestCompactAfterLoad(t *testing.T) {
	lo, hi := ballot(1, 1), ballot(3, 2)
	cases := []struct {
		name   string
		ballot consensus.Ballot
		want   consensus.Ballot
	}{
		{"records at the promise", lo, lo},
		{"a record above the promise", hi, hi},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acceptor.db")
			s := openT(t, path)
			if err := s.Save(hardState(lo, 0), true, []consensus.Entry{ent(1, lo, false, "a")}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openT(t, path)
			if _, _, err := s.Load(); err != nil {
				t.Fatal(err)
			}
			// What a crash between Save's two fsyncs leaves behind when
			// the ballot is above the promise.
			if err := s.Save(hardState(lo, 2), false, []consensus.Entry{ent(2, tc.ballot, false, "b")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Compact(2); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openT(t, path)
			defer s.Close()
			hs, ents, err := s.Load()
			if err != nil || len(ents) != 0 || hs.Promised != tc.want {
				t.Fatalf("loaded %+v %v %v, want promise %v", hs, ents, err, tc.want)
			}
		})
	}
}
