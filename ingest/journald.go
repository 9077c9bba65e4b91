package ingest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// NewJournalExport reads systemd's Journal Export Format, the output of
// `journalctl -o export`: entries separated by a blank line, each field
// either "NAME=value\n" or, binary-safe, "NAME\n", a 64-bit little-endian
// length, the value and "\n".
//
// Each entry becomes a KindLog Event. LocalNs is __REALTIME_TIMESTAMP (µs),
// Name is MESSAGE, Host is _HOSTNAME (else Options.Host), and Source is the
// first present of SYSLOG_IDENTIFIER, _SYSTEMD_UNIT and _COMM (else
// Options.File). Every other field becomes an Attr, in entry order; so do
// the source fields, and a repeated field's later values. A PRIORITY of
// 0-7 is followed by an Attr "level" with its syslog name ("info").
// A value that is not UTF-8 becomes an Attr "NAME.base64" holding the
// standard base64 of its bytes (field names never contain '.'); when such
// a value is MESSAGE, _HOSTNAME or the source, the Event field gets it with
// the bad bytes replaced by U+FFFD.
//
// An entry is malformed when a field name is not [A-Z0-9_]+, a binary
// length exceeds 768 MiB (systemd's own limit) or is not followed by its
// value and '\n', __REALTIME_TIMESTAMP is missing or not decimal, the
// entry exceeds Options.MaxLineBytes, or the input ends inside a field. It
// is reported at its first line and skipped: after a syntax error by
// reading on to the next blank line, when oversized by reading its fields
// to its end without keeping them. A last entry may end at EOF without its blank
// line.
//
// HAZARD: a binary length is trusted up to 768 MiB, so a corrupt one may
// hide the entries within that many bytes after it.
func NewJournalExport(r io.Reader, opts Options) Parser {
	return &journalExport{opts: opts, lr: newLineReader(r, opts.MaxLineBytes)}
}

// journalDataSizeMax is systemd's journal-importer DATA_SIZE_MAX: no
// exporter writes a longer binary value.
const journalDataSizeMax = 768 << 20

type journalExport struct {
	Counter
	opts Options
	lr   *lineReader
	// arena holds the entry's field names and values, then the Event's
	// extra text (base64, U+FFFD copies): a few times MaxLineBytes at most.
	// Reused.
	arena  []byte
	fields []arenaKV // spans into arena
	name   []byte    // a binary field's name; reused
	attrs  []arenaKV
	seqs   sourceSeqs
	err    error // sticky: I/O failure, strict-mode LineError, or io.EOF
}

func (p *journalExport) Next() (Event, error) {
	for p.err == nil {
		no, err := p.readEntry()
		if err == nil {
			if e, err := p.event(); err != nil {
				p.skip(no, err)
			} else {
				return e, nil
			}
			continue
		}
		var le *recordErr
		if errors.As(err, &le) {
			p.skip(no, le.err)
			continue
		}
		p.err = readErr(&p.opts, err)
	}
	return Event{}, p.err
}

func (p *journalExport) skip(line int, err error) {
	if rerr := p.Report(&p.opts, line, err); rerr != nil {
		p.err = rerr
	}
}

