package timeline

import (
	"io"
	"strconv"
	"unsafe"

	"github.com/clockd/clockd/ingest"
)

// JSONLWriter writes one JSON object per event and line:
//
//	{"ts":"2023-11-14T22:13:20.000001500Z","local":"2023-11-14T22:13:20.120001500Z",
//	 "corrected":true,"host":"hv1","source":"app","seq":7,"kind":"span","msg":"GET /",
//	 "dur_ns":1500,"gsn":42,"late_ns":300,"issue":"no-offsets",
//	 "ref_earliest":"...","ref_latest":"...","attrs":{"pid":"12"}}
//
// ts is TimeNs, local is LocalNs (both in TimeLayout); dur_ns, gsn,
// late_ns, issue, ref_earliest/ref_latest and attrs appear only when set
// (local only when the event is not Untimed). Attrs keep their order, and a
// repeated key is repeated. The first fields read back through
// ingest.DefaultJSONMapping (ts, host, msg).
//
// It formats by hand into one reused buffer and allocates nothing per
// event.
type JSONLWriter struct {
	out outBuf
	enc JSONLEncoder
	// gw gathers slices into one write, when w is a file that can;
	// else nil.
	gw gatherWriter
}

// NewJSONLWriter writes to w, in writes of about 1 MiB.
func NewJSONLWriter(w io.Writer) *JSONLWriter {
	return &JSONLWriter{out: newOutBuf(w), enc: *NewJSONLEncoder(), gw: newGatherWriter(w)}
}

func (j *JSONLWriter) Write(ev Event) error {
	if j.out.err != nil {
		return j.out.err
	}
	j.out.b = j.enc.AppendEvent(j.out.b, &ev)
	return j.out.maybeFlush()
}

// WriteEncodedSlices writes the slices MergeEncodedSlices emits: lines
// a JSONLEncoder rendered, end to end, as Write would have written their
// events.
// When the writer's io.Writer is a file on a system that gathers writes
// (writev), they go out from where they are, without a copy; else they
// are copied into the buffer.
func (j *JSONLWriter) WriteEncodedSlices(slices [][]byte) error {
	if j.out.err != nil {
		return j.out.err
	}
	if j.gw != nil {
		if err := j.out.flush(); err != nil {
			return err
		}
		j.out.err = j.gw.writeSlices(slices)
		return j.out.err
	}
	for _, s := range slices {
		j.out.b = append(j.out.b, s...)
	}
	return j.out.maybeFlush()
}

// A gatherWriter writes many slices in one system call
// (newGatherWriter, gather_linux.go).
type gatherWriter interface {
	// writeSlices writes the slices, in order, end to end.
	writeSlices(slices [][]byte) error
}

// JSONLEncoder renders events as JSONLWriter writes them. An event's
// line depends on that event alone, so that encoders on other goroutines
// (one each) can render events ahead of the writer: see MergeEncoded.
//
// It keeps the text of the fields that repeat from event to event (the
// second of the times, host and source, kind, the attrs' keys) and
// copies it while they stay the same.
type JSONLEncoder struct {
	ts, lt, ref timeFormatter
	// head is `","corrected":…,"host":"…","source":"…","seq":` for
	// headCorrected, headHost and headSource; empty before the first
	// event.
	head          text
	headHost      string
	headSource    string
	headCorrected bool
	// kindText is `,"kind":"…","msg":"` for kind; empty before the first.
	kind     string
	kindText text
	// scratch is where the texts above are made.
	scratch []byte
	// keys[i] is the text before the value of an event's attr i.
	keys []keyText
}

// keyText is the text before an attr's value: `,"attrs":{"key":"` for
// the first attr, `","key":"` for the others.
type keyText struct {
	key  string
	text text
}

// NewJSONLEncoder returns an encoder for one goroutine.
func NewJSONLEncoder() *JSONLEncoder {
	return &JSONLEncoder{ts: timeFormatter{lead: `{"ts":"`}, lt: timeFormatter{lead: `","local":"`}}
}

// AppendEvent appends ev's line, '\n' included, to b.
func (j *JSONLEncoder) AppendEvent(b []byte, ev *Event) []byte {
	b = j.appendName(j.appendHead(b, ev), ev.Name)
	b = j.appendOptional(b, ev)
	if len(ev.Attrs) == 0 {
		return append(b, "}\n"...)
	}
	for i := range ev.Attrs {
		a := &ev.Attrs[i]
		b = j.key(i, a.Key).appendTo(b)
		b = appendJSONContent(b, a.Value)
	}
	return append(b, "\"}}\n"...)
}

