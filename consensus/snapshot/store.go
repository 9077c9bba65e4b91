package snapshot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Errors returned by the store. ErrCorrupt is wrapped with the file's path.
var (
	ErrCorrupt    = errors.New("snapshot: corrupt file")
	ErrIndexZero  = errors.New("snapshot: index 0 is reserved")
	ErrPruneAll   = errors.New("snapshot: prune must keep at least one snapshot")
	ErrWriterDone = errors.New("snapshot: writer already committed or aborted")
)

// Meta describes a snapshot. Index is the last slot the snapshot includes;
// it is at least 1. Config is an opaque blob (the membership configuration,
// encoded by the caller).
type Meta struct {
	Index  uint64
	Config []byte
}

// File names. A snapshot is snap-<index as %020d>.snap, so that names sort
// in index order; a file being written ends in .tmp.
const (
	namePrefix = "snap-"
	nameSuffix = ".snap"
	nameDigits = 20
	tmpSuffix  = ".tmp"
)

// Store is a directory of snapshots. It is safe for concurrent use; a
// Writer is not.
type Store struct {
	dir string
	log *zap.Logger

	mu sync.Mutex
	// writing holds the base names of the temp files of Writers and Imports
	// in progress. Prune removes every other temp file.
	writing map[string]struct{}
}

// Open opens the snapshot directory dir, creating it if needed. A nil log
// logs nothing.
func Open(dir string, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", dir, err)
	}
	// A newly created directory must survive a crash like the files in it.
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", dir, err)
	}
	return &Store{dir: dir, log: log.With(zap.String("dir", dir)), writing: map[string]struct{}{}}, nil
}

// Path returns the file name of the snapshot at index, whether or not it
// exists.
func (s *Store) Path(index uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s%0*d%s", namePrefix, nameDigits, index, nameSuffix))
}

// parseName returns the index in a snapshot file name, and false for any
// other name.
func parseName(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, nameSuffix)
	if !ok || len(digits) != nameDigits {
		return 0, false
	}
	index, err := strconv.ParseUint(digits, 10, 64)
	return index, err == nil
}

// list returns the indexes of the snapshot files, ascending, and the base
// names of the temp files. Other files are ignored.
func (s *Store) list() (indexes []uint64, tmps []string, err error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: list %s: %w", s.dir, err)
	}
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() {
			continue
		}
		if strings.HasSuffix(name, tmpSuffix) {
			tmps = append(tmps, name)
		} else if index, ok := parseName(name); ok {
			indexes = append(indexes, index)
		}
	}
	slices.Sort(indexes)
	return indexes, tmps, nil
}

// Latest verifies the newest snapshot and returns its meta; ok is false if
// there is none. If the newest is corrupt, Latest returns ErrCorrupt naming
// its file rather than fall back to an older one: see the package doc.
func (s *Store) Latest() (meta Meta, ok bool, err error) {
	indexes, _, err := s.list()
	if err != nil || len(indexes) == 0 {
		return Meta{}, false, err
	}
	meta, rc, _, err := s.Open(indexes[len(indexes)-1])
	if err != nil {
		return Meta{}, false, err
	}
	if err := rc.Close(); err != nil {
		return Meta{}, false, fmt.Errorf("snapshot: close %s: %w", s.Path(meta.Index), err)
	}
	return meta, true, nil
}

// Open verifies the snapshot at index, reading its file once, and returns
// its meta and a reader over its data section of size bytes. A missing
// snapshot is an error wrapping fs.ErrNotExist; a damaged one, or one whose
// header names another index, wraps ErrCorrupt. The caller closes the
// reader.
func (s *Store) Open(index uint64) (Meta, io.ReadCloser, int64, error) {
	path := s.Path(index)
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, nil, 0, fmt.Errorf("snapshot: open %s: %w", path, err)
	}
	hdr, err := verify(f, path)
	if err == nil && hdr.meta.Index != index {
		err = corrupt(path, "header names index %d", hdr.meta.Index)
	}
	if err != nil {
		f.Close()
		return Meta{}, nil, 0, err
	}
	return hdr.meta, &dataReader{SectionReader: io.NewSectionReader(f, hdr.dataOff, hdr.dataSize), f: f}, hdr.dataSize, nil
}

// dataReader reads the data section of an open snapshot file.
type dataReader struct {
	*io.SectionReader
	f *os.File
}

func (r *dataReader) Close() error { return r.f.Close() }

// OpenFile returns the raw bytes of the snapshot file at index and their
// size, for sending to a peer, whose Import verifies them. It does not
// verify the file itself. The caller closes the reader.
func (s *Store) OpenFile(index uint64) (io.ReadCloser, int64, error) {
	path := s.Path(index)
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("snapshot: open %s: %w", path, err)
	}
	return f, st.Size(), nil
}

// Prune removes all but the newest keep snapshots, and every temp file
// that no Writer or Import of this Store is using. keep must be at least 1.
// It does not verify the snapshots it keeps.
func (s *Store) Prune(keep int) error {
	if keep < 1 {
		return fmt.Errorf("snapshot: prune keep %d: %w", keep, ErrPruneAll)
	}
	indexes, tmps, err := s.list()
	if err != nil {
		return err
	}
	var errs []error
	for _, index := range indexes[:max(0, len(indexes)-keep)] {
		errs = append(errs, s.remove(s.Path(index), "snapshot removed"))
	}
	for _, name := range tmps {
		errs = append(errs, s.removeStale(name))
	}
	return errors.Join(errs...)
}

// removeStale removes the temp file name unless a Writer or Import uses it.
// It holds mu, as createTemp does, so a temp file is never seen untracked.
func (s *Store) removeStale(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.writing[name]; ok {
		return nil
	}
	return s.remove(filepath.Join(s.dir, name), "stale temp file removed")
}

// remove deletes path and logs msg. A file already gone is not an error.
func (s *Store) remove(path, msg string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("snapshot: prune %s: %w", path, err)
	}
	s.log.Info(msg, zap.String("path", path))
	return nil
}

// createTemp creates a temp file in the directory from pattern (see
// os.CreateTemp) and marks it in use until untrack.
func (s *Store) createTemp(pattern string) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.CreateTemp(s.dir, pattern)
	if err != nil {
		return nil, fmt.Errorf("snapshot: create in %s: %w", s.dir, err)
	}
	s.writing[filepath.Base(f.Name())] = struct{}{}
	return f, nil
}

// untrack marks the temp file at path as no longer in use.
func (s *Store) untrack(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.writing, filepath.Base(path))
}

// syncDir makes the directory entries in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
