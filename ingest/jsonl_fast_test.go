package ingest

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// fastTestMappings are the mappings the fast path is checked under.
var fastTestMappings = []struct {
	name string
	m    JSONMapping
}{
	{"default", DefaultJSONMapping()},
	{"none", JSONMapping{}},
	{"journal", journalJSONMapping},
	{"nested paths", JSONMapping{Time: "t.ns|ts", TimeFormat: JSONTimeUnixNs, Host: "src.host|host", Message: "msg", Source: "src.file", Kind: "k"}},
	{"rfc3339", JSONMapping{Time: "ts", TimeFormat: JSONTimeRFC3339, Message: "msg"}},
	{"unix ms", JSONMapping{Time: "ts", TimeFormat: JSONTimeUnixMs, Host: "host"}},
}

// newScannerOnly is NewJSONLines without the fast path: the reference.
func newScannerOnly(r io.Reader, o Options, m JSONMapping) Parser {
	p := NewJSONLines(r, o, m).(*jsonLines)
	p.scannerOnly = true
	return p
}

// The ways checkFastMatchesScanner reads: the scanner alone (the
// reference), Next with the fast path, and NextLazy with LineFields.Fill.
const (
	readScanner = iota
	readFast
	readLazy
)

// checkFastMatchesScanner parses data with and without the fast path,
// and through NextLazy, whole and (if bytewise) byte by byte, strict and
// not, and fails on any difference in events, errors or their lines. It
// returns how many events the fast path built.
func checkFastMatchesScanner(t *testing.T, data []byte, m JSONMapping, bytewise bool) int {
	t.Helper()
	type outcome struct {
		recs []parsedRecord
		err  error
		fast int
	}
	run := func(r io.Reader, strict bool, how int) outcome {
		var out outcome
		o := Options{File: "f.jsonl", Host: "fb", Strict: strict,
			OnError: func(le *LineError) { out.recs = append(out.recs, parsedRecord{err: le, line: le.Line}) }}
		mk := NewJSONLines
		if how == readScanner {
			mk = newScannerOnly
		}
		p := mk(r, o, m).(*jsonLines)
		for {
			var e Event
			var err error
			if how == readLazy {
				var f LineFields
				var lazy bool
				if lazy, err = p.NextLazy(&e, &f); lazy {
					checkLineFieldsText(t, &f)
					f.Fill(&e)
				}
			} else {
				e, err = p.Next()
			}
			if err != nil {
				if err != io.EOF {
					out.err = err
				}
				out.fast = p.fs.events
				return out
			}
			out.recs = append(out.recs, parsedRecord{ev: e})
		}
	}
	var fastEvents int
	for _, strict := range []bool{false, true} {
		want := run(bytes.NewReader(data), strict, readScanner)
		for _, how := range []int{readFast, readLazy} {
			readers := []io.Reader{bytes.NewReader(data)}
			if bytewise {
				readers = append(readers, iotest.OneByteReader(bytes.NewReader(data)))
			}
			for _, r := range readers {
				got := run(r, strict, how)
				if fmt.Sprint(got.err) != fmt.Sprint(want.err) {
					t.Fatalf("strict %v, read %d: error %v, the scanner's %v", strict, how, got.err, want.err)
				}
				if len(got.recs) != len(want.recs) {
					t.Fatalf("strict %v, read %d: %d records, the scanner's %d:\n%s\nvs\n%s", strict, how, len(got.recs), len(want.recs),
						renderRecords(got.recs), renderRecords(want.recs))
				}
				for i := range got.recs {
					g, w := got.recs[i], want.recs[i]
					if !reflect.DeepEqual(g.ev, w.ev) || fmt.Sprint(g.err) != fmt.Sprint(w.err) || g.line != w.line {
						t.Fatalf("strict %v, read %d: record %d:\n%s%v\nthe scanner's:\n%s%v", strict, how, i, renderEvent(g.ev), g.err, renderEvent(w.ev), w.err)
					}
				}
				if !strict && how == readFast {
					fastEvents = got.fast
				} else if !strict && got.fast != fastEvents {
					t.Fatalf("NextLazy took %d events lazily, Next %d fast", got.fast, fastEvents)
				}
			}
		}
	}
	return fastEvents
}

