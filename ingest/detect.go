package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format names an input format; the values are what ParseFormat reads.
type Format string

// The formats Open reads. FormatAuto asks Open to Detect the format.
const (
	FormatAuto      Format = "auto"
	FormatJSONLines Format = "jsonl"
	FormatJournal   Format = "journal" // journalctl -o export
	FormatSyslog    Format = "syslog"  // RFC 5424
	FormatFtrace    Format = "ftrace"  // tracefs trace/trace_pipe, trace-cmd report
	FormatOTLP      Format = "otlp"    // OTLP/JSON traces
	FormatChrome    Format = "chrome"  // Trace Event Format JSON
)

// DetectBytes is how much of an input Open reads to Detect its format.
const DetectBytes = 8 << 10

// ParseFormat reads a format's name as a user types it: a Format value,
// case-insensitive, or one of the aliases ndjson, journald, trace-cmd. ""
// is FormatAuto.
func ParseFormat(name string) (Format, error) {
	switch n := strings.ToLower(strings.TrimSpace(name)); n {
	case "", "auto":
		return FormatAuto, nil
	case "jsonl", "ndjson":
		return FormatJSONLines, nil
	case "journal", "journald":
		return FormatJournal, nil
	case "syslog", "ftrace", "otlp", "chrome":
		return Format(n), nil
	case "trace-cmd":
		return FormatFtrace, nil
	}
	return "", fmt.Errorf("%w %q: want auto, jsonl, journal, syslog, ftrace, otlp or chrome", ErrUnknownFormat, name)
}

// Open returns the parser for f reading r. With FormatAuto (or "") it
// first reads up to DetectBytes of r to Detect the format; an input it
// cannot place is an error wrapping ErrUnknownFormat that names
// Options.File. JSON lines are read with DefaultJSONMapping — except that
// a detected `journalctl -o json` (records with __REALTIME_TIMESTAMP) gets
// journald's fields, as NewJournalExport maps them — and ftrace with
// bootNs 0 (LocalNs since boot: see NewFtrace).
//
// One UTF-8 byte-order mark at the start of r, which Windows tools write
// at the start of text files, is skipped whatever the format; the New*
// parsers read their input as given.
func Open(r io.Reader, opts Options, f Format) (Parser, error) {
	if f == "" || f == FormatAuto {
		br := bufio.NewReaderSize(r, DetectBytes)
		head, err := br.Peek(DetectBytes)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", detectName(opts), err)
		}
		if bytes.HasPrefix(head, []byte(utf8BOM)) {
			br.Discard(len(utf8BOM)) // cannot fail: Peek holds the bytes
			head = head[len(utf8BOM):]
		}
		if f, err = Detect(head); err != nil {
			return nil, fmt.Errorf("%s: %w", detectName(opts), err)
		}
		r = br
		if f == FormatJSONLines && bytes.Contains(head, []byte(`"__REALTIME_TIMESTAMP"`)) {
			return NewJSONLines(r, opts, detectJournalJSON), nil
		}
	} else {
		r = &bomSkipper{r: r}
	}
	switch f {
	case FormatJSONLines:
		return NewJSONLines(r, opts, DefaultJSONMapping()), nil
	case FormatJournal:
		return NewJournalExport(r, opts), nil
	case FormatSyslog:
		return NewSyslog(r, opts), nil
	case FormatFtrace:
		return NewFtrace(r, opts, 0), nil
	case FormatOTLP:
		return NewOTLP(r, opts), nil
	case FormatChrome:
		return NewChrome(r, opts), nil
	}
	return nil, fmt.Errorf("%s: %w %q", detectName(opts), ErrUnknownFormat, string(f))
}

// utf8BOM is the UTF-8 encoding of U+FEFF, the byte-order mark.
const utf8BOM = "\xef\xbb\xbf"

// bomSkipper reads r without one leading utf8BOM. It reads nothing
// before its first Read, so that a parser built on a stream that has no
// data yet does not block.
type bomSkipper struct {
	r io.Reader
	// checked is set by the first Read, which reads the first bytes; head
	// holds those that were not a BOM, and err the error that cut them
	// short, both to be returned before reading on.
	checked bool
	head    []byte
	err     error
}

