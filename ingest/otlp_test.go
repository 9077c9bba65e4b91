package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func otlpOf(in string) func(Options) Parser {
	return func(o Options) Parser { return NewOTLP(strings.NewReader(in), o) }
}

// The inputs in testdata/otlp are real encoder output: fileexporter.jsonl
// is two ExportTraceServiceRequests marshaled by the collector's
// ptrace.JSONMarshaler (pdata v1.71.0, what the file exporter writes), one
// per line; document.json is the same spans as one request, indented.
// They are made by otlpgen.go.txt in that folder.
func TestOTLPGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/otlp/*.json*")
	if len(inputs) == 0 {
		t.Fatal("no inputs")
	}
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden") {
			continue
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := transcript(t, otlpOf(string(data)), Options{File: filepath.Base(in), Host: "fallback"})
			checkGolden(t, in+".golden", got)
		})
	}
}

// TestOTLPLayouts checks that one request per line, one indented document
// and an array of requests give the same events.
func TestOTLPLayouts(t *testing.T) {
	lines, err := os.ReadFile("testdata/otlp/fileexporter.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	reqs := bytes.Split(bytes.TrimSpace(lines), []byte{'\n'})
	var indented bytes.Buffer
	for _, r := range reqs {
		json.Indent(&indented, r, "", "\t")
		indented.WriteString("\n")
	}
	array := "[" + string(bytes.Join(reqs, []byte(",\n"))) + "]"
	ref := strings.ReplaceAll(transcript(t, otlpOf(string(lines)), Options{}), "\n    ", " ")
	for name, in := range map[string]string{"indented": indented.String(), "array": array, "no newlines": string(bytes.Join(reqs, nil))} {
		got := strings.ReplaceAll(transcript(t, otlpOf(in), Options{}), "\n    ", " ")
		if d := firstDiff(ref, got); d != "" {
			t.Errorf("%s: %s", name, d)
		}
	}
}

const otlpMinimal = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"spans":[` +
	`{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"a","startTimeUnixNano":"10","endTimeUnixNano":"25"}]}]}]}`

func TestOTLP(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{{
		name: "numbers as numbers, base64 ids, enum names, no resource",
		in: `{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"s"},"spans":[{"traceId":"AQIDBAUGBwgJCgsMDQ4PEA==","spanId":"AQIDBAUGBwg=",` +
			`"parentSpanId":"0A0B0C0D0E0F1011","name":"b","kind":"SPAN_KIND_PRODUCER","startTimeUnixNano":5,"endTimeUnixNano":5,` +
			`"status":{"code":"STATUS_CODE_ERROR"},"attributes":[{"key":"d","value":{"doubleValue":"NaN"}},{"key":"e","value":{}},` +
			`{"key":"l","value":{"arrayValue":{"values":[{"intValue":"1"},{"doubleValue":"Infinity"},{"kvlistValue":{"values":[{"key":"k","value":{"boolValue":false}}]}},{}]}}}]}]}]}]}`,
		want: `"f"#1 host="h" ts=1970-01-01T00:00:00.000000005Z kind=span name="b"
    trace_id="0102030405060708090a0b0c0d0e0f10"
    span_id="0102030405060708"
    parent_span_id="0a0b0c0d0e0f1011"
    flow_id="0102030405060708090a0b0c0d0e0f10:0102030405060708"
    span_kind="producer"
    status="error"
    scope="s"
    d="NaN"
    e=""
    l="[1,\"Infinity\",{\"k\":false},null]"
skipped: 0
`,
	}, {
		name: "a resource after its spans still names them",
		in: `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}],` +
			`"resource":{"attributes":[{"key":"host.name","value":{"stringValue":"hv-1"}},{"key":"service.name","value":{"stringValue":"late"}}]}}]}`,
		want: `"late"#1 host="hv-1" ts=1970-01-01T00:00:00.000000001Z kind=span dur=1ns name=""
    trace_id="0102030405060708090a0b0c0d0e0f10"
    span_id="0102030405060708"
    flow_id="0102030405060708090a0b0c0d0e0f10:0102030405060708"
skipped: 0
`,
	}, {
		name: "unknown members and null lists are skipped",
		in: `{"x":{"resourceSpans":[1]},"resourceSpans":null}` + "\n" +
			`{"resourceSpans":[{"schemaUrl":"u","scopeSpans":[{"spans":null,"scope":null}],"resource":null}]}` + "\n" + otlpMinimal,
		want: `"svc"#1 host="h" ts=1970-01-01T00:00:00.000000010Z kind=span dur=15ns name="a"
    trace_id="0102030405060708090a0b0c0d0e0f10"
    span_id="0102030405060708"
    flow_id="0102030405060708090a0b0c0d0e0f10:0102030405060708"
skipped: 0
`,
	}, {
		name: "a time of 0 is OTLP's unknown: the span and its event are untimed",
		in: `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",` +
			`"startTimeUnixNano":"0","endTimeUnixNano":"0","events":[{"timeUnixNano":0,"name":"e"}]}]}]}]}`,
		want: `"f"#1 host="h" ts=none kind=span name=""
    trace_id="0102030405060708090a0b0c0d0e0f10"
    span_id="0102030405060708"
    flow_id="0102030405060708090a0b0c0d0e0f10:0102030405060708"
"f"#2 host="h" ts=none kind=instant name="e"
    trace_id="0102030405060708090a0b0c0d0e0f10"
    span_id="0102030405060708"
skipped: 0
`,
	}, {
		name: "empty input",
		in:   " \n",
		want: "skipped: 0\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := transcript(t, otlpOf(tc.in), Options{File: "f", Host: "h"})
			if d := firstDiff(tc.want, got); d != "" {
				t.Errorf("got:\n%s\n%s", got, d)
			}
		})
	}
}

// otlpSpanDoc is an indented request of 34 lines whose second span has
// badField set to badValue. That span's '{' is on line 18 and its fields
// follow one per line, traceId on 19 to attributes on 29.
func otlpSpanDoc(badField, badValue string) string {
	span := func(fields map[string]string) string {
		var b strings.Builder
		b.WriteString("      {\n")
		for i, k := range []string{"traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano", "status", "links", "events", "attributes"} {
			if i > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, "        %q: %s", k, fields[k])
		}
		b.WriteString("\n      }")
		return b.String()
	}
	good := map[string]string{
		"traceId": `"0102030405060708090a0b0c0d0e0f10"`, "spanId": `"0102030405060708"`, "parentSpanId": `""`,
		"name": `"s"`, "kind": "1", "startTimeUnixNano": `"100"`, "endTimeUnixNano": `"200"`, "status": "{}",
		"links": "[]", "events": "[]", "attributes": "[]",
	}
	bad := map[string]string{}
	for k, v := range good {
		bad[k] = v
	}
	bad[badField] = badValue
	return "{\n  \"resourceSpans\": [{\n   \"scopeSpans\": [{\n    \"spans\": [\n" + span(good) + ",\n" + span(bad) + "\n    ]\n   }]\n  }]\n}\n"
}

func TestOTLPMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string // the errors, the skip count, and the final error
	}{{
		name: "a bad trace id, at the line of its value",
		in:   otlpSpanDoc("traceId", `"xyz"`),
		want: "error: f:19: malformed record: traceId \"xyz\" is not 32 hex digits\nskipped: 1\nend: EOF\n",
	}, {
		name: "a null start time, at the line of the null",
		in:   otlpSpanDoc("startTimeUnixNano", "null"),
		want: "error: f:24: malformed record: no startTimeUnixNano\nskipped: 1\nend: EOF\n",
	}, {
		name: "end before start",
		in:   otlpSpanDoc("endTimeUnixNano", `"99"`),
		want: "error: f:25: malformed record: endTimeUnixNano 99 is before startTimeUnixNano 100\nskipped: 1\nend: EOF\n",
	}, {
		name: "a name of the wrong JSON type",
		in:   otlpSpanDoc("name", `{"a": 1}`),
		want: "error: f:22: malformed record: name: JSON object where a string belongs\nskipped: 1\nend: EOF\n",
	}, {
		name: "a bad kind, a bad link, a bad event time, a bad attribute",
		in: otlpSpanDoc("kind", "7") + otlpSpanDoc("links", `[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000000"}]`) +
			otlpSpanDoc("events", "[\n{\"timeUnixNano\":\"1.5\"}]") + otlpSpanDoc("attributes", `[{"key":"n","value":{"intValue":"x"}}]`),
		want: "error: f:23: malformed record: kind 7 is not one of 0..5\n" +
			"error: f:61: malformed record: spanId is all zeros\n" +
			"error: f:97: malformed record: timeUnixNano \"1.5\" is not a count of ns\n" +
			"error: f:132: malformed record: attribute \"n\": intValue \"x\" is not an int64\n" +
			"skipped: 4\nend: EOF\n",
	}, {
		name: "values of the wrong JSON type",
		in: otlpSpanDoc("status", "5") + otlpSpanDoc("attributes", `[{"key":"b","value":{"boolValue":"yes"}}]`) +
			`{"resourceSpans":[{"scopeSpans":[{"spans":[7]}]}]}` + "\n" + otlpSpanDoc("links", `{"traceId":"x"}`),
		want: "error: f:26: malformed record: status: JSON number where an object belongs\n" +
			"error: f:63: malformed record: attribute \"b\": boolValue \"yes\" is not a bool\n" +
			"error: f:69: malformed record: span: JSON number where an object belongs\n" +
			"error: f:96: malformed record: links: JSON object where an array belongs\n" +
			"skipped: 4\nend: EOF\n",
	}, {
		name: "OTLP logs in a traces file",
		in:   `{"resourceLogs":[{}]}` + "\n" + otlpMinimal,
		want: "error: f:1: malformed record: \"resourceLogs\" holds OTLP logs, not traces; skipped\nskipped: 1\nend: EOF\n",
	}, {
		name: "a truncated last line: a malformed last record",
		in:   otlpMinimal + "\n" + otlpMinimal[:120],
		want: "error: f:2: malformed record: truncated: the input ends inside a JSON value\nskipped: 1\nend: EOF\n",
	}, {
		name: "invalid JSON mid-stream ends the parse at its line",
		in:   otlpMinimal + "\n\n{\"resourceSpans\": [}\n" + otlpMinimal,
		want: "skipped: 0\nend: f:3: malformed record: invalid JSON: invalid character '}' looking for beginning of value\n",
	}, {
		name: "binary garbage",
		in:   "\x00\x01\x02PK\x03\x04",
		want: "skipped: 0\nend: f:1: malformed record: invalid JSON: invalid character '\\x00' looking for beginning of value\n",
	}, {
		name: "not a request",
		in:   "\n\n[1]",
		want: "skipped: 0\nend: f:3: malformed record: want '{', got 1\n",
	}, {
		name: "a span longer than MaxLineBytes",
		in:   otlpMinimal + "\n" + strings.Replace(otlpMinimal, `"name":"a"`, `"name":"`+strings.Repeat("a", 300)+`"`, 1),
		max:  256,
		want: "skipped: 0\nend: f:2: malformed record: JSON value longer than 256 bytes\n",
	}, {
		name: "spans far ahead of their resource use the defaults",
		in: `{"resourceSpans":[{"scopeSpans":[{"spans":[` + strings.Repeat(`{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","startTimeUnixNano":"1","endTimeUnixNano":"2"},`, 3) +
			"\n" + `{}]}],"resource":{}}]}`,
		max:  300,
		want: "error: f:1: malformed record: spans precede their resource by more than 300 bytes; these use the default source and host\nerror: f:2: malformed record: no traceId\nskipped: 2\nend: EOF\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := otlpErrors(t, tc.in, tc.max)
			if d := firstDiff(tc.want, got); d != "" {
				t.Errorf("got:\n%s\n%s", got, d)
			}
		})
	}
}

// otlpErrors parses in non-strict and renders the skipped records, their
// count and the final error.
func otlpErrors(t *testing.T, in string, max int) string {
	var b strings.Builder
	p := NewOTLP(strings.NewReader(in), Options{File: "f", MaxLineBytes: max,
		OnError: func(le *LineError) { fmt.Fprintf(&b, "error: %v\n", le) }})
	_, err := ReadAll(p)
	if err == nil {
		err = io.EOF
	}
	fmt.Fprintf(&b, "skipped: %d\nend: %v\n", p.(interface{ Errors() int }).Errors(), err)
	return b.String()
}

func TestOTLPStrict(t *testing.T) {
	in := otlpMinimal + "\n" + strings.Replace(otlpMinimal, `"spanId":"0102030405060708"`, `"spanId":"01"`, 1) + "\n" + otlpMinimal
	p := NewOTLP(strings.NewReader(in), Options{File: "spans.jsonl", Strict: true})
	evs, err := ReadAll(p)
	var le *LineError
	if len(evs) != 1 || !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("%d events, err %v; want 1 event and a LineError at line 2", len(evs), err)
	}
	if want := `spans.jsonl:2: malformed record: spanId "01" is not 16 hex digits`; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if _, again := p.Next(); again != err {
		t.Errorf("Next after a strict failure = %v, want the same error", again)
	}
	p = NewOTLP(strings.NewReader(otlpMinimal[:50]), Options{File: "cut.json", Strict: true})
	if _, err := ReadAll(p); err == nil || err.Error() != "cut.json:1: malformed record: truncated: the input ends inside a JSON value" {
		t.Errorf("truncated input in strict mode: %v", err)
	}
}

func TestOTLPReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	p := NewOTLP(io.MultiReader(strings.NewReader(otlpMinimal+"\n"), iotest.ErrReader(boom)), Options{File: "x.json"})
	evs, err := ReadAll(p)
	var le *LineError
	if len(evs) != 1 || !errors.Is(err, boom) || errors.As(err, &le) || err.Error() != "read x.json: disk on fire" {
		t.Errorf("%d events, err = %v; want 1, then the read error wrapped with the file", len(evs), err)
	}
}

// TestOTLPStreams checks a request of many spans is not held whole: the
// decoder's read-ahead stays near one span, not the document.
func TestOTLPStreams(t *testing.T) {
	span := `{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"a","startTimeUnixNano":"10","endTimeUnixNano":"25"}`
	const n = 20000
	in := `{"resourceSpans":[{"scopeSpans":[{"spans":[` + strings.Repeat(span+",", n-1) + span + `]}]}]}`
	p := NewOTLP(strings.NewReader(in), Options{MaxLineBytes: 4096}).(*otlpParser)
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
			t.Fatalf("after span %d the decoder holds %d bytes ahead", count, ahead)
		}
	}
	if count != n {
		t.Errorf("%d spans, want %d", count, n)
	}
}

// TestOTLPHeldSpans checks spans held for a late resource keep their place
// among the events and errors around them, in strict mode and not.
func TestOTLPHeldSpans(t *testing.T) {
	const sp = `{"traceId":"00000000000000000000000000000001","spanId":"0000000000000001","startTimeUnixNano":"0","endTimeUnixNano":"0"}`
	for _, in := range []string{
		`{"resourceSpans":[{"scopeSpans":[{"spans":[` + sp + `,{}]}]}`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[` + sp + `,{}]},{"scope":{"name":1},"spans":[` + sp + `]}],"resource":{"attributes":5}},{"scopeSpans":[{"spans":[` + sp + `]}]}]}`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[` + sp + `]}],"resource":{}}],"resourceLogs":[]}` + "\n" + `{"resourceSpans":[{"scopeSpans":[{"spans":[` + sp + `]}]`,
	} {
		recs, final := runThreeWays(t, func(r io.Reader, o Options) Parser { return NewOTLP(r, o) }, []byte(in), true)
		if len(recs) == 0 {
			t.Errorf("%s: nothing read (end %v)", in, final)
		}
	}
}

// FuzzOTLP checks no input panics or loops, the result does not depend on
// how the reader splits the input, and strict mode stops at the first
// error.
func FuzzOTLP(f *testing.F) {
	for _, name := range []string{"fileexporter.jsonl", "document.json"} {
		data, err := os.ReadFile(filepath.Join("testdata/otlp", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(otlpSpanDoc("links", `[{"traceId":"AQIDBAUGBwgJCgsMDQ4PEA==","spanId":"AQIDBAUGBwg=","attributes":[{"key":"k","value":{"kvlistValue":{"values":[]}}}]}]`)))
	f.Add([]byte(`[{"resourceSpans":[{"scopeSpans":[{"spans":[{}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		runThreeWays(t, func(r io.Reader, o Options) Parser { return NewOTLP(r, o) }, data, true)
	})
}

func otlpBenchInput(b *testing.B) []byte {
	one, err := os.ReadFile("testdata/otlp/fileexporter.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	var all bytes.Buffer
	for all.Len() < 1<<20 {
		all.Write(one)
	}
	return all.Bytes()
}

func BenchmarkOTLP(b *testing.B) {
	data := otlpBenchInput(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadAll(NewOTLP(bytes.NewReader(data), Options{File: "bench"})); err != nil {
			b.Fatal(err)
		}
	}
}

// parsedRec is one outcome of a parser: an event, or a skipped record's
// error.
type parsedRec struct {
	ev  Event
	err *LineError
}

// runThreeWays runs a parser over data whole, byte by byte, and strict,
// and checks: non-strict reports only *LineErrors wrapping ErrMalformed
// and fails only when fatalOK (with a *LineError too); reading byte by
// byte changes nothing; strict mode returns the non-strict events up to the
// first error, then that error. Each run is bounded: a parser that keeps
// returning events past 2·len(data)+8 fails the test. It returns the
// whole-input records and final error.
func runThreeWays(t *testing.T, mk func(io.Reader, Options) Parser, data []byte, fatalOK bool) ([]parsedRec, error) {
	t.Helper()
	run := func(r io.Reader, strict bool) ([]parsedRec, error) {
		var out []parsedRec
		p := mk(r, Options{File: "fuzz", Host: "h", Strict: strict,
			OnError: func(le *LineError) { out = append(out, parsedRec{err: le}) }})
		for range 2*len(data) + 8 {
			e, err := p.Next()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			out = append(out, parsedRec{ev: e})
		}
		t.Fatalf("more than %d events from %d bytes", 2*len(data)+8, len(data))
		return nil, nil
	}
	whole, final := run(bytes.NewReader(data), false)
	var le *LineError
	if final != nil && (!fatalOK || !errors.As(final, &le) || !errors.Is(final, ErrMalformed) || le.Line < 1) {
		t.Fatalf("non-strict Next failed: %v", final)
	}
	for _, rec := range whole {
		if rec.err != nil && (!errors.Is(rec.err, ErrMalformed) || rec.err.File != "fuzz" || rec.err.Line < 1) {
			t.Fatalf("bad LineError %#v", rec.err)
		}
	}
	bytewise, bfinal := run(iotest.OneByteReader(bytes.NewReader(data)), false)
	if a, b := renderParsed(whole, final), renderParsed(bytewise, bfinal); a != b {
		t.Fatalf("reading byte by byte changed the result:\n%s\nvs\n%s", a, b)
	}
	strict, serr := run(bytes.NewReader(data), true)
	first := len(whole)
	for i, rec := range whole {
		if rec.err != nil {
			first = i
			break
		}
	}
	wantErr := final
	if first < len(whole) {
		wantErr = whole[first].err
	}
	if a, b := renderParsed(whole[:first], wantErr), renderParsed(strict, serr); a != b {
		t.Fatalf("strict run differs from the non-strict prefix:\n%s\nvs\n%s", a, b)
	}
	return whole, final
}

func renderParsed(recs []parsedRec, final error) string {
	var b strings.Builder
	for _, r := range recs {
		if r.err != nil {
			fmt.Fprintf(&b, "error: %v\n", r.err)
		} else {
			b.WriteString(renderEvent(r.ev))
		}
	}
	fmt.Fprintf(&b, "end: %v\n", final)
	return b.String()
}
