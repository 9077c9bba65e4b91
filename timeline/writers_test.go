package timeline

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/clockd/clockd/ingest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// base is 2023-11-14T22:13:20Z.
const base = int64(1700000000) * 1e9

// threeHosts is a small merge of three hosts with every kind of event, a
// late one, one without a timestamp and one with a host missing from the
// offsets. hv2's clock is 2 ms ahead and hv3's 1 ms behind.
func threeHosts() ([]Input, MergeOptions) {
	ms := int64(1e6)
	span := func(host, src string, at, dur int64, name string, attrs ...string) ingest.Event {
		e := ev(host, src, at, ingest.KindSpan, name, attrs...)
		e.DurNs = dur
		return e
	}
	hv1 := input("hv1.jsonl",
		ev("hv1", "api", base+1*ms, ingest.KindLog, "request received", "level", "info", "path", "/v1/vm start"),
		ev("hv1", "api", base+2*ms, ingest.KindFlowStart, "send migrate", "flow_id", "77"),
		span("hv1", "api", base+3*ms, 4*ms, "handle", "category", "rpc"),
		ev("hv1", "disk", base+5*ms, ingest.KindCounter, "queue", "depth", "3", "pid", "17"),
		ev("hv1", "api", base+4*ms, ingest.KindLog, "flushed late", "note", `quote " and \ back`),
		untimed("hv1", "api", ingest.KindLog, "no time"),
	)
	hv2 := input("hv2.jsonl",
		ev("hv2", "vmm", base+4*ms+500_000, ingest.KindBegin, "migrate"),
		span("hv2", "vmm", base+6*ms, 1*ms, "copy pages", "flow_id", "77"),
		ev("hv2", "vmm", base+8*ms, ingest.KindInstant, "paused", "vm", "vm-7"),
		ev("hv2", "vmm", base+9*ms, ingest.KindEnd, "migrate"),
	)
	hv3 := input("hv3.jsonl",
		ev("hv3", "vmm", base+2*ms, ingest.KindFlowEnd, "receive migrate", "flow_id", "77"),
		ev("hv3", "vmm", base+6*ms, ingest.KindLog, "resumed\nwith a newline", "vm", "vm-7"),
		ev("hv4", "vmm", base+7*ms, ingest.KindLog, "from a host without offsets"),
	)
	offs, err := NewOffsets([]Sample{
		{Host: "hv1", RefNs: base, OffsetNs: 0},
		{Host: "hv2", RefNs: base, OffsetNs: 2 * ms},
		{Host: "hv3", RefNs: base, OffsetNs: -1 * ms},
	})
	if err != nil {
		panic(err)
	}
	return []Input{hv1, hv2, hv3}, MergeOptions{Offsets: offs}
}