func (b *bomSkipper) Read(p []byte) (int, error) {
	if !b.checked {
		b.checked = true
		var first [len(utf8BOM)]byte
		n, err := io.ReadFull(b.r, first[:])
		if string(first[:n]) == utf8BOM {
			n = 0
		}
		b.head = append(b.head, first[:n]...)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		b.err = err
	}
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	if b.err != nil {
		err := b.err
		b.err = nil
		return 0, err
	}
	return b.r.Read(p)
}

// detectJournalJSON reads `journalctl -o json`, whose records have none of
// DefaultJSONMapping's time fields, as NewJournalExport reads the export
// format.
var detectJournalJSON = JSONMapping{
	Time: "__REALTIME_TIMESTAMP", TimeFormat: JSONTimeUnixUs,
	Host: "_HOSTNAME", Message: "MESSAGE", Source: "SYSLOG_IDENTIFIER|_SYSTEMD_UNIT|_COMM",
}

func detectName(opts Options) string {
	if opts.File == "" {
		return "input"
	}
	return opts.File
}

// Detect names the format of an input from its first bytes (DetectBytes
// is enough). Input it cannot place — empty, binary, compressed, or text
// of no known format — is an error wrapping ErrUnknownFormat that says
// what the input looks like.
//
// JSON is told apart by its first keys: an object holding resourceSpans is
// OTLP; one holding traceEvents (or Chrome's displayTimeUnit, stackFrames,
// systemTraceEvents) and an array of objects with "ph" are Chrome; any
// other object on one line is JSON lines. Text is told apart by the first
// of its first 32 lines, blank and '#' comment lines aside, that has a
// format's shape (a "# tracer:" comment settles it as ftrace): an ftrace
// event line or trace-cmd's "cpus=N" is ftrace, "<PRI>1 " (optionally
// after an octet count) is syslog. A journal
// export starts with NAME=value fields, and may hold binary values.
func Detect(head []byte) (Format, error) {
	head = bytes.TrimPrefix(head, []byte(utf8BOM))
	if what := detectMagic(head); what != "" {
		return "", fmt.Errorf("%w: %s", ErrUnknownFormat, what)
	}
	if detectJournal(head) {
		return FormatJournal, nil
	}
	if what := detectBinary(head); what != "" {
		return "", fmt.Errorf("%w: binary data (%s)", ErrUnknownFormat, what)
	}
	t := bytes.TrimLeft(head, " \t\r\n")
	if len(t) == 0 {
		return "", fmt.Errorf("%w: empty input", ErrUnknownFormat)
	}
	if t[0] == '{' || t[0] == '[' {
		return detectJSON(t)
	}
	return detectText(head)
}

// detectMagic names the binary formats an input is often mistaken for.
func detectMagic(h []byte) string {
	for _, m := range []struct{ magic, what string }{
		{"\x1f\x8b", "gzip-compressed data: decompress it first"},
		{"\x28\xb5\x2f\xfd", "zstd-compressed data: decompress it first"},
		{"\xfd7zXZ\x00", "xz-compressed data: decompress it first"},
		{"BZh", "bzip2-compressed data: decompress it first"},
		{"\x17\x08\x44tracing", "a trace-cmd trace.dat: convert it with trace-cmd report"},
		{"LPKSHHRH", "a binary systemd journal file: convert it with journalctl -o export --file"},
		{"PERFILE2", "a perf.data file: convert it with perf script"},
		{"go 1.", "a Go execution trace: view it with go tool trace"},
	} {
		if bytes.HasPrefix(h, []byte(m.magic)) {
			if m.magic == "go 1." && !bytes.Contains(h[:min(len(h), 16)], []byte(" trace\x00")) {
				continue
			}
			return m.what
		}
	}
	return ""
}

// detectJournal: the export format's first line is a field, NAME=value or
// a binary NAME alone, and the head holds a field every entry has.
func detectJournal(h []byte) bool {
	i := 0
	for i < len(h) && (h[i] == '_' || 'A' <= h[i] && h[i] <= 'Z' || isDigit(h[i])) {
		i++
	}
	if i == 0 || i == len(h) || h[i] != '=' && h[i] != '\n' {
		return false
	}
	for _, f := range []string{"__CURSOR=", "__REALTIME_TIMESTAMP=", "MESSAGE=", "MESSAGE\n"} {
		if bytes.HasPrefix(h, []byte(f)) || bytes.Contains(h, []byte("\n"+f)) {
			return true
		}
	}
	return false
}

