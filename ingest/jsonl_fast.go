package ingest

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// The fast path of NewJSONLines. Most JSON-lines files repeat a few
// record layouts: the same keys in the same order, with the same
// punctuation, and only the scalar values changing. A jsonShape remembers
// one layout as the literal text between its values; a line that has
// exactly that text between scalar values that need no decoding (strings
// without escapes, control bytes or invalid UTF-8; numbers; true, false,
// null) is that layout, and its event is built from the value spans alone.
// Its strings point into a copy of the line in an append-only slab, so a
// record costs one copy and no allocation per field.
//
// A line no shape matches is scanned for a new shape; a line that is not
// a shape (arrays, empty objects, escapes, non-ASCII keys, deeper
// nesting, more than jsonMaxLeaves leaves, any syntax error) goes to
// jsonScanner, which is the reference: for every line the fast path
// accepts, both give the same Event.
//
// NextLazy (jsonl_lazy.go) takes the same lines without the copy: the
// event's Name and Attrs stay in the read buffer as value spans
// (LineFields), and a line of a known shape is matched where it stands
// in the buffer, its end found by the match instead of by a search for
// '\n' first. A shape also knows which of its Attrs follow each other
// in the line as the members of one object are written (`"a":"x","b":"y"`),
// so that a writer of such members copies them as one text when they are
// strings that need no escaping (LineFields.AttrRun).

const (
	// jsonShapes is how many layouts a parser remembers, most recent first.
	jsonShapes = 4
	// jsonMaxLeaves bounds a shape's values (a bit set of them is a uint64).
	jsonMaxLeaves = 64
	// jsonShapeDepth bounds the nesting of objects in a shape.
	jsonShapeDepth = 8
	// jsonSlabBytes is the size of the slabs that hold the lines' text;
	// jsonSlabAttrs that of the slabs of Attrs.
	jsonSlabBytes = 32 << 10
	jsonSlabAttrs = 512
	// jsonMaxBackoff bounds the lines read by jsonScanner alone after
	// lines the fast path could not take.
	jsonMaxBackoff = 64
)

// jsonShape is one record layout.
type jsonShape struct {
	// lits[i] is the text before value i, from the end of value i-1 (or
	// the line's start): `{"ts":`, `,"host":`, `,"src":{"file":`. tail is
	// the text after the last value.
	lits []jsonLit
	tail string
	// keys[i] is the flattened key of value i ("src.file"), in a slab.
	keys []string
	// cand is the set of values whose key is a path of some role.
	cand uint64
	// picked and attrs are the values each role takes and the values that
	// become Attrs, in order, when no value in cand is null.
	picked [jsonNumRoles]int
	attrs  []int
	// refs are attrs for LineFields, each with its key and run: 1<<m
	// (0 for 64), where m is how many of attrs, from that one on, follow
	// each other in the line as JSON members of one object would: each
	// value right after the one before it, with only `,"key":` between
	// the closing quote of one and the opening quote of the next. When
	// they are all strings that need no escaping, the text from the
	// first's value to the last's is the members as a writer of them
	// would write them (LineFields.AttrRun).
	refs []jsonAttrRef
}

// jsonLit is a shape's text between two values.
type jsonLit struct {
	text string
	// w holds text's first 16 bytes as little-endian words, and mask
	// the bytes of w that it has, so that a short text compares in two
	// loads. When quoted, a string value followed text as the shape was
	// learnt, and w and mask have its opening quote after text too: a
	// field's value mostly keeps its kind, and one comparison then finds
	// both. n is the length of what they stand for: len(text), plus one
	// when quoted.
	w, mask [2]uint64
	n       int
	quoted  bool
}

// newJSONLit makes the jsonLit of text, which a string value follows
// when quoted.
func newJSONLit(text string, quoted bool) jsonLit {
	l := jsonLit{text: text, n: len(text)}
	if quoted && len(text) < 16 {
		l.n, l.quoted = len(text)+1, true
	}
	for i := 0; i < l.n && i < 16; i++ {
		c := byte('"')
		if i < len(text) {
			c = text[i]
		}
		l.w[i/8] |= uint64(c) << (8 * (i % 8))
		l.mask[i/8] |= 0xff << (8 * (i % 8))
	}
	return l
}