// readEntry reads the fields of the next entry and returns its first
// line. A malformed entry is a *recordErr, after the input has been read
// past it.
func (p *journalExport) readEntry() (start int, err error) {
	p.arena, p.fields = p.arena[:0], p.fields[:0]
	size := 0 // the entry's bytes so far, as serialized
	var tooBig error
	for {
		line, no, eol, err := p.lr.next()
		if err == io.EOF {
			if start == 0 {
				return 0, io.EOF
			}
			break
		}
		if start == 0 {
			if err == nil && len(line) == 0 {
				continue // blank lines before an entry
			}
			start = no
		}
		switch {
		case err == errLineTooLong:
			// Only a text field's line can be this long: the entry's
			// framing holds, so its end is found by reading on.
			size = p.lr.max + 1
			if tooBig == nil {
				tooBig = fmt.Errorf("line %d longer than %d bytes", no, p.lr.max)
			}
			if !eol {
				return start, &recordErr{tooBig}
			}
			continue
		case err != nil:
			return start, err
		case len(line) == 0:
			return start, p.entryEnd(tooBig)
		case !eol:
			return start, &recordErr{fmt.Errorf("input ends inside field %q", clip(line))}
		}
		size += len(line) + 1
		if i := bytes.IndexByte(line, '='); i >= 0 {
			if err := journalFieldName(line[:i]); err != nil {
				return start, p.resync(err)
			}
			if size > p.lr.max {
				if tooBig == nil {
					tooBig = fmt.Errorf("entry longer than %d bytes", p.lr.max)
				}
				continue
			}
			name := p.text(line[:i])
			p.fields = append(p.fields, arenaKV{name, p.text(line[i+1:])})
			continue
		}
		if err := journalFieldName(line); err != nil {
			return start, p.resync(err)
		}
		p.name = append(p.name[:0], line...)
		n, err := p.binaryField(size)
		if err != nil {
			return start, err
		}
		size += 8 + n + 1
		if size > p.lr.max && tooBig == nil {
			tooBig = fmt.Errorf("entry longer than %d bytes (field %s has %d bytes)", p.lr.max, clip(p.name), n)
		}
	}
	return start, p.entryEnd(tooBig)
}

func (p *journalExport) entryEnd(tooBig error) error {
	if tooBig != nil {
		return &recordErr{tooBig}
	}
	return nil
}

// binaryField reads the length, value and '\n' of field p.name, whose
// name line took the entry to size bytes. It keeps the value only when
// the entry stays within the limit.
func (p *journalExport) binaryField(size int) (int, error) {
	var lenBuf [8]byte
	b, err := p.lr.readN(lenBuf[:0], 8)
	if err == io.ErrUnexpectedEOF {
		return 0, &recordErr{fmt.Errorf("field %s: input ends inside its 8-byte length", clip(p.name))}
	} else if err != nil {
		return 0, err
	}
	n := binary.LittleEndian.Uint64(b)
	if n > journalDataSizeMax {
		return 0, p.resync(fmt.Errorf("field %s: length %d exceeds %d", clip(p.name), n, journalDataSizeMax))
	}
	if size+8+int(n)+1 > p.lr.max {
		err = p.lr.discard(n)
	} else {
		name := p.text(p.name)
		lo := len(p.arena)
		p.arena, err = p.lr.readN(p.arena, int(n))
		p.fields = append(p.fields, arenaKV{name, arenaSpan{lo, len(p.arena)}})
	}
	if err == io.ErrUnexpectedEOF {
		return 0, &recordErr{fmt.Errorf("field %s: input ends inside its %d-byte value", clip(p.name), n)}
	} else if err != nil {
		return 0, err
	}
	switch c, err := p.lr.r.ReadByte(); {
	case err == io.EOF:
		return 0, &recordErr{fmt.Errorf("field %s: input ends before the newline after its value", clip(p.name))}
	case err != nil:
		return 0, err
	case c != '\n':
		return 0, p.resync(fmt.Errorf("field %s: %d-byte value not followed by a newline", clip(p.name), n))
	}
	p.lr.lineNo++
	return int(n), nil
}

// resync reads on to the next blank line or EOF and returns cause as a
// *recordErr, or the read error that stopped it.
func (p *journalExport) resync(cause error) error {
	for {
		line, _, _, err := p.lr.next()
		switch {
		case err == io.EOF || err == nil && len(line) == 0:
			return &recordErr{cause}
		case err != nil && err != errLineTooLong:
			return err
		}
	}
}

func journalFieldName(name []byte) error {
	if len(name) == 0 {
		return errors.New("field name is empty")
	}
	for _, c := range name {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return fmt.Errorf("field name %q: want only A-Z, 0-9 and _", clip(name))
		}
	}
	return nil
}

func (p *journalExport) text(b []byte) arenaSpan {
	lo := len(p.arena)
	p.arena = append(p.arena, b...)
	return arenaSpan{lo, len(p.arena)}
}

