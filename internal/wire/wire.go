// Package wire holds the primitives of clockd's hand-written binary
// encodings (consensus messages and entries, Join requests): a version
// byte, unsigned varints, one-byte booleans and length-prefixed strings.
//
// A Decoder checks every count and length against the bytes that remain
// before it allocates anything, so hostile input cannot make it allocate
// much more than the input's size. After the first failure it keeps the
// error, empties its input and returns zero values, so callers decode a
// whole structure and check Err once.
package wire

import (
	"encoding/binary"
	"fmt"
)

// AppendBool appends v as one byte, 0 or 1.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendBytes appends b with a uvarint length prefix.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendString appends s with a uvarint length prefix.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Decoder reads from an input buffer. The zero value decodes nothing; use
// NewDecoder.
type Decoder struct {
	buf []byte
	// Err is the first failure, wrapping the sentinel given to NewDecoder.
	Err      error
	sentinel error
}

// NewDecoder decodes buf; every failure wraps sentinel.
func NewDecoder(buf []byte, sentinel error) Decoder {
	return Decoder{buf: buf, sentinel: sentinel}
}

// Fail records a failure, unless one is recorded already.
func (d *Decoder) Fail(format string, args ...any) {
	if d.Err == nil {
		d.Err = fmt.Errorf("%w: "+format, append([]any{d.sentinel}, args...)...)
	}
	d.buf = nil
}

// Version reads the leading version byte and fails unless it is want.
func (d *Decoder) Version(want byte) {
	if len(d.buf) == 0 {
		d.Fail("empty")
		return
	}
	if v := d.buf[0]; v != want {
		d.Fail("codec version %d", v)
		return
	}
	d.buf = d.buf[1:]
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if len(d.buf) == 0 {
		d.Fail("byte past the end")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// Bool reads one byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	if len(d.buf) == 0 {
		d.Fail("bool past the end")
		return false
	}
	b := d.buf[0]
	if b > 1 {
		d.Fail("bool %d", b)
		return false
	}
	d.buf = d.buf[1:]
	return b == 1
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	v, k := binary.Uvarint(d.buf)
	if k <= 0 {
		d.Fail("bad uvarint")
		return 0
	}
	d.buf = d.buf[k:]
	return v
}

// Varint reads a signed (zig-zag) varint, as binary.AppendVarint writes.
func (d *Decoder) Varint() int64 {
	v, k := binary.Varint(d.buf)
	if k <= 0 {
		d.Fail("bad varint")
		return 0
	}
	d.buf = d.buf[k:]
	return v
}

// Count reads a count of items that take at least minBytes each, and
// fails if the remaining input cannot hold that many.
func (d *Decoder) Count(minBytes int) int {
	n := d.Uvarint()
	if n > uint64(len(d.buf)/minBytes) {
		d.Fail("count %d with %d bytes left", n, len(d.buf))
		return 0
	}
	return int(n)
}

// Bytes reads a length-prefixed byte string into a new slice, nil when
// empty. The result does not alias the input.
func (d *Decoder) Bytes() []byte {
	b := d.take()
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// Shared reads a length-prefixed byte string, like Bytes, without copying
// it: the result aliases the decoder's buffer, which the caller must then
// leave unchanged for as long as the result is used.
func (d *Decoder) Shared() []byte {
	if b := d.take(); len(b) > 0 {
		return b[:len(b):len(b)] // appending to it never writes into the buffer
	}
	return nil
}

// String reads a length-prefixed string.
func (d *Decoder) String() string { return string(d.take()) }

func (d *Decoder) take() []byte {
	n := d.Uvarint()
	if n > uint64(len(d.buf)) {
		d.Fail("string of %d bytes with %d left", n, len(d.buf))
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

// Finish fails if input is left over, and returns the first failure.
func (d *Decoder) Finish() error {
	if d.Err == nil && len(d.buf) != 0 {
		d.Fail("%d trailing bytes", len(d.buf))
	}
	return d.Err
}