// detectBinary describes why h is not text, or says "". Text may hold a
// few bytes that are not UTF-8 (Latin-1 in a log line), not one in 64.
func detectBinary(h []byte) string {
	if i := bytes.IndexByte(h, 0); i >= 0 {
		return fmt.Sprintf("a NUL byte at offset %d", i)
	}
	odd, first := 0, -1
	for i := 0; i < len(h); {
		c, n := h[i], 1
		bad := false
		if c >= utf8.RuneSelf {
			var r rune
			r, n = utf8.DecodeRune(h[i:])
			bad = r == utf8.RuneError && n == 1 && utf8.FullRune(h[i:])
		} else {
			bad = c < ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1b
		}
		if bad {
			odd++
			if first < 0 {
				first = i
			}
		}
		i += n
	}
	if odd > 0 && odd*64 >= len(h) {
		return fmt.Sprintf("%d of %d bytes are control bytes or not UTF-8, the first at offset %d", odd, len(h), first)
	}
	return ""
}

// detectJSON places input starting with '{' or '['.
func detectJSON(t []byte) (Format, error) {
	dec := json.NewDecoder(bytes.NewReader(t))
	open, _ := dec.Token()
	if open == json.Delim('[') {
		if !dec.More() {
			return FormatChrome, nil // [] or a bare '['
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return "", fmt.Errorf("%w: a JSON array of something other than trace events", ErrUnknownFormat)
		}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch k, _ := tok.(string); k {
		case "resourceSpans":
			return FormatOTLP, nil
		case "resourceLogs", "resourceMetrics", "resourceProfiles":
			return "", fmt.Errorf("%w: OTLP %s, but only OTLP traces are read", ErrUnknownFormat,
				strings.ToLower(strings.TrimPrefix(k, "resource")))
		case "ph":
			if open == json.Delim('[') {
				return FormatChrome, nil
			}
		case "traceEvents", "displayTimeUnit", "systemTraceEvents", "stackFrames":
			if open == json.Delim('{') {
				return FormatChrome, nil
			}
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			break
		}
	}
	// Any other object that starts on one line is a JSON lines record.
	end := dec.InputOffset()
	if open == json.Delim('{') && !bytes.Contains(t[:min(end, int64(len(t)))], []byte{'\n'}) {
		return FormatJSONLines, nil
	}
	if open == json.Delim('[') {
		return "", fmt.Errorf("%w: a JSON array of objects without \"ph\", not trace events", ErrUnknownFormat)
	}
	return "", fmt.Errorf("%w: a JSON document that is neither an OTLP request nor a Chrome trace, and not JSON lines", ErrUnknownFormat)
}

// detectText places text by the first of its first 32 lines, blank and
// comment lines aside, that has the shape of a format.
func detectText(h []byte) (Format, error) {
	rest := string(h)
	first := ""
	for n := 0; rest != "" && n < 32; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		s := strings.TrimSpace(line)
		switch {
		case s == "":
			continue
		case strings.HasPrefix(s, "# tracer:"):
			return FormatFtrace, nil
		case s[0] == '#':
			continue
		case detectSyslog(s):
			return FormatSyslog, nil
		case strings.HasPrefix(s, "cpus=") && ftraceAllDigits(s[5:]),
			strings.HasPrefix(s, "CPU ") && strings.HasSuffix(s, " is empty"):
			return FormatFtrace, nil
		}
		if _, err := parseFtraceLine(s); err == nil {
			return FormatFtrace, nil
		}
		if first == "" {
			first = s
		}
		n++
	}
	switch {
	case first == "":
		return "", fmt.Errorf("%w: only blank and comment lines", ErrUnknownFormat)
	case detectBSDSyslog(first):
		return "", fmt.Errorf("%w: RFC 3164 (BSD) syslog, but only RFC 5424 syslog is read; first line %q", ErrUnknownFormat, clip([]byte(first)))
	}
	return "", fmt.Errorf("%w: text that is not ftrace, RFC 5424 syslog or a journal export; first line %q", ErrUnknownFormat, clip([]byte(first)))
}

