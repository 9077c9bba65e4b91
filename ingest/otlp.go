package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// NewOTLP reads OpenTelemetry trace data in the OTLP/JSON encoding: one or
// more ExportTraceServiceRequest objects, as the collector's file exporter
// writes them (one per line), as one document of any layout, or as a JSON
// array of them.
//
// The input is streamed: the parser walks resourceSpans, scopeSpans and
// spans token by token and decodes one span at a time, so memory does not
// grow with the number of spans. One span (or one resource or scope
// object) may be at most Options.MaxLineBytes of JSON; a longer one ends
// the parse with a *LineError, because the stream cannot be resumed inside
// it. Other values the parser does not use are skipped whole, however long.
//
// Each span becomes, in this order:
//   - a KindSpan: LocalNs startTimeUnixNano, DurNs end − start, Name the
//     span's name. Source is the resource's service.name (else
//     Options.File, else "unknown_service"); Host is its host.name (else
//     Options.Host). Attrs: trace_id, span_id, parent_span_id (lowercase
//     hex; parent absent for a root), flow_id "<trace_id>:<span_id>",
//     span_kind (internal, server, client, producer, consumer), status (ok
//     or error) and status_message when set, scope (the instrumentation
//     scope's name), the resource's other attributes as "resource.<key>",
//     then the span's attributes.
//   - one KindFlowEnd per link, at the span's start, Name the span's name,
//     attrs trace_id and span_id of this span, flow_id "<trace_id>:<span_id>"
//     of the linked span, then the link's attributes. Its cause end is the
//     linked span's own KindSpan, whose flow_id is the same string; no
//     KindFlowStart is emitted, because the linked span is often in another
//     file or on another host. Parent→child needs no flow event:
//     "<trace_id>:<parent_span_id>" is the parent's flow_id.
//   - one KindInstant per span event: its time and name, attrs trace_id and
//     span_id of the span, then the event's attributes.
//
// Attribute values are rendered as text: strings as they are, ints and
// doubles as written, booleans true/false, bytes as their base64; an
// arrayValue is compact JSON (["a",1]); a kvlistValue is flattened with
// dotted keys (key.sub). Ids may be hex (as the spec says) or base64 (as
// protobuf's generic JSON mapping writes them); enums numbers (as the spec
// says) or names (SPAN_KIND_SERVER); times numbers or decimal strings.
// Keys are matched as the spec spells them (lowerCamelCase); unknown ones
// are ignored.
//
// A time of 0 is OTLP's "unknown": such an event is Untimed.
//
// Malformed spans (bad ids or times) are reported at the line of the
// offending value and skipped. Invalid JSON ends the parse with a
// *LineError in every mode; input that ends inside a value is a malformed
// last record (returned in strict mode, else counted, then io.EOF).
//
// HAZARD: a resource object that follows its spans (JSON does not order
// keys; every OTLP encoder writes it first) makes the parser hold those
// spans, up to MaxLineBytes of them, until it arrives; past that they are
// reported and emitted with the default Source and Host.
func NewOTLP(r io.Reader, opts Options) Parser {
	p := &otlpParser{opts: opts, doc: newDocStream(r, opts.MaxLineBytes)}
	p.stack = append(p.stack, otlpTop)
	return p
}

// The structures an otlpParser can be inside, innermost last on its stack.
type otlpFrame uint8

const (
	otlpTop          otlpFrame = iota
	otlpRequests               // a top-level array of requests
	otlpRequest                // an ExportTraceServiceRequest object
	otlpResourceList           // resourceSpans: [...]
	otlpResource               // one ResourceSpans object
	otlpScopeList              // scopeSpans: [...]
	otlpScope                  // one ScopeSpans object
	otlpSpanList               // spans: [...]
)

type otlpParser struct {
	Counter
	opts  Options
	doc   *docStream
	seqs  sourceSeqs
	stack []otlpFrame
	// queue holds events decoded but not yet returned; queue[next:] are due.
	queue []Event
	next  int
	res   otlpRes
	scope string
	// early holds spans read before their resource object (see NewOTLP);
	// earlyBytes is their JSON size, at most doc.max. flush moves them to
	// flushQ, which Next converts, one span per call, before it reads on.
	early      []otlpEarly
	earlyBytes int
	flushQ     []otlpEarly
	// deferred holds what report was given while spans were held: it is
	// reported after them, in input order.
	deferred []docError
	// end is the error that stopped the stream, due after flushQ and
	// deferred.
	end error
	err error // sticky: what Next returns once the queue is empty
}