// checkLineFieldsText checks what LineFields promise of their text:
// plain text is printable ASCII without '"' or '\\', and any other is
// valid UTF-8 without those or control bytes.
func checkLineFieldsText(t *testing.T, f *LineFields) {
	t.Helper()
	check := func(what string, b []byte, plain bool) {
		for _, c := range b {
			if c < 0x20 || c == '"' || c == '\\' || plain && c >= 0x80 {
				t.Fatalf("%s %q (plain %v) holds %q", what, b, plain, c)
			}
		}
		if !utf8.Valid(b) {
			t.Fatalf("%s %q is not valid UTF-8", what, b)
		}
	}
	name, plain := f.Name()
	check("name", name, plain)
	for i := range f.NumAttrs() {
		k, v, plain := f.Attr(i)
		check("attr "+k, v, plain)
	}
}

func TestJSONLinesFastMatchesScanner(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		// fast is how many events the fast path must build under the
		// default mapping; -1 does not check.
		fast int
	}{{
		name: "common shape",
		in: `{"ts":1700000000123456789,"host":"hv1","level":"info","msg":"vcpu exit","vm":"vm-1","seq":17}` + "\n" +
			`{"ts":1700000000123456790,"host":"hv1","level":"warn","msg":"","vm":"vm-22","seq":18}` + "\n",
		fast: 2,
	}, {
		name: "field order varies",
		in: `{"ts":1,"msg":"a","x":1}` + "\n" + `{"msg":"b","ts":2,"x":1}` + "\n" + `{"x":1,"msg":"c","ts":3}` + "\n" +
			`{"ts":4,"msg":"d","x":1}` + "\n" + `{"x":1,"ts":5}` + "\n" + `{"y":1,"ts":6}` + "\n" + `{"ts":7,"msg":"e","x":1}` + "\n",
		fast: 7,
	}, {
		name: "missing and null fields",
		in: `{"ts":1,"host":"h","msg":"m"}` + "\n" + `{"ts":2,"host":null,"msg":"m"}` + "\n" + `{"ts":3,"host":"h","msg":null}` + "\n" +
			`{"ts":null,"time":4,"msg":"x"}` + "\n" + `{"ts":null,"msg":"x"}` + "\n" + `{"ts":5,"hostname":"a","host":null}` + "\n" +
			`{"host":"h","msg":"no time"}` + "\n" + `{"ts":6}` + "\n" + `{"ts":6,"host":"","msg":""}` + "\n",
		fast: 7,
	}, {
		name: "duplicate keys",
		in:   `{"ts":1,"ts":2,"msg":"a","msg":"b","host":null,"host":"h2"}` + "\n" + `{"ts":null,"ts":3,"msg":"a","msg":"b","host":"h1","host":"h2"}` + "\n",
		fast: 2,
	}, {
		name: "numbers as strings and numbers",
		in: `{"ts":"1700000000","n":"12"}` + "\n" + `{"ts":1700000000.5,"n":1.5e3}` + "\n" + `{"ts":"1700000000123","n":-0}` + "\n" +
			`{"ts":1700000000123456,"n":0.1}` + "\n" + `{"ts":"2023-11-14T22:13:20.5+01:00","n":true}` + "\n" +
			`{"ts":9223372036854775807}` + "\n" + `{"ts":9223372036854775808}` + "\n" + `{"ts":99999999999999999999}` + "\n" +
			`{"ts":-5}` + "\n" + `{"ts":0}` + "\n" + `{"ts":"0012"}` + "\n" + `{"ts":1e9}` + "\n" + `{"ts":true}` + "\n" +
			`{"ts":"x"}` + "\n" + `{"ts":12345678901}` + "\n" + `{"ts":99999999999}` + "\n" + `{"ts":100000000000}` + "\n",
		fast: -1,
	}, {
		name: "escapes and unicode",
		in: `{"ts":1,"msg":"a\"b","k":"v"}` + "\n" + `{"ts":2,"msg":"tab\there","k":"\u00e9\ud83d\ude00"}` + "\n" +
			`{"ts":3,"msg":"caf` + "\u00e9" + `","k":"日本語"}` + "\n" + `{"ts":4,"msg":"bad ` + "\xff\xfe" + `","k":"v"}` + "\n" +
			`{"ts":5,"msg":"` + "\xed\xa0\x80" + `","k":"lone surrogate"}` + "\n" + `{"ts":6,"msg":"\ud800","k":"v"}` + "\n" +
			`{"ts":7,"msg":"` + "\ufffd" + `","k":"v"}` + "\n" + `{"ts":8,"k` + "\u00e9" + `":"non-ASCII key"}` + "\n" +
			`{"ts":9,"k\"q":"escaped key"}` + "\n" + `{"ts":10,"msg":"ctl` + "\x01" + `"}` + "\n" + `{"ts":11,"msg":"\/"}` + "\n",
		fast: -1,
	}, {
		name: "whitespace and line ends",
		in: `  { "ts" : 1 , "msg" : "a" }  ` + "\n" + `  { "ts" : 2 , "msg" : "b" }  ` + "\n" + "{\"ts\":3,\"msg\":\"c\"}\r\n" +
			"{\"ts\":4,\"msg\":\"d\"}\r\n" + "\t{\"ts\":5}\t\r\n" + "\n   \n" + `{"ts":6,"msg":"e"}`,
		fast: 6,
	}, {
		name: "nested objects",
		in: `{"ts":1,"src":{"file":"a.go","line":3,"host":"h"},"t":{"ns":5},"msg":"x"}` + "\n" +
			`{"ts":2,"src":{"file":"b.go","line":4,"host":null},"t":{"ns":6},"msg":"y"}` + "\n" +
			`{"ts":3,"src":{},"msg":"empty object"}` + "\n" + `{"ts":4,"src":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}}` + "\n" +
			`{"ts":5,"src":{"a":{"b":1}},"src.a.b":2}` + "\n" + `{"ts":6,"a":[1,2],"msg":"array"}` + "\n" + `{"ts":7,"a":{"b":[]}}` + "\n",
		fast: -1,
	}, {
		name: "syntax errors",
		in: `{"ts":1,"msg":"a"}` + "\n" + `{"ts":1,"msg":"a"` + "\n" + `{"ts":1,"msg":"a"}}` + "\n" + `{"ts":1,"msg":"a",}` + "\n" +
			`{"ts":01,"msg":"a"}` + "\n" + `{"ts":1.,"msg":"a"}` + "\n" + `{"ts":1,"msg":tru}` + "\n" + `{"ts":1,"msg":truex}` + "\n" +
			`{"ts":1,"msg":"a"} x` + "\n" + `{"ts":1 "msg":"a"}` + "\n" + `{"ts":1,"msg":"a` + "\n" + `{"ts":-,"msg":"a"}` + "\n" +
			`{"ts":1,"msg":nul}` + "\n" + `{"ts":1,"msg":"a"}{}` + "\n" + `{"ts":1,"msg"}` + "\n" + `[1]` + "\n" + `{}` + "\n" +
			`{"ts":1,"msg":1e+}` + "\n" + `{"ts":1,"msg":-01}` + "\n" + `{"ts":1,"msg":"a"}` + "\n",
		fast: -1,
	}, {
		name: "more shapes than remembered",
		in: func() string {
			var b strings.Builder
			for i := range 60 {
				fmt.Fprintf(&b, `{"ts":%d,"k%d":"v","msg":"m%d"}`+"\n", i+1, i%7, i)
			}
			return b.String()
		}(),
		fast: 60,
	}, {
		name: "huge line",
		in: `{"ts":1,"msg":"` + strings.Repeat("x", 100<<10) + `","a":"` + strings.Repeat("é", 30<<10) + `"}` + "\n" +
			`{"ts":2,"msg":"` + strings.Repeat("y", 100<<10) + `","a":"` + strings.Repeat("é", 30<<10) + `"}` + "\n",
		fast: 2,
	}, {
		name: "many leaves",
		in: func() string {
			var b strings.Builder
			for _, n := range []int{63, 64, 65, 64} {
				b.WriteString(`{"ts":1`)
				for i := 1; i < n; i++ {
					fmt.Fprintf(&b, `,"a%d":%d`, i, i)
				}
				b.WriteString("}\n")
			}
			return b.String()
		}(),
		fast: 3,
	}, {
		name: "kinds and sources",
		in:   `{"ts":1,"k":"span","src":{"file":"x"}}` + "\n" + `{"ts":2,"k":"","src":{"file":"y"}}` + "\n" + `{"ts":3,"k":7,"src":{"file":true}}` + "\n",
		fast: 3,
	}} {
		for _, mp := range fastTestMappings {
			t.Run(tc.name+"/"+mp.name, func(t *testing.T) {
				fast := checkFastMatchesScanner(t, []byte(tc.in), mp.m, true)
				if mp.name == "default" && tc.fast >= 0 && fast != tc.fast {
					t.Errorf("the fast path built %d events, want %d", fast, tc.fast)
				}
			})
		}
	}
}

