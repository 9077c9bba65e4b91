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

// TestDetectSamples runs Detect over every sample of the parsers' golden
// tests and over testdata/detect, which holds inputs Detect must refuse:
// compressed, binary, and text or JSON of other formats (written by hand,
// or made with gzip and /dev/urandom), plus a journal export that does not
// start with __CURSOR.
func TestDetectSamples(t *testing.T) {
	for _, tc := range []struct {
		glob string
		want Format
	}{
		{"testdata/ftrace/*.txt", FormatFtrace},
		{"testdata/otlp/*.json*", FormatOTLP},
		{"testdata/chrome/*.json", FormatChrome},
		{"testdata/jsonl/*.json*", FormatJSONLines},
		{"testdata/journald/*.export", FormatJournal},
		{"testdata/detect/*.export", FormatJournal},
		{"testdata/syslog/*.log", FormatSyslog},
	} {
		files, _ := filepath.Glob(tc.glob)
		n := 0
		for _, path := range files {
			if strings.HasSuffix(path, ".golden") {
				continue
			}
			n++
			head := detectHead(t, path)
			if got, err := Detect(head); got != tc.want || err != nil {
				t.Errorf("%s: Detect = %q, %v; want %q", path, got, err, tc.want)
			}
		}
		if n == 0 {
			t.Errorf("%s: no samples", tc.glob)
		}
	}
	for file, want := range map[string]string{
		"bsd-syslog.log":        `RFC 3164 (BSD) syslog, but only RFC 5424 syslog is read; first line "Nov 24 19:47:45 vm app[123]: hello from rsyslog"`,
		"otlp-logs.json":        "OTLP logs, but only OTLP traces are read",
		"trace-function.txt.gz": "gzip-compressed data: decompress it first",
		"random.bin":            "binary data (a NUL byte at offset",
		"image.png":             "binary data (a NUL byte at offset 8)",
		"package.json":          "a JSON document that is neither an OTLP request nor a Chrome trace, and not JSON lines",
		"comments.txt":          "only blank and comment lines",
		"trace.dat":             "a trace-cmd trace.dat: convert it with trace-cmd report",
		"notes.txt":             `text that is not ftrace, RFC 5424 syslog or a journal export; first line "hello world"`,
	} {
		got, err := Detect(detectHead(t, filepath.Join("testdata/detect", file)))
		if got != "" || !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Detect = %q, %v; want ErrUnknownFormat saying %q", file, got, err, want)
		}
	}
}

func detectHead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data[:min(len(data), DetectBytes)]
}

