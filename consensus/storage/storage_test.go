package storage

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clockd/clockd/consensus"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// save is one call of Store.Save.
type save struct {
	hs      consensus.HardState
	changed bool
	ents    []consensus.Entry
}

func ballot(round uint64, node consensus.NodeID) consensus.Ballot {
	return consensus.Ballot{Round: round, Node: node}
}

func hardState(b consensus.Ballot, commit uint64) consensus.HardState {
	return consensus.HardState{Promised: b, Commit: commit}
}

// ent builds an entry holding one command per datum; no data makes a no-op.
func ent(slot uint64, b consensus.Ballot, chosen bool, data ...string) consensus.Entry {
	e := consensus.Entry{Slot: slot, Ballot: b, Chosen: chosen}
	for i, d := range data {
		e.Value.Cmds = append(e.Value.Cmds, consensus.Command{ID: slot*100 + uint64(i), Data: []byte(d)})
	}
	return e
}

func openT(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// replay performs saves on a fresh file, closes it, and returns what a
// reopened store loads.
func replay(t *testing.T, saves []save) (consensus.HardState, []consensus.Entry) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acceptor.db")
	s := openT(t, path)
	for i, sv := range saves {
		if err := s.Save(sv.hs, sv.changed, sv.ents); err != nil {
			t.Fatalf("save %d: %v", i, err)
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
	return hs, ents
}

type loadCase struct {
	name     string
	saves    []save
	wantHS   consensus.HardState
	wantEnts []consensus.Entry
}

func runLoadCases(t *testing.T, cases []loadCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs, ents := replay(t, tc.saves)
			if hs != tc.wantHS {
				t.Errorf("hardstate = %+v, want %+v", hs, tc.wantHS)
			}
			if !reflect.DeepEqual(ents, tc.wantEnts) {
				t.Errorf("entries:\n got %+v\nwant %+v", ents, tc.wantEnts)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	b := ballot(2, 1)
	runLoadCases(t, []loadCase{
		{name: "empty file"},
		{
			name:   "hardstate only",
			saves:  []save{{hs: hardState(ballot(3, 2), 0), changed: true}},
			wantHS: hardState(ballot(3, 2), 0),
		},
		{
			name:     "entries above commit keep their flags",
			saves:    []save{{hs: hardState(b, 0), changed: true, ents: []consensus.Entry{ent(1, b, false, "a"), ent(2, b, false)}}},
			wantHS:   hardState(b, 0),
			wantEnts: []consensus.Entry{ent(1, b, false, "a"), ent(2, b, false)},
		},
		{
			name: "entries up to commit come back chosen",
			saves: []save{{hs: hardState(b, 2), changed: true, ents: []consensus.Entry{
				ent(1, b, false, "a", "b"), ent(2, b, false, "c"), ent(3, b, false, "d"),
			}}},
			wantHS:   hardState(b, 2),
			wantEnts: []consensus.Entry{ent(1, b, true, "a", "b"), ent(2, b, true, "c"), ent(3, b, false, "d")},
		},
		{
			name: "slots out of order within a save come back sorted",
			saves: []save{{hs: hardState(b, 0), changed: true, ents: []consensus.Entry{
				ent(3, b, false, "c"), ent(1, b, false, "a"), ent(2, b, false, "b"),
			}}},
			wantHS:   hardState(b, 0),
			wantEnts: []consensus.Entry{ent(1, b, false, "a"), ent(2, b, false, "b"), ent(3, b, false, "c")},
		},
		{
			name: "several saves accumulate",
			saves: []save{
				{hs: hardState(ballot(1, 1), 0), changed: true},
				{hs: hardState(b, 0), changed: true, ents: []consensus.Entry{ent(1, b, false, "a")}},
				{hs: hardState(b, 1), changed: true, ents: []consensus.Entry{ent(2, b, false, "b")}},
			},
			wantHS:   hardState(b, 1),
			wantEnts: []consensus.Entry{ent(1, b, true, "a"), ent(2, b, false, "b")},
		},
		{
			name: "chosen entry beyond a hole stays chosen",
			saves: []save{{hs: hardState(b, 1), changed: true, ents: []consensus.Entry{
				ent(1, b, false, "a"), ent(3, b, true, "c"),
			}}},
			wantHS:   hardState(b, 1),
			wantEnts: []consensus.Entry{ent(1, b, true, "a"), ent(3, b, true, "c")},
		},
	})
}

func TestOverwrite(t *testing.T) {
	lo, hi := ballot(1, 1), ballot(2, 2)
	runLoadCases(t, []loadCase{
		{
			name: "higher ballot in a later save",
			saves: []save{
				{hs: hardState(lo, 0), changed: true, ents: []consensus.Entry{ent(1, lo, false, "old")}},
				{hs: hardState(hi, 0), changed: true, ents: []consensus.Entry{ent(1, hi, false, "new")}},
			},
			wantHS:   hardState(hi, 0),
			wantEnts: []consensus.Entry{ent(1, hi, false, "new")},
		},
		{
			name: "same slot twice in one save, last wins",
			saves: []save{{hs: hardState(hi, 0), changed: true, ents: []consensus.Entry{
				ent(1, lo, false, "old"), ent(2, hi, false, "two"), ent(1, hi, false, "new"),
			}}},
			wantHS:   hardState(hi, 0),
			wantEnts: []consensus.Entry{ent(1, hi, false, "new"), ent(2, hi, false, "two")},
		},
		{
			name: "learned chosen value replaces an accepted one",
			saves: []save{
				{hs: hardState(lo, 0), changed: true, ents: []consensus.Entry{ent(1, lo, false, "old")}},
				{hs: hardState(lo, 1), changed: true, ents: []consensus.Entry{ent(1, hi, true, "new")}},
			},
			wantHS:   hardState(lo, 1),
			wantEnts: []consensus.Entry{ent(1, hi, true, "new")},
		},
	})
}

func TestLazyCommit(t *testing.T) {
	b := ballot(1, 1)
	three := []consensus.Entry{ent(1, b, false, "a"), ent(2, b, false, "b"), ent(3, b, false, "c")}
	runLoadCases(t, []loadCase{
		{
			name: "hint carried by entries without hardstate",
			saves: []save{
				{hs: hardState(b, 0), changed: true},
				{hs: hardState(b, 3), changed: false, ents: three},
			},
			wantHS:   hardState(b, 3),
			wantEnts: []consensus.Entry{ent(1, b, true, "a"), ent(2, b, true, "b"), ent(3, b, true, "c")},
		},
		{
			name: "hint on a later slot covers earlier ones",
			saves: []save{
				{hs: hardState(b, 0), changed: true, ents: three},
				{hs: hardState(b, 3), changed: false, ents: []consensus.Entry{ent(4, b, false, "d")}},
			},
			wantHS: hardState(b, 3),
			wantEnts: []consensus.Entry{
				ent(1, b, true, "a"), ent(2, b, true, "b"), ent(3, b, true, "c"), ent(4, b, false, "d"),
			},
		},
		{
			name: "commit without entries or hardstate is lost",
			saves: []save{
				{hs: hardState(b, 0), changed: true, ents: three},
				{hs: hardState(b, 3), changed: false},
			},
			wantHS:   hardState(b, 0),
			wantEnts: three,
		},
		{
			name: "hardstate commit above every hint",
			saves: []save{
				{hs: hardState(b, 0), changed: false, ents: three},
				{hs: hardState(b, 2), changed: true},
			},
			wantHS:   hardState(b, 2),
			wantEnts: []consensus.Entry{ent(1, b, true, "a"), ent(2, b, true, "b"), ent(3, b, false, "c")},
		},
	})
}

func TestClamp(t *testing.T) {
	b := ballot(1, 1)
	runLoadCases(t, []loadCase{
		{
			name: "hint beyond a missing slot",
			saves: []save{{hs: hardState(b, 4), changed: false, ents: []consensus.Entry{
				ent(1, b, false, "a"), ent(2, b, false, "b"), ent(4, b, false, "d"),
			}}},
			wantHS:   hardState(b, 2),
			wantEnts: []consensus.Entry{ent(1, b, true, "a"), ent(2, b, true, "b"), ent(4, b, false, "d")},
		},
		{
			name: "slot 1 missing",
			saves: []save{{hs: hardState(b, 3), changed: true, ents: []consensus.Entry{
				ent(2, b, false, "b"), ent(3, b, false, "c"),
			}}},
			wantHS:   hardState(b, 0),
			wantEnts: []consensus.Entry{ent(2, b, false, "b"), ent(3, b, false, "c")},
		},
		{
			name: "hardstate commit beyond the last slot",
			saves: []save{{hs: hardState(b, 5), changed: true, ents: []consensus.Entry{
				ent(1, b, false, "a"), ent(2, b, false, "b"),
			}}},
			wantHS:   hardState(b, 2),
			wantEnts: []consensus.Entry{ent(1, b, true, "a"), ent(2, b, true, "b")},
		},
		{
			name:   "commit with no entries at all",
			saves:  []save{{hs: hardState(b, 4), changed: true}},
			wantHS: hardState(b, 0),
		},
	})
}

func TestPromiseRaised(t *testing.T) {
	lo, hi := ballot(1, 1), ballot(4, 2)
	runLoadCases(t, []loadCase{
		{
			// What a crash between Save's two fsyncs leaves behind.
			name: "entries durable, hardstate not",
			saves: []save{
				{hs: hardState(lo, 0), changed: true},
				{hs: hardState(hi, 0), changed: false, ents: []consensus.Entry{ent(1, hi, false, "a")}},
			},
			wantHS:   hardState(hi, 0),
			wantEnts: []consensus.Entry{ent(1, hi, false, "a")},
		},
		{
			name: "chosen entries do not raise it",
			saves: []save{
				{hs: hardState(lo, 0), changed: true, ents: []consensus.Entry{ent(1, hi, true, "a")}},
			},
			wantHS:   hardState(lo, 0),
			wantEnts: []consensus.Entry{ent(1, hi, true, "a")},
		},
		{
			name: "lower accepted ballots leave it",
			saves: []save{
				{hs: hardState(hi, 0), changed: true, ents: []consensus.Entry{ent(1, lo, false, "a")}},
			},
			wantHS:   hardState(hi, 0),
			wantEnts: []consensus.Entry{ent(1, lo, false, "a")},
		},
	})
}

func TestStickyError(t *testing.T) {
	b := ballot(1, 1)
	cases := []struct {
		name string
		// fail makes the store fail and returns the first error.
		fail   func(s *Store) error
		wantIs error
	}{
		{
			name: "closed",
			fail: func(s *Store) error {
				if err := s.Close(); err != nil {
					return err
				}
				return s.Save(hardState(b, 0), true, []consensus.Entry{ent(1, b, false, "a")})
			},
			wantIs: ErrClosed,
		},
		{
			name: "entries write fails",
			fail: func(s *Store) error {
				s.db.Close() // underneath the Store: the next transaction fails
				return s.Save(hardState(b, 0), false, []consensus.Entry{ent(1, b, false, "a")})
			},
			wantIs: bbolt.ErrDatabaseNotOpen,
		},
		{
			name: "hardstate write fails",
			fail: func(s *Store) error {
				s.db.Close()
				return s.Save(hardState(b, 0), true, nil)
			},
			wantIs: bbolt.ErrDatabaseNotOpen,
		},
		{
			name: "compact fails",
			fail: func(s *Store) error {
				s.db.Close()
				return s.Compact(1)
			},
			wantIs: bbolt.ErrDatabaseNotOpen,
		},
		{
			name: "slot zero",
			fail: func(s *Store) error {
				return s.Save(hardState(b, 0), true, []consensus.Entry{ent(1, b, false, "a"), ent(0, b, false, "z")})
			},
			wantIs: ErrSlotZero,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acceptor.db")
			s := openT(t, path)
			first := tc.fail(s)
			if !errors.Is(first, tc.wantIs) {
				t.Fatalf("first error = %v, want %v", first, tc.wantIs)
			}
			if !strings.Contains(first.Error(), path) {
				t.Errorf("error %q does not name %s", first, path)
			}
			for i, sv := range []save{
				{hs: hardState(b, 0), changed: true, ents: []consensus.Entry{ent(2, b, false, "b")}},
				{hs: hardState(b, 0), changed: true},
				{hs: hardState(b, 0), changed: false},
			} {
				if err := s.Save(sv.hs, sv.changed, sv.ents); err != first {
					t.Errorf("save %d after failure = %v, want the first error %v", i, err, first)
				}
			}
			if _, _, err := s.Load(); err != first {
				t.Errorf("load after failure = %v, want the first error %v", err, first)
			}
			if err := s.Close(); err != nil && !errors.Is(tc.wantIs, bbolt.ErrDatabaseNotOpen) {
				t.Errorf("close: %v", err)
			}

			// Nothing was written after, or by, the failing Save.
			s = openT(t, path)
			defer s.Close()
			hs, ents, err := s.Load()
			if err != nil {
				t.Fatalf("load after reopen: %v", err)
			}
			if hs != (consensus.HardState{}) || len(ents) != 0 {
				t.Errorf("reopened store holds %+v %+v, want nothing", hs, ents)
			}
		})
	}
}

// seal appends the checksum to body, so a test can store a value that
// passes the checksum and fails to decode.
func seal(body []byte) []byte {
	return appendSum(slices.Clip(body), body)
}

// unseal strips the checksum from a sealed value.
func unseal(buf []byte) []byte {
	return slices.Clip(buf[:len(buf)-sumBytes])
}

func TestLoadCorrupt(t *testing.T) {
	b := ballot(1, 1)
	good := unseal(appendRecord(nil, 0, &consensus.Entry{Slot: 5, Ballot: b, Value: consensus.Value{Cmds: []consensus.Command{{ID: 1, Data: []byte("x")}}}}))
	other := appendRecord(nil, 0, &consensus.Entry{Slot: 6, Ballot: b})
	storeLog := func(typ raft.LogType, data []byte) func(s *Store) error {
		return func(s *Store) error {
			return s.db.StoreLog(&raft.Log{Index: logKey(5, 0), Term: 1, Type: typ, Data: data})
		}
	}
	set := func(key, value []byte) func(s *Store) error {
		return func(s *Store) error { return s.db.Set(key, value) }
	}
	cases := []struct {
		name  string
		write func(s *Store) error
		// where is what the error must name besides the path.
		where  string
		wantIs []error
	}{
		{
			name:   "record checksum mismatch",
			write:  storeLog(raft.LogCommand, good),
			where:  "slot 5",
			wantIs: []error{ErrCorrupt},
		},
		{
			name:   "record shorter than its checksum",
			write:  storeLog(raft.LogCommand, []byte{1, 2, 3}),
			where:  "slot 5",
			wantIs: []error{ErrCorrupt},
		},
		{
			name:   "entry does not decode",
			write:  storeLog(raft.LogCommand, seal(append([]byte{0}, 5, 1, 1, 7))),
			where:  "slot 5",
			wantIs: []error{ErrCorrupt, consensus.ErrBadMessage},
		},
		{
			name:   "trailing bytes",
			write:  storeLog(raft.LogCommand, seal(append(good, 0))),
			where:  "slot 5",
			wantIs: []error{ErrCorrupt, consensus.ErrBadMessage},
		},
		{
			name:   "commit hint does not decode",
			write:  storeLog(raft.LogCommand, seal([]byte{0x80})),
			where:  "slot 5",
			wantIs: []error{ErrCorrupt},
		},
		{
			name:   "entry names another slot",
			write:  storeLog(raft.LogCommand, other),
			where:  "slot 5",
			wantIs: []error{ErrCorrupt},
		},
		{
			name:   "wrong log type",
			write:  storeLog(raft.LogNoop, seal(good)),
			where:  "slot 5",
			wantIs: []error{ErrCorrupt},
		},
		{
			name:   "hardstate checksum mismatch",
			write:  set(keyHardState, []byte{1, 2, 3, 4, 5}),
			where:  "hardstate",
			wantIs: []error{ErrCorrupt},
		},
		{
			name:   "hardstate does not decode",
			write:  set(keyHardState, seal([]byte{1, 2, 3, 4})),
			where:  "hardstate",
			wantIs: []error{ErrCorrupt},
		},
		{
			name:   "compaction floor checksum mismatch",
			write:  set(keyCompacted, []byte{9, 0, 0, 0, 0}),
			where:  "compaction floor",
			wantIs: []error{ErrCorrupt},
		},
		{
			name:   "compaction floor does not decode",
			write:  set(keyCompacted, seal([]byte{0x80})),
			where:  "compaction floor",
			wantIs: []error{ErrCorrupt},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acceptor.db")
			s := openT(t, path)
			defer s.Close()
			if err := tc.write(s); err != nil {
				t.Fatalf("write: %v", err)
			}
			_, _, err := s.Load()
			checkCorrupt(t, err, tc.wantIs, path, tc.where)
		})
	}
}

// checkCorrupt checks that err is every one of wantIs and names path and
// where.
func checkCorrupt(t *testing.T, err error, wantIs []error, path, where string) {
	t.Helper()
	if err == nil {
		t.Fatal("load succeeded")
	}
	for _, want := range wantIs {
		if !errors.Is(err, want) {
			t.Errorf("error %q is not %v", err, want)
		}
	}
	for _, name := range []string{path, where} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %q", err, name)
		}
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acceptor.db")
	s := openT(t, path)
	defer s.Close()
	if s2, err := Open(path); !errors.Is(err, bbolt.ErrTimeout) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("second open = %v, want %v", err, bbolt.ErrTimeout)
	}
}

