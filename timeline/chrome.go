package timeline

import (
	"hash/fnv"
	"io"
	"strconv"

	"github.com/clockd/clockd/ingest"
)

// ChromeWriter writes the Trace Event Format JSON object that Perfetto
// (ui.perfetto.dev) and chrome://tracing open, as it goes: nothing but
// the host and source tables is held in memory.
//
// Each host is a process (pid 1, 2, ... in order of first appearance,
// named by an M process_name event) and each source of a host a thread
// (tid 1, 2, ... across all hosts, named by M thread_name). Kinds map to
// phases:
//
//	span                 X  ts, dur
//	begin, end           B, E
//	instant, log         i  s:"t" (thread-scoped)
//	counter              C  args: the attrs whose values are numbers
//	flow-start, flow-end X of zero duration, then s or f (bp:"e")
//
// An event of any other kind with a flow_id attr also gets a flow event
// bound to it: s the first time the id appears, t (a step) after. Flow
// events have cat and name "flow" and a numeric id: the flow_id itself
// when it is a number below 2^53, else a 53-bit hash of it. A log or
// instant with a flow_id is written as an X of zero duration, since flows
// bind to slices only.
//
// Inconsistent events that would break the format (an end without a
// begin, a span of negative duration, a flow without id, an unknown
// kind, a counter without a number) are written as instants. Every event
// carries its attrs in args, plus seq, local (LocalNs, unless the event
// is Untimed), and gsn, late_ns and issue when set.
//
// ts and dur are µs with three decimals, counted from a base: the first
// event's TimeNs rounded down to a whole second. At exact Unix-epoch µs
// the float64s readers parse into would lose the nanoseconds. otherData
// records the base.
type ChromeWriter struct {
	out   outBuf
	n     int // trace events written
	based bool
	// baseNs is subtracted from every TimeNs; set by the first event.
	baseNs  int64
	pids    map[string]int
	tids    map[hostSource]int
	flows   map[string]bool // the flow ids seen
	localTF timeFormatter
}

// NewChromeWriter writes the opening of the JSON object to w's buffer.
func NewChromeWriter(w io.Writer) *ChromeWriter {
	c := &ChromeWriter{out: newOutBuf(w), pids: make(map[string]int), tids: make(map[hostSource]int),
		flows: make(map[string]bool)}
	c.out.b = append(c.out.b, `{"traceEvents":[`...)
	return c
}

// chromeEvent is the fields of one trace event that vary.
type chromeEvent struct {
	ph       byte
	name     string
	cat      string
	ts       int64 // TimeNs
	dur      int64 // X only
	pid, tid int
	scope    bool   // i: s:"t"
	flowID   uint64 // s, t, f
	args     *Event // nil: none
	counter  bool   // args: the numeric attrs only
}

func (c *ChromeWriter) Write(ev Event) error {
	if c.out.err != nil {
		return c.out.err
	}
	if !c.based {
		c.based, c.baseNs = true, floorDiv(ev.TimeNs, 1e9)*1e9
	}
	pid, tid := c.thread(ev.Host, ev.Source)
	ce := chromeEvent{name: ev.Name, cat: ev.Kind, ts: ev.TimeNs, pid: pid, tid: tid, args: &ev}
	if cat, ok := ev.Attr("category"); ok {
		ce.cat = cat
	}
	flowID, hasFlow := ev.Attr("flow_id")
	switch {
	case ev.Kind == ingest.KindSpan && ev.DurNs >= 0:
		ce.ph, ce.dur = 'X', ev.DurNs
	case ev.Kind == ingest.KindBegin:
		ce.ph = 'B'
	case ev.Kind == ingest.KindEnd && ev.Issue != IssueEndWithoutBegin:
		ce.ph = 'E'
	case ev.Kind == ingest.KindCounter && hasNumericAttr(&ev):
		ce.ph, ce.counter = 'C', true
	case (ev.Kind == ingest.KindFlowStart || ev.Kind == ingest.KindFlowEnd) && hasFlow:
		ce.ph = 'X'
	case (ev.Kind == ingest.KindLog || ev.Kind == ingest.KindInstant) && hasFlow:
		ce.ph = 'X'
	default:
		ce.ph, ce.scope = 'i', true
	}
	c.event(&ce)
	if hasFlow && ce.ph != 'i' && ce.ph != 'C' && ce.ph != 'E' {
		fe := chromeEvent{name: "flow", cat: "flow", ts: ev.TimeNs, pid: pid, tid: tid, flowID: chromeFlowID(flowID)}
		switch {
		case ev.Kind == ingest.KindFlowEnd:
			fe.ph = 'f'
		case ev.Kind == ingest.KindFlowStart || !c.flows[flowID]:
			fe.ph = 's'
		default:
			fe.ph = 't'
		}
		c.flows[flowID] = true
		c.event(&fe)
	}
	return c.out.maybeFlush()
}

// thread returns the pid of host and the tid of its source, writing the
// metadata events of the ones new.
func (c *ChromeWriter) thread(host, source string) (pid, tid int) {
	pid, ok := c.pids[host]
	if !ok {
		pid = len(c.pids) + 1
		c.pids[host] = pid
		c.metadata("process_name", pid, 0, host)
		c.metadataInt("process_sort_index", pid, 0, pid)
	}
	k := hostSource{host, source}
	tid, ok = c.tids[k]
	if !ok {
		tid = len(c.tids) + 1
		c.tids[k] = tid
		c.metadata("thread_name", pid, tid, source)
		c.metadataInt("thread_sort_index", pid, tid, tid)
	}
	return pid, tid
}