// AppendFields appends the line of ev, whose Name and Attrs are f, as
// AppendEvent appends it once f.Fill has set them.
func (j *JSONLEncoder) AppendFields(b []byte, ev *Event, f *ingest.LineFields) []byte {
	b = j.appendHead(b, ev)
	if name, plain := f.Name(); plain {
		b = appendBytes(b, name)
	} else {
		b = appendJSONContent(b, unsafeString(name))
	}
	b = append(b, '"')
	b = j.appendOptional(b, ev)
	n := f.NumAttrs()
	if n == 0 {
		return append(b, "}\n"...)
	}
	// Attrs that stand in the line as the members of one object do in
	// the output, strings without escapes, come as one text (AttrRun):
	// after the first's key, the line's text is the output's.
	for i := 0; i < n; {
		key, v, plain, m := f.AttrRun(i)
		// key's fast path, written out here: the call costs about 15% of
		// the line (BenchmarkJSONLEncoderFields).
		if i < len(j.keys) && j.keys[i].text.n != 0 && same(key, j.keys[i].key) {
			b = j.keys[i].text.appendTo(b)
		} else {
			b = j.key(i, key).appendTo(b)
		}
		if plain {
			b = appendBytes(b, v)
		} else {
			b = appendJSONContent(b, unsafeString(v))
		}
		i += m
	}
	return append(b, "\"}}\n"...)
}

// appendHead appends ev's line up to its Name: the times, host, source,
// seq, kind and `"msg":"`.
func (j *JSONLEncoder) appendHead(b []byte, ev *Event) []byte {
	b = j.ts.append(b, ev.TimeNs)
	if !ev.Untimed {
		b = j.lt.append(b, ev.LocalNs)
	}
	if j.head.n == 0 || !same(ev.Host, j.headHost) || !same(ev.Source, j.headSource) || ev.Corrected != j.headCorrected {
		j.setHead(ev)
	}
	b = j.head.appendTo(b)
	b = appendUint(b, ev.SourceSeq)
	if j.kindText.n == 0 || !same(ev.Kind, j.kind) {
		j.kind = ev.Kind
		j.scratch = append(appendJSONContent(append(j.scratch[:0], `,"kind":"`...), ev.Kind), `","msg":"`...)
		j.kindText.set(j.scratch)
	}
	return j.kindText.appendTo(b)
}

// appendName appends name and its closing quote.
func (j *JSONLEncoder) appendName(b []byte, name string) []byte {
	return append(appendJSONContent(b, name), '"')
}

// key is the text before the value of attr i, whose key is key.
func (j *JSONLEncoder) key(i int, key string) *text {
	for i >= len(j.keys) {
		j.keys = append(j.keys, keyText{})
	}
	k := &j.keys[i]
	if k.text.n == 0 || !same(key, k.key) {
		j.setKey(k, key, i == 0)
	}
	return &k.text
}

func (j *JSONLEncoder) setHead(ev *Event) {
	j.headHost, j.headSource, j.headCorrected = ev.Host, ev.Source, ev.Corrected
	h := append(j.scratch[:0], `","corrected":false,"host":"`...)
	if ev.Corrected {
		h = append(j.scratch[:0], `","corrected":true,"host":"`...)
	}
	h = appendJSONContent(h, ev.Host)
	h = append(h, `","source":"`...)
	h = appendJSONContent(h, ev.Source)
	j.scratch = append(h, `","seq":`...)
	j.head.set(j.scratch)
}

func (j *JSONLEncoder) setKey(k *keyText, key string, first bool) {
	k.key = key
	t := append(j.scratch[:0], `","`...)
	if first {
		t = append(j.scratch[:0], `,"attrs":{"`...)
	}
	j.scratch = append(appendJSONContent(t, key), `":"`...)
	k.text.set(j.scratch)
}

// appendOptional appends the fields that are present on some events only.
func (j *JSONLEncoder) appendOptional(b []byte, ev *Event) []byte {
	if ev.DurNs != 0 || ev.Kind == "span" {
		b = append(b, `,"dur_ns":`...)
		b = strconv.AppendInt(b, ev.DurNs, 10)
	}
	if ev.GSN != 0 {
		b = append(b, `,"gsn":`...)
		b = strconv.AppendUint(b, ev.GSN, 10)
	}
	if ev.LateNs != 0 {
		b = append(b, `,"late_ns":`...)
		b = strconv.AppendInt(b, ev.LateNs, 10)
	}
	if ev.Issue != "" {
		b = append(b, `,"issue":`...)
		b = appendJSONString(b, string(ev.Issue))
	}
	if ev.RefEarliest != 0 || ev.RefLatest != 0 {
		b = append(b, `,"ref_earliest":"`...)
		b = j.ref.append(b, ev.RefEarliest)
		b = append(b, `","ref_latest":"`...)
		b = j.ref.append(b, ev.RefLatest)
		b = append(b, '"')
	}
	return b
}

// Flush writes out the buffer.
func (j *JSONLWriter) Flush() error { return j.out.flush() }

// Close flushes.
func (j *JSONLWriter) Close() error { return j.out.flush() }

// unsafeString is b as a string without a copy, for reading while b
// stays unchanged.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