// detectSyslog: "<PRI>1 " or an RFC 6587 octet count before it.
func detectSyslog(s string) bool {
	if n := strings.IndexByte(s, ' '); n > 0 && ftraceAllDigits(s[:n]) {
		s = s[n+1:]
	}
	if len(s) < 4 || s[0] != '<' {
		return false
	}
	end := strings.IndexByte(s, '>')
	return end >= 2 && end <= 4 && ftraceAllDigits(s[1:end]) && strings.HasPrefix(s[end+1:], "1 ")
}

// detectBSDSyslog: "Mmm dd hh:mm:ss ", optionally after <PRI>.
func detectBSDSyslog(s string) bool {
	if strings.HasPrefix(s, "<") {
		if end := strings.IndexByte(s, '>'); end > 0 {
			s = s[end+1:]
		}
	}
	if len(s) < 16 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':' || s[15] != ' ' {
		return false
	}
	i := strings.Index("JanFebMarAprMayJunJulAugSepOctNovDec", s[:3])
	return i >= 0 && i%3 == 0
}

// The JSON plumbing of the OTLP and Chrome parsers: a streaming reader
// that knows lines and bounds values (docStream), and readers of members
// and elements of values it has checked (rawMembers, rawElems).

// docStream walks a JSON text, or a sequence of them, with one
// json.Decoder. It knows the line of every offset it has passed, and it
// bounds how much of the input one value may make the decoder hold.
type docStream struct {
	src *docSource
	dec *json.Decoder
	max int // bytes one decoded value may span
}

func newDocStream(r io.Reader, max int) *docStream {
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	src := &docSource{r: r, limit: -1, line: 1}
	dec := json.NewDecoder(src)
	dec.UseNumber() // a number token is never out of range
	return &docStream{src: src, dec: dec, max: max}
}

// docSource feeds the decoder, recording where the newlines are and
// refusing to read past limit.
type docSource struct {
	r     io.Reader
	n     int64 // bytes handed to the decoder
	limit int64 // Read fails with errDocTooLarge at this offset; <0: none
	// nl holds the offsets of the '\n' handed out and not yet passed by
	// lineAt: at most the decoder's read-ahead.
	nl   []int64
	line int // 1 + the '\n' before the last offset given to lineAt
	// err is the reader's failure, if any: what is not the input's fault.
	err error
}

var errDocTooLarge = errors.New("JSON value too large")

