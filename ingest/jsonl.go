package ingest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// JSONMapping says which fields of a JSON lines object fill which Event
// fields. Each of Time, Host, Message, Source and Kind is a dotted path into
// the object ("ts", "fields.host"), or several separated by '|' and tried
// in order ("ts|time"); the first path present with a non-null value wins
// and is consumed. An empty path maps nothing: the Event field takes its
// default (Host: Options.Host, Source: Options.File, Kind: KindLog, Name:
// "", and for Time none: Untimed). A mapped value of any JSON type is
// taken as text; a non-empty Kind is used verbatim.
//
// Every other field becomes an Attr, in input order, including the
// alternatives not chosen and null values of mapped paths.
// Nested objects are flattened with dots ({"a":{"b":1}} → "a.b"="1"), so a
// path names a leaf whether the input nests it or spells the dotted key
// out. Values are rendered as text: strings decoded, numbers as written,
// true/false/null as such, arrays and empty objects as compact JSON.
type JSONMapping struct {
	Time, Host, Message, Source, Kind string
	// TimeFormat is how the Time field is read: one of the JSONTime*
	// constants.
	TimeFormat string
}

// The JSONMapping.TimeFormat values.
const (
	// JSONTimeAuto reads an RFC 3339 string, or a number (or a string
	// holding one) of Unix time in a unit guessed from its magnitude:
	// |v| < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else
	// nanoseconds. The guess is right for every time from 1973-03 on (ns
	// since the epoch end in 2262); earlier times in ms, µs or ns are
	// misread as a coarser unit.
	JSONTimeAuto    = ""
	JSONTimeRFC3339 = "rfc3339" // an RFC 3339 string only
	JSONTimeUnix    = "unix"    // seconds since the epoch, fractions allowed
	JSONTimeUnixMs  = "unix_ms"
	JSONTimeUnixUs  = "unix_us"
	JSONTimeUnixNs  = "unix_ns"
)

// DefaultJSONMapping reads the field names common to Go's slog and zap,
// logrus, bunyan, pino and Logstash: time from "ts", "time", "timestamp"
// or "@timestamp"; host from "host" or "hostname"; the message from "msg"
// or "message". Source and Kind are not mapped.
func DefaultJSONMapping() JSONMapping {
	return JSONMapping{
		Time:    "ts|time|timestamp|@timestamp",
		Host:    "host|hostname",
		Message: "msg|message",
	}
}

// NewJSONLines reads one JSON object per line. Blank lines are skipped.
// A line that is not a JSON object, or whose mapped time is missing or
// unreadable, is malformed; so is a line longer than Options.MaxLineBytes.
// With m.Time == "" no time is read: every event is Untimed. An unknown
// m.TimeFormat makes Next fail at once.
//
// The scanner decodes strings as encoding/json does (invalid UTF-8 and
// lone surrogates become U+FFFD) and allows nesting up to 10000 levels.
func NewJSONLines(r io.Reader, opts Options, m JSONMapping) Parser {
	p := &jsonLines{opts: opts, lr: newLineReader(r, opts.MaxLineBytes)}
	p.roles = [jsonNumRoles][]string{
		jsonSplitPaths(m.Time), jsonSplitPaths(m.Host), jsonSplitPaths(m.Message),
		jsonSplitPaths(m.Source), jsonSplitPaths(m.Kind),
	}
	switch m.TimeFormat {
	case JSONTimeAuto:
		p.timeExp = -1
	case JSONTimeRFC3339:
		p.timeExp = -2
	case JSONTimeUnix:
		p.timeExp = 9
	case JSONTimeUnixMs:
		p.timeExp = 6
	case JSONTimeUnixUs:
		p.timeExp = 3
	case JSONTimeUnixNs:
		p.timeExp = 0
	default:
		p.err = fmt.Errorf("ingest: unknown JSON time format %q", m.TimeFormat)
	}
	return p
}

func jsonSplitPaths(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "|")
}

// The roles a JSONMapping assigns, in the order of jsonLines.roles.
const (
	jsonRoleTime = iota
	jsonRoleHost
	jsonRoleMessage
	jsonRoleSource
	jsonRoleKind
	jsonNumRoles
)

