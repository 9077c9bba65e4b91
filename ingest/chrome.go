package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// NewChrome reads the Trace Event Format that Chrome's about:tracing,
// Perfetto's JSON importer and Go's `go tool trace` speak: the JSON Array
// Format [{...}, ...], whose closing ']' may be missing (and a trailing
// comma left) as when the writer died, or the JSON Object Format
// {"traceEvents": [...], ...}, whose other members (displayTimeUnit,
// stackFrames, systemTraceEvents, ...) are skipped.
//
// The input is streamed one event at a time; one event may be at most
// Options.MaxLineBytes of JSON (a longer one ends the parse with a
// *LineError, as the stream cannot be resumed inside it).
//
// Each event becomes one Event, except "t", which becomes two:
//   - LocalNs is ts, in µs, converted exactly to ns. Its origin is the
//     tracer's: Chrome uses its monotonic clock, `go tool trace` the
//     trace's start (ts 0), others the Unix epoch. tracecat corrects it
//     with the host's offset. An M event without ts is Untimed.
//   - Source is "<pid>/<tid>", so that a thread's events keep their order;
//     without either it is Options.File. Host is Options.Host.
//   - Attrs: pid, tid, process and thread (names from earlier "M" events),
//     category (cat), ph, then per phase scope (s), id, flow_id and bp,
//     then args flattened with the prefix "args." (nested objects with
//     dots, arrays as compact JSON).
//   - Kind by ph: B begin, E end, X span (DurNs from dur), i and I instant,
//     C counter (one attr args.<series> per series), b/e/n (nestable
//     async) and S/F/T/p (legacy async) begin/end/instant with attr id
//     (id2's global id, or "pid<pid>:<local id>"),
//     s flow-start, f flow-end, t (a flow step) a flow-end then a
//     flow-start at the same time, so that each flow-start pairs with the
//     next flow-end of its flow_id. flow_id is "<cat>:<id>" ("<id>" without
//     cat): Chrome matches flows on both. M (metadata) and every other
//     phase are KindLog named after the event.
//
// Malformed events (no ph, no ts, X without dur, a flow without id, ...)
// are reported at the line of the offending value and skipped. Invalid
// JSON ends the parse with a *LineError in every mode; input that ends
// inside an event is a malformed last record.
//
// HAZARD: a skipped member is read whole, however long: Chrome's
// systemTraceEvents (ftrace text in one JSON string) can be hundreds of MB.
// Process and thread names reach only the events after their "M" event;
// Chrome writes metadata last, so tracecat should also read the M events.
func NewChrome(r io.Reader, opts Options) Parser {
	return &chromeParser{
		opts:    opts,
		doc:     newDocStream(r, opts.MaxLineBytes),
		procs:   make(map[string]string),
		threads: make(map[string]string),
	}
}

// Where a chromeParser stands in its input.
const (
	chromeStart  = iota
	chromeObject // inside the top-level object, between members
	chromeEvents // inside the event array
	chromeAfter  // after the top-level value
	chromeDone
)

type chromeParser struct {
	Counter
	opts  Options
	doc   *docStream
	seqs  sourceSeqs
	state int
	// bare: the input is the JSON Array Format, which may end unterminated.
	bare bool
	// procs maps pid, threads "pid/tid", to the names "M" events gave them.
	procs, threads map[string]string
	// queue holds the second event of a "t"; queue[next:] are due.
	queue []Event
	next  int
	err   error // sticky: I/O failure, fatal LineError, or io.EOF
}

func (p *chromeParser) Next() (Event, error) {
	for p.next == len(p.queue) && p.err == nil {
		p.queue, p.next = p.queue[:0], 0
		if err := p.step(); err != nil {
			p.err = err
		}
	}
	if p.next < len(p.queue) {
		e := p.queue[p.next]
		p.next++
		return e, nil
	}
	return Event{}, p.err
}

func (p *chromeParser) step() error {
	d := p.doc
	switch p.state {
	case chromeStart:
		tok, err := d.token()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return p.fail(err)
		}
		switch tok {
		case json.Delim('['):
			p.state, p.bare = chromeEvents, true
		case json.Delim('{'):
			p.state = chromeObject
		default:
			return p.fail(d.unexpected(tok, "a JSON array or object of trace events"))
		}
	case chromeObject:
		if !d.more() {
			return p.end()
		}
		key, err := d.key()
		if err != nil {
			return p.fail(err)
		}
		if key != "traceEvents" {
			if err := d.skip(); err != nil {
				return p.fail(err)
			}
			return nil
		}
		open, err := d.openArray(key)
		if err != nil {
			return p.fail(err)
		}
		if open {
			p.state = chromeEvents
		}
	case chromeEvents:
		if !d.more() {
			return p.end()
		}
		v, err := d.value()
		if err == io.EOF && p.bare { // "[{...}," and nothing more
			return io.EOF
		}
		if err != nil {
			return p.fail(err)
		}
		p.event(v)
	case chromeAfter:
		tok, err := d.token()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return p.fail(err)
		}
		return p.fail(d.unexpected(tok, "the end of the input after the trace"))
	}
	return nil
}