func (c *ChromeWriter) open() []byte {
	b := c.out.b
	if c.n > 0 {
		b = append(b, ',')
	}
	c.n++
	return append(b, '\n', '{')
}

func (c *ChromeWriter) metadata(name string, pid, tid int, value string) {
	b := c.open()
	b = append(b, `"ph":"M","name":"`...)
	b = append(b, name...)
	b = append(b, `","pid":`...)
	b = strconv.AppendInt(b, int64(pid), 10)
	if tid != 0 {
		b = append(b, `,"tid":`...)
		b = strconv.AppendInt(b, int64(tid), 10)
	}
	b = append(b, `,"args":{"name":`...)
	b = appendJSONString(b, value)
	c.out.b = append(b, "}}"...)
}

func (c *ChromeWriter) metadataInt(name string, pid, tid int, value int) {
	b := c.open()
	b = append(b, `"ph":"M","name":"`...)
	b = append(b, name...)
	b = append(b, `","pid":`...)
	b = strconv.AppendInt(b, int64(pid), 10)
	if tid != 0 {
		b = append(b, `,"tid":`...)
		b = strconv.AppendInt(b, int64(tid), 10)
	}
	b = append(b, `,"args":{"sort_index":`...)
	b = strconv.AppendInt(b, int64(value), 10)
	c.out.b = append(b, "}}"...)
}

// event writes one trace event.
func (c *ChromeWriter) event(e *chromeEvent) {
	b := c.open()
	b = append(b, `"ph":"`...)
	b = append(b, e.ph, '"')
	b = append(b, `,"name":`...)
	b = appendJSONString(b, e.name)
	b = append(b, `,"cat":`...)
	b = appendJSONString(b, e.cat)
	b = append(b, `,"ts":`...)
	b = appendMicros(b, e.ts-c.baseNs)
	if e.ph == 'X' {
		b = append(b, `,"dur":`...)
		b = appendMicros(b, e.dur)
	}
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(e.pid), 10)
	b = append(b, `,"tid":`...)
	b = strconv.AppendInt(b, int64(e.tid), 10)
	if e.scope {
		b = append(b, `,"s":"t"`...)
	}
	switch e.ph {
	case 's', 't', 'f':
		b = append(b, `,"id":`...)
		b = strconv.AppendUint(b, e.flowID, 10)
		b = append(b, `,"bp":"e"`...)
	}
	if e.args != nil {
		b = append(b, `,"args":{`...)
		if e.counter {
			b = appendCounterArgs(b, e.args)
		} else {
			b = c.appendArgs(b, e.args)
		}
		b = append(b, '}')
	}
	c.out.b = append(b, '}')
}

// appendArgs appends the event's attrs and the timeline's own fields.
func (c *ChromeWriter) appendArgs(b []byte, ev *Event) []byte {
	b = append(b, `"seq":`...)
	b = strconv.AppendUint(b, ev.SourceSeq, 10)
	if !ev.Untimed {
		b = append(b, `,"local":"`...)
		b = c.localTF.append(b, ev.LocalNs)
		b = append(b, '"')
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
	if ev.Kind == ingest.KindSpan && ev.DurNs < 0 {
		b = append(b, `,"dur_ns":`...)
		b = strconv.AppendInt(b, ev.DurNs, 10)
	}
	for _, a := range ev.Attrs {
		b = append(b, ',')
		b = appendJSONString(b, a.Key)
		b = append(b, ':')
		b = appendJSONString(b, a.Value)
	}
	return b
}

// appendCounterArgs appends the attrs whose values are numbers, as
// numbers: a C event's args are its series.
func appendCounterArgs(b []byte, ev *Event) []byte {
	first := true
	for _, a := range ev.Attrs {
		f, ok := counterValue(a)
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, a.Key)
		b = append(b, ':')
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	return b
}

// counterValue is a's value as a counter series value. The well-known
// identifying attrs are not series.
func counterValue(a ingest.Attr) (float64, bool) {
	switch a.Key {
	case "pid", "tid", "cpu", "flow_id", "trace_id", "span_id", "parent_span_id":
		return 0, false
	}
	f, err := strconv.ParseFloat(a.Value, 64)
	if err != nil || f != f || f > 1e308 || f < -1e308 { // NaN and ±Inf are not JSON
		return 0, false
	}
	return f, true
}

func hasNumericAttr(ev *Event) bool {
	for _, a := range ev.Attrs {
		if _, ok := counterValue(a); ok {
			return true
		}
	}
	return false
}

// chromeFlowID is the numeric flow id of a flow_id value: itself when it
// is an integer below 2^53 (what a float64 reader keeps exactly), else
// a 53-bit FNV-1a hash.
func chromeFlowID(s string) uint64 {
	if u, err := strconv.ParseUint(s, 10, 64); err == nil && u < 1<<53 {
		return u
	}
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64() & (1<<53 - 1)
}

// Flush writes out the buffer (the JSON stays open).
func (c *ChromeWriter) Flush() error { return c.out.flush() }

// Close ends the JSON object, recording the time base, and flushes.
func (c *ChromeWriter) Close() error {
	if c.out.err != nil {
		return c.out.err
	}
	b := append(c.out.b, "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"clockd_time_base\":\""...)
	var tf timeFormatter
	b = tf.append(b, c.baseNs)
	b = append(b, `","clockd_time_base_unix_ns":"`...)
	b = strconv.AppendInt(b, c.baseNs, 10)
	c.out.b = append(b, "\"}}\n"...)
	return c.out.flush()
}