// event maps the fields read into an Event.
func (p *journalExport) event() (Event, error) {
	rt, msg, host, src, srcRank := -1, -1, -1, -1, 3
	for i, f := range p.fields {
		switch string(f.k.in(p.arena)) {
		case "__REALTIME_TIMESTAMP":
			rt = firstIndex(rt, i)
		case "MESSAGE":
			msg = firstIndex(msg, i)
		case "_HOSTNAME":
			host = firstIndex(host, i)
		case "SYSLOG_IDENTIFIER":
			if srcRank > 0 {
				src, srcRank = i, 0
			}
		case "_SYSTEMD_UNIT":
			if srcRank > 1 {
				src, srcRank = i, 1
			}
		case "_COMM":
			if srcRank > 2 {
				src, srcRank = i, 2
			}
		}
	}
	if rt < 0 {
		return Event{}, errors.New("entry has no __REALTIME_TIMESTAMP")
	}
	var e Event
	rtText := p.fields[rt].v.in(p.arena)
	us, err := strconv.ParseInt(string(rtText), 10, 64)
	if err != nil || us < 0 || us > (1<<63-1)/1000 || rtText[0] == '+' {
		return Event{}, fmt.Errorf("__REALTIME_TIMESTAMP %q: want decimal µs since the epoch", clip(rtText))
	}
	e.LocalNs = us * 1000
	p.attrs = p.attrs[:0]
	var msgText, hostText, srcText arenaSpan
	for i, f := range p.fields {
		val := f.v
		if !utf8.Valid(val.in(p.arena)) {
			p.attrs = append(p.attrs, arenaKV{p.joined(f.k, ".base64"), p.base64(val)})
			val = p.text(bytes.ToValidUTF8(val.in(p.arena), []byte("\uFFFD")))
		} else if i != rt && i != msg && i != host {
			p.attrs = append(p.attrs, arenaKV{f.k, val})
		}
		switch i {
		case msg:
			msgText = val
		case host:
			hostText = val
		}
		if i == src {
			srcText = val
		}
		if string(f.k.in(p.arena)) == "PRIORITY" {
			if v := val.in(p.arena); len(v) == 1 && '0' <= v[0] && v[0] <= '7' {
				p.attrs = append(p.attrs, arenaKV{p.text([]byte("level")), p.text([]byte(syslogSeverityNames[v[0]-'0']))})
			}
		}
	}
	all := string(p.arena)
	e.Name, e.Host, e.Source = msgText.of(all), p.opts.Host, p.opts.File
	if host >= 0 {
		e.Host = hostText.of(all)
	}
	if src >= 0 {
		e.Source = srcText.of(all)
	}
	e.Kind = KindLog
	e.SourceSeq = p.seqs.next(e.Source)
	e.Attrs = make([]Attr, len(p.attrs))
	for i, a := range p.attrs {
		e.Attrs[i] = Attr{Key: a.k.of(all), Value: a.v.of(all)}
	}
	return e, nil
}

func firstIndex(cur, i int) int {
	if cur < 0 {
		return i
	}
	return cur
}

func (p *journalExport) joined(name arenaSpan, suffix string) arenaSpan {
	lo := len(p.arena)
	p.arena = append(p.arena, name.in(p.arena)...)
	p.arena = append(p.arena, suffix...)
	return arenaSpan{lo, len(p.arena)}
}

func (p *journalExport) base64(val arenaSpan) arenaSpan {
	lo := len(p.arena)
	p.arena = base64.StdEncoding.AppendEncode(p.arena, val.in(p.arena))
	return arenaSpan{lo, len(p.arena)}
}

// lineReader reads newline-terminated records of at most max bytes each
// and numbers them. A longer line is consumed in pieces, never held whole.
type lineReader struct {
	r   *bufio.Reader
	max int
	// long holds a line split across buffer refills; reused, at most max.
	long []byte
	// lineNo is the 1-based number of the line at the read position: one
	// more than the '\n' bytes consumed so far.
	lineNo int
}

// errLineTooLong: next consumed a line longer than the limit.
var errLineTooLong = errors.New("line too long")

