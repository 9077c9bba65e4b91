package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The inputs in testdata/syslog: logger.log and logger-octet.log are the
// stderr of util-linux logger --rfc5424 --no-act --stderr (the second with
// --octet-count); rfc5424-examples.log holds the four examples of RFC 5424
// section 6.5 and more by hand; malformed.log breaks one rule per line.
func TestSyslogGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/syslog/*")
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden") {
			continue
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := transcript(t, func(o Options) Parser {
				return NewSyslog(bytes.NewReader(data), o)
			}, Options{File: filepath.Base(in), Host: "fallback-host"})
			checkGolden(t, in+".golden", got)
		})
	}
}

// octetFrame applies RFC 6587 octet counting.
func octetFrame(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

func TestSyslog(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{{
		name: "header fields and attrs",
		in:   `<86>1 2024-02-29T12:34:56.789+02:00 hv-3 clockd 4242 TICK [t@1 seq="7"] tick 7` + "\n",
		want: `"clockd"#1 host="hv-3" ts=2024-02-29T10:34:56.789000000Z kind=log name="tick 7"
    facility="authpriv"
    severity="6"
    level="info"
    procid="4242"
    msgid="TICK"
    sd.t@1.seq="7"
skipped: 0
`,
	}, {
		name: "nil values fall back to the options",
		in:   `<0>1 - - - - - -`,
		want: `"f"#1 host="fb" ts=none kind=log name=""
    facility="kern"
    severity="0"
    level="emerg"
skipped: 0
`,
	}, {
		name: "octet counting over a stream without newlines",
		in:   octetFrame(`<13>1 - h a - - -`) + octetFrame(`<14>1 - h a - - - `) + "\n" + `<15>1 - h b - - - line`,
		want: `"a"#1 host="h" ts=none kind=log name=""
    facility="user"
    severity="5"
    level="notice"
"a"#2 host="h" ts=none kind=log name=""
    facility="user"
    severity="6"
    level="info"
"b"#1 host="h" ts=none kind=log name="line"
    facility="user"
    severity="7"
    level="debug"
skipped: 0
`,
	}, {
		name: "an octet-counted MSG may span lines",
		in:   octetFrame("<13>1 - h a - - - one\ntwo") + "\n<13>1 - h a - - - x\n1 x\n",
		want: `"a"#1 host="h" ts=none kind=log name="one\ntwo"
    facility="user"
    severity="5"
    level="notice"
"a"#2 host="h" ts=none kind=log name="x"
    facility="user"
    severity="5"
    level="notice"
error: f:4: malformed record: PRI: want '<', got '1'
skipped: 1
`,
	}, {
		name: "octet-counted frames over the limit or cut short",
		in:   octetFrame("<13>1 - h a - - - 0123456789") + "\n<13>1 - h a - - - ok\n99 <13>1 - h a - - - short\n",
		max:  25,
		want: `error: f:1: malformed record: octet-counted frame of 28 bytes exceeds the 25-byte limit
"a"#1 host="h" ts=none kind=log name="ok"
    facility="user"
    severity="5"
    level="notice"
error: f:3: malformed record: octet-counted frame declares 99 bytes but the input ends first
skipped: 2
`,
	}, {
		name: "a frame within the limit cut short",
		in:   "<13>1 - h a - - - ok\n99 <13>1 - h a - - - short\n",
		want: `"a"#1 host="h" ts=none kind=log name="ok"
    facility="user"
    severity="5"
    level="notice"
error: f:2: malformed record: octet-counted frame declares 99 bytes but the input ends after 24
skipped: 1
`,
	}, {
		name: "lines over the limit",
		in:   "<13>1 - h a - - - 0123456789\n<13>1 - h a - - - ok\n",
		max:  22,
		want: `error: f:1: malformed record: line longer than 22 bytes
"a"#1 host="h" ts=none kind=log name="ok"
    facility="user"
    severity="5"
    level="notice"
skipped: 1
`,
	}, {
		name: "structured data escapes",
		in:   `<13>1 - h a - - [x@1 q="\"" b="\\" r="\]" o="\n\x" t="a\"\] b"] m`,
		want: `"a"#1 host="h" ts=none kind=log name="m"
    facility="user"
    severity="5"
    level="notice"
    sd.x@1.q="\""
    sd.x@1.b="\\"
    sd.x@1.r="]"
    sd.x@1.o="\\n\\x"
    sd.x@1.t="a\"] b"
skipped: 0
`,
	}, {
		name: "sequence numbers per APP-NAME",
		in:   "<13>1 - h a - - -\n<13>1 - h b - - -\n<13>1 - h - - - -\n<13>1 - h a - - -\n",
		want: `"a"#1 host="h" ts=none kind=log name=""
    facility="user"
    severity="5"
    level="notice"
"b"#1 host="h" ts=none kind=log name=""
    facility="user"
    severity="5"
    level="notice"
"f"#1 host="h" ts=none kind=log name=""
    facility="user"
    severity="5"
    level="notice"
"a"#2 host="h" ts=none kind=log name=""
    facility="user"
    severity="5"
    level="notice"
skipped: 0
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := transcript(t, func(o Options) Parser {
				return NewSyslog(strings.NewReader(tc.in), o)
			}, Options{File: "f", Host: "fb", MaxLineBytes: tc.max})
			if d := firstDiff(tc.want, got); d != "" {
				t.Errorf("got:\n%s\n%s", got, d)
			}
		})
	}
}

// TestSyslogErrors pins the text of every malformed case.
func TestSyslogErrors(t *testing.T) {
	const ok = "2024-01-01T00:00:00Z h a - -"
	for _, tc := range []struct{ in, want string }{
		{"x", `PRI: want '<', got 'x'`},
		{"<>1", `PRI: want 1 to 3 digits after '<'`},
		{"<1234>1", `PRI: want '>' after at most 3 digits`},
		{"<13", `PRI: want '>' after at most 3 digits`},
		{"<192>1", `PRI <192>: out of range 0-191`},
		{"<13>", `VERSION missing after PRI`},
		{"<13>Jan  1 00:00:00 host tag: msg", `VERSION missing after PRI: RFC 3164 (BSD) syslog is not supported`},
		{"<13>2 -", `VERSION "2": only 1 is supported`},
		{"<13>1", `VERSION: want ' ' after it`},
		{"<13>1 ", `TIMESTAMP missing: line ends`},
		{"<13>1 2024-01-01T00:00:00Z", `TIMESTAMP "2024-01-01T00:00:00Z": line ends before STRUCTURED-DATA`},
		{"<13>1 2024-13-01T00:00:00Z h a - - -", `timestamp "2024-13-01T00:00:00Z": month out of range`},
		{"<13>1 2024-00-01T00:00:00Z h a - - -", `timestamp "2024-00-01T00:00:00Z": month out of range`},
		{"<13>1 2024-04-31T00:00:00Z h a - - -", `timestamp "2024-04-31T00:00:00Z": day out of range`},
		{"<13>1 2100-02-29T00:00:00Z h a - - -", `timestamp "2100-02-29T00:00:00Z": day out of range`},
		{"<13>1 2024-01-00T00:00:00Z h a - - -", `timestamp "2024-01-00T00:00:00Z": day out of range`},
		{"<13>1 2024-01-01T24:00:00Z h a - - -", `timestamp "2024-01-01T24:00:00Z": hour out of range`},
		{"<13>1 2024-01-01T00:60:00Z h a - - -", `timestamp "2024-01-01T00:60:00Z": minute out of range`},
		{"<13>1 2024-01-01T00:00:60Z h a - - -", `timestamp "2024-01-01T00:00:60Z": second out of range`},
		{"<13>1 2024-01-01T00:00:00.1234567Z h a - - -", `timestamp "2024-01-01T00:00:00.1234567Z": more than 6 fraction digits`},
		{"<13>1 2024-01-01T00:00:00.Z h a - - -", `timestamp "2024-01-01T00:00:00.Z": no digits after '.'`},
		{"<13>1 2024-01-01T00:00:00 h a - - -", `timestamp "2024-01-01T00:00:00": want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm`},
		{"<13>1 2024-01-01T00:00:00.5 h a - - -", `timestamp "2024-01-01T00:00:00.5": no time zone: want Z or ±hh:mm`},
		{"<13>1 2024-01-01t00:00:00Z h a - - -", `timestamp "2024-01-01t00:00:00Z": want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm`},
		{"<13>1 2024-01-01T00:00:00z h a - - -", `timestamp "2024-01-01T00:00:00z": want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm`},
		{"<13>1 2024-01-01T00:00:00+24:00 h a - - -", `timestamp "2024-01-01T00:00:00+24:00": offset hour out of range`},
		{"<13>1 2024-01-01T00:00:00+01:60 h a - - -", `timestamp "2024-01-01T00:00:00+01:60": offset minute out of range`},
		{"<13>1 2024-01-01T00:00:00+0100 h a - - -", `timestamp "2024-01-01T00:00:00+0100": want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm`},
		{"<13>1 1600-01-01T00:00:00Z h a - - -", `timestamp "1600-01-01T00:00:00Z": outside the int64 ns range (1677-09-21 to 2262-04-11)`},
		{"<13>1 2024-01-01T00:00:00Z  a - - -", `HOSTNAME is empty (two spaces in a row)`},
		{"<13>1 2024-01-01T00:00:00Z h\x7f a - - -", `HOSTNAME "h\x7f": byte 0x7f is not printable US-ASCII`},
		{"<13>1 2024-01-01T00:00:00Z " + strings.Repeat("h", 256) + " a - - -", `HOSTNAME "` + strings.Repeat("h", 64) + `...": longer than 255 characters`},
		{"<13>1 2024-01-01T00:00:00Z h " + strings.Repeat("a", 49) + " - - -", `APP-NAME "` + strings.Repeat("a", 49) + `": longer than 48 characters`},
		{"<13>1 2024-01-01T00:00:00Z h a " + strings.Repeat("p", 129) + " - -", `PROCID "` + strings.Repeat("p", 64) + `...": longer than 128 characters`},
		{"<13>1 2024-01-01T00:00:00Z h a - " + strings.Repeat("m", 33) + " -", `MSGID "` + strings.Repeat("m", 33) + `": longer than 32 characters`},
		{"<13>1 " + ok, `MSGID "-": line ends before STRUCTURED-DATA`},
		{"<13>1 " + ok + " ", `STRUCTURED-DATA missing after MSGID`},
		{"<13>1 " + ok + " x", `STRUCTURED-DATA: want '-' or '[', got 'x'`},
		{"<13>1 " + ok + " [", `SD-ID missing`},
		{"<13>1 " + ok + " []", `SD-ID missing`},
		{"<13>1 " + ok + " [" + strings.Repeat("i", 33) + "]", `SD-ID "` + strings.Repeat("i", 33) + `": longer than 32 characters`},
		{"<13>1 " + ok + " [i\x01d]", `SD-ID "i\x01d": byte 0x01 is not printable US-ASCII`},
		{"<13>1 " + ok + " [id", `SD-ELEMENT [id: line ends before ']'`},
		{"<13>1 " + ok + " [id=]", `SD-ELEMENT [id: want ' ' or ']', got '='`},
		{"<13>1 " + ok + " [id ]", `[id ...]: PARAM-NAME missing`},
		{"<13>1 " + ok + " [id k]", `SD-PARAM k in [id]: want '=' after the name`},
		{"<13>1 " + ok + " [id k=v]", `SD-PARAM k in [id]: want '"' after '='`},
		{"<13>1 " + ok + ` [id k="v]`, `PARAM-VALUE of k in [id]: unescaped ']'`},
		{"<13>1 " + ok + ` [id k="v`, `PARAM-VALUE of k in [id]: line ends before the closing '"'`},
		{"<13>1 " + ok + ` [id k="v\`, `PARAM-VALUE of k in [id]: line ends before the closing '"'`},
		{"<13>1 " + ok + " [id k=\"\xff\"]", `PARAM-VALUE of k in [id]: not valid UTF-8`},
		{"<13>1 " + ok + ` [id k="v"x]`, `SD-ELEMENT [id: want ' ' or ']', got 'x'`},
		{"<13>1 " + ok + " [id][id]", `SD-ID "id" appears twice`},
		{"<13>1 " + ok + " [id]x", `after STRUCTURED-DATA: want ' ' or the end of the line, got 'x'`},
		{"<13>1 " + ok + " - \xef\xbb\xbfbad \xff", `MSG after the BOM is not valid UTF-8`},
		{"30 <13>1 - h a - - -", `octet-counted frame declares 30 bytes but the input ends after 17`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p := NewSyslog(strings.NewReader("<13>1 - h a - - - fine\n"+tc.in), Options{File: "x.log", Strict: true})
			if _, err := p.Next(); err != nil {
				t.Fatalf("first line: %v", err)
			}
			_, err := p.Next()
			var le *LineError
			if !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want a LineError on line 2", err)
			}
			if got := le.Err.Error(); got != "malformed record: "+tc.want {
				t.Errorf("got  %s\nwant malformed record: %s", got, tc.want)
			}
		})
	}
}

func TestSyslogStrictAndCounting(t *testing.T) {
	in := "<13>1 - h a - - - one\nbad\n<13>1 - h a - - - two\nworse\n"
	p := NewSyslog(strings.NewReader(in), Options{File: "s.log", Strict: true})
	evs, err := ReadAll(p)
	if len(evs) != 1 || err == nil || err.Error() != "s.log:2: malformed record: PRI: want '<', got 'b'" {
		t.Fatalf("strict: %d events, %v", len(evs), err)
	}
	var seen []string
	p = NewSyslog(strings.NewReader(in), Options{File: "s.log", OnError: func(le *LineError) {
		seen = append(seen, le.Error())
	}})
	evs, err = ReadAll(p)
	if len(evs) != 2 || err != nil || len(seen) != 2 || p.(*syslogParser).Errors() != 2 || !strings.HasPrefix(seen[1], "s.log:4:") {
		t.Fatalf("non-strict: %d events, %v, errors %q, count %d", len(evs), err, seen, p.(*syslogParser).Errors())
	}
}

func TestParseRFC3339(t *testing.T) {
	for _, tc := range []struct {
		in      string
		rfc5424 bool
		want    string // RFC 3339 in UTC, or the error's end
	}{
		{"1970-01-01T00:00:00Z", true, "1970-01-01T00:00:00Z"},
		{"2024-02-29T23:59:59.999999-23:59", true, "2024-03-01T23:58:59.999999Z"},
		{"0001-01-01T00:00:00Z", false, "outside the int64 ns range (1677-09-21 to 2262-04-11)"},
		{"1677-09-21T00:12:43.145224192Z", false, "1677-09-21T00:12:43.145224192Z"},
		{"1677-09-21T00:12:43.145224191Z", false, "outside the int64 ns range (1677-09-21 to 2262-04-11)"},
		{"2262-04-11T23:47:16.854775807Z", false, "2262-04-11T23:47:16.854775807Z"},
		{"2262-04-11T23:47:16.854775808Z", false, "outside the int64 ns range (1677-09-21 to 2262-04-11)"},
		{"2262-04-12T00:47:16.854775807+01:00", false, "2262-04-11T23:47:16.854775807Z"},
		{"2024-01-01t00:00:00.1234567891z", false, "2024-01-01T00:00:00.123456789Z"},
		{"2024-01-01T00:00:00.1234567891Z", true, "more than 6 fraction digits"},
		{"2024-1-01T00:00:00Z", true, "want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm"},
		{"2024-01-01T00:00:00Zjunk", false, "want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm"},
		{"2024-01-01T00:00:00+01:00junk", false, "want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm"},
		{"2024-01-01T00:00:00+a1:00", false, "want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm"},
		{"+024-01-01T00:00:00Z", false, "want YYYY-MM-DDThh:mm:ss[.frac] and Z or ±hh:mm"},
	} {
		ns, err := parseRFC3339([]byte(tc.in), tc.rfc5424)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
		}
		if !strings.HasSuffix(got, tc.want) {
			t.Errorf("parseRFC3339(%q, %v) = %s, want %s", tc.in, tc.rfc5424, got, tc.want)
		}
	}
}

// TestParseRFC3339AgainstTime compares with time.Parse on random instants,
// zones and fraction lengths.
func TestParseRFC3339AgainstTime(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 1))
	for range 20000 {
		s := randomRFC3339(rng, 9)
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("seed %d: time.Parse(%q): %v", seed, s, err)
		}
		got, err := parseRFC3339([]byte(s), false)
		if err != nil || got != want.UnixNano() {
			t.Fatalf("seed %d: parseRFC3339(%q) = %d, %v; time.Parse says %d", seed, s, got, err, want.UnixNano())
		}
	}
}

// randomRFC3339 formats a random instant within ±2^61 ns of the epoch in
// a random zone with up to maxFrac fraction digits.
func randomRFC3339(rng *rand.Rand, maxFrac int) string {
	ns := rng.Int64N(1<<62) - 1<<61
	off := (rng.IntN(48*60-1) - (24*60 - 1)) * 60
	layout := "2006-01-02T15:04:05"
	if d := rng.IntN(maxFrac + 1); d > 0 {
		layout += "." + strings.Repeat("0", d)
	}
	return time.Unix(0, ns).In(time.FixedZone("", off)).Format(layout + "Z07:00")
}

// FuzzSyslog checks that no input panics, that every non-empty line is
// an event or a LineError when no octet counting is in play, that reading
// byte by byte and strict mode agree, and that a message encoded from the
// fuzzed bytes parses back to its fields.
func FuzzSyslog(f *testing.F) {
	for _, name := range []string{"logger.log", "logger-octet.log", "rfc5424-examples.log", "malformed.log"} {
		data, err := os.ReadFile(filepath.Join("testdata/syslog", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs := parseAllLines(t, func(r io.Reader, o Options) Parser { return NewSyslog(r, o) }, data)
		lineFramed := true
		nonEmpty := 0
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			if len(line) > 0 && isDigit(line[0]) {
				lineFramed = false
			}
			if len(bytes.TrimSuffix(line, []byte{'\r'})) > 0 {
				nonEmpty++
			}
		}
		if lineFramed && len(recs) != nonEmpty {
			t.Fatalf("%d records from %d non-empty lines", len(recs), nonEmpty)
		}
		msg, want := syslogRoundTrip(data)
		p := NewSyslog(bytes.NewReader(msg), Options{File: "f", Host: "fb", Strict: true})
		evs, err := ReadAll(p)
		if err != nil || len(evs) != 1 {
			t.Fatalf("encoded %q: %d events, %v", msg, len(evs), err)
		}
		if got := renderEvent(evs[0]); got != renderEvent(want) {
			t.Fatalf("encoded %q:\n got %s\nwant %s", msg, got, renderEvent(want))
		}
	})
}

// syslogRoundTrip derives a valid message from data and the Event it
// must parse to.
func syslogRoundTrip(data []byte) ([]byte, Event) {
	next := func(n int) []byte {
		if n > len(data) {
			n = len(data)
		}
		b := data[:n]
		data = data[n:]
		return b
	}
	num := func() int {
		if b := next(1); len(b) == 1 {
			return int(b[0])
		}
		return 0
	}
	printable := func(max int) string {
		b := []byte(string(next(num() % (max + 1))))
		for i := range b {
			b[i] = 33 + b[i]%94
		}
		if len(b) == 0 || string(b) == "-" {
			return ""
		}
		return string(b)
	}
	sdName := func() string {
		b := []byte(printable(32))
		for i, c := range b {
			if c == '=' || c == ']' || c == '"' {
				b[i] = '_'
			}
		}
		if len(b) == 0 {
			return "n"
		}
		return string(b)
	}
	octet := num()%2 == 1
	text := func(n int) string {
		s := strings.ToValidUTF8(string(next(n)), "\uFFFD")
		if !octet {
			s = strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
		}
		return s
	}
	e := Event{Kind: KindLog, Host: "fb", Source: "f"}
	pri := num() % 192
	e.Attrs = []Attr{{"facility", syslogFacilityNames[pri>>3]}, {"severity", strconv.Itoa(pri & 7)}, {"level", syslogSeverityNames[pri&7]}}
	ts := "-"
	e.Untimed = true
	if num()%4 != 0 {
		e.Untimed = false
		rng := rand.New(rand.NewPCG(uint64(num())<<8|uint64(num()), uint64(num())))
		ts = randomRFC3339(rng, 6)
		tm, _ := time.Parse(time.RFC3339Nano, ts)
		e.LocalNs = tm.UnixNano()
	}
	host, app, procid, msgid := printable(255), printable(48), printable(128), printable(32)
	if host != "" {
		e.Host = host
	}
	if app != "" {
		e.Source = app
	}
	if procid != "" {
		e.Attrs = append(e.Attrs, Attr{"procid", procid})
	}
	if msgid != "" {
		e.Attrs = append(e.Attrs, Attr{"msgid", msgid})
	}
	orNil := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s %s %s ", pri, ts, orNil(host), orNil(app), orNil(procid), orNil(msgid))
	ids := map[string]bool{}
	for range num() % 4 {
		id := sdName()
		if ids[id] {
			continue
		}
		ids[id] = true
		b.WriteString("[" + id)
		for range num() % 4 {
			name, val := sdName(), text(num()%16)
			esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(val)
			b.WriteString(" " + name + `="` + esc + `"`)
			e.Attrs = append(e.Attrs, Attr{"sd." + id + "." + name, val})
		}
		b.WriteString("]")
	}
	if len(ids) == 0 {
		b.WriteString("-")
	}
	if num()%2 == 1 {
		raw := next(len(data))
		if !octet {
			raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte{'\n'}, []byte{' '}), []byte{'\r'}, []byte{' '})
		}
		if bytes.HasPrefix(raw, []byte(utf8BOM)) {
			raw = bytes.ToValidUTF8(raw, []byte("\uFFFD"))
			e.Name = string(raw[len(utf8BOM):])
		} else {
			e.Name = strings.ToValidUTF8(string(raw), "\uFFFD")
		}
		b.WriteString(" ")
		b.Write(raw)
	}
	e.SourceSeq = 1
	msg := []byte(b.String())
	if octet {
		return append([]byte(fmt.Sprintf("%d ", len(msg))), msg...), e
	}
	return append(msg, '\n'), e
}

func syslogBench(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `<30>1 2026-11-24T19:47:%02d.%06dZ hv-%02d clockd %d TICK [timeQuality tzKnown="1" isSynced="1"][tick@32473 seq="%d" err="1.5ms"] tick committed slot=%d`+"\n",
			i%60, i%1000000, i%16, 1000+i%7, i, i)
	}
	return b.Bytes()
}

func BenchmarkSyslog(b *testing.B) {
	data := syslogBench(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if n := drain(b, NewSyslog(bytes.NewReader(data), Options{File: "bench"})); n != 10000 {
			b.Fatalf("%d events", n)
		}
	}
}