// at tells whether line holds l at pos.
func (l *jsonLit) at(line []byte, pos int) bool {
	end := pos + len(l.text)
	return end <= len(line) && string(line[pos:end]) == l.text
}

// jsonVal is one value of a line: its text line[lo:hi] (a string's
// without the quotes) and its kind, as jsonLeaf's. wide marks a string
// with bytes outside ASCII; every other value's text is printable ASCII
// without '"' or '\\'.
type jsonVal struct {
	lo, hi int
	kind   byte
	wide   bool
}

// jsonFast is the fast path's state, reused from line to line.
type jsonFast struct {
	shapes [jsonShapes]*jsonShape // most recently matched first; nil at the end
	vals   []jsonVal
	// A shape being scanned: the start of the text before each value and,
	// last, of the tail; the flattened keys, end to end, and their ends;
	// the key prefix of the open objects ("src.").
	litStarts []int
	keyBuf    []byte
	keyEnds   []int
	prefix    []byte
	// last holds the value each role took on the previous line.
	last [jsonNumRoles]string
	// text and attrs are the slabs events' strings and Attrs come from.
	// text is only appended to, so strings may point into it.
	text  strings.Builder
	attrs []Attr
	// skip counts the lines left to give jsonScanner without trying;
	// backoff is the next skip after a line the fast path cannot take.
	skip, backoff int
	events        int // built by the fast path
	// attrRefs holds a lazy line's Attrs when its shape's list does not
	// apply (LineFields.attrs).
	attrRefs []jsonAttrRef
}

// fast parses line into e if it has a shape; it is false, e undefined,
// for any line the fast path does not take, and for the lines of a
// backoff after one.
func (p *jsonLines) fast(line []byte, e *Event) bool {
	m, ok := p.fastMatch(line)
	if !ok {
		return false
	}
	fs := &p.fs
	cp := m.cp // the line in the text slab
	if cp == "" {
		cp = fs.copyText(line)
	}
	name := ""
	if i := m.picked[jsonRoleMessage]; i >= 0 {
		v := fs.vals[i]
		name = cp[v.lo:v.hi]
	}
	var as []Attr
	if m.attrs != nil {
		as = fs.newAttrs(len(m.attrs))
		for j, i := range m.attrs {
			v := fs.vals[i]
			as[j] = Attr{Key: m.sh.keys[i], Value: cp[v.lo:v.hi]}
		}
	} else {
		as = fs.newAttrs(len(fs.vals))[:0]
		for i, v := range fs.vals {
			if !jsonPicked(m.picked, i) {
				as = append(as, Attr{Key: m.sh.keys[i], Value: cp[v.lo:v.hi]})
			}
		}
	}
	p.fastEvent(line, cp, &m, e)
	e.Name, e.Attrs = name, as
	fs.events++
	return true
}

// fastLine is a line the fast path takes: its shape, the values each
// role takes and the values that become Attrs (nil: every value not
// picked), and its time. cp is the line's copy in the text slab when
// learning its shape made one, else "". plain has bit i set when value
// i is a string that needs no escaping.
type fastLine struct {
	sh      *jsonShape
	picked  [jsonNumRoles]int
	attrs   []int
	localNs int64
	cp      string
	plain   uint64
}

// fastMatch finds line's shape, learning it if need be, and reads its
// time into m; p.fs.vals holds its values. It is false for any line the
// fast path does not take, and for the lines of a backoff after one.
func (p *jsonLines) fastMatch(line []byte) (m fastLine, ok bool) {
	fs := &p.fs
	if fs.skip > 0 {
		fs.skip--
		return m, false
	}
	var nulls uint64
	for i, s := range fs.shapes {
		if s == nil {
			break
		}
		if fs.vals, nulls, m.plain, ok = s.match(line, fs.vals[:0]); ok {
			fs.touch(i)
			m.sh = s
			break
		}
	}
	if m.sh == nil {
		if m.sh, m.cp, nulls, m.plain, ok = p.learn(line); !ok {
			if jsonSkipWS(line, 0) == len(line) {
				return m, false // blank: no reason to back off
			}
			fs.skip = fs.backoff
			fs.backoff = min(2*fs.backoff+1, jsonMaxBackoff)
			return m, false
		}
	}
	return m, p.fastFinish(line, &m, nulls)
}

