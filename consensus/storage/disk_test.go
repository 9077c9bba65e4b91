package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/clockd/clockd/consensus"
	"github.com/hashicorp/raft"
)

// rawLog returns the first part of the record at slot as stored.
func rawLog(t *testing.T, s *Store, slot uint64) raft.Log {
	t.Helper()
	var l raft.Log
	if err := s.db.GetLog(logKey(slot, 0), &l); err != nil {
		t.Fatalf("get slot %d: %v", slot, err)
	}
	return l
}

// flipInFile inverts the byte at off within every copy of pattern in the
// file at path, and fails the test if there is none. bolt may keep stale
// copies in freed pages, so flipping only the first could miss the live one.
func flipInFile(t *testing.T, path string, pattern []byte, off int) {
	t.Helper()
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	found := 0
	for i := 0; ; {
		j := bytes.Index(buf[i:], pattern)
		if j < 0 {
			break
		}
		buf[i+j+off] ^= 0xff
		found++
		i += j + len(pattern)
	}
	if found == 0 {
		t.Fatalf("pattern %x not in %s", pattern, path)
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestCorruptFile flips one byte of a stored value in the bolt file itself,
// underneath bolt, and checks that Load refuses the file.
func TestCorruptFile(t *testing.T) {
	// Distinctive values, so their encodings are found only where stored.
	b := ballot(0x0123456789abcdef, 0x5eed)
	hs := hardState(b, 7)
	marker := []byte("\x00marker-7f3a9c1e")
	target := consensus.Entry{Slot: 7, Ballot: b, Value: consensus.Value{Cmds: []consensus.Command{{ID: 0xc0ffee, Data: marker}}}}
	record := appendRecord(nil, hs.Commit, &target)
	hsValue := appendHardState(nil, hs)
	markerAt := bytes.Index(record, marker)

	cases := []struct {
		name    string
		pattern []byte
		off     int
		where   string
	}{
		{"record commit hint", record, 0, "slot 7"},
		{"record slot", record, 1, "slot 7"},
		{"record data first byte", record, markerAt, "slot 7"},
		{"record data last byte", record, markerAt + len(marker) - 1, "slot 7"},
		{"record checksum", record, len(record) - 1, "slot 7"},
		{"hardstate round", hsValue, 0, "hardstate"},
		{"hardstate commit", hsValue, len(hsValue) - sumBytes - 1, "hardstate"},
		{"hardstate checksum", hsValue, len(hsValue) - sumBytes, "hardstate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acceptor.db")
			s := openT(t, path)
			var ents []consensus.Entry
			for slot := uint64(1); slot <= 9; slot++ {
				ents = append(ents, ent(slot, b, false, fmt.Sprint("value ", slot)))
			}
			ents[6] = target
			if err := s.Save(hs, true, ents); err != nil {
				t.Fatalf("save: %v", err)
			}
			if _, _, err := s.Load(); err != nil {
				t.Fatalf("load before the flip: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}

			flipInFile(t, path, tc.pattern, tc.off)

			s = openT(t, path)
			defer s.Close()
			_, _, err := s.Load()
			t.Logf("load: %v", err)
			checkCorrupt(t, err, []error{ErrCorrupt}, path, tc.where)
		})
	}
}
