package snapshot

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
)

// Import installs a snapshot file received from a peer: the whole file, as
// OpenFile returns it, read from r to EOF. It writes the bytes to a temp
// file, verifies them, fsyncs, renames the file to the name its header
// gives (replacing any snapshot of the same index) and fsyncs the
// directory. Damaged or truncated input fails with ErrCorrupt and installs
// nothing; so does any other error before the rename.
func (s *Store) Import(r io.Reader) (Meta, error) {
	f, err := s.createTemp("import-*" + tmpSuffix)
	if err != nil {
		return Meta{}, err
	}
	tmp := f.Name()
	defer s.untrack(tmp)
	hdr, err := receive(f, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("snapshot: close %s: %w", tmp, cerr)
	}
	if err != nil {
		os.Remove(tmp) // nothing was installed; a leftover is Prune's
		return Meta{}, fmt.Errorf("snapshot: import: %w", err)
	}
	final := s.Path(hdr.meta.Index)
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return Meta{}, fmt.Errorf("snapshot: import %s: %w", final, err)
	}
	if err := syncDir(s.dir); err != nil {
		return Meta{}, fmt.Errorf("snapshot: import %s: sync dir: %w", final, err)
	}
	s.log.Info("snapshot imported", zap.String("path", final),
		zap.Uint64("index", hdr.meta.Index), zap.Int64("data-bytes", hdr.dataSize))
	return hdr.meta, nil
}

// receive copies r into the empty temp file f, verifies it, and fsyncs it.
func receive(f *os.File, r io.Reader) (header, error) {
	if _, err := io.Copy(f, r); err != nil {
		return header{}, fmt.Errorf("receive into %s: %w", f.Name(), err)
	}
	hdr, err := verify(f, f.Name())
	if err != nil {
		return header{}, err
	}
	if err := f.Sync(); err != nil {
		return header{}, fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	return hdr, nil
}
