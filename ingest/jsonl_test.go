package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func jsonParser(m JSONMapping) func(Options) Parser {
	return func(o Options) Parser {
		return NewJSONLines(strings.NewReader(""), o, m)
	}
}

// journalJSONMapping reads `journalctl -o json`, whose values are all
// strings.
var journalJSONMapping = JSONMapping{
	Time: "__REALTIME_TIMESTAMP", TimeFormat: JSONTimeUnixUs,
	Host: "_HOSTNAME", Message: "MESSAGE", Source: "SYSLOG_IDENTIFIER|_SYSTEMD_UNIT|_COMM",
}

// The inputs in testdata/jsonl: slog.jsonl and zap.jsonl are the output of
// Go's log/slog JSONHandler (AddSource) and zap.NewProduction;
// journalctl.json is `journalctl -o json` of a journald namespace fed
// through its native socket and /dev/log; edge.jsonl is written by hand.
func TestJSONLinesGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/jsonl/*")
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden") {
			continue
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			m := DefaultJSONMapping()
			if strings.HasPrefix(filepath.Base(in), "journalctl") {
				m = journalJSONMapping
			}
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := transcript(t, func(o Options) Parser {
				return NewJSONLines(bytes.NewReader(data), o, m)
			}, Options{File: filepath.Base(in), Host: "fallback-host"})
			checkGolden(t, in+".golden", got)
		})
	}
}

func TestJSONLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		m    JSONMapping
		max  int
		want string
	}{{
		name: "defaults",
		in:   `{"level":"info","ts":1700000000.25,"msg":"hi","host":"h1","n":3}` + "\n",
		m:    DefaultJSONMapping(),
		want: `"f"#1 host="h1" ts=2023-11-14T22:13:20.250000000Z kind=log name="hi"
    level="info"
    n="3"
skipped: 0
`,
	}, {
		name: "no mapping keeps every field and reads no time",
		in:   `{"ts":"x","a":{"b":[1, 2 ,{"c" : null}],"e":{}}}`,
		want: `"f"#1 host="fb" ts=none kind=log name=""
    ts="x"
    a.b="[1,2,{\"c\":null}]"
    a.e="{}"
skipped: 0
`,
	}, {
		name: "alternatives in order and nested paths",
		in:   `{"time":"2024-01-01T00:00:00Z","ts":"2025-01-01T00:00:00Z","f":{"src":"app","k":"span"},"m":"x"}`,
		m:    JSONMapping{Time: "ts|time", Source: "f.src", Kind: "f.k", Message: "m"},
		want: `"app"#1 host="fb" ts=2025-01-01T00:00:00.000000000Z kind=span name="x"
    time="2024-01-01T00:00:00Z"
skipped: 0
`,
	}, {
		name: "explicit units, numbers and numeric strings",
		in: `{"t":1500,"u":"ms"}
{"t":"1500","u":"us"}
{"t":1500.9,"u":"ns truncates"}
{"t":-2,"u":"s before 1970"}
`,
		m: JSONMapping{Time: "t", Message: "u", TimeFormat: JSONTimeUnixMs},
		want: `"f"#1 host="fb" ts=1970-01-01T00:00:01.500000000Z kind=log name="ms"
"f"#2 host="fb" ts=1970-01-01T00:00:01.500000000Z kind=log name="us"
"f"#3 host="fb" ts=1970-01-01T00:00:01.500900000Z kind=log name="ns truncates"
"f"#4 host="fb" ts=1969-12-31T23:59:59.998000000Z kind=log name="s before 1970"
skipped: 0
`,
	}, {
		name: "rfc3339 format refuses numbers",
		in:   `{"t":1700000000}` + "\n" + `{"t":"1700000000"}`,
		m:    JSONMapping{Time: "t", TimeFormat: JSONTimeRFC3339},
		want: `error: f:1: malformed record: time field "t": 1700000000 is not an RFC 3339 string
error: f:2: malformed record: time field "t": timestamp "1700000000": want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm
skipped: 2
`,
	}, {
		name: "unit format refuses text",
		in:   `{"t":"2024-01-01T00:00:00Z"}` + "\n" + `{"t":[1]}`,
		m:    JSONMapping{Time: "t", TimeFormat: JSONTimeUnix},
		want: `error: f:1: malformed record: time field "t": "2024-01-01T00:00:00Z" is not a number
error: f:2: malformed record: time field "t": want a string or a number, got [1]
skipped: 2
`,
	}, {
		name: "malformed lines keep their numbers",
		in: "\n" + `{"ts":1}` + "\n\n" + `{"msg":"x"}` + "\n" + `{"ts":null}` + "\n" +
			`{"ts":"2024-13-01T00:00:00Z"}` + "\n" + `nope` + "\n" + `{"a":1,}` + "\n" + `{"ts":1}`,
		m: DefaultJSONMapping(),
		want: `"f"#1 host="fb" ts=1970-01-01T00:00:01.000000000Z kind=log name=""
error: f:4: malformed record: no time field "ts" or "time" or "timestamp" or "@timestamp"
error: f:5: malformed record: no time field "ts" or "time" or "timestamp" or "@timestamp"
error: f:6: malformed record: time field "ts": timestamp "2024-13-01T00:00:00Z": month out of range
error: f:7: malformed record: invalid JSON: unexpected 'n' at byte 1 where a value belongs
error: f:8: malformed record: invalid JSON: unexpected '}' at byte 8 where an object key belongs
"f"#2 host="fb" ts=1970-01-01T00:00:01.000000000Z kind=log name=""
skipped: 5
`,
	}, {
		name: "not objects",
		in:   "[]\n\"s\"\n12\ntrue\nnull\n{}\n",
		want: `error: f:1: malformed record: not a JSON object but an array
error: f:2: malformed record: not a JSON object but a string
error: f:3: malformed record: not a JSON object but a number
error: f:4: malformed record: not a JSON object but a boolean
error: f:5: malformed record: not a JSON object but null
"f"#1 host="fb" ts=none kind=log name=""
skipped: 5
`,
	}, {
		name: "syntax errors",
		in: `{"a":"unterminated` + "\n" + `{"a":1` + "\n" + `{"a" 1}` + "\n" + `{"a":-}` + "\n" +
			`{"a":1.}` + "\n" + `{"a":1e}` + "\n" + `{"a":"\x"}` + "\n" + `{"a":"\u12"}` + "\n" +
			"{\"a\":\"\t\"}\n" + `{"a":tru}` + "\n" + `{} {}`,
		want: `error: f:1: malformed record: invalid JSON: unexpected end of line in a string
error: f:2: malformed record: invalid JSON: unexpected end of line after an object value
error: f:3: malformed record: invalid JSON: unexpected '1' at byte 6 after an object key
error: f:4: malformed record: invalid JSON: unexpected '}' at byte 7 where a value belongs
error: f:5: malformed record: invalid JSON: unexpected '}' at byte 8 in a number's fraction
error: f:6: malformed record: invalid JSON: unexpected '}' at byte 8 in a number's exponent
error: f:7: malformed record: invalid JSON: unexpected 'x' at byte 8 in a string escape
error: f:8: malformed record: invalid JSON: unexpected '1' at byte 9 in a \u escape
error: f:9: malformed record: invalid JSON: unexpected '\t' at byte 7 in a string
error: f:10: malformed record: invalid JSON: unexpected 't' at byte 6 where a value belongs
error: f:11: malformed record: invalid JSON: unexpected '{' at byte 4 after top-level value
skipped: 11
`,
	}, {
		name: "lines over the limit are skipped whole",
		in:   `{"a":"0123456789"}` + "\n" + `{"a":"01234"}` + "\n" + `{"a":"0123456789"}`,
		max:  14,
		want: `error: f:1: malformed record: line longer than 14 bytes
"f"#1 host="fb" ts=none kind=log name=""
    a="01234"
error: f:3: malformed record: line longer than 14 bytes
skipped: 2
`,
	}, {
		name: "a line of exactly the limit is fine",
		in:   `{"a":"0123"}` + "\r\n",
		max:  13,
		want: `"f"#1 host="fb" ts=none kind=log name=""
    a="0123"
skipped: 0
`,
	}, {
		name: "the Unix epoch is a time, not its absence",
		in:   `{"ts":0,"msg":"a"}` + "\n" + `{"time":"1970-01-01T00:00:00Z","msg":"b"}`,
		m:    DefaultJSONMapping(),
		want: `"f"#1 host="fb" ts=1970-01-01T00:00:00.000000000Z kind=log name="a"
"f"#2 host="fb" ts=1970-01-01T00:00:00.000000000Z kind=log name="b"
skipped: 0
`,
	}, {
		name: "sequence numbers per source",
		in:   `{"s":"a"}` + "\n" + `{"s":"b"}` + "\n" + `{}` + "\n" + `{"s":"a"}` + "\n" + `{"s":null}`,
		m:    JSONMapping{Source: "s"},
		want: `"a"#1 host="fb" ts=none kind=log name=""
"b"#1 host="fb" ts=none kind=log name=""
"f"#1 host="fb" ts=none kind=log name=""
"a"#2 host="fb" ts=none kind=log name=""
"f"#2 host="fb" ts=none kind=log name=""
    s="null"
skipped: 0
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := transcript(t, func(o Options) Parser {
				return NewJSONLines(strings.NewReader(tc.in), o, tc.m)
			}, Options{File: "f", Host: "fb", MaxLineBytes: tc.max})
			if d := firstDiff(tc.want, got); d != "" {
				t.Errorf("got:\n%s\n%s", got, d)
			}
		})
	}
}

func TestJSONLinesStrict(t *testing.T) {
	in := `{"ts":1}` + "\n" + `{"ts":2}` + "\n" + `{"msg":"no time"}` + "\n" + `{"ts":3}` + "\n"
	called := 0
	p := NewJSONLines(strings.NewReader(in), Options{File: "app.log", Strict: true,
		OnError: func(*LineError) { called++ }}, DefaultJSONMapping())
	evs, err := ReadAll(p)
	if len(evs) != 2 || evs[1].LocalNs != 2e9 {
		t.Fatalf("events before the bad line: %+v", evs)
	}
	var le *LineError
	if !errors.As(err, &le) || le.File != "app.log" || le.Line != 3 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %#v, want a LineError at app.log:3 wrapping ErrMalformed", err)
	}
	if want := `app.log:3: malformed record: no time field "ts" or "time" or "timestamp" or "@timestamp"`; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if _, again := p.Next(); again != err {
		t.Errorf("Next after a strict failure = %v, want the same error", again)
	}
	if called != 0 || p.(*jsonLines).Errors() != 0 {
		t.Errorf("strict mode called OnError %d times and counted %d", called, p.(*jsonLines).Errors())
	}
}

func TestJSONLinesNonStrictCounts(t *testing.T) {
	var lines []int
	p := NewJSONLines(strings.NewReader("x\n{}\ny\n\nz"), Options{OnError: func(le *LineError) {
		lines = append(lines, le.Line)
	}}, JSONMapping{})
	evs, err := ReadAll(p)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ReadAll = %d events, %v", len(evs), err)
	}
	if fmt.Sprint(lines) != "[1 3 5]" || p.(interface{ Errors() int }).Errors() != 3 {
		t.Errorf("OnError lines %v, Errors() %d; want [1 3 5] and 3", lines, p.(interface{ Errors() int }).Errors())
	}
}

func TestJSONLinesUnknownTimeFormat(t *testing.T) {
	p := NewJSONLines(strings.NewReader("{}"), Options{}, JSONMapping{TimeFormat: "unix_ps"})
	if _, err := p.Next(); err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), `"unix_ps"`) {
		t.Errorf("Next = %v, want an error naming the format", err)
	}
}

func TestJSONLinesReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader(`{"a":1}`+"\n"), iotest.ErrReader(boom))
	p := NewJSONLines(r, Options{File: "x.jsonl"}, JSONMapping{})
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := p.Next()
	var le *LineError
	if !errors.Is(err, boom) || errors.As(err, &le) || err.Error() != "read x.jsonl: disk on fire" {
		t.Errorf("err = %v, want the read error wrapped with the file", err)
	}
}

// TestJSONLinesLongLines checks lines far longer than the read buffer:
// over the limit they are skipped without being held, under it they parse.
func TestJSONLinesLongLines(t *testing.T) {
	long := `{"a":"` + strings.Repeat("x", 300<<10) + `"}`
	in := long + "\n" + `{"b":1}` + "\n" + long + "\n" + long
	for _, max := range []int{100 << 10, 400 << 10} {
		var errLines []int
		p := NewJSONLines(iotest.HalfReader(strings.NewReader(in)), Options{MaxLineBytes: max,
			OnError: func(le *LineError) { errLines = append(errLines, le.Line) }}, JSONMapping{})
		evs, err := ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		wantEvents, wantErrs := 4, "[]"
		if max < len(long) {
			wantEvents, wantErrs = 1, "[1 3 4]"
		}
		if len(evs) != wantEvents || fmt.Sprint(errLines) != wantErrs {
			t.Errorf("max %d: %d events, errors at %v; want %d and %s", max, len(evs), errLines, wantEvents, wantErrs)
		}
		if held := cap(p.(*jsonLines).lr.long); held > max+64<<10 {
			t.Errorf("max %d: the reader held %d bytes", max, held)
		}
	}
}

// TestJSONLinesDeepKeys checks that flattening a deep object with long
// keys, whose dotted keys grow quadratically, fails instead of exhausting
// memory.
func TestJSONLinesDeepKeys(t *testing.T) {
	key := strings.Repeat("k", 90)
	var b strings.Builder
	for range 5000 {
		b.WriteString(`{"` + key + `":1,"` + key + `":`)
	}
	b.WriteString("1" + strings.Repeat("}", 5000))
	var got []string
	p := NewJSONLines(strings.NewReader(b.String()), Options{OnError: func(le *LineError) { got = append(got, le.Error()) }}, JSONMapping{})
	if _, err := ReadAll(p); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], "nesting too deep") {
		t.Fatalf("errors %.200q", got)
	}
	if held := cap(p.(*jsonLines).sc.arena); held > 64*b.Len() {
		t.Errorf("arena grew to %d bytes for a %d-byte line", held, b.Len())
	}
}

func TestDecimalToNs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		exp  int
		want int64
		err  string
	}{
		{"0", -1, 0, ""},
		{"1700000000", -1, 1700000000e9, ""},
		{"1700000000.123456789", -1, 1700000000123456789, ""},
		{"1700000000123", -1, 1700000000123e6, ""},
		{"1700000000123456", -1, 1700000000123456e3, ""},
		{"1700000000123456789", -1, 1700000000123456789, ""},
		{"99999999999", -1, 0, "out of range"},   // < 1e11: seconds, past 2262
		{"100000000000", -1, 100000000000e6, ""}, // 1e11: milliseconds
		{"1.7e9", -1, 1700000000e9, ""},
		{"17E+8", -1, 1700000000e9, ""},
		{"0.000000001", 9, 1, ""},
		{"0.0000000019", 9, 1, ""},
		{"-0.5", 9, -5e8, ""},
		{".5", 9, 5e8, ""},
		{"000.5", 9, 5e8, ""},
		{"9223372036854775807", 0, 9223372036854775807, ""},
		{"-9223372036854775808", 0, -9223372036854775808, ""},
		{"9223372036854775808", 0, 0, "out of range"},
		{"9223372036.854775808", 9, 0, "out of range"},
		{"1e19", 0, 0, "out of range"},
		{"1e-99999999999", 9, 0, ""},
		{"1e99999999999", 9, 0, "out of range"},
		{"12345678901234567890123456789e-20", 9, 123456789012345678, ""},
		{"", 9, 0, "not a number"},
		{"-", 9, 0, "not a number"},
		{".", 9, 0, "not a number"},
		{"1.2.3", 9, 0, "not a number"},
		{"1e", 9, 0, "not a number"},
		{"1x", 9, 0, "not a number"},
	} {
		got, err := decimalToNs([]byte(tc.in), tc.exp)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("decimalToNs(%q, %d) = %d, %v; want error %q", tc.in, tc.exp, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("decimalToNs(%q, %d) = %d, %v; want %d", tc.in, tc.exp, got, err, tc.want)
		}
	}
}

// TestDecimalToNsAgainstBig compares the digit-shifting conversion with
// exact rational arithmetic on random numbers.
func TestDecimalToNsAgainstBig(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	for i := 0; i < 20000; i++ {
		text := randomDecimal(rng)
		exp := rng.IntN(5)*3 - 3 // -3 (not a unit: use auto below), 0, 3, 6, 9
		if exp < 0 {
			exp = -1
		}
		got, err := decimalToNs([]byte(text), exp)
		want, ok := bigDecimalToNs(text, exp)
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("seed %d: decimalToNs(%q, %d) = %d, %v; big says %d, %v", seed, text, exp, got, err, want, ok)
		}
	}
}

func randomDecimal(rng *rand.Rand) string {
	var b strings.Builder
	if rng.IntN(4) == 0 {
		b.WriteByte('-')
	}
	digits := func(n int) {
		for range n {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
	}
	digits(1 + rng.IntN(21))
	if rng.IntN(2) == 0 {
		b.WriteByte('.')
		digits(1 + rng.IntN(12))
	}
	if rng.IntN(4) == 0 {
		fmt.Fprintf(&b, "e%d", rng.IntN(40)-20)
	}
	return b.String()
}

// bigDecimalToNs is the naive model of decimalToNs.
func bigDecimalToNs(text string, exp int) (int64, bool) {
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return 0, false
	}
	if exp < 0 {
		abs := new(big.Rat).Abs(r)
		exp = 0
		for i, limit := range []int64{1e11, 1e14, 1e17} {
			if abs.Cmp(new(big.Rat).SetInt64(limit)) < 0 {
				exp = 9 - 3*i
				break
			}
		}
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
	q := new(big.Int).Quo(r.Num(), r.Denom()) // truncates toward zero
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

// FuzzJSONLines checks the hand-written scanner against encoding/json: a
// line is an event exactly when encoding/json accepts it as an object, and
// then the attrs are encoding/json's flattening. Reading byte by byte
// changes nothing, and strict mode stops at the first error non-strict
// mode reports.
func FuzzJSONLines(f *testing.F) {
	for _, name := range []string{"edge.jsonl", "slog.jsonl", "zap.jsonl"} {
		data, err := os.ReadFile(filepath.Join("testdata/jsonl", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"a":{"b":[{"c":"\ud83d\ude00\ud800"}],"d":{}},"e":1e-3}`))
	f.Add([]byte(`{"":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := parseAllLines(t, func(r io.Reader, o Options) Parser { return NewJSONLines(r, o, JSONMapping{}) }, data)
		lines := bytes.Split(data, []byte{'\n'})
		var next int
		for i, line := range lines {
			no := i + 1
			if len(bytes.Trim(line, " \t\r")) == 0 {
				continue
			}
			want, werr := naiveFlatten(line)
			if next >= len(got) {
				t.Fatalf("line %d %q: no record", no, line)
			}
			rec := got[next]
			next++
			if rec.err != nil && rec.line != no || (werr == nil) != (rec.err == nil) {
				t.Fatalf("line %d %q: got a record at line %d, error %v; encoding/json says %v", no, line, rec.line, rec.err, werr)
			}
			if werr == nil && fmt.Sprint(rec.ev.Attrs) != fmt.Sprint(want) {
				t.Fatalf("line %d %q:\n got %q\nwant %q", no, line, rec.ev.Attrs, want)
			}
		}
		if next != len(got) {
			t.Fatalf("%d records for %d non-blank lines", len(got), next)
		}
	})
}

// parsedRecord is one outcome of a parser: an event, or a skipped record's error
// and its line.
type parsedRecord struct {
	ev   Event
	err  *LineError
	line int
}

// parseAllLines runs a parser over data three ways (whole, byte by byte,
// strict), checks they agree, and returns the whole-input records.
func parseAllLines(t *testing.T, mk func(io.Reader, Options) Parser, data []byte) []parsedRecord {
	t.Helper()
	run := func(r io.Reader, strict bool) ([]parsedRecord, error) {
		var out []parsedRecord
		o := Options{File: "fuzz", Host: "h", Strict: strict,
			OnError: func(le *LineError) { out = append(out, parsedRecord{err: le, line: le.Line}) }}
		p := mk(r, o)
		for {
			e, err := p.Next()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			out = append(out, parsedRecord{ev: e})
		}
	}
	whole, err := run(bytes.NewReader(data), false)
	if err != nil {
		t.Fatalf("non-strict Next failed: %v", err)
	}
	for _, rec := range whole {
		if rec.err != nil && (!errors.Is(rec.err, ErrMalformed) || rec.err.File != "fuzz" || rec.line < 1) {
			t.Fatalf("bad LineError %#v", rec.err)
		}
	}
	bytewise, _ := run(iotest.OneByteReader(bytes.NewReader(data)), false)
	if a, b := renderRecords(whole), renderRecords(bytewise); a != b {
		t.Fatalf("reading byte by byte changed the result:\n%s\nvs\n%s", a, b)
	}
	strict, serr := run(bytes.NewReader(data), true)
	firstErr := len(whole)
	for i, rec := range whole {
		if rec.err != nil {
			firstErr = i
			break
		}
	}
	if a, b := renderRecords(whole[:firstErr]), renderRecords(strict); a != b {
		t.Fatalf("strict events differ from the non-strict prefix:\n%s\nvs\n%s", a, b)
	}
	if firstErr < len(whole) {
		var le *LineError
		if !errors.As(serr, &le) || le.Error() != whole[firstErr].err.Error() {
			t.Fatalf("strict error %v, want %v", serr, whole[firstErr].err)
		}
	} else if serr != nil {
		t.Fatalf("strict error %v on input non-strict accepts", serr)
	}
	return whole
}

func renderRecords(recs []parsedRecord) string {
	var b strings.Builder
	for _, r := range recs {
		if r.err != nil {
			fmt.Fprintf(&b, "error: %v\n", r.err)
		} else {
			b.WriteString(renderEvent(r.ev))
		}
	}
	return b.String()
}

// naiveFlatten is the reference for the scanner: encoding/json decodes,
// member by member, to keep order.
func naiveFlatten(line []byte) ([]Attr, error) {
	if !json.Valid(line) {
		return nil, errors.New("invalid")
	}
	if bytes.TrimLeft(line, " \t\r")[0] != '{' {
		return nil, errors.New("not an object")
	}
	var out []Attr
	var walk func(prefix string, nested bool, raw []byte) error
	walk = func(prefix string, nested bool, raw []byte) error {
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			return err
		}
		n := 0
		for ; dec.More(); n++ {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key := tok.(string)
			if nested {
				key = prefix + "." + key
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return err
			}
			switch v[0] {
			case '{':
				if err := walk(key, true, v); err != nil {
					return err
				}
			case '"':
				var s string
				if err := json.Unmarshal(v, &s); err != nil {
					return err
				}
				out = append(out, Attr{key, s})
			case '[':
				var buf bytes.Buffer
				if err := json.Compact(&buf, v); err != nil {
					return err
				}
				out = append(out, Attr{key, replaceInvalidBytes(buf.Bytes())})
			default:
				out = append(out, Attr{key, string(v)})
			}
		}
		if n == 0 && nested {
			out = append(out, Attr{prefix, "{}"})
		}
		return nil
	}
	return out, walk("", false, line)
}

// replaceInvalidBytes turns each byte of invalid UTF-8 into U+FFFD.
func replaceInvalidBytes(b []byte) string {
	var s strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			s.WriteString("\uFFFD")
		} else {
			s.Write(b[:n])
		}
		b = b[n:]
	}
	return s.String()
}

// zapLines builds a JSON lines input like zap's production logger writes.
func zapLines(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"level":"info","ts":%d.%06d,"caller":"vclock/tick.go:%d","msg":"tick committed","host":"hv-%02d","slot":%d,"latency":0.0015,"peer":"hv-%02d"}`+"\n",
			1795549870+i/1000, i%1000*997, 100+i%50, i%16, i, (i+3)%16)
	}
	return b.Bytes()
}

func BenchmarkJSONLines(b *testing.B) {
	data := zapLines(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if n := drain(b, NewJSONLines(bytes.NewReader(data), Options{File: "bench"}, DefaultJSONMapping())); n != 10000 {
			b.Fatalf("%d events", n)
		}
	}
}

// drain reads p to its end, keeping no events, and counts them.
func drain(b *testing.B, p Parser) int {
	n := 0
	for {
		_, err := p.Next()
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// BenchmarkJSONLinesEncodingJSON is the baseline: encoding/json decoding
// each line into a map, which loses field order.
func BenchmarkJSONLinesEncodingJSON(b *testing.B) {
	data := zapLines(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for line := range bytes.Lines(data) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				b.Fatal(err)
			}
			_ = strconv.Itoa(len(m))
		}
	}
}