// FuzzRecord checks that decoding never panics and that whatever decodes
// re-encodes to something that decodes the same.
func FuzzRecord(f *testing.F) {
	b := ballot(3, 2)
	f.Add(uint64(1), appendRecord(nil, 7, &consensus.Entry{Slot: 1, Ballot: b, Chosen: true,
		Value: consensus.Value{Cmds: []consensus.Command{{ID: 9, Data: []byte("abc")}}}}))
	f.Add(uint64(2), appendRecord(nil, 0, &consensus.Entry{Slot: 2, Ballot: b}))
	f.Add(uint64(5), []byte{0x80})
	f.Fuzz(func(t *testing.T, slot uint64, data []byte) {
		hint, e, err := decodeRecord(slot, data)
		if err != nil {
			return
		}
		hint2, e2, err := decodeRecord(slot, appendRecord(nil, hint, &e))
		if err != nil || hint2 != hint || !reflect.DeepEqual(e, e2) {
			t.Fatalf("re-encoding %+v (hint %d) decodes to %+v (hint %d), %v", e, hint, e2, hint2, err)
		}
	})
}

// BenchmarkSave measures one group commit of 64 entries of 64 bytes each,
// fsync included.
func BenchmarkSave(b *testing.B) {
	const batch, size = 64, 64
	s := openT(b, filepath.Join(b.TempDir(), "acceptor.db"))
	defer s.Close()
	bal := ballot(1, 1)
	data := make([]byte, size)
	ents := make([]consensus.Entry, batch)
	for i := range ents {
		ents[i] = consensus.Entry{Ballot: bal, Value: consensus.Value{Cmds: []consensus.Command{{Data: data}}}}
	}
	b.SetBytes(batch * size)
	b.ReportAllocs()
	slot := uint64(0)
	for b.Loop() {
		for i := range ents {
			slot++
			ents[i].Slot = slot
			ents[i].Value.Cmds[0].ID = slot
		}
		if err := s.Save(hardState(bal, slot-batch), false, ents); err != nil {
			b.Fatal(err)
		}
	}
}
