package ingest

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// NewFtrace reads the text ftrace prints: the tracefs files trace and
// trace_pipe, and the output of `trace-cmd report`. One line is one event:
//
//	bash-1977  [000] d..1. 17284.993652: sched_switch: prev_comm=bash ...
//	<idle>-0     [001]  5678.901234567: function: ktime_get <-- tick_check_idle
//	bash-1977  (   1977) [000] .... 17284.993652: sys_close <-system_call_fastpath
//	<idle>-0       0d.h1. 106467.859747: function: ktime_get <-- tick_check_idle
//
// The irq-flags column, the TGID column (option record-tgid), trace-cmd's
// latency layout (-l: the CPU number glued to the flags, comm cut to 8
// bytes) and its --ts-diff column "(+N)" are optional; the timestamp is
// seconds since boot with 1 to 9 decimals (trace-cmd -t prints 9). Comment
// lines ('#'), blank lines and trace-cmd's "cpus=N", "CPU N is empty" and
// "version = N" lines are skipped. trace-cmd's plugins reformat some
// events (sched_switch as "bash:1234 [120] S ==> ..."): such bodies stay
// in Name only; report -N or -R prints key=value bodies, which become
// attrs.
//
// The Event:
//   - LocalNs = bootNs + the timestamp in ns. bootNs is the host's wall
//     clock at the trace clock's zero, ns since the Unix epoch, from the
//     caller (for trace_clock mono: CLOCK_REALTIME − CLOCK_MONOTONIC sampled
//     together). With bootNs = 0, LocalNs is the trace clock itself — ns
//     since boot, not since the epoch — and tracecat must be given the
//     host's offset.
//   - Source is "cpu<N>": each CPU has its own ring buffer, so line order
//     within a CPU is the order the kernel recorded the events, whatever
//     clock skew there is between CPUs. A task's events span several
//     sources when it migrates; the attr tid follows it.
//   - Host is Options.Host.
//   - Attrs: pid (the TGID when the line shows one, else the task's pid),
//     tid (the task's pid), cpu, flags (when shown), comm, event; then the
//     event's own fields. A body of key=value words yields one attr per
//     key (see ftraceFields for values with spaces); a key that would
//     shadow one of the attrs above or a well-known Event key gets the
//     prefix "field.". Words that are not key=value (sched_switch's "==>")
//     stay only in Name. funcgraph_exit adds dur_ns.
//   - Kind and Name: KindLog with Name "<event>: <body>", by default.
//     function: attrs func and parent (when printed). funcgraph_entry
//     "f() {" (or -N's "--> f (depth)", -R's "func=f") is KindBegin and
//     funcgraph_exit "}" KindEnd, named after the function they close
//     (paired per task, else by "/* f */" or the raw formats' name); a
//     leaf "f();" is KindSpan with DurNs from the printed duration. trace_marker writes in the atrace layout
//     (tracing_mark_write: B|pid|name, E|pid, C|pid|name|value, S|pid|name|
//     cookie, F|pid|name|cookie, I|pid|name) are KindBegin, KindEnd,
//     KindCounter (attr value), KindBegin/KindEnd with attr id, and
//     KindInstant.
//   - "<stack trace>" and kernel_stack events take the " => frame" lines
//     that follow them as attr stack, frames joined by ";" innermost first.
//     Such an event is returned once the next line shows it is complete.
//   - "CPU:N [LOST M EVENTS]" becomes a KindLog event named "lost events"
//     on cpuN, attrs cpu and lost (absent when the count is unknown), at
//     that CPU's last timestamp (else the trace's last; Untimed before
//     any): ftrace overwrote or dropped them.
//
// Not supported: the function_graph tracer's own layout in the trace file
// ("CPU) DURATION | FUNCTION", no task or timestamp column — read it with
// trace-cmd report instead), and trace clocks that print raw counters
// (x86-tsc, counter) rather than seconds.
func NewFtrace(r io.Reader, opts Options, bootNs int64) Parser {
	return &ftraceParser{
		opts:   opts,
		bootNs: bootNs,
		lr:     newLineReader(r, opts.MaxLineBytes),
		lastNs: make(map[int]int64),
	}
}