func TestGolden(t *testing.T) {
	writers := []struct {
		file string
		new  func(io.Writer) Writer
	}{
		{"three-hosts.txt", func(w io.Writer) Writer { return NewTextWriter(w, false) }},
		{"three-hosts.color.txt", func(w io.Writer) Writer { return NewTextWriter(w, true) }},
		{"three-hosts.jsonl", func(w io.Writer) Writer { return NewJSONLWriter(w) }},
		{"three-hosts.chrome.json", func(w io.Writer) Writer { return NewChromeWriter(w) }},
	}
	for _, wt := range writers {
		t.Run(wt.file, func(t *testing.T) {
			inputs, opts := threeHosts()
			var buf bytes.Buffer
			w := wt.new(&buf)
			sum, err := Merge(inputs, opts, w.Write)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := sum.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "golden", wt.file), buf.Bytes())
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./timeline -run TestGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestJSONLWriterLinesAreJSON decodes every line back.
func TestJSONLWriterLinesAreJSON(t *testing.T) {
	inputs, opts := threeHosts()
	var buf bytes.Buffer
	w := NewJSONLWriter(&buf)
	var in []Event
	if _, err := Merge(inputs, opts, func(e Event) error { in = append(in, e); return w.Write(e) }); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(in) {
		t.Fatalf("%d lines for %d events", len(lines), len(in))
	}
	for i, line := range lines {
		var got struct {
			TS     string            `json:"ts"`
			Host   string            `json:"host"`
			Source string            `json:"source"`
			Seq    uint64            `json:"seq"`
			Msg    string            `json:"msg"`
			Attrs  map[string]string `json:"attrs"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		e := in[i]
		ts, err := time.Parse(time.RFC3339Nano, got.TS)
		if err != nil || ts.UnixNano() != e.TimeNs || got.Host != e.Host || got.Source != e.Source ||
			got.Seq != e.SourceSeq || got.Msg != e.Name || len(got.Attrs) != len(e.Attrs) {
			t.Errorf("line %d %s does not match %+v", i+1, line, e)
		}
		for _, a := range e.Attrs {
			if got.Attrs[a.Key] != a.Value {
				t.Errorf("line %d: attr %s = %q, want %q", i+1, a.Key, got.Attrs[a.Key], a.Value)
			}
		}
	}
}

func TestJSONLWriterAllocatesNothing(t *testing.T) {
	w := NewJSONLWriter(io.Discard)
	e := Event{Event: ev("hv1", "api", base, "log", "request received", "level", "info", "path", "/v1/vm"), TimeNs: base + 17, Corrected: true}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("JSONLWriter.Write allocates %.1f times per event", allocs)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	pieces := []string{"a", "é", "\"", "\\", "\n", "\x00", "\x1f", "\x7f", "\u2028", "日本", "\xff", "\xe2\x82", "<>&", " "}
	for i := 0; i < 2000; i++ {
		var b strings.Builder
		for j := rng.Intn(8); j >= 0; j-- {
			b.WriteString(pieces[rng.Intn(len(pieces))])
		}
		s := b.String()
		out := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("seed %d: %q encodes to invalid JSON %s: %v", seed, s, out, err)
		}
		// encoding/json turns each invalid byte into one U+FFFD.
		var wantB strings.Builder
		for k := 0; k < len(s); {
			r, size := utf8.DecodeRuneInString(s[k:])
			wantB.WriteRune(r)
			k += size
		}
		if want := wantB.String(); back != want {
			t.Fatalf("seed %d: %q decodes back as %q, want %q", seed, s, back, want)
		}
	}
}

func TestTimeFormatterMatchesTimeFormat(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	var tf timeFormatter
	ns := base
	for i := 0; i < 5000; i++ {
		switch rng.Intn(6) {
		case 0:
			ns = rng.Int63n(4e18) - 1e18 // 1938 to 2096
		case 1:
			ns += rng.Int63n(3e6) // mostly within the second
		case 2:
			ns = floorDiv(ns, 60e9)*60e9 + 60e9 - 1 + rng.Int63n(3) // around a minute's end
		default:
			ns += rng.Int63n(2e13) // within about a day
		}
		got := string(tf.append(nil, ns))
		if want := FormatTime(ns); got != want {
			t.Fatalf("seed %d: %d formats as %s, want %s", seed, ns, got, want)
		}
	}
}

func TestAppendMicros(t *testing.T) {
	for _, tc := range []struct {
		ns   int64
		want string
	}{{0, "0.000"}, {1, "0.001"}, {1500, "1.500"}, {-1, "-0.001"}, {-1234567, "-1234.567"}, {999, "0.999"}} {
		if got := string(appendMicros(nil, tc.ns)); got != tc.want {
			t.Errorf("appendMicros(%d) = %s, want %s", tc.ns, got, tc.want)
		}
	}
}

// TestTextWriterEscapes checks that no host, source, key, value or name
// reaches the terminal with a control character in it, that a host with
// a space does not shift the columns, and that the summary names hosts
// and sources the same way.
func TestTextWriterEscapes(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		host, source, key, value string
		msg                      string
		want                     string
	}{
		{"plain", "hv1", "app", "k", "v", "m", "hv1 app log        m k=v"},
		{"escape in host", "h\x1b[31mX", "app", "k", "v", "m", `"h\x1b[31mX" app log        m k=v`},
		{"space in host", "h y", "app", "k", "v", "m", `"h y" app log        m k=v`},
		{"escape in source", "hv1", "a\x1b]0;t\a", "k", "v", "m", `hv1 "a\x1b]0;t\a" log        m k=v`},
		{"escape in key", "hv1", "app", "k\x1b[2J", "v", "m", `hv1 app log        m "k\x1b[2J"=v`},
		{"'=' in key", "hv1", "app", "a=b", "v", "m", `hv1 app log        m "a=b"=v`},
		{"C1 control in value", "hv1", "app", "k", "\u009b31m", "m", `hv1 app log        m k="\u009b31m"`},
		{"bidi override in name", "hv1", "app", "k", "v", "a\u202eb", `hv1 app log        "a\u202eb" k=v`},
		{"invalid UTF-8 in host", "h\xff", "app", "k", "v", "m", `"h\xff" app log        m k=v`},
		{"printable UTF-8", "hôte", "app", "clé", "café", "déjà vu", "hôte app log        déjà vu clé=café"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewTextWriter(&out, false)
			e := Event{Event: ingest.Event{Host: tc.host, Source: tc.source, Kind: ingest.KindLog, Name: tc.msg,
				Attrs: []ingest.Attr{{Key: tc.key, Value: tc.value}}}, TimeNs: base}
			if err := w.Write(e); err != nil || w.Close() != nil {
				t.Fatal(err)
			}
			got := strings.TrimSuffix(strings.TrimPrefix(out.String(), FormatTime(base)+" "), "\n")
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			sum := Summary{Events: 1, Inconsistent: 1,
				Inputs:          []InputSummary{{Name: "in", Events: 1, Hosts: []string{tc.host}}},
				LateEvents:      []LateEvent{{Input: "in", Host: tc.host, Source: tc.source}},
				Inconsistencies: []Inconsistency{{Issue: IssueNoTimestamp, Host: tc.host, Source: tc.source}}}
			var text bytes.Buffer
			if err := sum.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, c := range text.String() {
				if c < ' ' && c != '\n' || c == 0x7f || c >= 0x80 && c < 0xa0 {
					t.Fatalf("summary holds control character %U:\n%s", c, text.String())
				}
			}
			if w := TextWord(tc.host); !strings.Contains(text.String(), "host "+w+" source "+TextWord(tc.source)) {
				t.Errorf("summary does not name host %s:\n%s", w, text.String())
			}
		})
	}
	// Columns stay aligned after a host with a space.
	var out bytes.Buffer
	w := NewTextWriter(&out, false)
	for _, h := range []string{"h y", "hv1"} {
		if err := w.Write(Event{Event: ingest.Event{Host: h, Source: "s", Kind: ingest.KindLog, Name: "m"}, TimeNs: base}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || strings.Index(lines[0], " s ") != strings.Index(lines[1], " s ") {
		t.Errorf("columns shifted:\n%s", out.String())
	}
}

func TestHostColorIsStable(t *testing.T) {
	if HostColor("hv1") != HostColor("hv1") || HostColor("hv1") == "" {
		t.Fatal("colour not stable")
	}
	seen := map[string]bool{}
	for i := range 50 {
		seen[HostColor(fmt.Sprint("hv", i))] = true
	}
	if len(seen) < 6 {
		t.Errorf("50 hosts got only %d colours", len(seen))
	}
}

// TestSpecialMaskMatchesBytewise checks the 8-byte test against the
// byte rule it stands for, and plainJSON against the same rule.
func TestSpecialMaskMatchesBytewise(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	interesting := []byte{0, 0x1f, 0x20, 0x21, '"', 0x23, '\\', 0x5b, 0x5d, 0x7e, 0x7f, 0x80, 0xff, 'a'}
	draw := func() byte {
		if rng.Intn(2) == 0 {
			return interesting[rng.Intn(len(interesting))]
		}
		return byte(rng.Intn(256))
	}
	for i := 0; i < 100000; i++ {
		var b [8]byte
		for j := range b {
			b[j] = draw()
		}
		want := false
		for _, c := range b {
			want = want || !jsonPlain[c]
		}
		if got := specialMask(binary.LittleEndian.Uint64(b[:])) != 0; got != want {
			t.Fatalf("seed %d: specialMask(%q) = %v, want %v", seed, b, got, want)
		}
	}
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.Intn(30))
		for j := range b {
			if b[j] = 'a'; rng.Intn(8) == 0 {
				b[j] = draw()
			}
		}
		want := true
		for _, c := range b {
			want = want && jsonPlain[c]
		}
		if got := plainJSON(string(b)); got != want {
			t.Fatalf("seed %d: plainJSON(%q) = %v, want %v", seed, b, got, want)
		}
	}
}

// TestTextWriterLongHost: a host longer than a column may be is written
// whole, and the lines after it keep a column of at most maxPadWidth.
func TestTextWriterLongHost(t *testing.T) {
	var out bytes.Buffer
	w := NewTextWriter(&out, false)
	for _, h := range []string{strings.Repeat("h", 5000), "hv1"} {
		if err := w.Write(Event{Event: ingest.Event{Host: h, Source: "s", Kind: ingest.KindLog, Name: "m"}, TimeNs: base}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if !strings.Contains(lines[0], strings.Repeat("h", 5000)+" s ") {
		t.Fatalf("the long host is not written whole: %.80q...", lines[0])
	}
	if want := FormatTime(base) + " hv1" + strings.Repeat(" ", maxPadWidth-3) + " s log        m"; lines[1] != want {
		t.Fatalf("after a long host:\n%q\nwant\n%q", lines[1], want)
	}
}