// otlpEarly is a span held for its resource, and its scope's name.
type otlpEarly struct {
	v     docValue
	scope string
}

// otlpRes is what a resource gives its spans.
type otlpRes struct {
	seen          bool
	source, host  string
	attrs         []Attr // "resource.<key>"
	skippedEarlys bool   // early spans were already flushed with defaults
}

func (p *otlpParser) Next() (Event, error) {
	for p.next == len(p.queue) {
		p.queue, p.next = p.queue[:0], 0
		switch {
		case len(p.flushQ) > 0:
			e := p.flushQ[0]
			p.flushQ = p.flushQ[1:]
			if err := p.span(e.v, e.scope); err != nil {
				p.stop(err)
			}
		case len(p.deferred) > 0:
			d := p.deferred[0]
			p.deferred = p.deferred[1:]
			if err := p.Report(&p.opts, d.line, d.err); err != nil {
				p.stop(err)
			}
		case p.end != nil:
			p.err, p.end = p.doc.settle(p.end, &p.opts, &p.Counter), nil
		case p.err != nil:
			return Event{}, p.err
		default:
			if err := p.step(); err != nil {
				p.end = err
				p.flush()
			}
		}
	}
	if p.next < len(p.queue) {
		e := p.queue[p.next]
		p.queue[p.next] = Event{}
		p.next++
		return e, nil
	}
	return Event{}, p.err
}

// step consumes one token or value of the input.
func (p *otlpParser) step() error {
	d := p.doc
	switch top := p.stack[len(p.stack)-1]; top {
	case otlpTop:
		tok, err := d.token()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return p.fail(err)
		}
		switch tok {
		case json.Delim('{'):
			p.stack = append(p.stack, otlpRequest)
		case json.Delim('['):
			p.stack = append(p.stack, otlpRequests)
		default:
			return p.fail(d.unexpected(tok, "an ExportTraceServiceRequest object"))
		}
	case otlpRequests, otlpResourceList, otlpScopeList:
		if !d.more() {
			return p.close()
		}
		if err := d.expect('{'); err != nil {
			return p.fail(err)
		}
		inner := otlpRequest
		switch top {
		case otlpResourceList:
			inner = otlpResource
			p.res = otlpRes{source: p.defaultSource(), host: p.opts.Host}
		case otlpScopeList:
			inner = otlpScope
			p.scope = ""
		}
		p.stack = append(p.stack, inner)
	case otlpRequest, otlpResource, otlpScope:
		if !d.more() {
			return p.close()
		}
		key, err := d.key()
		if err != nil {
			return p.fail(err)
		}
		return p.member(top, key)
	case otlpSpanList:
		if !d.more() {
			return p.close()
		}
		v, err := d.value()
		if err != nil {
			return p.fail(err)
		}
		return p.spanValue(v)
	}
	return nil
}

// close consumes the end of the innermost array or object.
func (p *otlpParser) close() error {
	if _, err := p.doc.token(); err != nil {
		return p.fail(err)
	}
	if p.stack[len(p.stack)-1] == otlpResource {
		p.flush()
	}
	p.stack = p.stack[:len(p.stack)-1]
	return nil
}

// member handles the value of key in a request, resource or scope object.
func (p *otlpParser) member(in otlpFrame, key string) error {
	d := p.doc
	var list otlpFrame
	switch {
	case in == otlpRequest && key == "resourceSpans":
		list = otlpResourceList
	case in == otlpResource && key == "scopeSpans":
		list = otlpScopeList
	case in == otlpScope && key == "spans":
		list = otlpSpanList
	case in == otlpResource && key == "resource", in == otlpScope && key == "scope":
		v, err := d.value()
		if err != nil {
			return p.fail(err)
		}
		if in == otlpResource {
			return p.resource(v)
		}
		return p.scopeValue(v)
	case in == otlpRequest && (key == "resourceLogs" || key == "resourceMetrics" || key == "resourceProfiles"):
		line := d.lastLine()
		if err := d.skip(); err != nil {
			return p.fail(err)
		}
		return p.report(line, fmt.Errorf("%q holds OTLP %s, not traces; skipped", key,
			strings.ToLower(strings.TrimPrefix(key, "resource"))))
	default:
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
		p.stack = append(p.stack, list)
	}
	return nil
}