func (s *docSource) Read(b []byte) (int, error) {
	if s.limit >= 0 {
		room := s.limit - s.n
		if room <= 0 {
			return 0, errDocTooLarge
		}
		if int64(len(b)) > room {
			b = b[:room]
		}
	}
	n, err := s.r.Read(b)
	for i := 0; i < n; {
		j := bytes.IndexByte(b[i:n], '\n')
		if j < 0 {
			break
		}
		s.nl = append(s.nl, s.n+int64(i+j))
		i += j + 1
	}
	s.n += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// lineAt is the line of offset off. Offsets must not decrease from call
// to call.
func (s *docSource) lineAt(off int64) int {
	k := 0
	for k < len(s.nl) && s.nl[k] < off {
		k++
	}
	s.line += k
	s.nl = s.nl[k:]
	return s.line
}

// bound lets the decoder read at most max bytes past what it has consumed.
func (d *docStream) bound() { d.src.limit = d.dec.InputOffset() + int64(d.max) + 1 }

func (d *docStream) token() (json.Token, error) {
	d.bound()
	return d.dec.Token()
}

func (d *docStream) more() bool {
	d.bound()
	return d.dec.More()
}

// lastLine is the line where the decoder stands.
func (d *docStream) lastLine() int { return d.src.lineAt(d.dec.InputOffset()) }

func (d *docStream) key() (string, error) {
	tok, err := d.token()
	if err != nil {
		return "", err
	}
	if k, ok := tok.(string); ok {
		return k, nil
	}
	return "", d.unexpected(tok, "a key")
}

func (d *docStream) expect(delim json.Delim) error {
	tok, err := d.token()
	if err != nil {
		return err
	}
	if tok != delim {
		return d.unexpected(tok, "'"+delim.String()+"'")
	}
	return nil
}

// openArray reads the '[' of key's value; false for null.
func (d *docStream) openArray(key string) (bool, error) {
	tok, err := d.token()
	if err != nil {
		return false, err
	}
	switch tok {
	case json.Delim('['):
		return true, nil
	case nil:
		return false, nil
	}
	return false, d.unexpected(tok, fmt.Sprintf("an array for %q", key))
}

// skip consumes the next value, whatever its size.
func (d *docStream) skip() error {
	d.src.limit = -1
	var v json.RawMessage
	return d.dec.Decode(&v)
}

// docValue is one JSON value read whole, and the line it starts on.
type docValue struct {
	raw  json.RawMessage
	line int
}

func (d *docStream) value() (docValue, error) {
	d.bound()
	var raw json.RawMessage
	if err := d.dec.Decode(&raw); err != nil {
		return docValue{}, err
	}
	start := d.dec.InputOffset() - int64(len(raw))
	return docValue{raw: raw, line: d.src.lineAt(start)}, nil
}

// docError is a malformed value: the line of the offending part, and why.
type docError struct {
	line int
	err  error
}

// pathError names the value, by its path inside a record, that an error is
// about.
type pathError struct {
	path []string
	err  error
}

func (e *pathError) Error() string { return e.err.Error() }

func atPath(err error, path ...string) error {
	return &pathError{path: append([]string(nil), path...), err: err}
}

// atPrefix puts prefix in front of the path of err (nil stays nil).
func atPrefix(err error, prefix ...string) error {
	if err == nil {
		return nil
	}
	var pe *pathError
	if errors.As(err, &pe) {
		return &pathError{path: append(append([]string(nil), prefix...), pe.path...), err: pe.err}
	}
	return atPath(err, prefix...)
}

// errLine is the line of v that err is about: the value a *pathError
// names, else v's first.
func (v docValue) errLine(err error) int {
	var pe *pathError
	if errors.As(err, &pe) && len(pe.path) > 0 {
		return v.lineOf(pe.path)
	}
	return v.line
}

// lineOf finds the line of the value at path (object keys, matched as
// encoding/json does, and array indices) inside v; v's first line when the
// path is absent.
func (v docValue) lineOf(path []string) int {
	dec := json.NewDecoder(bytes.NewReader(v.raw))
	off, ok := docFind(dec, path)
	if !ok {
		return v.line
	}
	for off < int64(len(v.raw)) && strings.IndexByte(" \t\r\n:,", v.raw[off]) >= 0 {
		off++
	}
	return v.line + bytes.Count(v.raw[:off], []byte{'\n'})
}

func docFind(dec *json.Decoder, path []string) (int64, bool) {
	dec.UseNumber()
	if len(path) == 0 {
		return dec.InputOffset(), true
	}
	tok, err := dec.Token()
	if err != nil {
		return 0, false
	}
	var skip json.RawMessage
	switch tok {
	case json.Delim('{'):
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return 0, false
			}
			if ks, _ := k.(string); strings.EqualFold(ks, path[0]) {
				return docFind(dec, path[1:])
			}
			if dec.Decode(&skip) != nil {
				return 0, false
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if strconv.Itoa(i) == path[0] {
				return docFind(dec, path[1:])
			}
			if dec.Decode(&skip) != nil {
				return 0, false
			}
		}
	}
	return 0, false
}

func (d *docStream) unexpected(tok json.Token, want string) error {
	var got string
	switch t := tok.(type) {
	case json.Delim:
		got = "'" + t.String() + "'"
	case string:
		got = fmt.Sprintf("string %q", clip([]byte(t)))
	case nil:
		got = "null"
	default:
		got = fmt.Sprint(t)
	}
	return &docError{d.lastLine(), fmt.Errorf("want %s, got %s", want, got)}
}

func (e *docError) Error() string { return e.err.Error() }

// valueStart is the offset of the next value the decoder would read: past
// the spaces and separators after what it has consumed.
func (d *docStream) valueStart() int64 {
	off := d.dec.InputOffset()
	if b, ok := d.dec.Buffered().(*bytes.Reader); ok {
		for {
			c, err := b.ReadByte()
			if err != nil || strings.IndexByte(" \t\r\n,:", c) < 0 {
				break
			}
			off++
		}
	}
	return off
}

