package timeline

import (
	"encoding/binary"
	"io"
	"math/bits"
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

// timeFormatter appends times in TimeLayout, each after lead (fixed for
// the formatter). It keeps the text of lead and the last second it
// formatted, so that times of one second cost a division, one copy and
// nine digits.
type timeFormatter struct {
	lead   string
	sec    int64 // seconds since the epoch of prefix
	prefix text  // lead + "2006-01-02T15:04:05." of sec; empty before the first call
}

// append appends lead and ns (since the epoch, UTC) to b.
func (t *timeFormatter) append(b []byte, ns int64) []byte {
	secs := floorDiv(ns, 1e9)
	if t.prefix.n == 0 || secs != t.sec {
		t.setSec(secs)
	}
	return appendFrac9Z(t.prefix.appendTo(b), ns-secs*1e9)
}

// setSec makes prefix that of secs. It is apart from append, which runs
// for every time, so that append's frame stays small.
//
//go:noinline
func (t *timeFormatter) setSec(secs int64) {
	t.sec = secs
	var buf [64]byte
	t.prefix.set(time.Unix(secs, 0).UTC().AppendFormat(append(buf[:0], t.lead...), "2006-01-02T15:04:05."))
}

// text is output text kept for reuse. Up to textBytes of it copy as one
// fixed-size block, without a call.
type text struct {
	n     int
	short [textBytes]byte // the text when n <= textBytes
	long  []byte          // the text when longer
}

const textBytes = 64

func (t *text) set(b []byte) {
	t.n = len(b)
	if copy(t.short[:], b) < len(b) {
		t.long = append(t.long[:0], b...)
	}
}

func (t *text) appendTo(b []byte) []byte {
	m := len(b)
	if t.n > textBytes || cap(b)-m < textBytes {
		return t.appendSlow(b)
	}
	*(*[textBytes]byte)(b[m : m+textBytes]) = t.short
	return b[:m+t.n]
}

// appendSlow is appendTo for a long text or a full b.
func (t *text) appendSlow(b []byte) []byte {
	if t.n > textBytes {
		return append(b, t.long...)
	}
	return append(b, t.short[:t.n]...)
}

// appendBytes appends v to b; v must not lie in b's room past its
// length. When v is up to 32 bytes long and both v's and b's capacities reach 32
// bytes, it copies 32 bytes as two 16-byte blocks, without a call: the
// bytes of v's capacity past its end are read, and left beyond b's new
// length.
func appendBytes(b, v []byte) []byte {
	m := len(b)
	if len(v) <= 32 && cap(v) >= 32 && cap(b)-m >= 32 {
		*(*[16]byte)(b[m : m+16]) = *(*[16]byte)(v[:16])
		*(*[16]byte)(b[m+16 : m+32]) = *(*[16]byte)(v[16:32])
		return b[:m+len(v)]
	}
	return append(b, v...)
}

// appendUint appends v in decimal. Below 10^8 it takes digits8's word
// and drops its leading zeros, without a loop or a copy.
func appendUint(b []byte, v uint64) []byte {
	if v >= 1e8 {
		return strconv.AppendUint(b, v, 10)
	}
	d := digits8(uint32(v))
	// The leading zeros are the low bytes of d that hold '0'; v = 0
	// keeps one.
	n := max(8-bits.TrailingZeros64(d-0x3030303030303030)/8, 1)
	m := len(b)
	if cap(b)-m < 8 {
		b = slices.Grow(b, 8)
	}
	b = b[:m+8]
	binary.LittleEndian.PutUint64(b[m:], d>>(8*(8-n)))
	return b[:m+n]
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

// appendFrac9Z appends 0 <= v < 1e9 as nine digits, then 'Z'.
func appendFrac9Z(b []byte, v int64) []byte {
	m := len(b)
	if cap(b)-m < 10 {
		b = slices.Grow(b, 10)
	}
	b = b[:m+10]
	d := (*[10]byte)(b[m:])
	first := uint32(v) / 1e8
	d[0] = byte('0' + first)
	binary.LittleEndian.PutUint64(d[1:9], digits8(uint32(v)-first*1e8))
	d[9] = 'Z'
	return b
}

// digits8 is n < 10^8 as eight ASCII digits in a little-endian word,
// the first digit in the lowest byte. It divides all lanes at once: the
// word holds two numbers < 10^4 in 32-bit lanes, then four < 100 in
// 16-bit lanes, then eight digits in bytes. (v*5243)>>19 is v/100 for
// v < 10^4, and (v*103)>>10 is v/10 for v < 100.
func digits8(n uint32) uint64 {
	x := uint64(n/10000) | uint64(n%10000)<<32
	y := x * 5243 >> 19 & 0x0000007f0000007f
	x = y | (x-y*100)<<16
	y = x * 103 >> 10 & 0x000f000f000f000f
	x = y | (x-y*10)<<8
	return x + 0x3030303030303030
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
	b = append(b, '"')
	b = appendJSONContent(b, s)
	return append(b, '"')
}

// appendJSONMember appends ,"key":"value" (without the comma when
// first), both strings escaped as appendJSONString does.
func appendJSONMember(b []byte, key, value string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = appendJSONString(b, key)
	b = append(b, ':')
	return appendJSONString(b, value)
}

// appendJSONContent appends s escaped as between a JSON string's quotes.
func appendJSONContent(b []byte, s string) []byte {
	if out, ok := appendPlain(b, s); ok {
		return out
	}
	start := 0
	for i := 0; i < len(s); {
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
	return append(b, s[start:]...)
}

// appendPlain appends s if every byte of it is plain (jsonPlain); ok is
// false, and b as it was, if not. Strings of 4 to 16 bytes are checked
// and copied as two overlapping words, without a call.
func appendPlain(b []byte, s string) (_ []byte, ok bool) {
	n, m := len(s), len(b)
	if cap(b)-m < n {
		b = slices.Grow(b, n)
	}
	switch {
	case n > 16:
		if !plainJSON(s) {
			return b, false
		}
		return append(b, s...), true
	case n >= 8:
		w0, w1 := load64(s, 0), load64(s, n-8)
		if specialMask(w0)|specialMask(w1) != 0 {
			return b, false
		}
		b = b[:m+n]
		binary.LittleEndian.PutUint64(b[m:], w0)
		binary.LittleEndian.PutUint64(b[m+n-8:], w1)
		return b, true
	case n >= 4:
		w0, w1 := load32(s, 0), load32(s, n-4)
		if specialMask(uint64(w0)|uint64(w1)<<32) != 0 {
			return b, false
		}
		b = b[:m+n]
		binary.LittleEndian.PutUint32(b[m:], w0)
		binary.LittleEndian.PutUint32(b[m+n-4:], w1)
		return b, true
	}
	for i := 0; i < n; i++ {
		if !jsonPlain[s[i]] {
			return b, false
		}
	}
	return append(b, s...), true
}

// plainJSON tells whether every byte of s is plain (jsonPlain): short
// strings byte by byte, longer ones 8 bytes at a time, the last 8
// overlapping.
func plainJSON(s string) bool {
	if len(s) < 8 {
		special := byte(0)
		for i := 0; i < len(s); i++ {
			special |= jsonSpecialByte[s[i]]
		}
		return special == 0
	}
	for i := 0; i+8 < len(s); i += 8 {
		if specialMask(load64(s, i)) != 0 {
			return false
		}
	}
	return specialMask(load64(s, len(s)-8)) == 0
}

// jsonSpecialByte is 1 for the bytes that are not jsonPlain.
var jsonSpecialByte = func() (t [256]byte) {
	for c := range t {
		if !jsonPlain[c] {
			t[c] = 1
		}
	}
	return t
}()

// load32 is the 4 bytes of s at i as a little-endian word.
func load32(s string, i int) uint32 {
	s = s[i : i+4]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// load64 is the 8 bytes of s at i as a little-endian word; the byte-wise
// loads combine into one.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
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

// specialMask has the high bit set of each byte of the little-endian
// word x that needs a look: a control byte, '"', '\\' or a byte of a multi-byte
// UTF-8 sequence. It is exact up to the lowest such
// byte: a borrow of the subtractions runs only upwards, so bytes above it
// may be flagged without reason; below it, a difference has its high bit
// set only where x has it, which x flags anyway.
func specialMask(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, bs := x^('"'*ones), x^('\\'*ones) // zero bytes where x has '"' or '\\'
	return ((x - 0x20*ones) | (q - ones) | (bs - ones) | x) & highs
}
