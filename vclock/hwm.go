package vclock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// HWMStore persists the high-water mark: a reading the output has not
// yet passed. Store must not return before the value is on stable storage.
type HWMStore interface {
	Load() (ns int64, ok bool, err error)
	Store(ns int64) error
}

// FileHWM keeps the high-water mark in one small file, replaced
// atomically (temp file, fsync, rename, fsync of the directory) and
// guarded by a CRC-32C.
type FileHWM struct{ Path string }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Load reads the mark; ok is false when the file does not exist.
func (f FileHWM) Load() (int64, bool, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("vclock: read high-water mark: %w", err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		return 0, false, fmt.Errorf("vclock: high-water mark %s is corrupt (%d bytes); refusing to start "+
			"without it, since readings could go backwards", f.Path, len(b))
	}
	return int64(binary.LittleEndian.Uint64(b)), true, nil
}

// Store replaces the mark.
func (f FileHWM) Store(ns int64) error {
	b := binary.LittleEndian.AppendUint64(nil, uint64(ns))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := f.Path + ".tmp"
	if err := writeSync(tmp, b); err != nil {
		return fmt.Errorf("vclock: store high-water mark: %w", err)
	}
	if err := os.Rename(tmp, f.Path); err != nil {
		return fmt.Errorf("vclock: store high-water mark: %w", err)
	}
	dir, err := os.Open(filepath.Dir(f.Path))
	if err != nil {
		return fmt.Errorf("vclock: store high-water mark: %w", err)
	}
	defer dir.Close()
	return dir.Sync()
}

func writeSync(path string, b []byte) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
