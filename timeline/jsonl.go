package timeline

import (
	"io"
	"strconv"
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
// (local only when the event has a time). Attrs keep their order, and a
// repeated key is repeated. The first fields read back through
// ingest.DefaultJSONMapping (ts, host, msg).
//
// It formats by hand into one reused buffer and allocates nothing per
// event.
type JSONLWriter struct {
	out    outBuf
	ts, lt timeFormatter
}

// NewJSONLWriter writes to w, in writes of about 1 MiB.
func NewJSONLWriter(w io.Writer) *JSONLWriter {
	return &JSONLWriter{out: newOutBuf(w)}
}

func (j *JSONLWriter) Write(ev Event) error {
	if j.out.err != nil {
		return j.out.err
	}
	b := j.out.b
	b = append(b, `{"ts":"`...)
	b = j.ts.append(b, ev.TimeNs)
	if ev.LocalNs != 0 {
		b = append(b, `","local":"`...)
		b = j.lt.append(b, ev.LocalNs)
	}
	if ev.Corrected {
		b = append(b, `","corrected":true,"host":`...)
	} else {
		b = append(b, `","corrected":false,"host":`...)
	}
	b = appendJSONString(b, ev.Host)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, ev.Source)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, ev.SourceSeq, 10)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, ev.Kind)
	b = append(b, `,"msg":`...)
	b = appendJSONString(b, ev.Name)
	b = j.appendOptional(b, &ev)
	if len(ev.Attrs) > 0 {
		b = append(b, `,"attrs":{`...)
		for i := range ev.Attrs {
			b = appendJSONMember(b, ev.Attrs[i].Key, ev.Attrs[i].Value, i == 0)
		}
		b = append(b, '}')
	}
	b = append(b, "}\n"...)
	j.out.b = b
	return j.out.maybeFlush()
}

// appendOptional appends the fields that are present on some events only.
func (j *JSONLWriter) appendOptional(b []byte, ev *Event) []byte {
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
		b = j.lt.append(b, ev.RefEarliest)
		b = append(b, `","ref_latest":"`...)
		b = j.lt.append(b, ev.RefLatest)
		b = append(b, '"')
	}
	return b
}

// Flush writes out the buffer.
func (j *JSONLWriter) Flush() error { return j.out.flush() }

// Close flushes.
func (j *JSONLWriter) Close() error { return j.out.flush() }
