package snapshot

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"go.uber.org/zap"
)

// writeBufBytes is the write buffer of a Writer.
const writeBufBytes = 64 << 10

// Writer streams the data of one snapshot into a temp file. Nothing is
// visible under the snapshot's name until Commit returns nil. A Writer is
// used from one goroutine.
type Writer struct {
	s    *Store
	meta Meta
	tmp  string // path of the temp file
	f    *os.File
	bw   *bufio.Writer
	// h hashes every byte written to bw: header and data, not the trailer.
	h         hash.Hash
	dataBytes int64
	// err is the first write error; it is returned by every later Write and
	// by Commit.
	err  error
	done bool // Commit or Abort was called
}

// Create starts a snapshot described by meta. Write its data to the Writer,
// then Commit, or Abort to give up. meta.Config is copied.
func (s *Store) Create(meta Meta) (*Writer, error) {
	if meta.Index == 0 {
		return nil, fmt.Errorf("snapshot: create: %w", ErrIndexZero)
	}
	f, err := s.createTemp(fmt.Sprintf("%s%0*d-*%s", namePrefix, nameDigits, meta.Index, tmpSuffix))
	if err != nil {
		return nil, err
	}
	meta.Config = slices.Clone(meta.Config)
	w := &Writer{s: s, meta: meta, tmp: f.Name(), f: f, bw: bufio.NewWriterSize(f, writeBufBytes), h: sha256.New()}
	if err := w.write(appendHeader(nil, meta)); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// Write appends p to the snapshot's data.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, ErrWriterDone
	}
	if err := w.write(p); err != nil {
		return 0, err
	}
	w.dataBytes += int64(len(p))
	return len(p), nil
}

// write passes p to the file and the hash. A short write is an error and
// is sticky.
func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.bw.Write(p)
	w.h.Write(p[:n])
	if err != nil {
		w.err = fmt.Errorf("snapshot: write %s: %w", w.tmp, err)
	}
	return w.err
}

// Commit writes the trailer, fsyncs the file, renames it to its final name
// (replacing any snapshot of the same index) and fsyncs the directory. When
// it returns nil the snapshot is durable. On error the temp file is removed
// unless the rename already happened, in which case the snapshot is in
// place but may not survive a crash. Either way the Writer is done.
func (w *Writer) Commit() error {
	if w.done {
		return ErrWriterDone
	}
	w.done = true
	defer w.s.untrack(w.tmp)
	final := w.s.Path(w.meta.Index)
	if err := w.seal(); err != nil {
		w.discard()
		return err
	}
	if err := os.Rename(w.tmp, final); err != nil {
		w.discard()
		return fmt.Errorf("snapshot: commit %s: %w", final, err)
	}
	if err := syncDir(w.s.dir); err != nil {
		return fmt.Errorf("snapshot: commit %s: sync dir: %w", final, err)
	}
	w.s.log.Info("snapshot committed", zap.String("path", final),
		zap.Uint64("index", w.meta.Index), zap.Int64("data-bytes", w.dataBytes))
	return nil
}

// seal writes the trailer, then flushes, fsyncs and closes the temp file.
func (w *Writer) seal() error {
	if err := w.write(w.h.Sum(nil)); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("snapshot: write %s: %w", w.tmp, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("snapshot: sync %s: %w", w.tmp, err)
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("snapshot: close %s: %w", w.tmp, err)
	}
	return nil
}

// Abort removes the temp file. Abort after Commit or Abort does nothing and
// returns nil, so it may be deferred right after Create.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.s.untrack(w.tmp)
	return w.discard()
}

// discard closes the temp file if it is open and removes it.
func (w *Writer) discard() error {
	if w.f != nil {
		w.f.Close() // the file is being thrown away; only removal matters
		w.f = nil
	}
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: abort %s: %w", filepath.Base(w.tmp), err)
	}
	return nil
}
