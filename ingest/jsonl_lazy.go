package ingest

import "math/bits"

// A LazyParser is a Parser that can leave the text of an event in the
// record it read, for a consumer that is done with each event before it
// asks for the next: a converter to another text format then copies each
// value once, from the record to its output, instead of into the event
// and again from there.
type LazyParser interface {
	Parser
	// NextLazy is Next into e. When it returns lazy, e's Name and Attrs
	// are unset and f holds them instead, in the record, until the next
	// call of Next or NextLazy; f.Fill completes e to what Next would
	// have returned. Otherwise e is whole, as Next returns it, and f is
	// undefined. e's other strings stay valid as Next's do.
	NextLazy(e *Event, f *LineFields) (lazy bool, err error)
}

// LineFields are an event's Name and Attrs as they stand in its JSON
// line: the values of a record of a layout the parser has learnt (see
// jsonl_fast.go). Attr(i) is Attr i of those Next would have made, in
// their order. Every byte slice it returns is the
// parser's, valid only until its next call; its capacity reaches on into
// the parser's buffer, so read it, never append to it.
type LineFields struct {
	line []byte
	vals []jsonVal // the line's
	// attrs are the values that become Attrs, in order; name the index
	// of the Name's value, or -1. plain has bit i set when value i is a
	// string that needs no escaping.
	attrs []jsonAttrRef
	plain uint64
	name  int
}

// jsonAttrRef is an Attr of a line of a shape: the index of its value,
// its key, and run, 1<<m for the m Attrs from it on that may make one
// text (jsonShape.refs): 1<<1 for one that stands alone.
type jsonAttrRef struct {
	key string
	val int
	run uint64
}

// Name is the event's Name as JSON string content: plain tells that it
// is printable ASCII without '"' or '\\' (it needs no escaping); when
// not, it is valid UTF-8, also without '"', '\\' or control bytes.
func (f *LineFields) Name() (text []byte, plain bool) {
	if f.name < 0 {
		return nil, true
	}
	return f.value(f.name)
}

// NumAttrs is how many Attrs the event has.
func (f *LineFields) NumAttrs() int { return len(f.attrs) }

// Attr is Attr i: its key, which stays valid as long as the event's
// other strings, and its value, as Name's.
func (f *LineFields) Attr(i int) (key string, text []byte, plain bool) {
	a := &f.attrs[i]
	text, plain = f.value(a.val)
	return a.key, text, plain
}

// AttrRun is Attr i, and with it the Attrs after it that follow it in
// the record as the members of a JSON object: n, at least 1, is how many
// Attrs it stands for. When n > 1, text is Attr i's value followed by
// `","key":"value` for each of the next n-1 Attrs, each value a string
// that needs no escaping (plain), which is the text a writer of them as
// string members of one object writes after Attr i's `"key":"`.
func (f *LineFields) AttrRun(i int) (key string, text []byte, plain bool, n int) {
	a := &f.attrs[i]
	j := a.val
	v := &f.vals[j]
	hi, n := v.hi, 1
	// The values from j on are next to each other up to the bit of
	// a.run; those that are plain from j on make the run.
	if k := bits.TrailingZeros64(^f.plain>>j | a.run); k > 1 {
		hi, n = f.vals[j+k-1].hi, k
	}
	return a.key, f.line[v.lo:hi], !v.wide, n
}

func (f *LineFields) value(i int) ([]byte, bool) {
	v := &f.vals[i]
	return f.line[v.lo:v.hi], !v.wide
}

// Fill sets e's Name and Attrs from f, copied, as Next would have: the
// event no longer depends on the record.
func (f *LineFields) Fill(e *Event) {
	name, _ := f.Name()
	e.Name = string(name)
	e.Attrs = make([]Attr, len(f.attrs))
	for i := range e.Attrs {
		k, v, _ := f.Attr(i)
		e.Attrs[i] = Attr{Key: k, Value: string(v)}
	}
}

// NextLazy implements LazyParser: the lines the fast path takes are
// lazy, the others are parsed as Next parses them.
func (p *jsonLines) NextLazy(e *Event, f *LineFields) (lazy bool, err error) {
	for p.err == nil {
		if !p.scannerOnly && p.fastBuffered(e, f) {
			return true, nil
		}
		line, no, ok := p.line()
		if !ok {
			continue
		}
		if !p.scannerOnly && p.fastLazy(line, e, f) {
			return true, nil
		}
		if ev, ok := p.parseOrSkip(line, no); ok {
			*e = ev
			return false, nil
		}
	}
	*e = Event{}
	return false, p.err
}

// fastLazy is fast for NextLazy: it copies only the host, source and
// kind, when they change.
func (p *jsonLines) fastLazy(line []byte, e *Event, f *LineFields) bool {
	m, ok := p.fastMatch(line)
	if !ok {
		return false
	}
	p.lazyEvent(line, &m, e, f)
	return true
}

// fastBuffered is fastLazy for the next line as it stands in the read
// buffer, found by matching a known shape from the buffer's start rather
// than by looking for its end first: the match ends where the line
// does. It is false, and consumes nothing, when the buffer does not hold
// a whole line of a known shape, when the line is too long, or when the
// fast path does not take it; p.lr.next then reads the line.
func (p *jsonLines) fastBuffered(e *Event, f *LineFields) bool {
	fs := &p.fs
	br := p.lr.r
	if fs.skip > 0 || br.Buffered() == 0 {
		return false
	}
	buf, _ := br.Peek(br.Buffered())
	for i, s := range fs.shapes {
		if s == nil {
			break
		}
		var nulls, plain uint64
		var pos int
		var ok bool
		if fs.vals, nulls, plain, pos, ok = s.matchValues(buf, fs.vals[:0]); !ok {
			continue
		}
		end := pos + len(s.tail)
		if end >= len(buf) || buf[end] != '\n' || string(buf[pos:end]) != s.tail {
			continue
		}
		if end > p.lr.max {
			return false
		}
		fs.touch(i)
		line := buf[:end]
		m := fastLine{sh: s, plain: plain}
		if !p.fastFinish(line, &m, nulls) {
			return false
		}
		br.Discard(end + 1)
		p.lr.lineNo++
		p.lazyEvent(line, &m, e, f)
		return true
	}
	return false
}

// lazyEvent fills e but its Name and Attrs, and f, from line and m.
func (p *jsonLines) lazyEvent(line []byte, m *fastLine, e *Event, f *LineFields) {
	fs := &p.fs
	p.fastEvent(line, "", m, e)
	f.line, f.vals, f.attrs, f.plain, f.name = line, fs.vals, m.sh.refs, m.plain, m.picked[jsonRoleMessage]
	if m.attrs == nil {
		fs.attrRefs = fs.attrRefs[:0]
		for i := range fs.vals {
			if !jsonPicked(m.picked, i) {
				fs.attrRefs = append(fs.attrRefs, jsonAttrRef{key: m.sh.keys[i], val: i, run: 1 << 1})
			}
		}
		f.attrs = fs.attrRefs
	}
	fs.events++
}
