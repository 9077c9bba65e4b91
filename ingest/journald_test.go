package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The inputs in testdata/journald: namespace.export is `journalctl
// --namespace=clockdtest -o export` of a systemd-journald 252 namespace
// instance fed through its native socket (including a MESSAGE with
// newlines, a binary field, repeated fields) and its /dev/log (util-linux
// logger); handwritten.export breaks the format on purpose.
func TestJournalExportGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/journald/*")
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
				return NewJournalExport(bytes.NewReader(data), o)
			}, Options{File: filepath.Base(in), Host: "fallback-host"})
			checkGolden(t, in+".golden", got)
		})
	}
}

// exportField serializes one journal field as journalctl does: text when the
// value is UTF-8 without control characters other than TAB, else binary.
func exportField(name string, value []byte) string {
	text := utf8.Valid(value)
	for _, c := range value {
		if c < ' ' && c != '\t' {
			text = false
		}
	}
	if text {
		return name + "=" + string(value) + "\n"
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(value)))
	return name + "\n" + string(n[:]) + string(value) + "\n"
}

// exportBinField writes a binary field whose declared length may lie.
func exportBinField(name string, declared uint64, value string) string {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], declared)
	return name + "\n" + string(n[:]) + value + "\n"
}

const journalRT1 = "__REALTIME_TIMESTAMP=1700000000000000\n"

func TestJournalExport(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{{
		name: "mapped fields, source order and level",
		in: "_COMM=c\n_SYSTEMD_UNIT=u.service\n" + journalRT1 + "_HOSTNAME=h\nMESSAGE=m\nPRIORITY=4\nSYSLOG_IDENTIFIER=id\n\n" +
			journalRT1 + "_COMM=c\n_SYSTEMD_UNIT=u.service\n\n" + journalRT1 + "_COMM=c\n\n" + journalRT1 + "\n",
		want: `"id"#1 host="h" ts=2023-11-14T22:13:20.000000000Z kind=log name="m"
    _COMM="c"
    _SYSTEMD_UNIT="u.service"
    PRIORITY="4"
    level="warning"
    SYSLOG_IDENTIFIER="id"
"u.service"#1 host="fb" ts=2023-11-14T22:13:20.000000000Z kind=log name=""
    _COMM="c"
    _SYSTEMD_UNIT="u.service"
"c"#1 host="fb" ts=2023-11-14T22:13:20.000000000Z kind=log name=""
    _COMM="c"
"f"#1 host="fb" ts=2023-11-14T22:13:20.000000000Z kind=log name=""
skipped: 0
`,
	}, {
		name: "binary values, blank lines inside them, and non-UTF-8",
		in: journalRT1 + exportField("MESSAGE", []byte("a\n\nb")) + exportField("X", []byte{0xff, 0}) + exportField("Y", []byte("tab\tok")) +
			exportField("_HOSTNAME", []byte("h\xff")) + "\n\n\n" + journalRT1 + "MESSAGE=next\n",
		want: `"f"#1 host="h�" ts=2023-11-14T22:13:20.000000000Z kind=log name="a\n\nb"
    X.base64="/wA="
    Y="tab\tok"
    _HOSTNAME.base64="aP8="
"f"#2 host="fb" ts=2023-11-14T22:13:20.000000000Z kind=log name="next"
skipped: 0
`,
	}, {
		name: "malformed entries resync at the next blank line",
		in: "MESSAGE=no time\n\n" + // 1
			"__REALTIME_TIMESTAMP=-1\n\n" + // 3
			"__REALTIME_TIMESTAMP=+1\n\n" + // 5
			"__REALTIME_TIMESTAMP=9223372036854776\n\n" + // 7
			journalRT1 + "lower=x\nMESSAGE=gone\n\n" + // 9
			journalRT1 + "=x\n\n" + // 13
			journalRT1 + "NOT A NAME\n\n" + // 16
			journalRT1 + exportBinField("B", 2, "abcd") + "tail\n\n" + // 19
			journalRT1 + exportBinField("B", journalDataSizeMax+1, "") + "\n" + // 24
			journalRT1 + "MESSAGE=ok\n", // 27
		want: `error: f:1: malformed record: entry has no __REALTIME_TIMESTAMP
error: f:3: malformed record: __REALTIME_TIMESTAMP "-1": want decimal µs since the epoch
error: f:5: malformed record: __REALTIME_TIMESTAMP "+1": want decimal µs since the epoch
error: f:7: malformed record: __REALTIME_TIMESTAMP "9223372036854776": want decimal µs since the epoch
error: f:9: malformed record: field name "lower": want only A-Z, 0-9 and _
error: f:13: malformed record: field name is empty
error: f:16: malformed record: field name "NOT A NAME": want only A-Z, 0-9 and _
error: f:19: malformed record: field B: 2-byte value not followed by a newline
error: f:24: malformed record: field B: length 805306369 exceeds 805306368
"f"#1 host="fb" ts=2023-11-14T22:13:20.000000000Z kind=log name="ok"
skipped: 9
`,
	}, {
		name: "an entry over the limit is read to its end and skipped",
		in: journalRT1 + "A=" + strings.Repeat("x", 40) + "\n" + exportBinField("B", 3, "a\nb") + "MESSAGE=gone\n\n" +
			journalRT1 + exportBinField("B", 100, strings.Repeat("\n", 100)) + "\n" +
			journalRT1 + "MESSAGE=ok\n\n",
		max: 60,
		want: `error: f:1: malformed record: entry longer than 60 bytes
error: f:8: malformed record: entry longer than 60 bytes (field B has 100 bytes)
"f"#1 host="fb" ts=2023-11-14T22:13:20.000000000Z kind=log name="ok"
skipped: 2
`,
	}, {
		name: "a line over the limit",
		in: journalRT1 + "A=" + strings.Repeat("x", 100) + "\n" + exportBinField("B", 3, "\n\n\n") + "\n" +
			journalRT1 + "MESSAGE=ok\n",
		max: 60,
		want: `error: f:1: malformed record: line 2 longer than 60 bytes
"f"#1 host="fb" ts=2023-11-14T22:13:20.000000000Z kind=log name="ok"
skipped: 1
`,
	}, {
		name: "a last line without its newline is cut short",
		in:   journalRT1 + "MESSAGE=last",
		want: `error: f:1: malformed record: input ends inside field "MESSAGE=last"
skipped: 1
`,
	}, {
		name: "input ends inside a length",
		in:   journalRT1 + "MESSAGE\n\x05\x00",
		want: `error: f:1: malformed record: field MESSAGE: input ends inside its 8-byte length
skipped: 1
`,
	}, {
		name: "input ends inside a value",
		in:   "\n\n" + journalRT1 + exportBinField("MESSAGE", 10, "abc")[:17],
		want: `error: f:3: malformed record: field MESSAGE: input ends inside its 10-byte value
skipped: 1
`,
	}, {
		name: "input ends inside a value over the limit",
		in:   journalRT1 + exportBinField("MESSAGE", 100, "abc")[:19],
		max:  60,
		want: `error: f:1: malformed record: field MESSAGE: input ends inside its 100-byte value
skipped: 1
`,
	}, {
		name: "input ends before the newline after a value",
		in:   journalRT1 + strings.TrimSuffix(exportBinField("MESSAGE", 3, "abc"), "\n"),
		want: `error: f:1: malformed record: field MESSAGE: input ends before the newline after its value
skipped: 1
`,
	}, {
		name: "a complete last entry without its blank line",
		in:   journalRT1 + "MESSAGE=last\n",
		want: `"f"#1 host="fb" ts=2023-11-14T22:13:20.000000000Z kind=log name="last"
skipped: 0
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := transcript(t, func(o Options) Parser {
				return NewJournalExport(strings.NewReader(tc.in), o)
			}, Options{File: "f", Host: "fb", MaxLineBytes: tc.max})
			if d := firstDiff(tc.want, got); d != "" {
				t.Errorf("got:\n%s\n%s", got, d)
			}
		})
	}
}

func TestJournalExportStrict(t *testing.T) {
	in := journalRT1 + "MESSAGE=a\n\n" + journalRT1 + "bad=1\n\n" + journalRT1 + "MESSAGE=c\n\n"
	p := NewJournalExport(strings.NewReader(in), Options{File: "j", Strict: true})
	evs, err := ReadAll(p)
	var le *LineError
	if len(evs) != 1 || !errors.As(err, &le) || le.Line != 4 || le.File != "j" || !errors.Is(err, ErrMalformed) {
		t.Fatalf("strict: %d events, %v", len(evs), err)
	}
	var lines []int
	p = NewJournalExport(strings.NewReader(in), Options{OnError: func(le *LineError) { lines = append(lines, le.Line) }})
	evs, err = ReadAll(p)
	if len(evs) != 2 || err != nil || fmt.Sprint(lines) != "[4]" || p.(*journalExport).Errors() != 1 {
		t.Fatalf("non-strict: %d events, %v, errors at %v", len(evs), err, lines)
	}
}

// TestJournalExportLargeBinary checks a value far larger than the limit
// and the read buffer is skipped without being held.
func TestJournalExportLargeBinary(t *testing.T) {
	big := strings.Repeat("core\n\ndump", 50000)
	in := journalRT1 + exportBinField("COREDUMP", uint64(len(big)), big) + "\n" + journalRT1 + "MESSAGE=after\n"
	var lines []int
	p := NewJournalExport(strings.NewReader(in), Options{MaxLineBytes: 4096,
		OnError: func(le *LineError) { lines = append(lines, le.Line) }})
	evs, err := ReadAll(p)
	if err != nil || len(evs) != 1 || evs[0].Name != "after" || fmt.Sprint(lines) != "[1]" {
		t.Fatalf("%d events, %v, errors at %v", len(evs), err, lines)
	}
	if held := cap(p.(*journalExport).arena); held > 8192 {
		t.Errorf("held %d bytes", held)
	}
}

// FuzzJournalExport checks that no input panics, that reading byte by
// byte and strict mode agree, and that entries encoded from the fuzzed
// bytes parse back to the Events a naive model expects.
func FuzzJournalExport(f *testing.F) {
	for _, name := range []string{"namespace.export", "handwritten.export"} {
		data, err := os.ReadFile(filepath.Join("testdata/journald", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(journalRT1 + exportBinField("MESSAGE", 3, "a\nb") + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseAllLines(t, func(r io.Reader, o Options) Parser { return NewJournalExport(r, o) }, data)
		export, want := journalRoundTrip(data)
		got, err := ReadAll(NewJournalExport(bytes.NewReader(export), Options{File: "f", Host: "fb", Strict: true}))
		if err != nil {
			t.Fatalf("encoded %q: %v", export, err)
		}
		if a, b := renderEvents(got), renderEvents(want); a != b {
			t.Fatalf("encoded %q:\n got %s\nwant %s", export, a, b)
		}
	})
}

func renderEvents(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(renderEvent(e))
	}
	return b.String()
}

type journalTestField struct {
	name  string
	value []byte
}

// journalRoundTrip derives entries from data, encodes them, and models
// the Events they must parse to.
func journalRoundTrip(data []byte) ([]byte, []Event) {
	next := func(n int) []byte {
		n = min(n, len(data))
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
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
	special := []string{"MESSAGE", "_HOSTNAME", "SYSLOG_IDENTIFIER", "_SYSTEMD_UNIT", "_COMM", "PRIORITY", "__REALTIME_TIMESTAMP"}
	var out bytes.Buffer
	var evs []Event
	for range 1 + num()%3 {
		us := uint64(num())<<24 | uint64(num())<<16 | uint64(num())<<8 | uint64(num())
		fields := []journalTestField{{"__REALTIME_TIMESTAMP", []byte(strconv.FormatUint(us, 10))}}
		for range num() % 8 {
			var name string
			if k := num(); k < 2*len(special) {
				name = special[k/2]
			} else {
				nb := next(1 + num()%6)
				for _, c := range nb {
					name += string(alphabet[int(c)%len(alphabet)])
				}
				if name == "" {
					name = "N"
				}
			}
			value := bytes.Clone(next(num() % 24))
			if name == "PRIORITY" && len(value) > 0 && num()%2 == 0 {
				value = []byte{'0' + value[0]%10}
			}
			fields = append(fields, journalTestField{name, value})
		}
		for _, fl := range fields {
			out.WriteString(exportField(fl.name, fl.value))
		}
		out.WriteString("\n")
		evs = append(evs, journalModel(fields, us))
	}
	seqs := map[string]uint64{}
	for i := range evs {
		seqs[evs[i].Source]++
		evs[i].SourceSeq = seqs[evs[i].Source]
	}
	return out.Bytes(), evs
}

// journalModel is the naive statement of how fields map to an Event.
func journalModel(fields []journalTestField, us uint64) Event {
	e := Event{Kind: KindLog, LocalNs: int64(us) * 1000, Host: "fb", Source: "f"}
	first := func(name string) int {
		for i, f := range fields {
			if f.name == name {
				return i
			}
		}
		return -1
	}
	msg, host := first("MESSAGE"), first("_HOSTNAME")
	src := first("SYSLOG_IDENTIFIER")
	if src < 0 {
		src = first("_SYSTEMD_UNIT")
	}
	if src < 0 {
		src = first("_COMM")
	}
	valid := func(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }
	for i, f := range fields {
		switch {
		case i == 0:
		case !utf8.Valid(f.value):
			e.Attrs = append(e.Attrs, Attr{f.name + ".base64", base64.StdEncoding.EncodeToString(f.value)})
		case i != msg && i != host:
			e.Attrs = append(e.Attrs, Attr{f.name, string(f.value)})
		}
		if f.name == "PRIORITY" && len(f.value) == 1 && '0' <= f.value[0] && f.value[0] <= '7' {
			e.Attrs = append(e.Attrs, Attr{"level", []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}[f.value[0]-'0']})
		}
	}
	if msg >= 0 {
		e.Name = valid(fields[msg].value)
	}
	if host >= 0 {
		e.Host = valid(fields[host].value)
	}
	if src >= 0 {
		e.Source = valid(fields[src].value)
	}
	return e
}

func journalBench(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "__CURSOR=s=c8ae3bd978b145d18d4d586b68eeb7fa;i=%x;b=a2adddb064464e81ba663e831f80e2c6;m=9cf55ff0;t=6610af9dab613;x=7249aefa16d9067\n", i)
		fmt.Fprintf(&b, "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n", 1795549629691411+i, 2633326576+i)
		b.WriteString("_BOOT_ID=a2adddb064464e81ba663e831f80e2c6\n_TRANSPORT=journal\nPRIORITY=6\nSYSLOG_IDENTIFIER=clockd\n")
		b.WriteString("_PID=16513\n_UID=0\n_GID=0\n_COMM=clockd\n_EXE=/usr/bin/clockd\n_CMDLINE=/usr/bin/clockd run\n")
		b.WriteString("_SYSTEMD_UNIT=clockd.service\n_MACHINE_ID=3d1219c7c4c5404aaa1f6d2a48adfda4\n_HOSTNAME=hv-07\n")
		fmt.Fprintf(&b, "MESSAGE=tick %d committed\n", i)
		if i%10 == 0 {
			b.WriteString(exportField("STACK", []byte("goroutine 1 [running]:\nmain.main()\n")))
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

func BenchmarkJournalExport(b *testing.B) {
	data := journalBench(5000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if n := drain(b, NewJournalExport(bytes.NewReader(data), Options{File: "bench"})); n != 5000 {
			b.Fatalf("%d events", n)
		}
	}
}
