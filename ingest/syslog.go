package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// NewSyslog reads RFC 5424 syslog messages, one per line:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]
//
// A record may instead be framed by RFC 6587 octet counting, "LEN SP MSG":
// when a record starts with a decimal length, a space and '<', exactly LEN
// bytes form the message (newlines included) and one '\n' after them is
// skipped. A line's trailing '\r' is dropped and empty lines are skipped.
//
// Each message becomes a KindLog Event: Source is APP-NAME (Options.File
// when "-"), Host is HOSTNAME (Options.Host when "-"), LocalNs is
// TIMESTAMP (the event is Untimed when "-"), and Name is MSG without its
// UTF-8 BOM. Attrs are, in order: "facility" (a name: kern, user, ...,
// local7), "severity" (0-7), "level" (emerg, alert, crit, err, warning,
// notice, info, debug), "procid" and "msgid" unless "-", then one
// "sd.<SD-ID>.<PARAM-NAME>" per SD-PARAM with its value unescaped.
//
// Validation follows the RFC's grammar: PRIVAL 0-191, VERSION 1, header
// fields of printable US-ASCII within their length limits, a TIMESTAMP with
// uppercase 'T' and 'Z' and at most 6 fraction digits, SD-NAMEs of at most
// 32 characters, PARAM-VALUEs of UTF-8 with '"', '\' and ']' escaped (a
// backslash before any other character is kept), no SD-ID twice, and a MSG
// that is UTF-8 when it starts with a BOM. A MSG without BOM is taken as
// text: bytes that are not UTF-8 become U+FFFD.
func NewSyslog(r io.Reader, opts Options) Parser {
	return &syslogParser{opts: opts, lr: newLineReader(r, opts.MaxLineBytes)}
}

type syslogParser struct {
	Counter
	opts  Options
	lr    *lineReader
	frame []byte // an octet-counted message; reused
	arena []byte // the Event's text, converted to one string; reused
	attrs []arenaKV
	seqs  sourceSeqs
	err   error // sticky: I/O failure, strict-mode LineError, or io.EOF
}

// arenaKV is an Attr whose key and value lie in an arena.
type arenaKV struct{ k, v arenaSpan }

func (p *syslogParser) Next() (Event, error) {
	for p.err == nil {
		msg, no, err := p.record()
		if err != nil {
			var le *recordErr
			if errors.As(err, &le) {
				p.skip(no, le.err)
				continue
			}
			p.err = readErr(&p.opts, err)
			break
		}
		if len(msg) == 0 {
			continue
		}
		e, err := p.parse(msg)
		if err != nil {
			p.skip(no, err)
			continue
		}
		return e, nil
	}
	return Event{}, p.err
}

func (p *syslogParser) skip(line int, err error) {
	if rerr := p.Report(&p.opts, line, err); rerr != nil {
		p.err = rerr
	}
}

// recordErr marks a record-level problem found while framing.
type recordErr struct{ err error }

func (e *recordErr) Error() string { return e.err.Error() }