type jsonLines struct {
	Counter
	opts  Options
	lr    *lineReader
	roles [jsonNumRoles][]string
	// timeExp is the power of ten that turns the time field's number into
	// ns (9 for seconds); -1 guesses it, -2 accepts RFC 3339 only.
	timeExp int
	sc      jsonScanner
	fs      jsonFast
	// scannerOnly turns the fast path off (tests compare the two).
	scannerOnly bool
	seqs        sourceSeqs
	err         error // sticky: I/O failure, strict-mode LineError, or io.EOF
}

func (p *jsonLines) Next() (e Event, err error) {
	for p.err == nil {
		line, no, ok := p.line()
		if !ok {
			continue
		}
		if !p.scannerOnly && p.fast(line, &e) {
			return e, nil
		}
		if e, ok = p.parseOrSkip(line, no); ok {
			return e, nil
		}
	}
	return Event{}, p.err
}

// line reads the next line. ok is false when there is none to parse: a
// line too long was reported and skipped, or reading failed, which sets
// p.err.
func (p *jsonLines) line() (line []byte, no int, ok bool) {
	line, no, _, err := p.lr.next()
	if err == errLineTooLong {
		p.skip(no, fmt.Errorf("line longer than %d bytes", p.lr.max))
		return nil, no, false
	}
	if err != nil {
		p.err = readErr(&p.opts, err)
		return nil, no, false
	}
	return line, no, true
}

// parseOrSkip parses line no with the full parser; ok is false for a
// blank line and for a bad one, which is reported.
func (p *jsonLines) parseOrSkip(line []byte, no int) (Event, bool) {
	e, ok, err := p.parse(line)
	if err != nil {
		p.skip(no, err)
		return Event{}, false
	}
	return e, ok
}

func (p *jsonLines) skip(line int, err error) {
	if rerr := p.Report(&p.opts, line, err); rerr != nil {
		p.err = rerr
	}
}

// parse turns one line into an Event; ok is false for a blank line.
func (p *jsonLines) parse(line []byte) (e Event, ok bool, err error) {
	sc := &p.sc
	if blank, err := sc.scanObject(line); blank || err != nil {
		return Event{}, false, err
	}
	var picked [jsonNumRoles]int
	for r := range picked {
		picked[r] = sc.find(p.roles[r])
	}
	if p.roles[jsonRoleTime] == nil {
		e.Untimed = true
	} else {
		if picked[jsonRoleTime] < 0 {
			return Event{}, false, fmt.Errorf("no time field %s", jsonQuotePaths(p.roles[jsonRoleTime]))
		}
		lf := &sc.leaves[picked[jsonRoleTime]]
		if e.LocalNs, err = p.readTime(lf.val.in(sc.arena), lf.kind); err != nil {
			return Event{}, false, fmt.Errorf("time field %q: %w", lf.key.in(sc.arena), err)
		}
	}
	all := string(sc.arena)
	text := func(r int, def string) string {
		if i := picked[r]; i >= 0 {
			return sc.leaves[i].val.of(all)
		}
		return def
	}
	e.Host = text(jsonRoleHost, p.opts.Host)
	e.Name = text(jsonRoleMessage, "")
	e.Source = text(jsonRoleSource, p.opts.File)
	if e.Kind = text(jsonRoleKind, KindLog); e.Kind == "" {
		e.Kind = KindLog
	}
	e.SourceSeq = p.seqs.next(e.Source)
	e.Attrs = make([]Attr, 0, len(sc.leaves))
	for i := range sc.leaves {
		if jsonPicked(picked, i) {
			continue
		}
		lf := &sc.leaves[i]
		e.Attrs = append(e.Attrs, Attr{Key: lf.key.of(all), Value: lf.val.of(all)})
	}
	return e, true, nil
}

func jsonPicked(picked [jsonNumRoles]int, i int) bool {
	for _, j := range picked {
		if i == j {
			return true
		}
	}
	return false
}

func jsonQuotePaths(paths []string) string {
	q := make([]string, len(paths))
	for i, s := range paths {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, " or ")
}