// end consumes the ']' or '}' closing the current level.
func (p *chromeParser) end() error {
	_, err := p.doc.token()
	switch {
	case err == io.EOF && p.bare && p.state == chromeEvents:
		return io.EOF // the Array Format's ']' is optional
	case err != nil:
		return p.fail(err)
	case p.state == chromeEvents && !p.bare:
		p.state = chromeObject
	default:
		p.state = chromeAfter
	}
	return nil
}

func (p *chromeParser) fail(err error) error {
	err = p.doc.final(err, &p.opts, p.state == chromeObject || p.state == chromeEvents)
	return p.doc.settle(err, &p.opts, &p.Counter)
}

// chromeEventJSON is one trace event's members. Numbers and ids are kept
// raw: ts and dur are read exactly, pid, tid and id may be numbers or
// strings.
type chromeEventJSON struct {
	Name, Cat, Ph, S, Bp string
	Ts, Dur, Pid, Tid    []byte
	ID, ID2Local         []byte
	ID2Global            []byte
	Args                 []byte
}

// read takes the members of the event object raw; others are ignored.
func (c *chromeEventJSON) read(raw []byte) error {
	return rawMembers(raw, "record", func(key string, val []byte) error {
		switch key {
		case "name":
			return rawString(&c.Name, key, val)
		case "cat":
			return rawString(&c.Cat, key, val)
		case "ph":
			return rawString(&c.Ph, key, val)
		case "s":
			return rawString(&c.S, key, val)
		case "bp":
			return rawString(&c.Bp, key, val)
		case "ts":
			c.Ts = val
		case "dur":
			c.Dur = val
		case "pid":
			c.Pid = val
		case "tid":
			c.Tid = val
		case "id":
			c.ID = val
		case "args":
			c.Args = val
		case "id2":
			if val[0] == 'n' {
				return nil
			}
			return rawMembers(val, "id2", func(k string, v []byte) error {
				switch k {
				case "local":
					c.ID2Local = v
				case "global":
					c.ID2Global = v
				}
				return nil
			})
		}
		return nil
	})
}

func (p *chromeParser) event(v docValue) {
	var c chromeEventJSON
	err := c.read(v.raw)
	var evs []Event
	if err == nil {
		evs, err = p.convert(&c)
	}
	if err != nil {
		if err := p.Report(&p.opts, v.errLine(err), err); err != nil {
			p.err = err
		}
		return
	}
	for i := range evs {
		evs[i].SourceSeq = p.seqs.next(evs[i].Source)
	}
	p.queue = append(p.queue, evs...)
}

// convert maps one decoded event; errors are *pathError.
func (p *chromeParser) convert(c *chromeEventJSON) ([]Event, error) {
	if c.Ph == "" {
		return nil, atPath(errors.New(`event has no "ph"`), "ph")
	}
	pid, err := chromeScalar(c.Pid, "pid")
	if err != nil {
		return nil, err
	}
	tid, err := chromeScalar(c.Tid, "tid")
	if err != nil {
		return nil, err
	}
	e := Event{Source: p.opts.File, Host: p.opts.Host, Kind: KindLog, Name: c.Name}
	if pid != "" || tid != "" {
		e.Source = pid + "/" + tid
	}
	if len(c.Ts) == 0 && c.Ph == "M" {
		e.Untimed = true
	} else if e.LocalNs, err = chromeMicros(c.Ts, "ts"); err != nil {
		return nil, err
	}
	e.Attrs = make([]Attr, 0, 8)
	if pid != "" {
		e.Attrs = append(e.Attrs, Attr{"pid", pid})
	}
	if tid != "" {
		e.Attrs = append(e.Attrs, Attr{"tid", tid})
	}
	if n, ok := p.procs[pid]; ok {
		e.Attrs = append(e.Attrs, Attr{"process", n})
	}
	if n, ok := p.threads[e.Source]; ok {
		e.Attrs = append(e.Attrs, Attr{"thread", n})
	}
	if c.Cat != "" {
		e.Attrs = append(e.Attrs, Attr{"category", c.Cat})
	}
	e.Attrs = append(e.Attrs, Attr{"ph", c.Ph})
	second, err := p.phase(&e, c)
	if err != nil {
		return nil, err
	}
	if e.Attrs, err = chromeArgs(e.Attrs, "args.", c.Args, 0); err != nil {
		return nil, atPath(err, "args")
	}
	if c.Ph == "M" {
		p.metadata(c.Name, pid, e.Source, &e)
	}
	if second {
		// A flow step: the flow-end of the segment before, then the
		// flow-start of the segment after.
		f := e
		f.Kind = KindFlowStart
		f.Attrs = append([]Attr(nil), e.Attrs...)
		return []Event{e, f}, nil
	}
	return []Event{e}, nil
}