type ftraceParser struct {
	Counter
	opts   Options
	bootNs int64
	lr     *lineReader
	seqs   sourceSeqs
	// tracer is the "# tracer:" header's value, when one was seen.
	tracer string
	// pending is a stack-trace event still collecting its frame lines.
	pending *Event
	// held is a line (or errLineTooLong) read past the end of pending, to
	// be handled next.
	held    string
	heldNo  int
	heldErr error
	holding bool
	// graph holds each task's open function_graph frames, innermost last;
	// it names funcgraph_exit events. Bounded: see ftraceMaxTasks.
	graph map[int][]string
	// lastNs is each CPU's latest timestamp (ns since boot), and lastAnyNs
	// the latest line's, for lost-event markers, which carry none.
	lastNs    map[int]int64
	lastAnyNs int64
	anyNs     bool
	err       error // sticky: I/O failure, strict-mode LineError, or io.EOF
}

// Bounds on the function_graph frame stacks kept for naming exits. Past
// them the oldest state is dropped and exits are named "".
const (
	ftraceMaxDepth = 256
	ftraceMaxTasks = 1 << 16
)

func (p *ftraceParser) Next() (Event, error) {
	for p.err == nil {
		s, no, err := p.line()
		if err == errLineTooLong {
			if p.pending != nil { // report it after the stack trace before it
				p.held, p.heldNo, p.heldErr, p.holding = "", no, err, true
				return p.flush(), nil
			}
			p.skip(no, fmt.Errorf("line longer than %d bytes", p.lr.max))
			continue
		}
		if err != nil {
			p.err = readErr(&p.opts, err)
			if p.pending != nil {
				return p.flush(), nil
			}
			break
		}
		if strings.HasPrefix(s, "=>") {
			if p.pending == nil {
				p.skip(no, fmt.Errorf("stack frame %q follows no stack trace event", clip([]byte(s))))
				continue
			}
			ftraceAddFrame(p.pending, strings.TrimSpace(s[2:]))
			continue
		}
		if p.pending != nil {
			// This line is not a frame, so the stack trace is complete;
			// the line is read again by the next call.
			p.held, p.heldNo, p.heldErr, p.holding = s, no, nil, true
			return p.flush(), nil
		}
		e, ok, perr := p.parse(s)
		if perr != nil {
			p.skip(no, perr)
			continue
		}
		if !ok {
			continue
		}
		if ftraceIsStack(e) {
			p.pending = &e
			continue
		}
		e.SourceSeq = p.seqs.next(e.Source)
		return e, nil
	}
	return Event{}, p.err
}

// line returns the next line, trimmed, and its number.
func (p *ftraceParser) line() (string, int, error) {
	if p.holding {
		p.holding = false
		return p.held, p.heldNo, p.heldErr
	}
	b, no, _, err := p.lr.next()
	return strings.TrimSpace(string(b)), no, err
}

func (p *ftraceParser) flush() Event {
	e := *p.pending
	p.pending = nil
	e.SourceSeq = p.seqs.next(e.Source)
	return e
}

func (p *ftraceParser) skip(line int, err error) {
	if rerr := p.Report(&p.opts, line, err); rerr != nil {
		p.err = rerr
	}
}

// parse turns one trimmed line into an Event; ok is false for the lines
// that carry none (comments, trace-cmd's headers).
func (p *ftraceParser) parse(s string) (e Event, ok bool, err error) {
	switch {
	case s == "":
		return Event{}, false, nil
	case s[0] == '#':
		if t, found := strings.CutPrefix(s, "# tracer:"); found {
			p.tracer = strings.TrimSpace(t)
		}
		return Event{}, false, nil
	case strings.HasPrefix(s, "cpus="), strings.HasPrefix(s, "version ="),
		strings.HasPrefix(s, "CPU ") && strings.HasSuffix(s, " is empty"):
		return Event{}, false, nil
	case strings.HasPrefix(s, "CPU:"):
		return p.lost(s)
	}
	rec, err := parseFtraceLine(s)
	if err != nil {
		if p.tracer == "function_graph" {
			return Event{}, false, fmt.Errorf("the function_graph tracer's trace layout has no task or timestamp columns; read the trace with trace-cmd report: %q", clip([]byte(s)))
		}
		return Event{}, false, err
	}
	p.lastNs[rec.cpu] = rec.tsNs
	p.lastAnyNs, p.anyNs = rec.tsNs, true
	return p.event(&rec), true, nil
}