// readTime reads the time field's value val, of kind as jsonLeaf's.
func (p *jsonLines) readTime(val []byte, kind byte) (int64, error) {
	numeric := kind == 'n' || (kind == 's' && jsonLooksNumeric(val))
	switch {
	case kind != 'n' && kind != 's':
		return 0, fmt.Errorf("want a string or a number, got %s", clip(val))
	case p.timeExp == -2 && kind == 'n':
		return 0, fmt.Errorf("%s is not an RFC 3339 string", clip(val))
	case p.timeExp >= 0 && !numeric:
		return 0, fmt.Errorf("%q is not a number", clip(val))
	case numeric && p.timeExp != -2:
		if ns, ok := unixIntToNs(val, p.timeExp); ok {
			return ns, nil
		}
		return decimalToNs(val, p.timeExp)
	}
	return parseRFC3339(val, false)
}

// jsonLooksNumeric reports whether a string value spells a decimal number:
// -?(d+.?d*|.d+)([eE][+-]?d+)?
func jsonLooksNumeric(b []byte) bool {
	i, n := 0, len(b)
	if i < n && b[i] == '-' {
		i++
	}
	digits := 0
	for ; i < n && isDigit(b[i]); i++ {
		digits++
	}
	if i < n && b[i] == '.' {
		for i++; i < n && isDigit(b[i]); i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == n || !isDigit(b[i]) {
			return false
		}
		for i < n && isDigit(b[i]) {
			i++
		}
	}
	return i == n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// clip shortens b for an error message.
func clip(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// arenaSpan is a half-open byte range of an arena.
type arenaSpan struct{ lo, hi int }

func (s arenaSpan) of(all string) string { return all[s.lo:s.hi] }
func (s arenaSpan) in(b []byte) []byte   { return b[s.lo:s.hi] }

// jsonLeaf is one flattened field: its dotted key and its value as text.
type jsonLeaf struct {
	key, val arenaSpan
	// kind: 's' string, 'n' number, 'b' true/false, 'z' null, 'r' an
	// array or empty object as compact JSON.
	kind byte
}

// jsonScanner validates one JSON object and flattens it into leaves whose
// keys and values are decoded into arena. Both are reused line to line.
type jsonScanner struct {
	in     []byte
	pos    int
	arena  []byte
	leaves []jsonLeaf
	// keyLimit bounds arena while it copies key prefixes, whose total
	// grows with the square of the nesting depth.
	keyLimit int
}

const maxJSONDepth = 10000

var errJSONDepth = fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)

// scanObject reads line; blank reports a line of only JSON whitespace.
func (sc *jsonScanner) scanObject(line []byte) (blank bool, err error) {
	sc.in, sc.pos = line, 0
	sc.arena, sc.leaves = sc.arena[:0], sc.leaves[:0]
	sc.keyLimit = 16*len(line) + 4096
	sc.ws()
	if sc.pos == len(line) {
		return true, nil
	}
	if start := sc.pos; line[start] != '{' {
		if err := sc.compact(1); err != nil {
			return false, err
		}
		sc.ws()
		if sc.pos < len(line) {
			return false, sc.syntax("after top-level value")
		}
		return false, fmt.Errorf("not a JSON object but %s", jsonKindName(line[start]))
	}
	if err := sc.object(arenaSpan{}, false, 1); err != nil {
		return false, err
	}
	sc.ws()
	if sc.pos < len(line) {
		return false, sc.syntax("after top-level value")
	}
	return false, nil
}

func jsonKindName(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// find returns the index of the first non-null leaf named by paths, or -1.
func (sc *jsonScanner) find(paths []string) int {
	for _, path := range paths {
		for i := range sc.leaves {
			lf := &sc.leaves[i]
			if lf.kind != 'z' && string(lf.key.in(sc.arena)) == path {
				return i
			}
		}
	}
	return -1
}

func (sc *jsonScanner) syntax(where string) error {
	if sc.pos >= len(sc.in) {
		return fmt.Errorf("invalid JSON: unexpected end of line %s", where)
	}
	return fmt.Errorf("invalid JSON: unexpected %q at byte %d %s", sc.in[sc.pos], sc.pos+1, where)
}

func (sc *jsonScanner) ws() {
	for sc.pos < len(sc.in) {
		switch sc.in[sc.pos] {
		case ' ', '\t', '\r', '\n':
			sc.pos++
		default:
			return
		}
	}
}

func (sc *jsonScanner) peek() byte {
	if sc.pos < len(sc.in) {
		return sc.in[sc.pos]
	}
	return 0
}

// object flattens the object at pos; prefix is its key when nested.
func (sc *jsonScanner) object(prefix arenaSpan, nested bool, depth int) error {
	if depth > maxJSONDepth {
		return errJSONDepth
	}
	sc.pos++ // '{'
	sc.ws()
	if sc.peek() == '}' {
		sc.pos++
		if nested {
			lo := len(sc.arena)
			sc.arena = append(sc.arena, "{}"...)
			sc.leaves = append(sc.leaves, jsonLeaf{prefix, arenaSpan{lo, lo + 2}, 'r'})
		}
		return nil
	}
	for {
		sc.ws()
		if sc.peek() != '"' {
			return sc.syntax("where an object key belongs")
		}
		key := arenaSpan{lo: len(sc.arena)}
		if nested {
			if len(sc.arena)+prefix.hi-prefix.lo > sc.keyLimit {
				return fmt.Errorf("flattened keys exceed %d bytes: nesting too deep", sc.keyLimit)
			}
			sc.arena = append(sc.arena, sc.arena[prefix.lo:prefix.hi]...)
			sc.arena = append(sc.arena, '.')
		}
		if err := sc.str(true); err != nil {
			return err
		}
		key.hi = len(sc.arena)
		sc.ws()
		if sc.peek() != ':' {
			return sc.syntax("after an object key")
		}
		sc.pos++
		sc.ws()
		if err := sc.member(key, depth); err != nil {
			return err
		}
		sc.ws()
		switch sc.peek() {
		case ',':
			sc.pos++
		case '}':
			sc.pos++
			return nil
		default:
			return sc.syntax("after an object value")
		}
	}
}

// member reads the value of key at pos into leaves.
func (sc *jsonScanner) member(key arenaSpan, depth int) error {
	c := sc.peek()
	if c == '{' {
		return sc.object(key, true, depth+1)
	}
	val := arenaSpan{lo: len(sc.arena)}
	var kind byte
	var err error
	switch {
	case c == '"':
		kind, err = 's', sc.str(true)
	case c == '[':
		kind, err = 'r', sc.compact(depth+1)
	case c == 't' || c == 'f':
		kind, err = 'b', sc.literal()
	case c == 'n':
		kind, err = 'z', sc.literal()
	default:
		kind, err = 'n', sc.number()
	}
	if err != nil {
		return err
	}
	val.hi = len(sc.arena)
	sc.leaves = append(sc.leaves, jsonLeaf{key, val, kind})
	return nil
}

// compact validates the value at pos and appends it to arena without
// insignificant whitespace; strings keep their escapes.
func (sc *jsonScanner) compact(depth int) error {
	switch c := sc.peek(); {
	case c == '"':
		return sc.str(false)
	case c == 't' || c == 'f' || c == 'n':
		return sc.literal()
	case c != '[' && c != '{':
		return sc.number()
	case depth > maxJSONDepth:
		return errJSONDepth
	}
	open := sc.in[sc.pos]
	close := open + 2 // ']' or '}'
	sc.arena = append(sc.arena, open)
	sc.pos++
	sc.ws()
	if sc.peek() == close {
		sc.arena = append(sc.arena, close)
		sc.pos++
		return nil
	}
	for {
		sc.ws()
		if open == '{' {
			if sc.peek() != '"' {
				return sc.syntax("where an object key belongs")
			}
			if err := sc.str(false); err != nil {
				return err
			}
			sc.ws()
			if sc.peek() != ':' {
				return sc.syntax("after an object key")
			}
			sc.arena = append(sc.arena, ':')
			sc.pos++
			sc.ws()
		}
		if err := sc.compact(depth + 1); err != nil {
			return err
		}
		sc.ws()
		switch sc.peek() {
		case ',':
			sc.arena = append(sc.arena, ',')
			sc.pos++
		case close:
			sc.arena = append(sc.arena, close)
			sc.pos++
			return nil
		default:
			return sc.syntax("after a value")
		}
	}
}

func (sc *jsonScanner) literal() error {
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(sc.in[sc.pos:], []byte(lit)) {
			sc.arena = append(sc.arena, lit...)
			sc.pos += len(lit)
			return nil
		}
	}
	return sc.syntax("where a value belongs")
}

// number validates the number at pos (jsonNumberEnd) and copies it.
func (sc *jsonScanner) number() error {
	end, bad := jsonNumberEnd(sc.in, sc.pos)
	if bad != "" {
		sc.pos = end
		return sc.syntax(bad)
	}
	sc.arena = append(sc.arena, sc.in[sc.pos:end]...)
	sc.pos = end
	return nil
}

// str reads the string at pos. decode appends its value; otherwise it
// appends the string as written, quotes and escapes included. Either way
// each byte of invalid UTF-8 becomes U+FFFD, as encoding/json does.
func (sc *jsonScanner) str(decode bool) error {
	in := sc.in
	i := sc.pos + 1
	if !decode {
		sc.arena = append(sc.arena, '"')
	}
	run := i // start of bytes not yet copied
	for i < len(in) {
		if jsonPlain[in[i]] {
			i++
			continue
		}
		c := in[i]
		switch {
		case c == '"':
			sc.arena = append(sc.arena, in[run:i]...)
			if !decode {
				sc.arena = append(sc.arena, '"')
			}
			sc.pos = i + 1
			return nil
		case c < 0x20:
			sc.pos = i
			return sc.syntax("in a string")
		case c == '\\':
			sc.arena = append(sc.arena, in[run:i]...)
			n, err := sc.escape(i, decode)
			if err != nil {
				return err
			}
			i += n
			run = i
		default:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				sc.arena = append(sc.arena, in[run:i]...)
				sc.arena = append(sc.arena, "\uFFFD"...)
				run = i + 1
			}
			i += size
		}
	}
	sc.pos = i
	return sc.syntax("in a string")
}

