package timeline

import (
	"hash/fnv"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// TextWriter writes one line per event, for people:
//
//	2023-11-14T22:13:20.000001500Z hv1 app  span  GET / dur=1.5µs level=info
//
// time (TimeNs, TimeLayout), host, source, kind, name, then dur= for
// spans, gsn=, late=, issue= when set, and the attrs as key=value. Host
// and source are padded to the widest seen so far, up to 32 characters.
// The name prints as it is ("-" when empty) unless it holds control
// characters (C0, DEL, C1),
// other characters that do not print, or invalid UTF-8; a host, source,
// attr key or attr value with those, spaces, quotes or '=' (or empty) is
// quoted as a Go string. So nothing from the input reaches a terminal
// as an escape sequence, and every field reads back as one word.
//
// With colour, host and source are in the host's colour: one of twelve
// ANSI colours picked by a hash of the host name, so a host keeps its
// colour across runs; late= and issue= are bold.
type TextWriter struct {
	out           outBuf
	color         bool
	tf            timeFormatter
	hostW, srcW   int
	lastHost      string
	lastHostColor string
}

// NewTextWriter writes to w; color adds ANSI colours.
func NewTextWriter(w io.Writer, color bool) *TextWriter {
	return &TextWriter{out: newOutBuf(w), color: color}
}

// hostColors are the ANSI foreground colours hosts get: the normal and
// bright variants of red to cyan (white and black read badly on some
// backgrounds).
var hostColors = [...]string{
	"\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m",
	"\x1b[91m", "\x1b[92m", "\x1b[93m", "\x1b[94m", "\x1b[95m", "\x1b[96m",
}

const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
)

// HostColor is the ANSI colour sequence of host.
func HostColor(host string) string {
	h := fnv.New32a()
	h.Write([]byte(host))
	return hostColors[h.Sum32()%uint32(len(hostColors))]
}

func (t *TextWriter) Write(ev Event) error {
	if t.out.err != nil {
		return t.out.err
	}
	b := t.out.b
	b = t.tf.append(b, ev.TimeNs)
	b = append(b, ' ')
	if t.color {
		b = append(b, t.hostColor(ev.Host)...)
	}
	b = appendPadded(b, ev.Host, &t.hostW)
	b = append(b, ' ')
	b = appendPadded(b, ev.Source, &t.srcW)
	if t.color {
		b = append(b, ansiReset...)
	}
	b = append(b, ' ')
	kindW := len("flow-start")
	b = appendPadded(b, ev.Kind, &kindW)
	b = append(b, ' ')
	if ev.Name == "" {
		b = append(b, '-')
	} else {
		b = appendTextName(b, ev.Name)
	}
	b = t.appendFields(b, &ev)
	for _, a := range ev.Attrs {
		b = append(b, ' ')
		b = appendTextValue(b, a.Key)
		b = append(b, '=')
		b = appendTextValue(b, a.Value)
	}
	b = append(b, '\n')
	t.out.b = b
	return t.out.maybeFlush()
}

// appendFields appends dur=, gsn=, late= and issue=.
func (t *TextWriter) appendFields(b []byte, ev *Event) []byte {
	if ev.Kind == "span" {
		b = append(b, " dur="...)
		b = append(b, time.Duration(ev.DurNs).String()...)
	}
	if ev.GSN != 0 {
		b = append(b, " gsn="...)
		b = strconv.AppendUint(b, ev.GSN, 10)
	}
	if ev.LateNs != 0 {
		b = append(b, ' ')
		if t.color {
			b = append(b, ansiBold...)
		}
		b = append(b, "late="...)
		b = append(b, time.Duration(ev.LateNs).String()...)
		if t.color {
			b = append(b, ansiReset...)
		}
	}
	if ev.Issue != "" {
		b = append(b, ' ')
		if t.color {
			b = append(b, ansiBold...)
		}
		b = append(b, "issue="...)
		b = append(b, ev.Issue...)
		if t.color {
			b = append(b, ansiReset...)
		}
	}
	return b
}

func (t *TextWriter) hostColor(host string) string {
	if host != t.lastHost || t.lastHostColor == "" {
		t.lastHost, t.lastHostColor = host, HostColor(host)
	}
	return t.lastHostColor
}

// maxPadWidth bounds a padded column: a longer host or source is
// written whole but does not widen the column of every later line.
const maxPadWidth = 32

// appendPadded appends s as appendTextValue does and spaces up to
// *width runes, raising *width to its width first when it is wider (up
// to maxPadWidth).
func appendPadded(b []byte, s string, width *int) []byte {
	start := len(b)
	b = appendTextValue(b, s)
	n := utf8.RuneCount(b[start:])
	*width = max(*width, min(n, maxPadWidth))
	for ; n < *width; n++ {
		b = append(b, ' ')
	}
	return b
}

// appendTextName appends s as it is, unless it holds characters that do
// not print (a line break would split the event's line, an escape would
// reach the terminal) or invalid UTF-8: then quoted.
func appendTextName(b []byte, s string) []byte {
	if !printable(s, false) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// appendTextValue appends s, quoted when it would not read back as one
// word or holds what appendTextName quotes.
func appendTextValue(b []byte, s string) []byte {
	if s == "" {
		return append(b, `""`...)
	}
	if !printable(s, true) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// TextWord is s as the text output writes a host, source or key: as it
// is, or quoted (strconv.Quote) when it is empty or holds a space, '"',
// '=' or a character that does not print, so that it can neither hide nor
// pass for another. The summary and tracecat's messages use it too.
func TextWord(s string) string {
	if s != "" && printable(s, true) {
		return s
	}
	return string(appendTextValue(nil, s))
}

// printable tells whether s is valid UTF-8 of characters that print (as
// strconv.IsPrint: no control or format characters, ' ' the only space)
// and, when word, has no ' ', '"' or '='. ASCII, the usual case, is
// checked byte by byte.
func printable(s string, word bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return printableRunes(s[i:], word)
		case c < ' ' || c == 0x7f:
			return false
		case word && (c == ' ' || c == '"' || c == '='):
			return false
		}
	}
	return true
}

func printableRunes(s string, word bool) bool {
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 || !strconv.IsPrint(r) || word && (r == ' ' || r == '"' || r == '=') {
			return false
		}
		s = s[n:]
	}
	return true
}

// Flush writes out the buffer.
func (t *TextWriter) Flush() error { return t.out.flush() }

// Close flushes.
func (t *TextWriter) Close() error { return t.out.flush() }
