package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
)

// fileOf commits a snapshot in a scratch store and returns its raw file, as
// a peer would send it.
func fileOf(t testing.TB, meta Meta, data []byte) []byte {
	t.Helper()
	src := newStore(t)
	commit(t, src, meta, data, 0)
	rc, size, err := src.OpenFile(meta.Index)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil || int64(len(raw)) != size {
		t.Fatalf("read file: %d bytes of %d, %v", len(raw), size, err)
	}
	return raw
}

func TestImport(t *testing.T) {
	meta := Meta{Index: 42, Config: []byte("members=1,2,3")}
	data := randBytes(5, 100_000)
	raw := fileOf(t, meta, data)

	s := newStore(t)
	got, err := s.Import(bytes.NewReader(raw))
	if err != nil || !metaEqual(got, meta) {
		t.Fatalf("import = %+v, %v; want %+v", got, err, meta)
	}
	if latest, ok, err := s.Latest(); err != nil || !ok || !metaEqual(latest, meta) {
		t.Errorf("latest = %+v, %v, %v; want %+v", latest, ok, err, meta)
	}
	if _, gotData, err := readSnap(t, s, meta.Index); err != nil || !bytes.Equal(gotData, data) {
		t.Errorf("open after import: %d bytes, %v; want %d bytes", len(gotData), err, len(data))
	}
	if names := dirNames(t, s); len(names) != 1 {
		t.Errorf("directory holds %q, want the snapshot alone", names)
	}
}

// errReader fails after its data.
type errReader struct{ r io.Reader }

var errNetwork = errors.New("connection reset")

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, errNetwork
	}
	return n, err
}

// TestImportRejects checks that bad input installs nothing, not even a temp
// file.
func TestImportRejects(t *testing.T) {
	raw := fileOf(t, corruptMeta, corruptData)
	flip := func(pos int) []byte {
		b := slices.Clone(raw)
		b[pos] ^= 0x80
		return b
	}
	cases := []struct {
		name   string
		input  io.Reader
		wantIs error
	}{
		{"bad magic", bytes.NewReader(flip(0)), ErrCorrupt},
		{"index flipped", bytes.NewReader(flip(len(magic))), ErrCorrupt},
		{"config flipped", bytes.NewReader(flip(len(magic) + 3)), ErrCorrupt},
		{"data flipped", bytes.NewReader(flip(len(raw) - sumBytes - 1)), ErrCorrupt},
		{"trailer flipped", bytes.NewReader(flip(len(raw) - 1)), ErrCorrupt},
		{"trailing garbage", bytes.NewReader(append(slices.Clone(raw), 1, 2, 3)), ErrCorrupt},
		{"empty", bytes.NewReader(nil), ErrCorrupt},
		{"read error", &errReader{bytes.NewReader(raw)}, errNetwork},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			checkRejected(t, s, tc.input, tc.wantIs)
		})
	}
}

// checkRejected imports input and checks that it fails with wantIs and
// leaves the directory empty.
func checkRejected(t *testing.T, s *Store, input io.Reader, wantIs error) {
	t.Helper()
	meta, err := s.Import(input)
	if !errors.Is(err, wantIs) {
		t.Errorf("import = %+v, %v; want %v", meta, err, wantIs)
	}
	if names := dirNames(t, s); len(names) != 0 {
		t.Errorf("rejected import left %q", names)
	}
	if _, ok, err := s.Latest(); ok || err != nil {
		t.Errorf("latest after rejected import = %v, %v; want none", ok, err)
	}
}

// TestImportTruncated cuts a valid file at every length.
func TestImportTruncated(t *testing.T) {
	raw := fileOf(t, Meta{Index: 1 << 20, Config: []byte("c")}, randBytes(6, 200))
	s := newStore(t)
	for n := range len(raw) {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			checkRejected(t, s, bytes.NewReader(raw[:n]), ErrCorrupt)
		})
	}
}

// FuzzImport checks that Import installs exactly its input or nothing.
func FuzzImport(f *testing.F) {
	raw := fileOf(f, corruptMeta, corruptData)
	f.Add(raw)
	f.Add(raw[:len(raw)-1])
	f.Add(raw[:len(magic)+2])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, input []byte) {
		s := newStore(t)
		meta, err := s.Import(bytes.NewReader(input))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("import = %v, want %v", err, ErrCorrupt)
			}
			if names := dirNames(t, s); len(names) != 0 {
				t.Fatalf("rejected import left %q", names)
			}
			return
		}
		installed, err := os.ReadFile(s.Path(meta.Index))
		if err != nil || !bytes.Equal(installed, input) {
			t.Fatalf("installed %d bytes, %v; want the %d input bytes", len(installed), err, len(input))
		}
	})
}