// phase sets Kind, DurNs and the phase's attrs; second reports a flow step,
// which needs a second event.
func (p *chromeParser) phase(e *Event, c *chromeEventJSON) (second bool, err error) {
	switch c.Ph {
	case "B":
		e.Kind = KindBegin
	case "E":
		e.Kind = KindEnd
	case "X":
		e.Kind = KindSpan
		if len(c.Dur) == 0 {
			return false, atPath(errors.New(`complete event (ph "X") has no "dur"`), "dur")
		}
		if e.DurNs, err = chromeMicros(c.Dur, "dur"); err != nil {
			return false, err
		}
		if e.DurNs < 0 {
			return false, atPath(fmt.Errorf("dur %s is negative", c.Dur), "dur")
		}
	case "i", "I":
		e.Kind = KindInstant
		if c.S != "" {
			e.Attrs = append(e.Attrs, Attr{"scope", c.S})
		}
	case "C":
		e.Kind = KindCounter
	case "b", "S", "e", "F", "n", "T", "p":
		switch c.Ph {
		case "b", "S":
			e.Kind = KindBegin
		case "e", "F":
			e.Kind = KindEnd
		default:
			e.Kind = KindInstant
		}
		id, err := p.id(c)
		if err != nil {
			return false, err
		}
		e.Attrs = append(e.Attrs, Attr{"id", id})
	case "s", "t", "f":
		e.Kind = KindFlowStart
		if c.Ph != "s" {
			e.Kind = KindFlowEnd
		}
		id, err := p.id(c)
		if err != nil {
			return false, err
		}
		if c.Cat != "" {
			id = c.Cat + ":" + id
		}
		e.Attrs = append(e.Attrs, Attr{"flow_id", id})
		if c.Bp != "" {
			e.Attrs = append(e.Attrs, Attr{"bp", c.Bp})
		}
		return c.Ph == "t", nil
	}
	return false, nil
}

// id reads an event's id, or its id2 ({"global": x} or {"local": x},
// local ids being scoped to the process).
func (p *chromeParser) id(c *chromeEventJSON) (string, error) {
	if len(c.ID2Global) > 0 {
		return chromeScalar(c.ID2Global, "id2", "global")
	}
	if len(c.ID2Local) > 0 {
		id, err := chromeScalar(c.ID2Local, "id2", "local")
		pid, _ := chromeScalar(c.Pid, "pid")
		return "pid" + pid + ":" + id, err
	}
	id, err := chromeScalar(c.ID, "id")
	if err == nil && id == "" {
		err = atPath(fmt.Errorf(`event (ph %q) has no "id"`, c.Ph), "id")
	}
	return id, err
}

// metadata remembers process_name and thread_name for later events.
func (p *chromeParser) metadata(name, pid, source string, e *Event) {
	n, ok := e.Attr("args.name")
	if !ok {
		return
	}
	switch name {
	case "process_name":
		p.procs[pid] = n
	case "thread_name":
		p.threads[source] = n
	}
}

// chromeScalar reads a number or a string as text; "" when absent.
func chromeScalar(raw []byte, path ...string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", atPath(err, path...)
		}
		return s, nil
	case '{', '[', 't', 'f':
		return "", atPath(fmt.Errorf("%s %s is not a number or a string", path[len(path)-1], clip(raw)), path...)
	}
	return string(raw), nil
}

// chromeMicros reads a µs value (a number, or a string holding one) to ns
// exactly.
func chromeMicros(raw []byte, name string) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, atPath(fmt.Errorf("event has no %q", name), name)
	}
	text := raw
	if raw[0] == '"' {
		text = bytes.Trim(raw, `"`)
	}
	ns, err := decimalToNs(text, 3)
	if err != nil {
		return 0, atPath(fmt.Errorf("%s: %v", name, err), name)
	}
	return ns, nil
}

// chromeMaxArgsDepth bounds how deep args are flattened; deeper objects
// stay compact JSON.
const chromeMaxArgsDepth = 8

// chromeArgs flattens the args object in input order.
func chromeArgs(out []Attr, prefix string, raw []byte, depth int) ([]Attr, error) {
	if len(raw) == 0 || raw[0] == 'n' {
		return out, nil
	}
	if raw[0] != '{' {
		return append(out, Attr{strings.TrimSuffix(prefix, "."), chromeText(raw)}), nil
	}
	empty := true
	err := rawMembers(raw, "args", func(k string, v []byte) error {
		empty = false
		key := prefix + k
		if v[0] == '{' && depth < chromeMaxArgsDepth {
			var err error
			out, err = chromeArgs(out, key+".", v, depth+1)
			return err
		}
		out = append(out, Attr{key, chromeText(v)})
		return nil
	})
	if empty && depth > 0 {
		out = append(out, Attr{strings.TrimSuffix(prefix, "."), "{}"})
	}
	return out, err
}

// chromeText renders a JSON value: a string decoded, anything else as
// compact JSON.
func chromeText(v []byte) string {
	if v[0] == '"' {
		var s string
		rawString(&s, "", v)
		return s
	}
	if v[0] != '{' && v[0] != '[' {
		return string(v)
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}