// lost reads "CPU:2 [LOST 123 EVENTS]" (or "[LOST EVENTS]").
func (p *ftraceParser) lost(s string) (Event, bool, error) {
	rest := s[len("CPU:"):]
	i := strings.IndexByte(rest, ' ')
	if i < 0 {
		return Event{}, false, fmt.Errorf("not an ftrace event line: %q", clip([]byte(s)))
	}
	cpu, err := strconv.Atoi(rest[:i])
	mid, found := strings.CutPrefix(strings.TrimSpace(rest[i:]), "[LOST ")
	count, found2 := strings.CutSuffix(mid, "EVENTS]")
	count = strings.TrimSpace(count)
	if err != nil || cpu < 0 || !found || !found2 {
		return Event{}, false, fmt.Errorf("not an ftrace event line: %q", clip([]byte(s)))
	}
	scpu := strconv.Itoa(cpu)
	e := Event{
		Source: "cpu" + scpu, Host: p.opts.Host, Kind: KindLog, Name: "lost events",
		Attrs: []Attr{{"cpu", scpu}},
	}
	if ns, ok := p.lastNs[cpu]; ok {
		e.LocalNs = p.bootNs + ns
	} else if p.anyNs {
		e.LocalNs = p.bootNs + p.lastAnyNs
	} else {
		e.Untimed = true
	}
	if count != "" {
		if _, err := strconv.ParseUint(count, 10, 64); err != nil {
			return Event{}, false, fmt.Errorf("lost-events count %q is not a number", count)
		}
		e.Attrs = append(e.Attrs, Attr{"lost", count})
	}
	return e, true, nil
}

// ftraceRecord is one event line split into its columns.
type ftraceRecord struct {
	comm   string
	pid    int
	tgid   string // "" when the line shows none
	cpu    int
	flags  string // "" when the line shows none
	tsNs   int64  // since boot
	event  string // "function" for the function tracer's bare lines
	body   string
	bareFn bool // the function tracer's "f <-parent" with no event name
}