func newLineReader(r io.Reader, max int) *lineReader {
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	size := 64 << 10
	if max < size {
		size = max + 1
	}
	return &lineReader{r: bufio.NewReaderSize(r, size), max: max, lineNo: 1}
}

// next returns the next line without its '\n', the line's number, and
// whether a '\n' ended it (false only for a last line at EOF). The slice
// is valid until the next read. It returns io.EOF when no bytes remain,
// and errLineTooLong, having consumed the line, when it exceeds max.
func (lr *lineReader) next() (line []byte, no int, eol bool, err error) {
	no = lr.lineNo
	frag, err := lr.r.ReadSlice('\n')
	if err == nil {
		lr.lineNo++
		if len(frag)-1 > lr.max {
			return nil, no, true, errLineTooLong
		}
		return frag[:len(frag)-1], no, true, nil
	}
	lr.long = lr.long[:0]
	for err == bufio.ErrBufferFull {
		if len(lr.long)+len(frag) > lr.max {
			eol, err := lr.skipLine()
			if err != nil {
				return nil, no, eol, err
			}
			return nil, no, eol, errLineTooLong
		}
		lr.long = append(lr.long, frag...)
		frag, err = lr.r.ReadSlice('\n')
	}
	lr.long = append(lr.long, frag...)
	switch {
	case err == nil:
		lr.lineNo++
		if len(lr.long)-1 > lr.max {
			return nil, no, true, errLineTooLong
		}
		return lr.long[:len(lr.long)-1], no, true, nil
	case err != io.EOF:
		return nil, no, false, err
	case len(lr.long) == 0:
		return nil, no, false, io.EOF
	case len(lr.long) > lr.max:
		return nil, no, false, errLineTooLong
	}
	return lr.long, no, false, nil
}

// skipLine consumes through the next '\n'; eol is false at EOF.
func (lr *lineReader) skipLine() (eol bool, err error) {
	for {
		_, err := lr.r.ReadSlice('\n')
		switch err {
		case nil:
			lr.lineNo++
			return true, nil
		case bufio.ErrBufferFull:
		case io.EOF:
			return false, nil
		default:
			return false, err
		}
	}
}

// readN appends the next n bytes to dst. Short input is
// io.ErrUnexpectedEOF.
func (lr *lineReader) readN(dst []byte, n int) ([]byte, error) {
	lo := len(dst)
	dst = slices.Grow(dst, n)[:lo+n]
	got, err := io.ReadFull(lr.r, dst[lo:])
	lr.lineNo += bytes.Count(dst[lo:lo+got], []byte{'\n'})
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return dst[:lo+got], err
}

// discard skips n bytes, holding no more than the reader's buffer.
// Short input is io.ErrUnexpectedEOF.
func (lr *lineReader) discard(n uint64) error {
	for n > 0 {
		if lr.r.Buffered() == 0 {
			if _, err := lr.r.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		k := lr.r.Buffered()
		if uint64(k) > n {
			k = int(n)
		}
		b, _ := lr.r.Peek(k)
		lr.lineNo += bytes.Count(b, []byte{'\n'})
		lr.r.Discard(k)
		n -= uint64(k)
	}
	return nil
}

// readErr wraps a read failure; io.EOF passes through.
func readErr(opts *Options, err error) error {
	if err == io.EOF {
		return err
	}
	return fmt.Errorf("read %s: %w", opts.File, err)
}

// sourceSeqs numbers each source's events from 1. It holds one counter
// per distinct source seen.
type sourceSeqs struct {
	last    string
	lastSeq *uint64
	seqs    map[string]*uint64
}

func (s *sourceSeqs) next(source string) uint64 {
	// Most often source is the very string of the last call (a parser's
	// Options.File, or the value it keeps while it repeats), which the
	// compare takes as equal without reading the bytes.
	if s.lastSeq == nil || source != s.last {
		if s.seqs == nil {
			s.seqs = make(map[string]*uint64)
		}
		seq, ok := s.seqs[source]
		if !ok {
			seq = new(uint64)
			s.seqs[source] = seq
		}
		s.last, s.lastSeq = source, seq
	}
	*s.lastSeq++
	return *s.lastSeq
}
