package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func chromeOf(in string) func(Options) Parser {
	return func(o Options) Parser { return NewChrome(strings.NewReader(in), o) }
}

// The inputs in testdata/chrome: gotrace.json is real, the Chrome JSON
// that `go tool trace` (Go 1.26.8) serves at /jsontrace for a trace of
// gotrace.go.txt, unchanged; all-phases.json (every phase, the Object
// Format with members around traceEvents) and unterminated.json (the Array
// Format cut after a comma) are written by hand per the Trace Event
// Format document.
func TestChromeGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/chrome/*.json")
	if len(inputs) == 0 {
		t.Fatal("no inputs")
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := transcript(t, chromeOf(string(data)), Options{File: filepath.Base(in), Host: "hv-07"})
			checkGolden(t, in+".golden", got)
		})
	}
}

func TestChrome(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{{
		name: "array format, exact µs, string ts, no pid or tid",
		in:   `[{"name":"a","ph":"X","ts":"1.0015","dur":0.0009},{"name":"b","ph":"i","ts":-2.5e-3}]`,
		want: `"f"#1 host="h" ts=1970-01-01T00:00:00.000001001Z kind=span name="a"
    ph="X"
"f"#2 host="h" ts=1969-12-31T23:59:59.999999998Z kind=instant name="b"
    ph="i"
skipped: 0
`,
	}, {
		name: "unterminated array after a comma",
		in:   "[\n{\"ph\":\"B\",\"ts\":1,\"pid\":1,\"tid\":2},\n",
		want: `"1/2"#1 host="h" ts=1970-01-01T00:00:00.000001000Z kind=begin name=""
    pid="1"
    tid="2"
    ph="B"
skipped: 0
`,
	}, {
		name: "unterminated array after an event; empty traceEvents; empty array",
		in:   `[{"ph":"E","ts":1,"tid":3}`,
		want: `"/3"#1 host="h" ts=1970-01-01T00:00:00.000001000Z kind=end name=""
    tid="3"
    ph="E"
skipped: 0
`,
	}, {
		name: "object format without events, null traceEvents",
		in:   `{"traceEvents":[],"traceEvents":null,"metadata":{"x":[1,{"y":2}]}}`,
		want: "skipped: 0\n",
	}, {
		name: "names from metadata apply to later events; args nesting and depth",
		in: `[{"name":"process_name","ph":"M","pid":1,"args":{"name":"p"}},{"name":"thread_name","ph":"M","pid":1,"tid":2,"args":{"name":"t"}},` +
			`{"ph":"i","ts":0,"pid":1,"tid":2,"args":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":1}}}}}}}}},"n":null,"s":"x\ny"}}]`,
		want: `"1/"#1 host="h" ts=none kind=log name="process_name"
    pid="1"
    ph="M"
    args.name="p"
"1/2"#1 host="h" ts=none kind=log name="thread_name"
    pid="1"
    tid="2"
    process="p"
    ph="M"
    args.name="t"
"1/2"#2 host="h" ts=1970-01-01T00:00:00.000000000Z kind=instant name=""
    pid="1"
    tid="2"
    process="p"
    thread="t"
    ph="i"
    args.a.b.c.d.e.f.g.h.i="{\"j\":1}"
    args.n="null"
    args.s="x\ny"
skipped: 0
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := transcript(t, chromeOf(tc.in), Options{File: "f", Host: "h"})
			if d := firstDiff(tc.want, got); d != "" {
				t.Errorf("got:\n%s\n%s", got, d)
			}
		})
	}
}

func TestChromeMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string // the errors, the skip count, and the final error
	}{{
		name: "per-event errors at the line of the offending value",
		in: "{\"traceEvents\": [\n{\"name\": \"no ph\"},\n{\"ph\": \"B\"},\n{\"ph\": \"X\",\n \"ts\": 1},\n{\"ph\": \"X\", \"ts\": 1,\n \"dur\": -1},\n" +
			"{\"ph\": \"i\",\n \"ts\": \"soon\"},\n{\"ph\": \"s\", \"ts\": 1},\n{\"ph\": \"B\", \"ts\": 1,\n \"pid\": {\"x\": 1}},\n7,\n{\"ph\": \"B\",\n \"name\": 5}\n]}",
		want: `error: f:2: malformed record: event has no "ph"
error: f:3: malformed record: event has no "ts"
error: f:4: malformed record: complete event (ph "X") has no "dur"
error: f:7: malformed record: dur -1 is negative
error: f:9: malformed record: ts: "soon" is not a number
error: f:10: malformed record: event (ph "s") has no "id"
error: f:12: malformed record: pid {"x": 1} is not a number or a string
error: f:13: malformed record: record: JSON number where an object belongs
error: f:15: malformed record: name: JSON number where a string belongs
skipped: 9
end: EOF
`,
	}, {
		name: "truncated inside an event of the array format: a malformed last record",
		in:   "[{\"ph\":\"B\",\"ts\":1},\n{\"ph\":\"E\",\"t",
		want: "error: f:2: malformed record: truncated: the input ends inside a JSON value\nskipped: 1\nend: EOF\n",
	}, {
		name: "truncated in the object format",
		in:   "{\"traceEvents\":[{\"ph\":\"B\",\"ts\":1}\n\n",
		want: "error: f:2: malformed record: truncated: the input ends inside a JSON value\nskipped: 1\nend: EOF\n",
	}, {
		name: "data after the trace",
		in:   "[]\n{}",
		want: "skipped: 0\nend: f:2: malformed record: want the end of the input after the trace, got '{'\n",
	}, {
		name: "invalid JSON between events",
		in:   "[{\"ph\":\"B\",\"ts\":1},\n\n{\"ph\":\"E\",\"ts\":2}}\n",
		want: "skipped: 0\nend: f:3: malformed record: invalid JSON: invalid character '}' after array element\n",
	}, {
		name: "binary garbage",
		in:   "\x89PNG\r\n\x1a\n",
		want: "skipped: 0\nend: f:1: malformed record: invalid JSON: invalid character '\\u0089' looking for beginning of value\n",
	}, {
		name: "a JSON value that is no trace",
		in:   `"traceEvents"`,
		want: "skipped: 0\nend: f:1: malformed record: want a JSON array or object of trace events, got string \"traceEvents\"\n",
	}, {
		name: "an event longer than MaxLineBytes",
		in:   "[{\"ph\":\"B\",\"ts\":1},\n{\"ph\":\"B\",\"ts\":1,\"args\":{\"x\":\"" + strings.Repeat("x", 200) + "\"}}]",
		max:  128,
		want: "skipped: 0\nend: f:2: malformed record: JSON value longer than 128 bytes\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			p := NewChrome(strings.NewReader(tc.in), Options{File: "f", MaxLineBytes: tc.max,
				OnError: func(le *LineError) { fmt.Fprintf(&b, "error: %v\n", le) }})
			_, err := ReadAll(p)
			if err == nil {
				err = io.EOF
			}
			fmt.Fprintf(&b, "skipped: %d\nend: %v\n", p.(interface{ Errors() int }).Errors(), err)
			if d := firstDiff(tc.want, b.String()); d != "" {
				t.Errorf("got:\n%s\n%s", b.String(), d)
			}
		})
	}
}

func TestChromeStrict(t *testing.T) {
	in := "[{\"ph\":\"B\",\"ts\":1},\n{\"ph\":\"X\",\"ts\":1},\n{\"ph\":\"E\",\"ts\":2}]"
	p := NewChrome(strings.NewReader(in), Options{File: "trace.json", Strict: true})
	evs, err := ReadAll(p)
	var le *LineError
	if len(evs) != 1 || !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("%d events, err %v; want 1 event and a LineError at line 2", len(evs), err)
	}
	if want := `trace.json:2: malformed record: complete event (ph "X") has no "dur"`; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if _, again := p.Next(); again != err {
		t.Errorf("Next after a strict failure = %v, want the same error", again)
	}
}

func TestChromeReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	p := NewChrome(io.MultiReader(strings.NewReader(`[{"ph":"B","ts":1},`), iotest.ErrReader(boom)), Options{File: "x.json"})
	evs, err := ReadAll(p)
	var le *LineError
	if len(evs) != 1 || !errors.Is(err, boom) || errors.As(err, &le) || err.Error() != "read x.json: disk on fire" {
		t.Errorf("%d events, err = %v; want 1, then the read error wrapped with the file", len(evs), err)
	}
}

// TestChromeStreams checks a long event array is read one event at a
// time, and a long skipped member does not count against MaxLineBytes.
func TestChromeStreams(t *testing.T) {
	const n = 20000
	ev := `{"name":"x","ph":"X","ts":1.5,"dur":2,"pid":1,"tid":2,"args":{"k":"v"}}`
	in := `{"systemTraceEvents":"` + strings.Repeat("#", 64<<10) + `","traceEvents":[` + strings.Repeat(ev+",", n-1) + ev + `]}`
	p := NewChrome(strings.NewReader(in), Options{MaxLineBytes: 1024}).(*chromeParser)
	count := 0
	for {
		_, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		count++
		if ahead := p.doc.src.n - p.doc.dec.InputOffset(); ahead > 64<<10 {
			t.Fatalf("after event %d the decoder holds %d bytes ahead", count, ahead)
		}
	}
	if count != n {
		t.Errorf("%d events, want %d", count, n)
	}
}

// FuzzChrome checks no input panics or loops, the result does not depend
// on how the reader splits the input, and strict mode stops at the first
// error.
func FuzzChrome(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/chrome/*.json")
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`[{"ph":"t","id2":{"local":1},"ts":1e400},{"ph":"C","ts":0,"args":[1]},`))
	f.Fuzz(func(t *testing.T, data []byte) {
		runThreeWays(t, func(r io.Reader, o Options) Parser { return NewChrome(r, o) }, data, true)
	})
}

func BenchmarkChrome(b *testing.B) {
	var events bytes.Buffer
	events.WriteString(`{"traceEvents":[`)
	for i := 0; events.Len() < 1<<20; i++ {
		if i > 0 {
			events.WriteString(",\n")
		}
		fmt.Fprintf(&events, `{"name":"apply","cat":"consensus","ph":"X","ts":%d.%03d,"dur":12.5,"pid":4242,"tid":%d,"args":{"slot":%d,"peer":"hv-%02d"}}`,
			1000+i, i%1000, 4250+i%4, i, i%16)
	}
	events.WriteString("]}")
	data := events.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadAll(NewChrome(bytes.NewReader(data), Options{File: "bench"})); err != nil {
			b.Fatal(err)
		}
	}
}