// touch makes shape i the most recent, first to be tried.
func (fs *jsonFast) touch(i int) {
	if i > 0 {
		s := fs.shapes[i]
		copy(fs.shapes[1:i+1], fs.shapes[:i])
		fs.shapes[0] = s
	}
}

// fastFinish completes m for line, whose shape m.sh matched with the
// null values nulls: the values each role takes, and the time. It is
// false when the fast path does not take the line.
func (p *jsonLines) fastFinish(line []byte, m *fastLine, nulls uint64) bool {
	fs := &p.fs
	fs.backoff = 0
	m.picked, m.attrs = m.sh.picked, m.sh.attrs
	if nulls&m.sh.cand != 0 {
		m.picked, m.attrs = p.pick(m.sh.keys, fs.vals), nil
	}
	if p.roles[jsonRoleTime] != nil {
		ti := m.picked[jsonRoleTime]
		if ti < 0 {
			return false // jsonScanner reports it
		}
		v := fs.vals[ti]
		var err error
		if m.localNs, err = p.readTime(line[v.lo:v.hi], v.kind); err != nil {
			return false
		}
	}
	return true
}

// fastEvent sets e's fields but Name and Attrs from m. cp is line's
// copy in the text slab, or "" when the values e keeps are to be copied
// there one by one.
func (p *jsonLines) fastEvent(line []byte, cp string, m *fastLine, e *Event) {
	fs := &p.fs
	source, host, kind := p.opts.File, p.opts.Host, KindLog
	if i := m.picked[jsonRoleSource]; i >= 0 {
		source = fs.repeat(&fs.last[jsonRoleSource], line, cp, fs.vals[i])
	}
	if i := m.picked[jsonRoleHost]; i >= 0 {
		host = fs.repeat(&fs.last[jsonRoleHost], line, cp, fs.vals[i])
	}
	if i := m.picked[jsonRoleKind]; i >= 0 {
		if kind = fs.repeat(&fs.last[jsonRoleKind], line, cp, fs.vals[i]); kind == "" {
			kind = KindLog
		}
	}
	// Field by field: assigning a whole Event would build it aside and
	// copy it.
	e.Source, e.SourceSeq, e.Host, e.LocalNs, e.Kind = source, p.seqs.next(source), host, m.localNs, kind
	e.Untimed = p.roles[jsonRoleTime] == nil
	e.RefEarliest, e.RefLatest, e.Name, e.DurNs, e.Attrs = 0, 0, "", 0, nil
}

// repeat is the text of v, a value of line (and of cp, as fastEvent's)
// that mostly repeats from line to line (host, source, kind): last, the
// previous line's, when equal, so that consumers comparing them find the
// same memory.
func (fs *jsonFast) repeat(last *string, line []byte, cp string, v jsonVal) string {
	if string(line[v.lo:v.hi]) != *last {
		*last = fs.keep(line, cp, v)
	}
	return *last
}

// keep is v's text in memory that outlives line: in cp, fastEvent's, or
// else copied into the text slab.
func (fs *jsonFast) keep(line []byte, cp string, v jsonVal) string {
	if cp != "" {
		return cp[v.lo:v.hi]
	}
	return fs.copyText(line[v.lo:v.hi])
}

// pick is jsonScanner.find for every role over a shape's keys: per role,
// the first value, by path order then position, whose key is the path
// and that is not null (vals nil: no value is null).
func (p *jsonLines) pick(keys []string, vals []jsonVal) (picked [jsonNumRoles]int) {
	for r := range picked {
		picked[r] = -1
	find:
		for _, path := range p.roles[r] {
			for i, k := range keys {
				if k == path && (vals == nil || vals[i].kind != 'z') {
					picked[r] = i
					break find
				}
			}
		}
	}
	return picked
}

