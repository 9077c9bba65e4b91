package snapshot

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// corruptMeta and corruptData make a small file with every section present:
// a two-byte index, a config and data.
var (
	corruptMeta = Meta{Index: 300, Config: []byte("cfg")}
	corruptData = []byte("state machine")
)

// region names the section of the file made from corruptMeta and
// corruptData that holds byte pos.
func region(pos int) string {
	bounds := []struct {
		end  int
		name string
	}{
		{len(magic), "magic"},
		{len(magic) + 2, "index"},
		{len(magic) + 3, "config length"},
		{len(magic) + 3 + len(corruptMeta.Config), "config"},
		{len(magic) + 3 + len(corruptMeta.Config) + len(corruptData), "data"},
	}
	for _, b := range bounds {
		if pos < b.end {
			return b.name
		}
	}
	return "trailer"
}

// checkCorrupt checks that err wraps ErrCorrupt and names path.
func checkCorrupt(t *testing.T, what string, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("%s = %v, want %v", what, err, ErrCorrupt)
		return
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("%s: error %q does not name %s", what, err, path)
	}
}

// damage commits the corrupt test snapshot, changes its file with edit and
// checks that Latest and Open refuse it.
func damage(t *testing.T, edit func(raw []byte) []byte) {
	t.Helper()
	s := newStore(t)
	commit(t, s, corruptMeta, corruptData, 0)
	path := s.Path(corruptMeta.Index)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Latest()
	checkCorrupt(t, "latest", err, path)
	_, _, _, err = s.Open(corruptMeta.Index)
	checkCorrupt(t, "open", err, path)
}

// TestFlipAnyByte flips each byte of a snapshot file in turn.
func TestFlipAnyByte(t *testing.T) {
	size := len(appendHeader(nil, corruptMeta)) + len(corruptData) + sumBytes
	for pos := range size {
		t.Run(fmt.Sprintf("%s byte %d", region(pos), pos), func(t *testing.T) {
			damage(t, func(raw []byte) []byte {
				if len(raw) != size {
					t.Fatalf("file is %d bytes, want %d", len(raw), size)
				}
				raw[pos] ^= 0x01
				return raw
			})
		})
	}
}

func TestTruncated(t *testing.T) {
	size := len(appendHeader(nil, corruptMeta)) + len(corruptData) + sumBytes
	for n := range size {
		t.Run(fmt.Sprintf("%d bytes", n), func(t *testing.T) {
			damage(t, func(raw []byte) []byte { return raw[:n] })
		})
	}
}

func TestDamagedOtherwise(t *testing.T) {
	cases := []struct {
		name string
		edit func(raw []byte) []byte
	}{
		{"trailing byte", func(raw []byte) []byte { return append(raw, 0) }},
		{"trailer of another file", func(raw []byte) []byte {
			copy(raw[len(raw)-sumBytes:], make([]byte, sumBytes))
			return raw
		}},
		{"empty", func([]byte) []byte { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { damage(t, tc.edit) })
	}
}

// TestMisnamed checks that a valid file under another index's name is
// refused: a restore must get the state it asked for.
func TestMisnamed(t *testing.T) {
	s := newStore(t)
	commit(t, s, Meta{Index: 5}, []byte("five"), 0)
	raw, err := os.ReadFile(s.Path(5))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(6), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = s.Open(6)
	checkCorrupt(t, "open", err, s.Path(6))
	_, _, err = s.Latest()
	checkCorrupt(t, "latest", err, s.Path(6))
}
