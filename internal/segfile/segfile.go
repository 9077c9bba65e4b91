// Package segfile holds the file steps that clockd's segment stores (the
// event store, package eventlog, and the offset history, package
// offsetlog) share: a segment that fills a gap is written aside, synced
// and renamed into place whole; retention removes whole segments, oldest
// first; and new directory entries are made durable.
package segfile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// FillSuffix names a segment that is still being written aside.
const FillSuffix = ".fill"

// RemoveFills removes the segments in dir that a crash left half written:
// their gaps are still listed, and are filled again.
func RemoveFills(dir string) error {
	fills, err := filepath.Glob(filepath.Join(dir, "*"+FillSuffix))
	if err != nil {
		return err
	}
	for _, name := range fills {
		if err := os.Remove(name); err != nil {
			return err
		}
	}
	return nil
}

// WriteFill writes a segment to path+FillSuffix with write, and syncs it.
// It returns the bytes written. On failure it removes the file.
func WriteFill(path string, write func(*bufio.Writer)) (int64, error) {
	f, err := os.OpenFile(path+FillSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	write(w)
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	var size int64
	if st, serr := f.Stat(); err == nil {
		err, size = serr, st.Size()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path + FillSuffix)
		return 0, err
	}
	return size, nil
}

// Install puts the segment WriteFill wrote in place as path, with
// modification time modTime, and syncs its directory. It refuses to
// replace a segment. On failure it removes the written file.
func Install(path string, modTime time.Time) error {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		err = fmt.Errorf("%s exists", path)
	case errors.Is(err, os.ErrNotExist):
		err = os.Chtimes(path+FillSuffix, modTime, modTime)
	}
	if err == nil {
		err = os.Rename(path+FillSuffix, path)
	}
	if err == nil {
		err = SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path + FillSuffix)
	}
	return err
}

// File is what retention needs to know of a segment.
type File struct {
	Path    string
	Size    int64
	ModTime time.Time
}

// Retain removes the oldest of segs, never the last (the one being
// written), while their total size is over maxBytes or the oldest is
// older than maxAge (0: no age limit). It calls removed with each one it
// removes, and returns those kept and their total size.
func Retain[S any](segs []S, total, maxBytes int64, maxAge time.Duration, file func(S) File, removed func(S)) ([]S, int64, error) {
	for len(segs) > 1 {
		old := file(segs[0])
		tooBig := total > maxBytes
		tooOld := maxAge > 0 && time.Since(old.ModTime) > maxAge
		if !tooBig && !tooOld {
			break
		}
		if err := os.Remove(old.Path); err != nil {
			return segs, total, fmt.Errorf("retention: %w", err)
		}
		removed(segs[0])
		total -= old.Size
		segs = segs[1:]
	}
	return segs, total, nil
}

// SyncDir makes the entries in dir durable: files created, renamed or
// removed in it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