func TestDetect(t *testing.T) {
	long := `{"msg":"` + strings.Repeat("x", DetectBytes) + `"}`
	for _, tc := range []struct {
		name, in string
		want     Format
		err      string
	}{
		{"ftrace by its header alone", "# tracer: nop\n#\n", FormatFtrace, ""},
		{"trace_pipe", "\n  <idle>-0 [001] d..2. 1.0: sched_switch: x\n", FormatFtrace, ""},
		{"trace-cmd's cpus line", "cpus=8\n", FormatFtrace, ""},
		{"trace-cmd's empty CPU", "CPU 3 is empty\n", FormatFtrace, ""},
		{"syslog", "<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - 'su root' failed\n", FormatSyslog, ""},
		{"octet-counted syslog", "37 <13>1 - - - - - - octet framed\n", FormatSyslog, ""},
		{"journal with a binary field first", "MESSAGE\n\x05\x00\x00\x00\x00\x00\x00\x00a\x00b\xffc\n__REALTIME_TIMESTAMP=1\n", FormatJournal, ""},
		{"jsonl", `{"level":"info","msg":"hi"}` + "\n", FormatJSONLines, ""},
		{"jsonl whose first line outgrows the head", long[:DetectBytes], FormatJSONLines, ""},
		{"jsonl of chrome events is jsonl", `{"ph":"X","ts":1}` + "\n", FormatJSONLines, ""},
		{"BOM then OTLP, pretty", "\xef\xbb\xbf{\n  \"resourceSpans\": [\n", FormatOTLP, ""},
		{"an array of OTLP requests", `[{"resourceSpans":[]}]`, FormatOTLP, ""},
		{"chrome array", `[ {"name":"a","cat":"b","ph":"X"`, FormatChrome, ""},
		{"empty chrome array", "[", FormatChrome, ""},
		{"chrome object, events later", `{"displayTimeUnit":"ns","otherData":{}}`, FormatChrome, ""},
		{"chrome object", `{"otherData":{"a":1},"traceEvents":[`, FormatChrome, ""},
		{"empty", " \n\t", "", "empty input"},
		{"zstd", "\x28\xb5\x2f\xfd\x00", "", "zstd-compressed data"},
		{"trace.dat", "\x17\x08\x44tracing6\x00", "", "a trace-cmd trace.dat: convert it with trace-cmd report"},
		{"Go execution trace", "go 1.26 trace\x00\x00\x00", "", "a Go execution trace"},
		{"journal file", "LPKSHHRH\x00\x00", "", "a binary systemd journal file"},
		{"not UTF-8", "abc\xff\xfe def", "", "binary data (2 of 9 bytes are control bytes or not UTF-8, the first at offset 3)"},
		{"control bytes", "a\x01b\x02c\x03", "", "binary data (3 of 6 bytes are control bytes or not UTF-8, the first at offset 1)"},
		{"JSON array of numbers", "[1,2]", "", "a JSON array of something other than trace events"},
		{"JSON array of other objects", `[{"a":1}]`, "", `a JSON array of objects without "ph"`},
		{"OTLP metrics", `{"resourceMetrics":[]}`, "", "OTLP metrics, but only OTLP traces are read"},
		{"a JSON string", `"x"`, "", "text that is not ftrace"},
		{"BSD syslog with PRI", "<13>Nov 24 19:47:45 vm app: x\n", "", "RFC 3164 (BSD) syslog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Detect([]byte(tc.in))
			switch {
			case tc.err == "" && (got != tc.want || err != nil):
				t.Errorf("Detect = %q, %v; want %q", got, err, tc.want)
			case tc.err != "" && (got != "" || !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Detect = %q, %v; want ErrUnknownFormat saying %q", got, err, tc.err)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{
		"": FormatAuto, "Auto": FormatAuto, "jsonl": FormatJSONLines, "ndjson": FormatJSONLines,
		"journal": FormatJournal, "journald": FormatJournal, "syslog": FormatSyslog, " FTRACE ": FormatFtrace,
		"trace-cmd": FormatFtrace, "otlp": FormatOTLP, "chrome": FormatChrome,
	} {
		if got, err := ParseFormat(in); got != want || err != nil {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseFormat("perfetto")
	if !errors.Is(err, ErrUnknownFormat) || err.Error() != `ingest: unknown format "perfetto": want auto, jsonl, journal, syslog, ftrace, otlp or chrome` {
		t.Errorf("ParseFormat(perfetto): %v", err)
	}
}

// TestOpen checks that Open detects each sample's format, hands the whole
// input (the sniffed head included) to the right parser, and names the
// file when it cannot place the input.
func TestOpen(t *testing.T) {
	for path, want := range map[string]string{
		"testdata/ftrace/trace-cmd-3.1.6.txt":    "*ingest.ftraceParser",
		"testdata/otlp/fileexporter.jsonl":       "*ingest.otlpParser",
		"testdata/chrome/gotrace.json":           "*ingest.chromeParser",
		"testdata/jsonl/journalctl.json":         "*ingest.jsonLines",
		"testdata/jsonl/zap.jsonl":               "*ingest.jsonLines",
		"testdata/journald/namespace.export":     "*ingest.journalExport",
		"testdata/syslog/logger.log":             "*ingest.syslogParser",
		"testdata/detect/journal-minimal.export": "*ingest.journalExport",
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var skipped []string
		opts := Options{File: path, OnError: func(le *LineError) { skipped = append(skipped, le.Error()) }}
		p, err := Open(bytes.NewReader(data), opts, FormatAuto)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if got := fmt.Sprintf("%T", p); got != want {
			t.Errorf("%s: Open gave %s, want %s", path, got, want)
		}
		evs, err := ReadAll(p)
		if err != nil || len(evs) == 0 || len(skipped) > 0 {
			t.Errorf("%s: %d events, %v, skipped %q", path, len(evs), err, skipped)
		}
		// The same parser, built directly, reads the same events; but a
		// given jsonl format gets DefaultJSONMapping, which journald's
		// JSON does not fit.
		if strings.HasSuffix(path, "journalctl.json") {
			continue
		}
		f := map[string]Format{"*ingest.ftraceParser": FormatFtrace, "*ingest.otlpParser": FormatOTLP,
			"*ingest.chromeParser": FormatChrome, "*ingest.jsonLines": FormatJSONLines,
			"*ingest.journalExport": FormatJournal, "*ingest.syslogParser": FormatSyslog}[want]
		direct, err := Open(bytes.NewReader(data), opts, f)
		if err != nil {
			t.Fatal(err)
		}
		if devs, _ := ReadAll(direct); fmt.Sprint(devs) != fmt.Sprint(evs) {
			t.Errorf("%s: the events differ when the format is given", path)
		}
	}

	_, err := Open(strings.NewReader("\x1f\x8b\x08\x00"), Options{File: "/var/log/trace.gz"}, "")
	if !errors.Is(err, ErrUnknownFormat) || err.Error() != "/var/log/trace.gz: ingest: unknown format: gzip-compressed data: decompress it first" {
		t.Errorf("Open(gzip) = %v", err)
	}
	_, err = Open(strings.NewReader("x"), Options{}, "pcap")
	if !errors.Is(err, ErrUnknownFormat) || err.Error() != `input: ingest: unknown format "pcap"` {
		t.Errorf("Open(format pcap) = %v", err)
	}
	boom := errors.New("disk on fire")
	_, err = Open(io.MultiReader(strings.NewReader("# tracer: nop\n"), errReader{boom}), Options{File: "t"}, FormatAuto)
	if !errors.Is(err, boom) || err.Error() != "read t: disk on fire" {
		t.Errorf("Open(failing reader) = %v", err)
	}
}

// TestOpenSkipsBOM checks that a UTF-8 byte-order mark before an input
// changes nothing, whether the format is detected or given and however
// the input arrives; a second one is the input's.
func TestOpenSkipsBOM(t *testing.T) {
	for path, format := range map[string]Format{
		"testdata/ftrace/trace-cmd-3.1.6.txt":    FormatFtrace,
		"testdata/otlp/fileexporter.jsonl":       FormatOTLP,
		"testdata/chrome/gotrace.json":           FormatChrome,
		"testdata/jsonl/zap.jsonl":               FormatJSONLines,
		"testdata/journald/namespace.export":     FormatJournal,
		"testdata/syslog/logger.log":             FormatSyslog,
		"testdata/detect/journal-minimal.export": FormatJournal,
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		read := func(in []byte, f Format, oneByte bool) string {
			var r io.Reader = bytes.NewReader(in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			var skipped []string
			p, err := Open(r, Options{File: "f", OnError: func(le *LineError) { skipped = append(skipped, le.Error()) }}, f)
			if err != nil {
				return err.Error()
			}
			evs, err := ReadAll(p)
			return fmt.Sprint(evs, err, skipped)
		}
		want := read(data, FormatAuto, false)
		withBOM := append([]byte(utf8BOM), data...)
		for _, f := range []Format{FormatAuto, format} {
			for _, oneByte := range []bool{false, true} {
				if got := read(withBOM, f, oneByte); got != want {
					t.Errorf("%s with a BOM, format %s, one byte at a time %v: the events differ", path, f, oneByte)
				}
			}
		}
	}
	for _, tc := range []struct {
		name, in string
		want     string
	}{
		{"only a BOM", utf8BOM, "[] <nil>"},
		{"part of a BOM", "\xef\xbb", "[] f:1: malformed record: invalid JSON: unexpected 'ï' at byte 1 where a value belongs"},
		{"shorter than a BOM", "{}", `[] f:1: malformed record: no time field "ts" or "time" or "timestamp" or "@timestamp"`},
		{"a BOM and a record", utf8BOM + `{"ts":1}`, "[{f 1  1000000000 false 0 0 log  0 []}] <nil>"},
		{"two BOMs", utf8BOM + utf8BOM + `{"ts":1}`, "[] f:1: malformed record: invalid JSON: unexpected 'ï' at byte 1 where a value belongs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Open(strings.NewReader(tc.in), Options{File: "f", Strict: true}, FormatJSONLines)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := ReadAll(p)
			if got := fmt.Sprint(evs, " ", err); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// FuzzDetect checks Detect never panics, and that whatever it places,
// Open reads to the end without panicking, within bounded events, failing
// only with a *LineError.
func FuzzDetect(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*")
	for _, path := range files {
		if st, err := os.Stat(path); err != nil || st.IsDir() || strings.HasSuffix(path, ".golden") {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[:min(len(data), 2048)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		format, err := Detect(data)
		if err != nil {
			if !errors.Is(err, ErrUnknownFormat) || format != "" {
				t.Fatalf("Detect = %q, %v", format, err)
			}
			return
		}
		p, err := Open(bytes.NewReader(data), Options{File: "fuzz"}, FormatAuto)
		if err != nil {
			t.Fatalf("Detect placed the input as %s, Open failed: %v", format, err)
		}
		for range 2*len(data) + 8 {
			_, err := p.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var le *LineError
			if err != nil && !errors.As(err, &le) {
				t.Fatalf("%s: Next = %v", format, err)
			}
			if err != nil {
				return
			}
		}
		t.Fatalf("%s: more than %d events from %d bytes", format, 2*len(data)+8, len(data))
	})
}