// copyText copies b into the text slab. A new slab is not cleared
// first: strings.Builder grows without.
func (fs *jsonFast) copyText(b []byte) string {
	if fs.text.Cap()-fs.text.Len() < len(b) {
		fs.text = strings.Builder{}
		fs.text.Grow(max(jsonSlabBytes, len(b)))
	}
	lo := fs.text.Len()
	fs.text.Write(b)
	return fs.text.String()[lo:]
}

// newAttrs returns n Attrs from the Attr slab, capped so that an append
// by the caller reallocates instead of overwriting a neighbour's. It is
// never nil, as jsonScanner's are not.
func (fs *jsonFast) newAttrs(n int) []Attr {
	if fs.attrs == nil || cap(fs.attrs)-len(fs.attrs) < n {
		fs.attrs = make([]Attr, 0, max(jsonSlabAttrs, n))
	}
	lo := len(fs.attrs)
	fs.attrs = fs.attrs[:lo+n]
	return fs.attrs[lo : lo+n : lo+n]
}

// match reads line as sh: each lit verbatim followed by a scalar value,
// then tail. nulls has bit i set when value i is null, plain when it is
// a string that needs no escaping (jsonPlainVal).
func (sh *jsonShape) match(line []byte, vals []jsonVal) (_ []jsonVal, nulls, plain uint64, ok bool) {
	vals, nulls, plain, pos, ok := sh.matchValues(line, vals)
	return vals, nulls, plain, ok && string(line[pos:]) == sh.tail
}

// jsonPlainVal tells whether v is a string that needs no escaping: one
// of printable ASCII without '"' or '\\'.
func jsonPlainVal(v jsonVal) bool { return v.kind == 's' && !v.wide }

// matchValues reads the start of line as sh up to its tail: each lit
// verbatim followed by a scalar value; pos is where the tail belongs.
// nulls and plain are match's. The common values (ASCII strings,
// integers) are read here; jsonScalar reads the others. No lit, value or
// tail holds a '\n', so on a buffer of lines it reads the first line
// only.
func (sh *jsonShape) matchValues(line []byte, vals []jsonVal) (_ []jsonVal, nulls, plain uint64, pos int, ok bool) {
	if cap(vals) < len(sh.lits) {
		vals = make([]jsonVal, 0, jsonMaxLeaves)
	}
	vals = vals[:len(sh.lits)]
	lits := sh.lits[:len(vals)]
	for i := range vals {
		lit := &lits[i]
		if lit.n <= 16 && pos+16 <= len(line) {
			// Fixed-size views of the line need no bounds checks per word.
			w := (*[16]byte)(line[pos:])
			a, b := binary.LittleEndian.Uint64(w[:8]), binary.LittleEndian.Uint64(w[8:])
			if (a^lit.w[0])&lit.mask[0]|(b^lit.w[1])&lit.mask[1] == 0 {
				start := pos + lit.n
				if lit.quoted {
					// Most strings are short: their end is in the first
					// two words, found without a call.
					var end int
					if start+16 > len(line) {
						end = jsonSpecial(line, start)
					} else {
						w := (*[16]byte)(line[start:])
						if m := jsonSpecialMask(binary.LittleEndian.Uint64(w[:8])); m != 0 {
							end = start + bits.TrailingZeros64(m)/8
						} else if m := jsonSpecialMask(binary.LittleEndian.Uint64(w[8:])); m != 0 {
							end = start + 8 + bits.TrailingZeros64(m)/8
						} else {
							end = jsonSpecial(line, start+16)
						}
					}
					if end < len(line) && line[end] == '"' {
						vals[i] = jsonVal{start, end, 's', false}
						plain |= 1 << (uint(i) & 63)
						pos = end + 1
						continue
					}
					start-- // the quote: jsonScalar reads the string
				} else if start < len(line) && '1' <= line[start] && line[start] <= '9' {
					if end := jsonDigitsEnd(line, start+1); end == len(line) || line[end] != '.' && line[end]|0x20 != 'e' {
						vals[i] = jsonVal{start, end, 'n', false}
						pos = end
						continue
					}
				}
				pos = start
			} else if !lit.quoted || !lit.at(line, pos) {
				return vals[:0], 0, 0, 0, false
			} else {
				pos += len(lit.text) // a value of another kind than the learnt one
			}
		} else if !lit.at(line, pos) {
			return vals[:0], 0, 0, 0, false
		} else {
			pos += len(lit.text)
		}
		v, next, ok := jsonScalar(line, pos)
		if !ok {
			return vals[:0], 0, 0, 0, false
		}
		if v.kind == 'z' {
			nulls |= 1 << i
		} else if jsonPlainVal(v) {
			plain |= 1 << i
		}
		vals[i] = v
		pos = next
	}
	return vals, nulls, plain, pos, true
}

