package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"
)

func openT(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func newStore(t testing.TB) *Store {
	t.Helper()
	return openT(t, filepath.Join(t.TempDir(), "snap"))
}

// randBytes returns n bytes drawn from seed.
func randBytes(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	b := make([]byte, n)
	r.Read(b)
	return b
}

// commit writes a snapshot of data in chunks of chunkBytes.
func commit(t testing.TB, s *Store, meta Meta, data []byte, chunkBytes int) {
	t.Helper()
	w, err := s.Create(meta)
	if err != nil {
		t.Fatalf("create %d: %v", meta.Index, err)
	}
	defer w.Abort()
	for chunk := range slices.Chunk(data, max(chunkBytes, 1)) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("commit %d: %v", meta.Index, err)
	}
}

// readSnap opens the snapshot at index and reads its data.
func readSnap(t testing.TB, s *Store, index uint64) (Meta, []byte, error) {
	t.Helper()
	meta, rc, size, err := s.Open(index)
	if err != nil {
		return Meta{}, nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %d: %v", index, err)
	}
	if int64(len(data)) != size {
		t.Errorf("read %d bytes, Open said %d", len(data), size)
	}
	return meta, data, nil
}

// dirNames returns the names in the store's directory, sorted.
func dirNames(t testing.TB, s *Store) []string {
	t.Helper()
	des, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func metaEqual(a, b Meta) bool { return a.Index == b.Index && bytes.Equal(a.Config, b.Config) }

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name       string
		meta       Meta
		data       []byte
		chunkBytes int
	}{
		{name: "no config, no data", meta: Meta{Index: 1}},
		{name: "config and data", meta: Meta{Index: 5, Config: []byte("members=1,2,3")}, data: []byte("state"), chunkBytes: 2},
		{name: "data larger than the write buffer", meta: Meta{Index: 1 << 40, Config: randBytes(1, 300)}, data: randBytes(2, 3*writeBufBytes+17), chunkBytes: 1000},
		{name: "config larger than the write buffer", meta: Meta{Index: 9, Config: randBytes(3, writeBufBytes+1)}, data: []byte("x")},
		{name: "largest index", meta: Meta{Index: math.MaxUint64, Config: []byte{0}}, data: []byte{0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			commit(t, s, tc.meta, tc.data, tc.chunkBytes)

			latest, ok, err := s.Latest()
			if err != nil || !ok || !metaEqual(latest, tc.meta) {
				t.Fatalf("latest = %+v, %v, %v; want %+v", latest, ok, err, tc.meta)
			}
			meta, data, err := readSnap(t, s, tc.meta.Index)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if !metaEqual(meta, tc.meta) || !bytes.Equal(data, tc.data) {
				t.Errorf("open = %+v with %d bytes, want %+v with %d bytes", meta, len(data), tc.meta, len(tc.data))
			}
			if names, want := dirNames(t, s), []string{filepath.Base(s.Path(tc.meta.Index))}; !slices.Equal(names, want) {
				t.Errorf("directory holds %q, want %q", names, want)
			}
		})
	}
}

func TestLatest(t *testing.T) {
	s := newStore(t)
	if meta, ok, err := s.Latest(); ok || err != nil {
		t.Fatalf("empty store: latest = %+v, %v, %v; want none", meta, ok, err)
	}
	for _, index := range []uint64{3, 10, 7} {
		commit(t, s, Meta{Index: index}, nil, 0)
	}
	// Not snapshots: ignored.
	for _, name := range []string{"README", "snap-10.snap", "snap-000000000000000000011.snap"} {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if meta, ok, err := s.Latest(); !ok || err != nil || meta.Index != 10 {
		t.Errorf("latest = %+v, %v, %v; want index 10", meta, ok, err)
	}
}

func TestOpenMissing(t *testing.T) {
	s := newStore(t)
	if _, _, _, err := s.Open(4); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open = %v, want %v", err, fs.ErrNotExist)
	}
	if _, _, err := s.OpenFile(4); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open file = %v, want %v", err, fs.ErrNotExist)
	}
}