// parseFtraceLine splits a trimmed event line. The timestamp is the first
// word of the form digits.digits followed by ':'; the words before it are,
// from the right: the flags (optional), the CPU as [N] — or trace-cmd -l's
// N followed by the flags — an optional (TGID), and comm-pid, where comm
// may hold spaces and dashes.
func parseFtraceLine(s string) (ftraceRecord, error) {
	var rec ftraceRecord
	bad := func() (ftraceRecord, error) {
		return rec, fmt.Errorf("not an ftrace event line: %q", clip([]byte(s)))
	}
	// words holds the start offsets of the words before the timestamp.
	var words [8]int
	nw := 0
	tsAt, tsEnd := -1, -1
	for i := 0; i < len(s); {
		for i < len(s) && ftraceSpace(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !ftraceSpace(s[j]) {
			j++
		}
		if i == j {
			break
		}
		if nw > 0 && ftraceIsTimestamp(s[i:j]) {
			tsAt, tsEnd = i, j
			break
		}
		if nw == len(words) {
			copy(words[:], words[1:])
			nw--
		}
		words[nw] = i
		nw++
		i = j
	}
	if tsAt < 0 || nw < 2 {
		return bad()
	}
	word := func(k int) string { // the k-th word before the timestamp
		end := tsAt
		if k+1 < nw {
			end = words[k+1]
		}
		return strings.TrimRight(s[words[k]:end], " \t")
	}
	k := nw - 1
	last := word(k)
	if !ftraceIsCPU(last) && k >= 2 && ftraceIsCPU(word(k-1)) {
		rec.flags = last
		k--
		last = word(k)
	}
	if ftraceIsCPU(last) {
		rec.cpu, _ = strconv.Atoi(last[1 : len(last)-1])
	} else {
		// trace-cmd report -l: "0d.h1." is the CPU then the flags.
		d := 0
		for d < len(last) && isDigit(last[d]) {
			d++
		}
		if d == 0 || d == len(last) {
			return bad()
		}
		rec.cpu, _ = strconv.Atoi(last[:d])
		rec.flags = last[d:]
	}
	head := strings.TrimRight(s[:words[k]], " \t")
	if strings.HasSuffix(head, ")") {
		open := strings.LastIndexByte(head, '(')
		if open < 0 {
			return bad()
		}
		tgid := strings.TrimSpace(head[open+1 : len(head)-1])
		if !ftraceAllDigits(tgid) && strings.Trim(tgid, "-") != "" {
			return bad()
		}
		if ftraceAllDigits(tgid) {
			rec.tgid = tgid
		}
		head = strings.TrimRight(head[:open], " \t")
	}
	dash := strings.LastIndexByte(head, '-')
	if dash <= 0 || !ftraceAllDigits(head[dash+1:]) {
		return bad()
	}
	var err error
	if rec.pid, err = strconv.Atoi(head[dash+1:]); err != nil {
		return bad()
	}
	rec.comm = head[:dash]
	ts := s[tsAt : tsEnd-1]
	if rec.tsNs, err = decimalToNs([]byte(ts), 9); err != nil {
		return rec, fmt.Errorf("timestamp %q: %v", ts, err)
	}
	msg := strings.TrimLeft(s[tsEnd:], " \t")
	if strings.HasPrefix(msg, "(+") { // trace-cmd report --ts-diff
		if end := strings.IndexByte(msg, ')'); end > 0 {
			msg = strings.TrimLeft(msg[end+1:], " \t")
		}
	}
	rec.event, rec.body, rec.bareFn = ftraceSplitMessage(msg)
	return rec, nil
}

// ftraceSplitMessage splits what follows the timestamp into the event name
// and its body. The function tracer's lines in the trace file carry no
// event name ("sys_close <-system_call_fastpath"); they are "function".
func ftraceSplitMessage(msg string) (event, body string, bareFn bool) {
	i := 0
	for i < len(msg) && ftraceNameByte(msg[i]) {
		i++
	}
	if i > 0 && i < len(msg) && msg[i] == ':' && (i+1 == len(msg) || ftraceSpace(msg[i+1])) {
		return msg[:i], strings.TrimSpace(msg[i+1:]), false
	}
	switch msg {
	case "<stack trace>":
		return "kernel_stack", msg, false
	case "<user stack trace>":
		return "user_stack", msg, false
	}
	return "function", msg, true
}

// event builds the Event of one parsed line.
func (p *ftraceParser) event(rec *ftraceRecord) Event {
	cpu, tid := strconv.Itoa(rec.cpu), strconv.Itoa(rec.pid)
	pid := tid
	if rec.tgid != "" {
		pid = rec.tgid
	}
	e := Event{
		Source:  "cpu" + cpu,
		Host:    p.opts.Host,
		LocalNs: p.bootNs + rec.tsNs,
		Kind:    KindLog,
		Attrs:   make([]Attr, 0, 8),
	}
	e.Attrs = append(e.Attrs, Attr{"pid", pid}, Attr{"tid", tid}, Attr{"cpu", cpu})
	if rec.flags != "" {
		e.Attrs = append(e.Attrs, Attr{"flags", rec.flags})
	}
	e.Attrs = append(e.Attrs, Attr{"comm", rec.comm}, Attr{"event", rec.event})
	e.Name = rec.event
	if rec.body != "" {
		e.Name += ": " + rec.body
	}
	switch {
	case rec.event == "function" && strings.HasPrefix(rec.body, "ip="): // trace-cmd report -R
		for _, a := range ftraceFields(nil, rec.body) {
			switch a.Key {
			case "ip":
				a.Key = "func"
			case "parent_ip":
				a.Key = "parent"
			}
			e.Attrs = append(e.Attrs, a)
		}
	case rec.event == "function":
		fn, parent := ftraceFunction(rec.body)
		e.Attrs = append(e.Attrs, Attr{"func", fn})
		if parent != "" {
			e.Attrs = append(e.Attrs, Attr{"parent", parent})
		}
	case rec.event == "funcgraph_entry" || rec.event == "funcgraph_exit":
		p.funcgraph(&e, rec)
	case rec.event == "tracing_mark_write":
		ftraceMarker(&e, rec.body)
	case rec.event == "print" && strings.HasPrefix(rec.body, "tracing_mark_write: "):
		ftraceMarker(&e, rec.body[len("tracing_mark_write: "):])
	case rec.event == "print" && strings.HasPrefix(rec.body, "ip=tracing_mark_write buf="): // -R
		ftraceMarker(&e, rec.body[len("ip=tracing_mark_write buf="):])
	case rec.event == "kernel_stack" || rec.event == "user_stack":
	default:
		e.Attrs = ftraceFields(e.Attrs, rec.body)
	}
	return e
}

// ftraceFunction splits "f <-parent" (trace file) or "f <-- parent"
// (trace-cmd).
func ftraceFunction(body string) (fn, parent string) {
	fn, parent, _ = strings.Cut(body, "<-")
	return strings.TrimSpace(fn), strings.TrimSpace(strings.TrimPrefix(parent, "-"))
}

// funcgraph reads trace-cmd's function_graph events:
//
//	funcgraph_entry:                   |  do_sys_open() {
//	funcgraph_entry:        0.179 us   |    getname();
//	funcgraph_exit:       ! 242.655 us |  }
//
// The mark before the duration (+ ! # * @ $) flags long ones.
func (p *ftraceParser) funcgraph(e *Event, rec *ftraceRecord) {
	if p.funcgraphRaw(e, rec) {
		return
	}
	left, right, _ := strings.Cut(rec.body, "|")
	code := strings.TrimSpace(right)
	durNs := int64(-1)
	if f := strings.Fields(left); len(f) >= 2 && f[len(f)-1] == "us" {
		if ns, err := decimalToNs([]byte(f[len(f)-2]), 3); err == nil && ns >= 0 {
			durNs = ns
		}
	}
	switch {
	case strings.HasSuffix(code, "{"):
		fn := strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(code, "{"), " "))
		fn = strings.TrimSuffix(fn, "()")
		e.Kind, e.Name = KindBegin, fn
		p.push(rec.pid, fn)
	case strings.HasSuffix(code, ";"):
		fn := strings.TrimSuffix(strings.TrimSuffix(code, ";"), "()")
		e.Kind, e.Name = KindSpan, fn
		if durNs > 0 {
			e.DurNs = durNs
		}
	case strings.HasPrefix(code, "}"):
		e.Kind, e.Name = KindEnd, p.pop(rec.pid)
		// funcgraph-tail prints "} /* f */".
		if c, ok := strings.CutPrefix(strings.TrimSpace(code[1:]), "/*"); ok {
			e.Name = strings.TrimSpace(strings.TrimSuffix(c, "*/"))
		}
	}
	if e.Kind != KindLog {
		e.Attrs = append(e.Attrs, Attr{"func", e.Name})
	}
	if durNs >= 0 && e.Kind != KindSpan {
		e.Attrs = append(e.Attrs, Attr{"dur_ns", strconv.FormatInt(durNs, 10)})
	}
}