// TestJSONLinesFastEventsStay checks that events keep their text and
// attrs while later lines are parsed, across many slabs, and that an
// append to one event's Attrs leaves its neighbours alone.
func TestJSONLinesFastEventsStay(t *testing.T) {
	data := benchLines(5000, 3)
	p := NewJSONLines(bytes.NewReader(data), Options{File: "f"}, DefaultJSONMapping())
	got, err := ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := p.(*jsonLines).fs.events; n != 5000 {
		t.Fatalf("the fast path built %d of 5000 events", n)
	}
	for i := range got {
		got[i].Attrs = append(got[i].Attrs, Attr{"extra", strconv.Itoa(i)})
	}
	want, err := ReadAll(newScannerOnly(bytes.NewReader(data), Options{File: "f"}, DefaultJSONMapping()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i].Attrs = append(want[i].Attrs, Attr{"extra", strconv.Itoa(i)})
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("event %d:\n%s\nwant\n%s", i, renderEvent(got[i]), renderEvent(want[i]))
		}
	}
}

// FuzzJSONLinesFast checks the fast path against jsonScanner on any
// input, under every mapping of fastTestMappings. (Reading byte by byte
// is FuzzJSONLines' concern: the fast path sees whole lines.)
func FuzzJSONLinesFast(f *testing.F) {
	for _, name := range []string{"edge.jsonl", "slog.jsonl", "zap.jsonl", "journalctl.json"} {
		data, err := os.ReadFile(filepath.Join("testdata/jsonl", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(benchLines(20, 1))
	f.Add([]byte(`{"ts":1,"src":{"file":"a","line":2},"msg":"x"}` + "\n" + `{"ts":2,"src":{"file":"b","line":null},"msg":"\u00e9"}` + "\n"))
	f.Add([]byte(`{"ts":"2023-11-14T22:13:20Z","host":null,"hostname":"h"}` + "\n" + `{"ts":"1700000000","host":"x","hostname":"h"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mp := range fastTestMappings {
			checkFastMatchesScanner(t, data, mp.m, false)
		}
	})
}

func TestUnixIntToNs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		n := 1 + rng.IntN(21)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		if rng.IntN(4) == 0 {
			b[0] = '9'
		}
		for _, exp := range []int{-1, 0, 3, 6, 9} {
			got, ok := unixIntToNs(b, exp)
			want, err := decimalToNs(b, exp)
			if ok && (err != nil || got != want) {
				t.Fatalf("unixIntToNs(%s, %d) = %d; decimalToNs: %d, %v", b, exp, got, want, err)
			}
			if !ok && err == nil && n <= 18 && b[0] != '0' {
				t.Fatalf("unixIntToNs(%s, %d) declined a result decimalToNs gives: %d", b, exp, want)
			}
		}
	}
	for _, s := range []string{"", "-1", "1.5", "1e3", "12a"} {
		if _, ok := unixIntToNs([]byte(s), 0); ok {
			t.Errorf("unixIntToNs(%q) took it", s)
		}
	}
}

func TestJSONSpecialMatchesBytewise(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{'a', ' ', '!', '"', '#', '[', '\\', ']', 0x00, 0x01, 0x1f, 0x20, 0x7f, 0x80, 0xa0, 0xc3, 0xdf, 0xe0, 0xff, '0'}
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(8) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = byte('a' + rng.IntN(26))
			}
		}
		from := 0
		if len(b) > 0 {
			from = rng.IntN(len(b) + 1)
		}
		want := from
		for want < len(b) && jsonPlain[b[want]] {
			want++
		}
		if got := jsonSpecial(b, from); got != want {
			t.Fatalf("jsonSpecial(%q, %d) = %d, want %d", b, from, got, want)
		}
	}
}

func TestJSONDigitsEndMatchesBytewise(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte{'/', '0', '5', '9', ':', 0x29, 0x2a, 0x39, 0x3a, 0x40, 0x7f, 0x80, 0x89, 0x8a, 0xaf, 0xb0, 0xb9, 0xf9, 0xfa, 0xff, 0x00, 'e', '.'}
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(6) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = byte('0' + rng.IntN(10))
			}
		}
		from := 0
		if len(b) > 0 {
			from = rng.IntN(len(b) + 1)
		}
		want := from
		for want < len(b) && isDigit(b[want]) {
			want++
		}
		if got := jsonDigitsEnd(b, from); got != want {
			t.Fatalf("jsonDigitsEnd(%q, %d) = %d, want %d", b, from, got, want)
		}
	}
}

// benchLines is n lines like bench-tracecat's files: about 150 bytes, a
// 19-digit ts first, and ten fields; seed varies the values.
func benchLines(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	levels := []string{"info", "debug", "warn", "error"}
	comps := []string{"vmm", "migrate", "disk", "net"}
	msgs := []string{"vcpu exit handled", "dirty pages copied", "request served", "queue drained"}
	var b []byte
	ts := int64(1700000000) * 1e9
	for i := range n {
		ts += 1 + rng.Int64N(4e6)
		b = fmt.Appendf(b, `{"ts":%d,"host":"hv3","level":"%s","component":"%s","msg":"%s","vm":"vm-%d","req":"%x","seq":%d,"dur_us":%d}`+"\n",
			ts, levels[rng.IntN(4)], comps[rng.IntN(4)], msgs[rng.IntN(4)], 1000+rng.IntN(9000), rng.Uint64()&0xffffffffff, i, rng.IntN(100000))
	}
	return b
}

// BenchmarkJSONLinesCommon reads lines of one common shape, as
// bench-tracecat writes them.
func BenchmarkJSONLinesCommon(b *testing.B) {
	benchmarkJSONLines(b, benchLines(10000, 1), 10000, false)
}

// BenchmarkJSONLinesCommonLazy reads the same lines through NextLazy,
// which leaves each event's Name and Attrs in its line.
func BenchmarkJSONLinesCommonLazy(b *testing.B) {
	data := benchLines(10000, 1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		p := NewJSONLines(bytes.NewReader(data), Options{File: "bench"}, DefaultJSONMapping()).(*jsonLines)
		n := 0
		for {
			var e Event
			var f LineFields
			if _, err := p.NextLazy(&e, &f); err != nil {
				break
			}
			n++
		}
		if n != 10000 {
			b.Fatalf("%d events", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10000), "ns/event")
}

func BenchmarkJSONLinesCommonScanner(b *testing.B) {
	benchmarkJSONLines(b, benchLines(10000, 1), 10000, true)
}

func BenchmarkJSONLinesZap(b *testing.B) {
	benchmarkJSONLines(b, zapLines(10000), 10000, false)
}

func benchmarkJSONLines(b *testing.B, data []byte, n int, scannerOnly bool) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		p := NewJSONLines(bytes.NewReader(data), Options{File: "bench"}, DefaultJSONMapping()).(*jsonLines)
		p.scannerOnly = scannerOnly
		if got := drain(b, p); got != n {
			b.Fatalf("%d events", got)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

// TestJSONLinesLazyLineLimit checks NextLazy, which matches lines where
// they stand in the read buffer, against the scanner when some lines
// are longer than Options.MaxLineBytes, and when the limit is below the
// buffer's size.
func TestJSONLinesLazyLineLimit(t *testing.T) {
	data := benchLines(200, 7)
	data = append(data, `{"ts":1700000000000000001,"host":"hv3","level":"info","component":"vmm","msg":"`+strings.Repeat("m", 300)+`","vm":"vm-1","req":"1","seq":1,"dur_us":1}`+"\n"...)
	data = append(data, benchLines(20, 8)...)
	for _, max := range []int{100, 150, 160, 400, 0} {
		read := func(lazy bool) (out []string) {
			o := Options{File: "f", MaxLineBytes: max, OnError: func(le *LineError) { out = append(out, le.Error()) }}
			p := NewJSONLines(bytes.NewReader(data), o, DefaultJSONMapping()).(*jsonLines)
			p.scannerOnly = !lazy
			for {
				var e Event
				var f LineFields
				l, err := p.NextLazy(&e, &f)
				if err != nil {
					return append(out, fmt.Sprint(err))
				}
				if l {
					f.Fill(&e)
				}
				out = append(out, renderEvent(e))
			}
		}
		got, want := read(true), read(false)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("MaxLineBytes %d: NextLazy read\n%s\nthe scanner\n%s", max, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestLineFieldsAttrRun reads lines of layouts where Attrs follow each
// other as object members and where they do not (a value between, a
// space, a nested object, a null that makes another value the Name),
// with values that need escaping or are not strings, and checks that
// every AttrRun is the Attrs it stands for as a writer of string
// members writes them, and that runs are found where they can be.
func TestLineFieldsAttrRun(t *testing.T) {
	lines := []struct {
		line string
		runs []int // the n of each AttrRun, taking them one after the other
	}{
		{`{"ts":1,"host":"h","level":"debug","component":"api","msg":"m","vm":"vm-1","req":"ab","seq":0,"dur_us":5}`, []int{2, 2, 1, 1}},
		{`{"ts":2,"host":"h","level":"debug","component":"api","msg":"m","vm":"vm-1","req":"ab","seq":1,"dur_us":6}`, []int{2, 2, 1, 1}},
		// A value that is not ASCII, which may need escaping, ends a run.
		{`{"ts":3,"host":"h","level":"de` + "\u2028" + `bug","component":"api","msg":"m","vm":"vm-1","req":"ab","seq":1,"dur_us":6}`, []int{1, 1, 2, 1, 1}},
		{`{"ts":4,"host":"h","level":"debug","component":"apé","msg":"m","vm":"café","req":"ab","seq":1,"dur_us":6}`, []int{1, 1, 1, 1, 1, 1}},
		// So does one that is not a string, in the layout learnt.
		{`{"ts":5,"host":"h","level":"debug","component":7,"msg":"m","vm":"vm-1","req":true,"seq":1,"dur_us":6}`, []int{1, 1, 1, 1, 1, 1}},
		{`{"ts":6,"host":"h","level":"debug","component":"api","msg":"m","vm":"vm-1","req":null,"seq":1,"dur_us":6}`, []int{2, 1, 1, 1, 1}},
		// A null message makes the Attrs another list: no runs.
		{`{"ts":7,"host":"h","level":"debug","component":"api","msg":null,"message":"m","vm":"vm-1","req":"ab"}`, []int{1, 1, 1, 1, 1}},
		{`{"ts":8,"host":"h","level":"debug","component":"api","msg":"m","message":"n","vm":"vm-1","req":"ab"}`, []int{2, 3}},
		// Spaces and nesting are not how the members are written.
		{`{"ts":9,"a":"x", "b":"y","c":"z"}`, []int{1, 2}},
		{`{"ts":10,"a":"x","src":{"file":"f","line":"3"},"c":"z"}`, []int{1, 1, 1, 1}}, // src.file is not file
		{`{"ts":11,"a":"x","b":{"c":"y"},"d":"z","e":"w"}`, []int{1, 1, 2}},
	}
	var data []byte
	for _, l := range lines {
		data = append(append(data, l.line...), '\n')
	}
	p := NewJSONLines(bytes.NewReader(data), Options{File: "f"}, DefaultJSONMapping()).(*jsonLines)
	{
		for _, l := range lines {
			var e Event
			var f LineFields
			lazy, err := p.NextLazy(&e, &f)
			if err != nil || !lazy {
				t.Fatalf("%s: lazy %v, error %v", l.line, lazy, err)
			}
			var runs []int
			for i := 0; i < f.NumAttrs(); {
				key, text, plain, n := f.AttrRun(i)
				k, v, pl := f.Attr(i)
				if n < 1 || i+n > f.NumAttrs() || key != k {
					t.Fatalf("%s: AttrRun(%d) = %q, %d; Attr's key %q", l.line, i, key, n, k)
				}
				if n == 1 {
					if string(text) != string(v) || plain != pl {
						t.Fatalf("%s: AttrRun(%d) = %q, %v; Attr %q, %v", l.line, i, text, plain, v, pl)
					}
				} else {
					want := string(v)
					for j := i + 1; j < i+n; j++ {
						k, v, pl := f.Attr(j)
						if !pl {
							t.Fatalf("%s: AttrRun(%d) covers Attr %d, which needs escaping", l.line, i, j)
						}
						want += `","` + k + `":"` + string(v)
					}
					if string(text) != want || !plain || !pl || !utf8.Valid(text) {
						t.Fatalf("%s: AttrRun(%d) = %q, %v, want %q", l.line, i, text, plain, want)
					}
				}
				runs = append(runs, n)
				i += n
			}
			if !reflect.DeepEqual(runs, l.runs) {
				t.Errorf("%s: runs %v, want %v", l.line, runs, l.runs)
			}
		}
	}
}