func (p *otlpParser) defaultSource() string {
	if p.opts.File != "" {
		return p.opts.File
	}
	return "unknown_service"
}

// report handles a malformed record: nil to go on, or the strict error.
// While spans are held it defers the record until they are out.
func (p *otlpParser) report(line int, err error) error {
	if len(p.early) > 0 {
		p.deferred = append(p.deferred, docError{line, err})
		p.flush()
		return nil
	}
	return p.Report(&p.opts, line, err)
}

// flush has Next convert the held spans before it reads on.
func (p *otlpParser) flush() {
	p.flushQ = append(p.flushQ, p.early...)
	p.early, p.earlyBytes = nil, 0
}

// stop ends the parse with a strict-mode error, which comes before
// whatever else was due.
func (p *otlpParser) stop(err error) {
	p.flushQ, p.deferred, p.end = nil, nil, err
}

// fail turns a stream error into the parse's final error.
func (p *otlpParser) fail(err error) error {
	return p.doc.final(err, &p.opts, len(p.stack) > 1)
}

// otlpSpan is one span's members: strings decoded, the rest raw JSON.
type otlpSpan struct {
	traceID, spanID, parentID, name, statusMessage string
	kind, start, end, statusCode                   []byte
	attrs, events, links                           []byte
}

func (s *otlpSpan) read(raw []byte) error {
	return rawMembers(raw, "span", func(k string, v []byte) error {
		switch k {
		case "traceId":
			return rawString(&s.traceID, k, v)
		case "spanId":
			return rawString(&s.spanID, k, v)
		case "parentSpanId":
			return rawString(&s.parentID, k, v)
		case "name":
			return rawString(&s.name, k, v)
		case "kind":
			s.kind = v
		case "startTimeUnixNano":
			s.start = v
		case "endTimeUnixNano":
			s.end = v
		case "attributes":
			s.attrs = v
		case "events":
			s.events = v
		case "links":
			s.links = v
		case "status":
			return atPrefix(rawMembers(v, "status", func(k string, v []byte) error {
				switch k {
				case "code":
					s.statusCode = v
				case "message":
					return rawString(&s.statusMessage, k, v)
				}
				return nil
			}), "status")
		}
		return nil
	})
}

func (p *otlpParser) resource(v docValue) error {
	var attrs []Attr
	err := rawMembers(v.raw, "resource", func(k string, val []byte) error {
		var err error
		if k == "attributes" {
			attrs, err = otlpFlatten(nil, "", val, []string{"attributes"})
		}
		return err
	})
	p.res.seen = true
	if err != nil {
		return p.report(v.errLine(err), err)
	}
	defer p.flush() // the held spans now have their resource
	p.res.attrs = p.res.attrs[:0]
	for _, a := range attrs {
		switch a.Key {
		case "service.name":
			p.res.source = a.Value
		case "host.name":
			p.res.host = a.Value
		default:
			p.res.attrs = append(p.res.attrs, Attr{"resource." + a.Key, a.Value})
		}
	}
	return nil
}

func (p *otlpParser) scopeValue(v docValue) error {
	var name string
	err := rawMembers(v.raw, "scope", func(k string, val []byte) error {
		if k == "name" {
			return rawString(&name, k, val)
		}
		return nil
	})
	if err != nil {
		return p.report(v.errLine(err), err)
	}
	p.scope = name
	return nil
}

// spanValue queues the events of one span, or holds it until its
// resource is known.
func (p *otlpParser) spanValue(v docValue) error {
	if p.res.seen || p.res.skippedEarlys {
		return p.span(v, p.scope)
	}
	p.early = append(p.early, otlpEarly{v, p.scope})
	p.earlyBytes += len(v.raw)
	if p.earlyBytes <= p.doc.max {
		return nil
	}
	p.res.skippedEarlys = true
	return p.report(v.line, fmt.Errorf("spans precede their resource by more than %d bytes; these use the default source and host", p.doc.max))
}