// funcgraphRaw reads the events' own print format, which trace-cmd report
// -N shows:
//
//	funcgraph_entry:      --> do_sys_open (0)
//	funcgraph_exit:       <-- do_sys_open (0) (start: 157f5c72c054  end: 157f5c758705) over: 0
//
// and their raw fields, which -R shows:
//
//	funcgraph_entry:       func=do_sys_open depth=0
//	funcgraph_exit:        func=do_sys_open depth=0 overrun=0 calltime=157f5c72c054 rettime=157f5c758705
func (p *ftraceParser) funcgraphRaw(e *Event, rec *ftraceRecord) bool {
	var fn, start, end string
	switch b := rec.body; {
	case strings.HasPrefix(b, "--> "), strings.HasPrefix(b, "<-- "):
		var rest string
		fn, rest, _ = strings.Cut(b[4:], " (")
		_, times, _ := strings.Cut(rest, "(start: ")
		start, times, _ = strings.Cut(times, " ")
		_, end, _ = strings.Cut(times, "end: ")
		end, _, _ = strings.Cut(end, ")")
	case strings.HasPrefix(b, "func="):
		for _, a := range ftraceFields(nil, b) {
			switch a.Key {
			case "field.func":
				fn = a.Value
			case "calltime":
				start = a.Value
			case "rettime":
				end = a.Value
			}
		}
	default:
		return false
	}
	e.Name = fn
	e.Attrs = append(e.Attrs, Attr{"func", fn})
	if rec.event == "funcgraph_entry" {
		e.Kind = KindBegin
		p.push(rec.pid, fn)
		return true
	}
	e.Kind = KindEnd
	p.pop(rec.pid)
	t0, err0 := strconv.ParseUint(start, 16, 63)
	t1, err1 := strconv.ParseUint(end, 16, 63)
	if err0 == nil && err1 == nil && t1 >= t0 {
		e.Attrs = append(e.Attrs, Attr{"dur_ns", strconv.FormatUint(t1-t0, 10)})
	}
	return true
}

func (p *ftraceParser) push(tid int, fn string) {
	if p.graph == nil || len(p.graph) >= ftraceMaxTasks {
		p.graph = make(map[int][]string)
	}
	st := p.graph[tid]
	if len(st) >= ftraceMaxDepth {
		st = st[1:]
	}
	p.graph[tid] = append(st, fn)
}

func (p *ftraceParser) pop(tid int) string {
	st := p.graph[tid]
	if len(st) == 0 {
		return ""
	}
	fn := st[len(st)-1]
	if len(st) == 1 {
		delete(p.graph, tid)
	} else {
		p.graph[tid] = st[:len(st)-1]
	}
	return fn
}