// jsonDigitsEnd is the index of the first byte at or after i that is not
// an ASCII digit; len(b) if none. It looks at 8 bytes at a time.
func jsonDigitsEnd(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		// A byte c is a digit when d = c-'0' is below 10: d has its high
		// bit clear and so has d+0x76. Bytes below the first that is not
		// a digit get no borrow or carry from it, so that it is the
		// first flagged.
		d := binary.LittleEndian.Uint64(b[i:]) - '0'*ones
		if m := (d + 0x76*ones | d) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// learn scans line for a new shape and makes it the most recent one, in
// place of the least recent; cp is the line's copy in the text slab and
// p.fs.vals its values, nulls and plain as match's.
func (p *jsonLines) learn(line []byte) (sh *jsonShape, cp string, nulls, plain uint64, ok bool) {
	fs := &p.fs
	if !fs.scanShape(line) {
		return nil, "", 0, 0, false
	}
	// Events hold text of the shape they came from, which is in the
	// slab, but never its slices, so those are reused.
	sh = fs.shapes[jsonShapes-1]
	if sh == nil {
		sh = new(jsonShape)
	}
	copy(fs.shapes[1:], fs.shapes[:jsonShapes-1])
	fs.shapes[0] = sh
	cp = fs.copyText(line)
	keys := fs.copyText(fs.keyBuf)
	sh.lits, sh.keys, sh.attrs, sh.cand = sh.lits[:0], sh.keys[:0], sh.attrs[:0], 0
	lo := 0
	for i, v := range fs.vals {
		start := v.lo
		if v.kind == 's' {
			start-- // the quote
		}
		sh.lits = append(sh.lits, newJSONLit(cp[fs.litStarts[i]:start], v.kind == 's'))
		sh.keys = append(sh.keys, keys[lo:fs.keyEnds[i]])
		lo = fs.keyEnds[i]
		if v.kind == 'z' {
			nulls |= 1 << i
		} else if jsonPlainVal(v) {
			plain |= 1 << i
		}
	}
	sh.tail = cp[fs.litStarts[len(fs.vals)]:]
	sh.picked = p.pick(sh.keys, nil)
	for i, k := range sh.keys {
		for _, paths := range p.roles {
			for _, path := range paths {
				if k == path {
					sh.cand |= 1 << i
				}
			}
		}
		if !jsonPicked(sh.picked, i) {
			sh.attrs = append(sh.attrs, i)
		}
	}
	sh.refs = sh.refs[:0]
	for _, i := range sh.attrs {
		sh.refs = append(sh.refs, jsonAttrRef{key: sh.keys[i], val: i, run: 1 << 1})
	}
	m := 1 // the length of the run from attrs[k] on
	for k := len(sh.attrs) - 2; k >= 0; k-- {
		if i := sh.attrs[k+1]; i == sh.attrs[k]+1 && sh.lits[i].member(sh.keys[i]) {
			m++
		} else {
			m = 1
		}
		sh.refs[k].run = 1 << m
	}
	return sh, cp, nulls, plain, true
}

// member tells whether l is the text between two members of one object,
// the second's key being key, as a writer without spaces writes it:
// `,"key":`.
func (l *jsonLit) member(key string) bool {
	t := l.text
	return len(t) == len(key)+4 && t[:2] == `,"` && t[2:2+len(key)] == key && t[2+len(key):] == `":`
}

// scanShape reads line as an object whose members are scalars or, at
// most jsonShapeDepth deep, non-empty objects of the same, with keys of
// printable ASCII and no escapes. It fills vals, litStarts, keyBuf and
// keyEnds, and is false for any other line.
func (fs *jsonFast) scanShape(line []byte) bool {
	fs.vals, fs.litStarts, fs.keyBuf, fs.keyEnds, fs.prefix = fs.vals[:0], fs.litStarts[:0], fs.keyBuf[:0], fs.keyEnds[:0], fs.prefix[:0]
	var prefixLens [jsonShapeDepth]int
	depth := 0 // objects open inside the top-level one
	// arena bounds what jsonScanner's arena would hold, which it limits.
	arena, arenaMax := 0, 16*len(line)+4096
	pos := jsonSkipWS(line, 0)
	if pos == len(line) || line[pos] != '{' {
		return false
	}
	pos++
	litStart := 0
	for {
		pos = jsonSkipWS(line, pos)
		if pos == len(line) || line[pos] != '"' {
			return false // an empty object too
		}
		end := jsonSpecial(line, pos+1)
		if end == len(line) || line[end] != '"' {
			return false // an escape, a control byte or non-ASCII in a key
		}
		key := line[pos+1 : end]
		if arena += len(fs.prefix) + len(key); arena > arenaMax {
			return false
		}
		pos = jsonSkipWS(line, end+1)
		if pos == len(line) || line[pos] != ':' {
			return false
		}
		pos = jsonSkipWS(line, pos+1)
		if pos < len(line) && line[pos] == '{' {
			if depth == jsonShapeDepth {
				return false
			}
			prefixLens[depth] = len(fs.prefix)
			depth++
			fs.prefix = append(append(fs.prefix, key...), '.')
			pos++
			continue
		}
		v, next, ok := jsonScalar(line, pos)
		if !ok || len(fs.vals) == jsonMaxLeaves {
			return false
		}
		if arena += v.hi - v.lo; arena > arenaMax {
			return false
		}
		fs.vals = append(fs.vals, v)
		fs.litStarts = append(fs.litStarts, litStart)
		fs.keyBuf = append(append(fs.keyBuf, fs.prefix...), key...)
		fs.keyEnds = append(fs.keyEnds, len(fs.keyBuf))
		litStart = next
		pos = jsonSkipWS(line, next)
		for pos < len(line) && line[pos] == '}' {
			if depth == 0 {
				fs.litStarts = append(fs.litStarts, litStart)
				return jsonSkipWS(line, pos+1) == len(line)
			}
			depth--
			fs.prefix = fs.prefix[:prefixLens[depth]]
			pos = jsonSkipWS(line, pos+1)
		}
		if pos == len(line) || line[pos] != ',' {
			return false
		}
		pos++
	}
}

// jsonScalar reads the value at line[pos] if it is a string that needs
// no decoding (no escape or control byte, valid UTF-8), a number, true,
// false or null. next is the index after it.
func jsonScalar(line []byte, pos int) (v jsonVal, next int, ok bool) {
	if pos >= len(line) {
		return jsonVal{}, 0, false
	}
	switch c := line[pos]; c {
	case '"':
		i, high := pos+1, false
		for {
			if i = jsonSpecial(line, i); i == len(line) {
				return jsonVal{}, 0, false
			}
			if c := line[i]; c == '"' {
				break
			} else if c < utf8.RuneSelf {
				return jsonVal{}, 0, false // '\\' or a control byte
			}
			high = true
			i++
		}
		if high && !utf8.Valid(line[pos+1:i]) {
			return jsonVal{}, 0, false
		}
		return jsonVal{pos + 1, i, 's', high}, i + 1, true
	case 't', 'f', 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if end := pos + len(lit); end <= len(line) && string(line[pos:end]) == lit {
				kind := byte('b')
				if c == 'n' {
					kind = 'z'
				}
				return jsonVal{pos, end, kind, false}, end, true
			}
		}
		return jsonVal{}, 0, false
	}
	end, bad := jsonNumberEnd(line, pos)
	return jsonVal{pos, end, 'n', false}, end, bad == ""
}