// span queues the events of one span; the error is a strict-mode one.
func (p *otlpParser) span(v docValue, scope string) error {
	var s otlpSpan
	err := s.read(v.raw)
	var evs []Event
	if err == nil {
		evs, err = p.spanEvents(&s, scope)
	}
	if err != nil {
		return p.report(v.errLine(err), err)
	}
	for i := range evs {
		evs[i].SourceSeq = p.seqs.next(evs[i].Source)
	}
	p.queue = append(p.queue, evs...)
	return nil
}

// spanEvents converts one span. Errors are *pathError, naming the
// offending value.
func (p *otlpParser) spanEvents(s *otlpSpan, scope string) ([]Event, error) {
	traceID, err := otlpID(s.traceID, 16, "traceId")
	if err != nil {
		return nil, err
	}
	spanID, err := otlpID(s.spanID, 8, "spanId")
	if err != nil {
		return nil, err
	}
	var parentID string
	if s.parentID != "" {
		if parentID, err = otlpID(s.parentID, 8, "parentSpanId"); err != nil {
			return nil, err
		}
	}
	start, err := otlpTime(s.start, "startTimeUnixNano")
	if err != nil {
		return nil, err
	}
	end, err := otlpTime(s.end, "endTimeUnixNano")
	if err != nil {
		return nil, err
	}
	if end < start {
		return nil, atPath(fmt.Errorf("endTimeUnixNano %d is before startTimeUnixNano %d", end, start), "endTimeUnixNano")
	}
	kind, err := otlpEnum(s.kind, otlpSpanKinds, "kind")
	if err != nil {
		return nil, err
	}
	status, err := otlpEnum(s.statusCode, otlpStatusCodes, "status", "code")
	if err != nil {
		return nil, err
	}
	ids := []Attr{{"trace_id", traceID}, {"span_id", spanID}}

	sp := p.newEvent(KindSpan, start, s.name)
	sp.DurNs = end - start
	sp.Attrs = append(sp.Attrs, ids...)
	if parentID != "" {
		sp.Attrs = append(sp.Attrs, Attr{"parent_span_id", parentID})
	}
	sp.Attrs = append(sp.Attrs, Attr{"flow_id", traceID + ":" + spanID})
	if kind != "" {
		sp.Attrs = append(sp.Attrs, Attr{"span_kind", kind})
	}
	if status != "" {
		sp.Attrs = append(sp.Attrs, Attr{"status", status})
	}
	if s.statusMessage != "" {
		sp.Attrs = append(sp.Attrs, Attr{"status_message", s.statusMessage})
	}
	if scope != "" {
		sp.Attrs = append(sp.Attrs, Attr{"scope", scope})
	}
	sp.Attrs = append(sp.Attrs, p.res.attrs...)
	if sp.Attrs, err = otlpFlatten(sp.Attrs, "", s.attrs, []string{"attributes"}); err != nil {
		return nil, err
	}
	out := []Event{sp}
	err = rawElems(s.links, "links", func(i int, l []byte) error {
		fe := p.newEvent(KindFlowEnd, start, s.name)
		fe.Attrs = append(fe.Attrs, ids...)
		err := otlpLink(&fe, l)
		out = append(out, fe)
		return atPrefix(err, strconv.Itoa(i))
	})
	if err = atPrefix(err, "links"); err != nil {
		return nil, err
	}
	err = rawElems(s.events, "events", func(i int, ev []byte) error {
		in := p.newEvent(KindInstant, 0, "")
		in.Attrs = append(in.Attrs, ids...)
		err := otlpSpanEvent(&in, ev)
		out = append(out, in)
		return atPrefix(err, strconv.Itoa(i))
	})
	if err = atPrefix(err, "events"); err != nil {
		return nil, err
	}
	return out, nil
}