// ftraceMarker reads an atrace (systrace) trace_marker payload; any other
// text stays a KindLog message.
func ftraceMarker(e *Event, msg string) {
	f := strings.SplitN(msg, "|", 4)
	if len(f[0]) != 1 {
		return
	}
	get := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "B":
		if len(f) < 3 {
			return
		}
		e.Kind, e.Name = KindBegin, get(2)
	case "E":
		e.Kind, e.Name = KindEnd, get(2)
	case "I":
		if len(f) < 3 {
			return
		}
		e.Kind, e.Name = KindInstant, get(2)
	case "C":
		if len(f) < 4 {
			return
		}
		e.Kind, e.Name = KindCounter, get(2)
		e.Attrs = append(e.Attrs, Attr{"value", strings.TrimSpace(get(3))})
	case "S", "F":
		if len(f) < 4 {
			return
		}
		e.Kind, e.Name = KindBegin, get(2)
		if f[0] == "F" {
			e.Kind = KindEnd
		}
		e.Attrs = append(e.Attrs, Attr{"id", strings.TrimSpace(get(3))})
	}
}

// ftraceFields appends the key=value words of body. A value runs on over
// the words after it that are not key=value themselves ("prev_comm=Web
// Content"), up to a word without a letter or digit ("==>") or ending in
// ':' ("Latency:"); such words, and any before the first key, are left out.
func ftraceFields(attrs []Attr, body string) []Attr {
	key, vStart, vEnd := "", -1, -1
	flush := func() {
		if vStart >= 0 {
			if ftraceReserved(key) {
				key = "field." + key
			}
			attrs = append(attrs, Attr{key, body[vStart:vEnd]})
		}
		vStart = -1
	}
	for i := 0; i < len(body); {
		for i < len(body) && ftraceSpace(body[i]) {
			i++
		}
		j := i
		for j < len(body) && !ftraceSpace(body[j]) {
			j++
		}
		w := body[i:j]
		if k, _, ok := strings.Cut(w, "="); ok && ftraceIsKey(k) {
			flush()
			key, vStart, vEnd = k, i+len(k)+1, j
		} else if vStart >= 0 && strings.HasSuffix(w, ":") || !ftraceHasAlnum(w) {
			flush()
		} else if vStart >= 0 {
			vEnd = j
		}
		i = j
	}
	flush()
	return attrs
}

func ftraceHasAlnum(w string) bool {
	for i := 0; i < len(w); i++ {
		if c := w[i]; isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// ftraceReserved: keys an event field may not take over, the ones the
// parser sets and Event's well-known ones.
func ftraceReserved(k string) bool {
	switch k {
	case "pid", "tid", "cpu", "flags", "comm", "event", "func", "parent", "stack",
		"level", "trace_id", "span_id", "parent_span_id", "flow_id", "category":
		return true
	}
	return false
}

func ftraceIsStack(e Event) bool {
	ev, _ := e.Attr("event")
	return ev == "kernel_stack" || ev == "user_stack"
}

func ftraceAddFrame(e *Event, frame string) {
	for i := range e.Attrs {
		if e.Attrs[i].Key == "stack" {
			e.Attrs[i].Value += ";" + frame
			return
		}
	}
	e.Attrs = append(e.Attrs, Attr{"stack", frame})
}

func ftraceSpace(c byte) bool { return c == ' ' || c == '\t' }

// ftraceIsTimestamp: digits '.' 1–9 digits ':'.
func ftraceIsTimestamp(w string) bool {
	if len(w) < 4 || w[len(w)-1] != ':' {
		return false
	}
	sec, frac, ok := strings.Cut(w[:len(w)-1], ".")
	return ok && sec != "" && len(frac) >= 1 && len(frac) <= 9 &&
		ftraceAllDigits(sec) && ftraceAllDigits(frac)
}

// ftraceIsCPU: "[" digits "]".
func ftraceIsCPU(w string) bool {
	return len(w) >= 3 && w[0] == '[' && w[len(w)-1] == ']' && ftraceAllDigits(w[1:len(w)-1]) && len(w) <= 12
}

func ftraceAllDigits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func ftraceNameByte(c byte) bool {
	return c == '_' || isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func ftraceIsKey(k string) bool {
	if k == "" || isDigit(k[0]) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !ftraceNameByte(k[i]) && k[i] != '.' {
			return false
		}
	}
	return true
}
