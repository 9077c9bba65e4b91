package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

const (
	// magic opens every snapshot file and names the format version.
	magic = "CLKSNAP1"
	// sumBytes is the length of the SHA-256 trailer.
	sumBytes = sha256.Size
	// minFileBytes is the smallest well-formed file: magic, a one-byte
	// index, a one-byte config length and the trailer.
	minFileBytes = len(magic) + 2 + sumBytes
)

// appendHeader appends the file header for meta: everything before the
// data section.
func appendHeader(dst []byte, meta Meta) []byte {
	dst = append(dst, magic...)
	dst = binary.AppendUvarint(dst, meta.Index)
	dst = binary.AppendUvarint(dst, uint64(len(meta.Config)))
	return append(dst, meta.Config...)
}

// header is what verify learns from a file.
type header struct {
	meta Meta
	// dataOff and dataSize locate the data section, in bytes from the
	// start of the file.
	dataOff, dataSize int64
}

// corrupt returns ErrCorrupt wrapped with the file's path and a detail.
func corrupt(path, format string, args ...any) error {
	return fmt.Errorf("snapshot %s: %w: %s", path, ErrCorrupt, fmt.Sprintf(format, args...))
}

// verify reads the whole of f, the file at path, once: it checks the magic
// and the trailer, then parses the header. Only I/O errors are returned
// without ErrCorrupt.
func verify(f *os.File, path string) (header, error) {
	st, err := f.Stat()
	if err != nil {
		return header{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	size := st.Size()
	if size < int64(minFileBytes) {
		return header{}, corrupt(path, "truncated: %d bytes", size)
	}
	bodySize := size - sumBytes
	var m [len(magic)]byte
	if _, err := f.ReadAt(m[:], 0); err != nil {
		return header{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if string(m[:]) != magic {
		return header{}, corrupt(path, "bad magic %q", m[:])
	}
	if err := checkSum(f, path, bodySize); err != nil {
		return header{}, err
	}
	return parseHeader(f, path, bodySize)
}

// checkSum compares the SHA-256 of the first bodySize bytes of f with the
// trailer that follows them.
func checkSum(f *os.File, path string, bodySize int64) error {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, bodySize)); err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	var stored [sumBytes]byte
	if _, err := f.ReadAt(stored[:], bodySize); err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	if computed := h.Sum(nil); !bytes.Equal(computed, stored[:]) {
		return corrupt(path, "checksum mismatch: stored %x, computed %x", stored[:8], computed[:8])
	}
	return nil
}

// parseHeader parses the header that follows the magic. bodySize is the
// file's size without the trailer.
func parseHeader(f *os.File, path string, bodySize int64) (header, error) {
	r := &countingReader{r: bufio.NewReader(io.NewSectionReader(f, int64(len(magic)), bodySize-int64(len(magic))))}
	index, err := binary.ReadUvarint(r)
	if err != nil {
		return header{}, headerErr(path, "index", err)
	}
	if index == 0 {
		return header{}, corrupt(path, "index 0")
	}
	configLen, err := binary.ReadUvarint(r)
	if err != nil {
		return header{}, headerErr(path, "config length", err)
	}
	// Bound the length by the file before allocating it.
	if rest := bodySize - int64(len(magic)) - r.n; configLen > uint64(rest) {
		return header{}, corrupt(path, "config length %d, %d bytes left", configLen, rest)
	}
	var config []byte
	if configLen > 0 {
		config = make([]byte, configLen)
		if _, err := io.ReadFull(r, config); err != nil {
			return header{}, headerErr(path, "config", err)
		}
	}
	dataOff := int64(len(magic)) + r.n
	return header{meta: Meta{Index: index, Config: config}, dataOff: dataOff, dataSize: bodySize - dataOff}, nil
}

// headerErr reports a failed header read: an I/O error as such, anything
// else (a short section, a varint overflow) as corruption.
func headerErr(path, field string, err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return fmt.Errorf("snapshot %s: %s: %w", path, field, err)
	}
	return corrupt(path, "%s: %v", field, err)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