// otlpLink completes e, a link's flow-end, from the Link object raw.
func otlpLink(e *Event, raw []byte) error {
	var traceID, spanID string
	var attrs []byte
	err := rawMembers(raw, "link", func(k string, v []byte) error {
		switch k {
		case "traceId":
			return rawString(&traceID, k, v)
		case "spanId":
			return rawString(&spanID, k, v)
		case "attributes":
			attrs = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	if traceID, err = otlpID(traceID, 16, "traceId"); err != nil {
		return err
	}
	if spanID, err = otlpID(spanID, 8, "spanId"); err != nil {
		return err
	}
	e.Attrs = append(e.Attrs, Attr{"flow_id", traceID + ":" + spanID})
	e.Attrs, err = otlpFlatten(e.Attrs, "", attrs, []string{"attributes"})
	return err
}

// otlpSpanEvent completes e, a span event's instant, from the Event object
// raw.
func otlpSpanEvent(e *Event, raw []byte) error {
	var t, attrs []byte
	err := rawMembers(raw, "event", func(k string, v []byte) error {
		switch k {
		case "timeUnixNano":
			t = v
		case "name":
			return rawString(&e.Name, k, v)
		case "attributes":
			attrs = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	if e.LocalNs, err = otlpTime(t, "timeUnixNano"); err != nil {
		return err
	}
	e.Untimed = e.LocalNs == 0
	e.Attrs, err = otlpFlatten(e.Attrs, "", attrs, []string{"attributes"})
	return err
}

// newEvent is an event of the current resource at ns, Untimed when ns
// is 0: OTLP's times are fixed64 fields, whose zero protobuf cannot tell
// from unset, and the spec reads 0 as unknown.
func (p *otlpParser) newEvent(kind string, ns int64, name string) Event {
	return Event{Source: p.res.source, Host: p.res.host, LocalNs: ns, Untimed: ns == 0, Kind: kind, Name: name}
}

var (
	otlpSpanKinds   = []string{"", "internal", "server", "client", "producer", "consumer"}
	otlpStatusCodes = []string{"", "ok", "error"}
)

// otlpEnum reads an enum as its number (as OTLP/JSON requires) or its
// protobuf name (SPAN_KIND_SERVER, STATUS_CODE_ERROR), to its name in
// names ("" for 0 and for an absent value).
func otlpEnum(raw []byte, names []string, path ...string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			for i, n := range names {
				if i > 0 && strings.HasSuffix(strings.ToLower(s), "_"+n) {
					return n, nil
				}
			}
			if strings.HasSuffix(s, "_UNSPECIFIED") || strings.HasSuffix(s, "_UNSET") {
				return "", nil
			}
		}
	} else if n, err := strconv.Atoi(string(raw)); err == nil && n >= 0 && n < len(names) {
		return names[n], nil
	}
	return "", atPath(fmt.Errorf("%s %s is not one of 0..%d", path[len(path)-1], clip(raw), len(names)-1), path...)
}

// otlpTime reads a fixed64 ns count, a JSON number or a decimal string.
func otlpTime(raw []byte, path ...string) (int64, error) {
	name := path[len(path)-1]
	if len(raw) == 0 || string(raw) == "null" {
		return 0, atPath(fmt.Errorf("no %s", name), path...)
	}
	text := raw
	if raw[0] == '"' {
		text = bytes.Trim(raw, `"`)
	}
	ns, err := strconv.ParseUint(string(text), 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) || len(text) == 0 || text[0] == '+' {
		return 0, atPath(fmt.Errorf("%s %s is not a count of ns", name, clip(raw)), path...)
	}
	if err != nil || ns > 1<<63-1 {
		return 0, atPath(fmt.Errorf("%s %s is past the year 2262", name, clip(raw)), path...)
	}
	return int64(ns), nil
}

// otlpID reads a trace or span id of n bytes, hex or base64, to lowercase
// hex.
func otlpID(s string, n int, path ...string) (string, error) {
	name := path[len(path)-1]
	if s == "" {
		return "", atPath(fmt.Errorf("no %s", name), path...)
	}
	var b []byte
	if len(s) == 2*n {
		b, _ = hex.DecodeString(s)
	} else if len(s) == base64.StdEncoding.EncodedLen(n) {
		b, _ = base64.StdEncoding.DecodeString(s)
	}
	if len(b) != n {
		return "", atPath(fmt.Errorf("%s %q is not %d hex digits", name, clip([]byte(s)), 2*n), path...)
	}
	if bytes.Count(b, []byte{0}) == n {
		return "", atPath(fmt.Errorf("%s is all zeros", name), path...)
	}
	return hex.EncodeToString(b), nil
}

// otlpFlatten appends the KeyValue list raw as text Attrs; kvlists nest
// with dots. path locates raw in its record, for errors.
func otlpFlatten(out []Attr, prefix string, raw []byte, path []string) ([]Attr, error) {
	err := rawElems(raw, "attributes", func(i int, kv []byte) error {
		var key string
		var val []byte
		err := rawMembers(kv, "attribute", func(k string, v []byte) error {
			switch k {
			case "key":
				return rawString(&key, k, v)
			case "value":
				val = v
			}
			return nil
		})
		if err != nil {
			return atPrefix(err, strconv.Itoa(i))
		}
		key = prefix + key
		if list := otlpKvlist(val); list != nil {
			out, err = otlpFlatten(out, key+".", list, nil)
			return atPrefix(err, strconv.Itoa(i), "value", "kvlistValue", "values")
		}
		var b strings.Builder
		if err := otlpRender(&b, val, false); err != nil {
			return atPath(fmt.Errorf("attribute %q: %v", key, err), strconv.Itoa(i), "value")
		}
		out = append(out, Attr{key, b.String()})
		return nil
	})
	return out, atPrefix(err, path...)
}

// otlpKvlist returns the values of an AnyValue holding a kvlistValue.
func otlpKvlist(val []byte) []byte {
	var list []byte
	rawMembers(val, "value", func(k string, v []byte) error {
		if k == "kvlistValue" && v[0] == '{' {
			rawMembers(v, k, func(k string, v []byte) error {
				if k == "values" {
					list = v
				}
				return nil
			})
			if list == nil {
				list = []byte("[]")
			}
		}
		return nil
	})
	return list
}

// otlpRender writes the AnyValue raw as text, or as JSON inside an array
// or kvlist. An empty AnyValue is "" (null in JSON).
func otlpRender(b *strings.Builder, raw []byte, inJSON bool) error {
	var kind string
	var val []byte
	err := rawMembers(raw, "value", func(k string, v []byte) error {
		switch k {
		case "stringValue", "boolValue", "intValue", "doubleValue", "bytesValue", "arrayValue", "kvlistValue":
			if v[0] != 'n' {
				kind, val = k, v
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch kind {
	case "stringValue", "bytesValue":
		var s string
		if err := rawString(&s, kind, val); err != nil {
			return err
		}
		if kind == "bytesValue" {
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				return errors.New("bytesValue is not base64")
			}
		}
		if inJSON {
			q, _ := json.Marshal(s)
			b.Write(q)
		} else {
			b.WriteString(s)
		}
	case "boolValue":
		if string(val) != "true" && string(val) != "false" {
			return fmt.Errorf("boolValue %s is not a bool", clip(val))
		}
		b.Write(val)
	case "intValue":
		text := bytes.Trim(val, `"`)
		if _, err := strconv.ParseInt(string(text), 10, 64); err != nil {
			return fmt.Errorf("intValue %s is not an int64", clip(val))
		}
		b.Write(text)
	case "doubleValue":
		text := bytes.Trim(val, `"`)
		if _, err := strconv.ParseFloat(string(text), 64); err != nil {
			return fmt.Errorf("doubleValue %s is not a number", clip(val))
		}
		if inJSON && !json.Valid(text) { // NaN, Infinity
			text = val
		}
		b.Write(text)
	case "arrayValue", "kvlistValue":
		var list []byte
		if err := rawMembers(val, kind, func(k string, v []byte) error {
			if k == "values" {
				list = v
			}
			return nil
		}); err != nil {
			return err
		}
		open, close := byte('['), byte(']')
		if kind == "kvlistValue" {
			open, close = '{', '}'
		}
		b.WriteByte(open)
		err := rawElems(list, "values", func(i int, v []byte) error {
			if i > 0 {
				b.WriteByte(',')
			}
			if kind == "arrayValue" {
				return otlpRender(b, v, true)
			}
			var key string
			var kv []byte
			if err := rawMembers(v, "value", func(k string, x []byte) error {
				switch k {
				case "key":
					return rawString(&key, k, x)
				case "value":
					kv = x
				}
				return nil
			}); err != nil {
				return err
			}
			q, _ := json.Marshal(key)
			b.Write(q)
			b.WriteByte(':')
			return otlpRender(b, kv, true)
		})
		if err != nil {
			return err
		}
		b.WriteByte(close)
	default:
		if inJSON {
			b.WriteString("null")
		}
	}
	return nil
}