func TestWriterMisuse(t *testing.T) {
	s := newStore(t)
	if _, err := s.Create(Meta{}); !errors.Is(err, ErrIndexZero) {
		t.Errorf("create index 0 = %v, want %v", err, ErrIndexZero)
	}
	w, err := s.Create(Meta{Index: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late")); !errors.Is(err, ErrWriterDone) {
		t.Errorf("write after commit = %v, want %v", err, ErrWriterDone)
	}
	if err := w.Commit(); !errors.Is(err, ErrWriterDone) {
		t.Errorf("second commit = %v, want %v", err, ErrWriterDone)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("abort after commit = %v, want nil", err)
	}
	if _, ok, err := s.Latest(); !ok || err != nil {
		t.Errorf("abort after commit removed the snapshot: %v, %v", ok, err)
	}
}

// TestAtomicity checks that a snapshot that was not committed is never
// seen, and that Prune cleans up after it.
func TestAtomicity(t *testing.T) {
	cases := []struct {
		name string
		// leave starts a snapshot at index 2 and does not commit it.
		leave func(t *testing.T, s *Store)
	}{
		{
			name: "aborted",
			leave: func(t *testing.T, s *Store) {
				w, err := s.Create(Meta{Index: 2})
				if err != nil {
					t.Fatal(err)
				}
				w.Write([]byte("half"))
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// The process dies mid-write; the next one opens the directory.
			name: "crashed writer",
			leave: func(t *testing.T, s *Store) {
				w, err := s.Create(Meta{Index: 2})
				if err != nil {
					t.Fatal(err)
				}
				w.Write(randBytes(4, 2*writeBufBytes))
				w.bw.Flush()
				w.f.Close()
			},
		},
		{
			// Even a complete file is not a snapshot until it is renamed.
			name: "complete temp file",
			leave: func(t *testing.T, s *Store) {
				raw, err := os.ReadFile(s.Path(1))
				if err != nil {
					t.Fatal(err)
				}
				raw = slices.Concat(appendHeader(nil, Meta{Index: 2}), raw[len(appendHeader(nil, Meta{Index: 1})):])
				if err := os.WriteFile(filepath.Join(s.dir, "snap-00000000000000000002-1.tmp"), raw, 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "snap")
			s := openT(t, dir)
			commit(t, s, Meta{Index: 1}, []byte("one"), 0)
			tc.leave(t, s)

			s = openT(t, dir) // a restart: no Writer is live
			if meta, ok, err := s.Latest(); err != nil || !ok || meta.Index != 1 {
				t.Errorf("latest = %+v, %v, %v; want index 1", meta, ok, err)
			}
			if _, _, _, err := s.Open(2); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("open 2 = %v, want %v", err, fs.ErrNotExist)
			}
			if err := s.Prune(1); err != nil {
				t.Fatalf("prune: %v", err)
			}
			if names, want := dirNames(t, s), []string{filepath.Base(s.Path(1))}; !slices.Equal(names, want) {
				t.Errorf("after prune the directory holds %q, want %q", names, want)
			}
		})
	}
}

func TestPruneSparesLiveWriter(t *testing.T) {
	s := newStore(t)
	w, err := s.Create(Meta{Index: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	w.Write([]byte("data"))
	if err := s.Prune(1); err != nil {
		t.Fatalf("prune: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("commit after prune: %v", err)
	}
	if meta, ok, err := s.Latest(); err != nil || !ok || meta.Index != 3 {
		t.Errorf("latest = %+v, %v, %v; want index 3", meta, ok, err)
	}
}

func TestPrune(t *testing.T) {
	indexes := []uint64{2, 4, 8, 16}
	cases := []struct {
		keep int
		want []uint64
	}{
		{keep: 1, want: []uint64{16}},
		{keep: 2, want: []uint64{8, 16}},
		{keep: 4, want: indexes},
		{keep: 10, want: indexes},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("keep %d", tc.keep), func(t *testing.T) {
			s := newStore(t)
			for _, index := range indexes {
				commit(t, s, Meta{Index: index}, []byte{byte(index)}, 0)
			}
			if err := s.Prune(tc.keep); err != nil {
				t.Fatalf("prune: %v", err)
			}
			got, _, err := s.list()
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("kept %v, %v; want %v", got, err, tc.want)
			}
			for _, index := range tc.want {
				if _, data, err := readSnap(t, s, index); err != nil || !bytes.Equal(data, []byte{byte(index)}) {
					t.Errorf("snapshot %d after prune: %q, %v", index, data, err)
				}
			}
		})
	}
	t.Run("keep none", func(t *testing.T) {
		s := newStore(t)
		commit(t, s, Meta{Index: 1}, nil, 0)
		if err := s.Prune(0); !errors.Is(err, ErrPruneAll) {
			t.Errorf("prune 0 = %v, want %v", err, ErrPruneAll)
		}
		if _, ok, _ := s.Latest(); !ok {
			t.Error("prune 0 removed the snapshot")
		}
	})
}

// TestConcurrentPrune runs writers against Prune; run it with -race. No
// commit may lose its temp file to Prune.
func TestConcurrentPrune(t *testing.T) {
	const writers, each = 4, 20
	s := newStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+1)
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				w, err := s.Create(Meta{Index: uint64(1 + g*each + i)})
				if err == nil {
					w.Write([]byte("data"))
					err = w.Commit()
				}
				errs <- err
			}
		})
	}
	wg.Go(func() {
		for range writers * each {
			if err := s.Prune(2); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := s.Prune(2); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.list(); err != nil || len(got) != 2 {
		t.Errorf("after prune: %v, %v; want 2 snapshots", got, err)
	}
}