// record returns the next message and the number of its first line. An
// empty message is a blank line.
func (p *syslogParser) record() (msg []byte, no int, err error) {
	no = p.lr.lineNo
	if n, hdr, ok := p.octetCount(); ok {
		p.lr.r.Discard(hdr)
		return p.readFrame(n)
	}
	line, no, _, err := p.lr.next()
	if err == errLineTooLong {
		return nil, no, &recordErr{fmt.Errorf("line longer than %d bytes", p.lr.max)}
	}
	if err != nil {
		return nil, no, err
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, no, nil
}

// octetCount reports whether the input continues with "LEN SP <", and
// returns LEN and the length of "LEN SP".
func (p *syslogParser) octetCount() (n uint64, hdr int, ok bool) {
	b, _ := p.lr.r.Peek(11) // 9 digits, SP, '<'
	i := 0
	for i < len(b) && i < 9 && isDigit(b[i]) {
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	if i == 0 || b[0] == '0' || i+1 >= len(b) || b[i] != ' ' || b[i+1] != '<' {
		return 0, 0, false
	}
	return n, i + 1, true
}

func (p *syslogParser) readFrame(n uint64) ([]byte, int, error) {
	no := p.lr.lineNo
	var ferr error
	if n > uint64(p.lr.max) {
		ferr = fmt.Errorf("octet-counted frame of %d bytes exceeds the %d-byte limit", n, p.lr.max)
		if err := p.lr.discard(n); err == io.ErrUnexpectedEOF {
			ferr = fmt.Errorf("octet-counted frame declares %d bytes but the input ends first", n)
		} else if err != nil {
			return nil, no, err
		}
	} else {
		var err error
		p.frame, err = p.lr.readN(p.frame[:0], int(n))
		if err == io.ErrUnexpectedEOF {
			ferr = fmt.Errorf("octet-counted frame declares %d bytes but the input ends after %d", n, len(p.frame))
		} else if err != nil {
			return nil, no, err
		}
	}
	if b, _ := p.lr.r.Peek(1); len(b) == 1 && b[0] == '\n' {
		p.lr.r.Discard(1)
		p.lr.lineNo++
	}
	if ferr != nil {
		return nil, no, &recordErr{ferr}
	}
	return p.frame, no, nil
}

// parse reads one message; every error text names the offending part.
func (p *syslogParser) parse(b []byte) (Event, error) {
	p.arena, p.attrs = p.arena[:0], p.attrs[:0]
	c := &syslogCursor{b: b}
	pri, err := c.pri()
	if err != nil {
		return Event{}, err
	}
	if err := c.version(); err != nil {
		return Event{}, err
	}
	var e Event
	ts, err := c.token("TIMESTAMP", 0)
	if err != nil {
		return Event{}, err
	}
	if string(ts) == "-" {
		e.Untimed = true
	} else if e.LocalNs, err = parseRFC3339(ts, true); err != nil {
		return Event{}, err
	}
	var hdr [4][]byte // HOSTNAME, APP-NAME, PROCID, MSGID
	for i, f := range [4]struct {
		name string
		max  int
	}{{"HOSTNAME", 255}, {"APP-NAME", 48}, {"PROCID", 128}, {"MSGID", 32}} {
		if hdr[i], err = c.token(f.name, f.max); err != nil {
			return Event{}, err
		}
	}
	p.put("facility", syslogFacilityNames[pri>>3])
	p.put("severity", strconv.Itoa(pri&7))
	p.put("level", syslogSeverityNames[pri&7])
	if string(hdr[2]) != "-" {
		p.putBytes("procid", hdr[2])
	}
	if string(hdr[3]) != "-" {
		p.putBytes("msgid", hdr[3])
	}
	if err := p.structuredData(c); err != nil {
		return Event{}, err
	}
	msg, err := c.msg()
	if err != nil {
		return Event{}, err
	}
	host, app, name := p.text(hdr[0]), p.text(hdr[1]), p.text(msg)
	all := string(p.arena)
	e.Host, e.Source, e.Name = host.of(all), app.of(all), name.of(all)
	if string(hdr[0]) == "-" {
		e.Host = p.opts.Host
	}
	if string(hdr[1]) == "-" {
		e.Source = p.opts.File
	}
	e.Kind = KindLog
	e.SourceSeq = p.seqs.next(e.Source)
	e.Attrs = make([]Attr, len(p.attrs))
	for i, a := range p.attrs {
		e.Attrs[i] = Attr{Key: a.k.of(all), Value: a.v.of(all)}
	}
	return e, nil
}

func (p *syslogParser) text(b []byte) arenaSpan {
	lo := len(p.arena)
	p.arena = append(p.arena, b...)
	return arenaSpan{lo, len(p.arena)}
}

func (p *syslogParser) put(key, val string) {
	k := p.text([]byte(key))
	v := p.text([]byte(val))
	p.attrs = append(p.attrs, arenaKV{k, v})
}

func (p *syslogParser) putBytes(key string, val []byte) {
	k := p.text([]byte(key))
	p.attrs = append(p.attrs, arenaKV{k, p.text(val)})
}

// structuredData reads "-" or one or more SD-ELEMENTs into attrs.
func (p *syslogParser) structuredData(c *syslogCursor) error {
	if c.pos >= len(c.b) {
		return errors.New("STRUCTURED-DATA missing after MSGID")
	}
	if c.b[c.pos] == '-' {
		c.pos++
		return nil
	}
	if c.b[c.pos] != '[' {
		return fmt.Errorf("STRUCTURED-DATA: want '-' or '[', got %q", c.b[c.pos])
	}
	ids := make([][]byte, 0, 8)
	for c.pos < len(c.b) && c.b[c.pos] == '[' {
		c.pos++
		id, err := c.sdName("SD-ID")
		if err != nil {
			return err
		}
		for _, prev := range ids {
			if bytes.Equal(prev, id) {
				return fmt.Errorf("SD-ID %q appears twice", id)
			}
		}
		ids = append(ids, id)
		for c.pos < len(c.b) && c.b[c.pos] == ' ' {
			c.pos++
			if err := p.sdParam(c, id); err != nil {
				return err
			}
		}
		if c.pos >= len(c.b) {
			return fmt.Errorf("SD-ELEMENT [%s: line ends before ']'", id)
		}
		if c.b[c.pos] != ']' {
			return fmt.Errorf("SD-ELEMENT [%s: want ' ' or ']', got %q", id, c.b[c.pos])
		}
		c.pos++
	}
	return nil
}

// sdParam reads PARAM-NAME="PARAM-VALUE" into an attr sd.<id>.<name>.
func (p *syslogParser) sdParam(c *syslogCursor, id []byte) error {
	name, err := c.sdName("PARAM-NAME")
	if err != nil {
		return fmt.Errorf("[%s ...]: %w", id, err)
	}
	if c.pos >= len(c.b) || c.b[c.pos] != '=' {
		return fmt.Errorf("SD-PARAM %s in [%s]: want '=' after the name", name, id)
	}
	c.pos++
	if c.pos >= len(c.b) || c.b[c.pos] != '"' {
		return fmt.Errorf("SD-PARAM %s in [%s]: want '\"' after '='", name, id)
	}
	c.pos++
	k := arenaSpan{lo: len(p.arena)}
	p.arena = append(p.arena, "sd."...)
	p.arena = append(p.arena, id...)
	p.arena = append(p.arena, '.')
	p.arena = append(p.arena, name...)
	k.hi = len(p.arena)
	v := arenaSpan{lo: len(p.arena)}
	for {
		if c.pos >= len(c.b) {
			return fmt.Errorf("PARAM-VALUE of %s in [%s]: line ends before the closing '\"'", name, id)
		}
		ch := c.b[c.pos]
		c.pos++
		switch {
		case ch == '"':
			v.hi = len(p.arena)
			if !utf8.Valid(v.in(p.arena)) {
				return fmt.Errorf("PARAM-VALUE of %s in [%s]: not valid UTF-8", name, id)
			}
			p.attrs = append(p.attrs, arenaKV{k, v})
			return nil
		case ch == ']':
			return fmt.Errorf("PARAM-VALUE of %s in [%s]: unescaped ']'", name, id)
		case ch == '\\' && c.pos < len(c.b) && (c.b[c.pos] == '"' || c.b[c.pos] == '\\' || c.b[c.pos] == ']'):
			p.arena = append(p.arena, c.b[c.pos])
			c.pos++
		default:
			p.arena = append(p.arena, ch)
		}
	}
}

// syslogCursor walks one syslog message.
type syslogCursor struct {
	b   []byte
	pos int
}

// pri reads "<PRIVAL>".
func (c *syslogCursor) pri() (int, error) {
	b := c.b
	if b[0] != '<' {
		return 0, fmt.Errorf("PRI: want '<', got %q", b[0])
	}
	i := 1
	for i < len(b) && i <= 3 && isDigit(b[i]) {
		i++
	}
	if i == 1 {
		return 0, errors.New("PRI: want 1 to 3 digits after '<'")
	}
	if i >= len(b) || b[i] != '>' {
		return 0, errors.New("PRI: want '>' after at most 3 digits")
	}
	v, _ := strconv.Atoi(string(b[1:i]))
	if v > 191 {
		return 0, fmt.Errorf("PRI <%d>: out of range 0-191", v)
	}
	c.pos = i + 1
	return v, nil
}

// version reads VERSION SP; only version 1 is known.
func (c *syslogCursor) version() error {
	b, i := c.b, c.pos
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	v := b[c.pos:i]
	switch {
	case len(v) == 0 && i < len(b) && 'A' <= b[i] && b[i] <= 'Z':
		return errors.New("VERSION missing after PRI: RFC 3164 (BSD) syslog is not supported")
	case len(v) == 0:
		return errors.New("VERSION missing after PRI")
	case string(v) != "1":
		return fmt.Errorf("VERSION %q: only 1 is supported", clip(v))
	case i >= len(b) || b[i] != ' ':
		return errors.New("VERSION: want ' ' after it")
	}
	c.pos = i + 1
	return nil
}

// token reads a header field and the SP after it. max > 0 bounds its
// length and requires printable US-ASCII.
func (c *syslogCursor) token(name string, max int) ([]byte, error) {
	b := c.b
	if c.pos >= len(b) {
		return nil, fmt.Errorf("%s missing: line ends", name)
	}
	end := bytes.IndexByte(b[c.pos:], ' ')
	if end < 0 {
		return nil, fmt.Errorf("%s %q: line ends before STRUCTURED-DATA", name, clip(b[c.pos:]))
	}
	tok := b[c.pos : c.pos+end]
	switch {
	case len(tok) == 0:
		return nil, fmt.Errorf("%s is empty (two spaces in a row)", name)
	case max > 0 && len(tok) > max:
		return nil, fmt.Errorf("%s %q: longer than %d characters", name, clip(tok), max)
	}
	if max > 0 {
		for _, ch := range tok {
			if ch < 33 || ch > 126 {
				return nil, fmt.Errorf("%s %q: byte 0x%02x is not printable US-ASCII", name, clip(tok), ch)
			}
		}
	}
	c.pos += end + 1
	return tok, nil
}

// sdName reads an SD-ID or PARAM-NAME: 1-32 printable US-ASCII characters
// other than '=', ' ', ']' and '"'.
func (c *syslogCursor) sdName(what string) ([]byte, error) {
	b, i := c.b, c.pos
	for i < len(b) && b[i] != '=' && b[i] != ' ' && b[i] != ']' && b[i] != '"' {
		i++
	}
	name := b[c.pos:i]
	switch {
	case len(name) == 0:
		return nil, fmt.Errorf("%s missing", what)
	case len(name) > 32:
		return nil, fmt.Errorf("%s %q: longer than 32 characters", what, clip(name))
	}
	for _, ch := range name {
		if ch < 33 || ch > 126 {
			return nil, fmt.Errorf("%s %q: byte 0x%02x is not printable US-ASCII", what, clip(name), ch)
		}
	}
	c.pos = i
	return name, nil
}

// msg reads what follows STRUCTURED-DATA: nothing, or SP and MSG.
func (c *syslogCursor) msg() ([]byte, error) {
	b := c.b
	if c.pos == len(b) {
		return nil, nil
	}
	if b[c.pos] != ' ' {
		return nil, fmt.Errorf("after STRUCTURED-DATA: want ' ' or the end of the line, got %q", b[c.pos])
	}
	m := b[c.pos+1:]
	if bytes.HasPrefix(m, []byte(utf8BOM)) {
		m = m[len(utf8BOM):]
		if !utf8.Valid(m) {
			return nil, errors.New("MSG after the BOM is not valid UTF-8")
		}
		return m, nil
	}
	if !utf8.Valid(m) {
		return bytes.ToValidUTF8(m, []byte("\uFFFD")), nil
	}
	return m, nil
}

// facilityNames are the RFC 5424 facilities by code, with the names of
// syslog.h (12-15 after the BSDs').
var syslogFacilityNames = [24]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// severityNames are the syslog.h severity keywords by code; journald's
// PRIORITY uses the same codes.
var syslogSeverityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// parseRFC3339 reads an RFC 3339 date-time as ns since the Unix epoch.
// rfc5424 applies RFC 5424's narrower grammar: uppercase 'T' and 'Z' and
// at most 6 fraction digits; otherwise any number of fraction digits is
// read (beyond 9 truncated). Leap seconds (:60) are refused.
func parseRFC3339(s []byte, rfc5424 bool) (int64, error) {
	bad := func(why string) error { return fmt.Errorf("timestamp %q: %s", clip(s), why) }
	num := func(i, n int) int {
		v := 0
		for _, ch := range s[i : i+n] {
			if !isDigit(ch) {
				return -1
			}
			v = v*10 + int(ch-'0')
		}
		return v
	}
	const shape = "want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm"
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' ||
		!(s[10] == 'T' || !rfc5424 && s[10] == 't') {
		return 0, bad(shape)
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || sec < 0 {
		return 0, bad(shape)
	}
	i, fracNs := 19, int64(0)
	if s[i] == '.' {
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			if d := i - start; d < 9 {
				fracNs += int64(s[i]-'0') * fracPow10[8-d]
			}
			i++
		}
		switch d := i - start; {
		case d == 0:
			return 0, bad("no digits after '.'")
		case rfc5424 && d > 6:
			return 0, bad("more than 6 fraction digits")
		}
	}
	var offSec int
	switch {
	case i == len(s):
		return 0, bad("no time zone: want Z or ±hh:mm")
	case s[i] == 'Z' || !rfc5424 && s[i] == 'z':
		i++
	case s[i] == '+' || s[i] == '-':
		if len(s)-i != 6 || s[i+3] != ':' {
			return 0, bad(shape)
		}
		oh, om := num(i+1, 2), num(i+4, 2)
		switch {
		case oh < 0 || om < 0:
			return 0, bad(shape)
		case oh > 23:
			return 0, bad("offset hour out of range")
		case om > 59:
			return 0, bad("offset minute out of range")
		}
		offSec = oh*3600 + om*60
		if s[i] == '-' {
			offSec = -offSec
		}
		i += 6
	}
	if i != len(s) {
		return 0, bad(shape)
	}
	switch {
	case month < 1 || month > 12:
		return 0, bad("month out of range")
	case day < 1 || day > daysInMonth(year, month):
		return 0, bad("day out of range")
	case hour > 23:
		return 0, bad("hour out of range")
	case minute > 59:
		return 0, bad("minute out of range")
	case sec > 59:
		return 0, bad("second out of range")
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offSec)
	// int64 ns span -9223372036.854775808 s to 9223372036.854775807 s.
	if secs < -9223372037 || secs == -9223372037 && fracNs < 145224192 ||
		secs > 9223372036 || secs == 9223372036 && fracNs > 854775807 {
		return 0, bad("outside the int64 ns range (1677-09-21 to 2262-04-11)")
	}
	return secs*1e9 + fracNs, nil
}

var fracPow10 = [9]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

func daysInMonth(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil counts days from 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400 // y >= -1 here, and era 0 covers years 0-399
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// decimalToNs converts the decimal number text (JSON number syntax, or a
// bare fraction such as ".5") to value·10^exp ns, truncating toward zero
// below 1 ns. exp < 0 picks exp from the magnitude (see JSONTimeAuto).
// The conversion is exact: no float64 rounding.
func decimalToNs(text []byte, exp int) (int64, error) {
	s := text
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var digits [24]byte // significant digits, leading zeros dropped
	nd, dp := 0, 0      // value = 0.d1d2...d(nd) · 10^dp
	sawDigit, sawDot := false, false
	i := 0
scan:
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			sawDigit = true
			if c == '0' && nd == 0 {
				if sawDot {
					dp--
				}
				continue
			}
			if nd < len(digits) {
				digits[nd] = c // later digits lie beyond int64 ns precision
				nd++
			}
			if !sawDot {
				dp++
			}
		case c == '.' && !sawDot:
			sawDot = true
		default:
			break scan
		}
	}
	if !sawDigit {
		return 0, fmt.Errorf("%q is not a number", clip(text))
	}
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return 0, fmt.Errorf("%q is not a number", clip(text))
		}
		e, ok := parseDecimalExponent(s[i+1:])
		if !ok {
			return 0, fmt.Errorf("%q is not a number", clip(text))
		}
		dp += e
	}
	if nd == 0 {
		return 0, nil
	}
	if exp < 0 {
		switch {
		case dp <= 11:
			exp = 9
		case dp <= 14:
			exp = 6
		case dp <= 17:
			exp = 3
		default:
			exp = 0
		}
	}
	// ns = 0.d1d2...d(nd) · 10^(dp+exp): the first dp+exp digits.
	keep := dp + exp
	if keep > 19 {
		return 0, fmt.Errorf("%s: out of range", clip(text))
	}
	var u uint64
	for k := 0; k < keep; k++ {
		d := uint64(0)
		if k < nd {
			d = uint64(digits[k] - '0')
		}
		if u > (1<<63-d)/10 {
			return 0, fmt.Errorf("%s: out of range", clip(text))
		}
		u = u*10 + d
	}
	if u == 1<<63 && !neg {
		return 0, fmt.Errorf("%s: out of range", clip(text))
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// parseDecimalExponent reads [+-]digits, saturating far beyond any useful range.
func parseDecimalExponent(s []byte) (int, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	e := 0
	for _, c := range s {
		if !isDigit(c) {
			return 0, false
		}
		if e < 10000 {
			e = e*10 + int(c-'0')
		}
	}
	if neg {
		return -e, true
	}
	return e, true
}