// jsonNumberEnd is the end of the number at in[i], which must match
// -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?. When it does not, bad says
// where it failed, for a syntax error, and end is where.
func jsonNumberEnd(in []byte, i int) (end int, bad string) {
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && '1' <= in[i] && in[i] <= '9':
		for i++; i < len(in) && isDigit(in[i]); i++ {
		}
	default:
		return i, "where a value belongs"
	}
	if i < len(in) && in[i] == '.' {
		i++
		if i >= len(in) || !isDigit(in[i]) {
			return i, "in a number's fraction"
		}
		for i < len(in) && isDigit(in[i]) {
			i++
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if i >= len(in) || !isDigit(in[i]) {
			return i, "in a number's exponent"
		}
		for i < len(in) && isDigit(in[i]) {
			i++
		}
	}
	return i, ""
}

// jsonSkipWS is the index of the first byte at or after i that is not
// JSON whitespace.
func jsonSkipWS(line []byte, i int) int {
	for i < len(line) {
		switch line[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// jsonSpecial is the index of the first byte at or after i that a string
// cannot hold as it is ('"', '\\', a control byte) or that starts or
// continues a multi-byte character; len(b) if none. It looks at 8 bytes
// at a time.
func jsonSpecial(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := jsonSpecialMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if !jsonPlain[b[i]] {
			return i
		}
	}
	return len(b)
}

// jsonSpecialMask flags the high bit of the bytes of the little-endian
// word x that jsonSpecial stops at. It is exact up to the first flagged
// byte, which is all that is used: a borrow only runs upwards, from a
// flagged byte, and below it a difference has its high bit set only
// where x has it, which x flags anyway.
func jsonSpecialMask(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, bs := x^('"'*ones), x^('\\'*ones) // zero bytes where x has '"' or '\\'
	return ((x - 0x20*ones) | (q - ones) | (bs - ones) | x) & highs
}

// jsonPow10 holds the powers of ten readTime scales integers by.
var jsonPow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// unixIntToNs is decimalToNs for the common case of 1 to 19 digits
// without a leading zero or sign, when the result fits; ok is false for
// any other text or result, which decimalToNs then handles.
func unixIntToNs(val []byte, exp int) (int64, bool) {
	n := len(val)
	if n == 0 || n > 19 || val[0] == '0' {
		return 0, false
	}
	var u uint64
	i := n % 8
	for _, c := range val[:i] {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		u = u*10 + uint64(d)
	}
	for ; i < n; i += 8 {
		v, ok := eightDigits(binary.LittleEndian.Uint64(val[i:]))
		if !ok {
			return 0, false
		}
		u = u*1e8 + v
	}
	if exp < 0 {
		switch {
		case n <= 11:
			exp = 9
		case n <= 14:
			exp = 6
		case n <= 17:
			exp = 3
		default:
			exp = 0
		}
	}
	if n+exp > 19 {
		return 0, false
	}
	u *= jsonPow10[exp] // < 10^19 < 2^64
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// eightDigits is the value of the 8 ASCII digits in the little-endian
// word x, the first digit in the lowest byte; ok is false if any byte is
// not a digit.
func eightDigits(x uint64) (uint64, bool) {
	const ones = 0x0101010101010101
	// A byte is a digit when its high nibble is 3 and adding 6 leaves it
	// at 3 (no carry out of '9').
	if x&(0xf0*ones)|((x+0x06*ones)&(0xf0*ones))>>4 != 0x33*ones {
		return 0, false
	}
	x -= '0' * ones
	x = x*10 + x>>8 // pairs: byte 2k holds digits 2k,2k+1 as a number < 100
	x = ((x&0x000000ff000000ff)*(100+1000000<<32) + (x>>16&0x000000ff000000ff)*(1+10000<<32)) >> 32
	return x, true
}