// jsonPlain marks the bytes a string copies as they are: ASCII other than
// control characters, '"' and '\\'.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escape handles the escape at in[i] == '\\' and returns its length.
func (sc *jsonScanner) escape(i int, decode bool) (int, error) {
	in := sc.in
	if i+1 >= len(in) {
		sc.pos = i + 1
		return 0, sc.syntax("in a string escape")
	}
	var b byte
	switch in[i+1] {
	case '"', '\\', '/':
		b = in[i+1]
	case 'b':
		b = '\b'
	case 'f':
		b = '\f'
	case 'n':
		b = '\n'
	case 'r':
		b = '\r'
	case 't':
		b = '\t'
	case 'u':
		r1, ok := jsonHex4(in[i+2:])
		if !ok {
			sc.pos = i + 2
			return 0, sc.syntax("in a \\u escape")
		}
		r, n := r1, 6
		if utf16.IsSurrogate(r1) {
			r = utf8.RuneError
			if i+12 <= len(in) && in[i+6] == '\\' && in[i+7] == 'u' {
				if r2, ok := jsonHex4(in[i+8:]); ok {
					if dec := utf16.DecodeRune(r1, r2); dec != utf8.RuneError {
						r, n = dec, 12
					}
				}
			}
		}
		if decode {
			sc.arena = utf8.AppendRune(sc.arena, r)
		} else {
			sc.arena = append(sc.arena, in[i:i+n]...)
		}
		return n, nil
	default:
		sc.pos = i + 1
		return 0, sc.syntax("in a string escape")
	}
	if decode {
		sc.arena = append(sc.arena, b)
	} else {
		sc.arena = append(sc.arena, in[i:i+2]...)
	}
	return 2, nil
}

// jsonHex4 reads four hex digits; its second result is false if b lacks them.
func jsonHex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