// final turns an error from the stream into what the parser returns from
// then on: a read failure, a *LineError (any malformation: the stream
// cannot be resumed), or, when the input ends inside a value (inside says
// whether the stream stood inside one), a docTruncated for settle.
func (d *docStream) final(err error, opts *Options, inside bool) error {
	var de *docError
	var se *json.SyntaxError
	switch {
	case d.src.err != nil && errors.Is(err, d.src.err):
		return readErr(opts, err)
	case errors.As(err, &de):
	case errors.Is(err, errDocTooLarge):
		de = &docError{d.src.lineAt(d.valueStart()), fmt.Errorf("JSON value longer than %d bytes", d.max)}
	case errors.As(err, &se):
		de = &docError{d.src.lineAt(se.Offset), fmt.Errorf("invalid JSON: %v", se)}
	case err == io.ErrUnexpectedEOF || err == io.EOF && inside:
		// The line of the input's last byte, not of a final '\n'.
		return docTruncated{d.src.lineAt(max(d.src.n-1, d.dec.InputOffset()))}
	case err == io.EOF:
		return err
	default:
		de = &docError{d.src.lineAt(d.dec.InputOffset()), err}
	}
	return &LineError{File: opts.File, Line: de.line, Err: fmt.Errorf("%w: %v", ErrMalformed, de.err)}
}

// docTruncated: the input ended inside a value, on line.
type docTruncated struct{ line int }

func (t docTruncated) Error() string { return "truncated: the input ends inside a JSON value" }

// settle turns the error that ended a stream into Next's final error. A
// truncation is a malformed last record: in strict mode its *LineError,
// else counted and io.EOF.
func (d *docStream) settle(err error, opts *Options, c *Counter) error {
	t, ok := err.(docTruncated)
	if !ok {
		return err
	}
	if rerr := c.Report(opts, t.line, t); rerr != nil {
		return rerr
	}
	return io.EOF
}

// rawMembers calls fn with each member of raw, an object of valid JSON (as
// a json.Decoder has checked it), in order: the key decoded, the value's
// bytes. raw that is not an object is an error naming what.
func rawMembers(raw []byte, what string, fn func(key string, val []byte) error) error {
	i := rawSpace(raw, 0)
	if i == len(raw) || raw[i] == 'n' { // absent, or null
		return nil
	}
	if raw[i] != '{' {
		return atPath(fmt.Errorf("%s: JSON %s where an object belongs", what, rawKind(raw[i:])))
	}
	i = rawSpace(raw, i+1)
	for i < len(raw) && raw[i] == '"' {
		kEnd := rawSkip(raw, i)
		var key string
		rawString(&key, "", raw[i:kEnd])
		i = rawSpace(raw, rawSpace(raw, kEnd)+1) // past ':'
		vEnd := rawSkip(raw, i)
		if err := fn(key, raw[i:vEnd]); err != nil {
			return err
		}
		i = rawSpace(raw, vEnd)
		if i < len(raw) && raw[i] == ',' {
			i = rawSpace(raw, i+1)
		}
	}
	return nil
}

// rawElems calls fn with each element of raw, an array of valid JSON, in
// order. Absent or null raw has none; raw that is not an array is an
// error naming what.
func rawElems(raw []byte, what string, fn func(i int, val []byte) error) error {
	i := rawSpace(raw, 0)
	if i == len(raw) || raw[i] == 'n' {
		return nil
	}
	if raw[i] != '[' {
		return atPath(fmt.Errorf("%s: JSON %s where an array belongs", what, rawKind(raw[i:])))
	}
	i = rawSpace(raw, i+1)
	for n := 0; i < len(raw) && raw[i] != ']'; n++ {
		end := rawSkip(raw, i)
		if err := fn(n, raw[i:end]); err != nil {
			return err
		}
		i = rawSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = rawSpace(raw, i+1)
		}
	}
	return nil
}

// rawString decodes the JSON string val into *dst; null leaves it.
func rawString(dst *string, key string, val []byte) error {
	switch {
	case val[0] == 'n':
		return nil
	case val[0] != '"':
		return atPath(fmt.Errorf("%s: JSON %s where a string belongs", key, rawKind(val)), key)
	case bytes.IndexByte(val, '\\') < 0:
		*dst = string(val[1 : len(val)-1])
		return nil
	}
	return json.Unmarshal(val, dst)
}

func rawKind(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

func rawSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// rawSkip returns the end of the valid JSON value at b[i].
func rawSkip(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			i++
		case c == '{' || c == '[':
			depth++
			i++
		case (c == '}' || c == ']') && depth > 0:
			depth--
			i++
		case depth == 0 && strings.IndexByte(",:}] \t\r\n", c) >= 0:
			return i
		default:
			i++
		}
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			return i
		}
	}
	return i
}
