package timeline

import (
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Writer renders events. Close flushes and finishes the output (for
// Chrome JSON, closes it); it does not close the underlying io.Writer.
// Writers are not safe for concurrent use.
type Writer interface {
	Write(Event) error
	// Flush writes out what is buffered, as a live tail does when its
	// source is idle.
	Flush() error
	Close() error
}

// TimeLayout is how events' times print: RFC 3339 in UTC with all nine
// fractional digits, so that times line up and sort as strings.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime formats ns since the epoch with TimeLayout.
func FormatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(TimeLayout)
}

// flushBytes is the size at which the writers pass their buffer on: big
// writes, few system calls.
const flushBytes = 1 << 20

// outBuf is the byte buffer shared by the writers. Its error is sticky.
type outBuf struct {
	w   io.Writer
	b   []byte
	err error
}

func newOutBuf(w io.Writer) outBuf {
	return outBuf{w: w, b: make([]byte, 0, flushBytes+64<<10)}
}

// maybeFlush flushes once the buffer is full enough.
func (o *outBuf) maybeFlush() error {
	if len(o.b) >= flushBytes {
		return o.flush()
	}
	return o.err
}

func (o *outBuf) flush() error {
	if o.err != nil {
		return o.err
	}
	if len(o.b) > 0 {
		_, o.err = o.w.Write(o.b)
		o.b = o.b[:0]
	}
	return o.err
}

// timeFormatter appends times in TimeLayout. It keeps the text of the
// last second it formatted, so that times of one second cost a division
// and nine digits.
type timeFormatter struct {
	sec    int64  // seconds since the epoch of prefix
	prefix []byte // "2006-01-02T15:04:05." of sec; nil before the first call
}

// append appends ns (since the epoch, UTC) to b.
func (t *timeFormatter) append(b []byte, ns int64) []byte {
	secs := floorDiv(ns, 1e9)
	if t.prefix == nil || secs != t.sec {
		t.sec = secs
		t.prefix = time.Unix(secs, 0).UTC().AppendFormat(t.prefix[:0], "2006-01-02T15:04:05.")
	}
	b = append(b, t.prefix...)
	b = appendFrac9(b, ns-secs*1e9)
	return append(b, 'Z')
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendFrac9 appends 0 <= v < 1e9 as nine digits.
func appendFrac9(b []byte, v int64) []byte {
	var d [9]byte
	u := uint32(v)
	for i := 7; i > 0; i -= 2 {
		p := u % 100 * 2
		u /= 100
		d[i], d[i+1] = digitPairs[p], digitPairs[p+1]
	}
	d[0] = byte('0' + u)
	return append(b, d[:]...)
}

// appendMicros appends ns as microseconds with three decimals, exact.
func appendMicros(b []byte, ns int64) []byte {
	if ns < 0 {
		b = append(b, '-')
		if ns == -ns { // math.MinInt64
			return append(b, "9223372036854775.808"...)
		}
		ns = -ns
	}
	b = strconv.AppendInt(b, ns/1000, 10)
	r := ns % 1000
	return append(b, '.', byte('0'+r/100), byte('0'+r/10%10), byte('0'+r%10))
}

// jsonPlain marks the bytes a JSON string holds as they are and that
// need no look: printable ASCII but '"' and '\\'.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does, and U+2028 and U+2029 are escaped.
func appendJSONString(b []byte, s string) []byte {
	if !plainJSON(s) {
		return appendJSONStringSlow(b, s, 0)
	}
	b = slices.Grow(b, len(s)+2)
	m := len(b)
	b = b[:m+len(s)+2]
	b[m] = '"'
	copy(b[m+1:], s)
	b[m+1+len(s)] = '"'
	return b
}

// appendJSONMember appends ,"key":"value" (without the comma when
// first), both strings escaped as appendJSONString does.
func appendJSONMember(b []byte, key, value string, first bool) []byte {
	if !plainJSON(key) || !plainJSON(value) {
		if !first {
			b = append(b, ',')
		}
		b = appendJSONStringSlow(b, key, 0)
		b = append(b, ':')
		return appendJSONStringSlow(b, value, 0)
	}
	comma := 1
	if first {
		comma = 0
	}
	n := comma + len(key) + len(value) + 5
	b = slices.Grow(b, n)
	m := len(b)
	b = b[:m+n]
	if !first {
		b[m] = ','
	}
	m += comma
	b[m] = '"'
	m += 1 + copy(b[m+1:], key)
	b[m], b[m+1], b[m+2] = '"', ':', '"'
	m += 3 + copy(b[m+3:], value)
	b[m] = '"'
	return b
}

// plainJSON tells whether every byte of s is plain (jsonPlain). Strings
// of 8 bytes or more go 8 bytes at a time, the last 8 overlapping.
func plainJSON(s string) bool {
	if len(s) < 8 {
		for i := 0; i < len(s); i++ {
			if !jsonPlain[s[i]] {
				return false
			}
		}
		return true
	}
	for i := 0; i+8 < len(s); i += 8 {
		if special8(s, i) {
			return false
		}
	}
	return !special8(s, len(s)-8)
}

// appendJSONStringSlow is appendJSONString for a string whose bytes
// before from are plain.
func appendJSONStringSlow(b []byte, s string, from int) []byte {
	b = append(b, '"')
	start := 0
	for i := from; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = appendEscape(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEscape appends the escape of the ASCII byte c.
func appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// special8 tells whether any of the 8 bytes of s at i needs a look: a
// control byte, '"', '\\' or a byte of a multi-byte UTF-8 sequence. The
// byte-wise loads combine into one 64-bit load.
func special8(s string, i int) bool {
	x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, bs := x^('"'*ones), x^('\\'*ones) // zero bytes where x has '"' or '\\'
	return ((x-0x20*ones)&^x|(q-ones)&^q|(bs-ones)&^bs|x)&highs != 0
}
