package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clockd/clockd/ingest"
)

func TestParseFileArg(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd:jsonl")
	if err := os.WriteFile(odd, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		arg        string
		wantPath   string
		wantFormat ingest.Format
	}{
		{"a.log", "a.log", ingest.FormatAuto},
		{"a.log:syslog", "a.log", ingest.FormatSyslog},
		{"a.log:JSONL", "a.log", ingest.FormatJSONLines},
		{"dir/a:b.log", "dir/a:b.log", ingest.FormatAuto},
		{"a.log:", "a.log:", ingest.FormatAuto},
		{odd, odd, ingest.FormatAuto},
	}
	for _, tc := range tests {
		t.Run(tc.arg, func(t *testing.T) {
			f := parseFileArg(tc.arg, ingest.FormatAuto)
			if f.path != tc.wantPath || f.format != tc.wantFormat {
				t.Errorf("parseFileArg(%q) = %q %q, want %q %q", tc.arg, f.path, f.format, tc.wantPath, tc.wantFormat)
			}
		})
	}
}

func TestStdinFormatArgs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tracecat merge -:jsonl", "tracecat merge -- -:jsonl"},
		{"tracecat merge --strict -o out -:chrome a.json", "tracecat merge --strict -o out -- -:chrome a.json"},
		{"tracecat merge --strict=true --format=syslog -:JSONL", "tracecat merge --strict=true --format=syslog -- -:JSONL"},
		{"tracecat --help merge -:jsonl", "tracecat --help merge -- -:jsonl"},
		// The value of a flag, not a FILE.
		{"tracecat merge -o -:jsonl a.jsonl", "tracecat merge -o -:jsonl a.jsonl"},
		// The FILEs have started, or -- is there: the parser keeps them.
		{"tracecat merge a.jsonl -:jsonl", "tracecat merge a.jsonl -:jsonl"},
		{"tracecat merge - -:jsonl", "tracecat merge - -:jsonl"},
		{"tracecat merge -- -:jsonl", "tracecat merge -- -:jsonl"},
		// Not a format, or not merge.
		{"tracecat merge -:csv", "tracecat merge -:csv"},
		{"tracecat merge -:", "tracecat merge -:"},
		{"tracecat tail -:jsonl", "tracecat tail -:jsonl"},
		{"tracecat", "tracecat"},
	} {
		if got := strings.Join(stdinFormatArgs(strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestFlagLike(t *testing.T) {
	for name, want := range map[string]bool{"bogus": true, "-max-reported": true, "o": true, ":jsonl": false, "foo.jsonl": false, "": false, "-": false} {
		if got := flagLike(name); got != want {
			t.Errorf("flagLike(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestHostFromFileName(t *testing.T) {
	for in, want := range map[string]string{
		"hv1.jsonl":                 "hv1",
		"/var/log/hv1.trace.json":   "hv1",
		"hv1.example.com.log":       "hv1.example.com",
		"hv1.example.com":           "hv1.example.com",
		"trace.jsonl":               "trace",
		".jsonl":                    ".jsonl",
		"-":                         "stdin",
		"node-3.journal.export.txt": "node-3",
	} {
		if got := hostFromFileName(in); got != want {
			t.Errorf("hostFromFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAssignHosts(t *testing.T) {
	files := []mergeFile{{path: "logs/a.jsonl"}, {path: "logs/b.jsonl"}, {path: "c.jsonl"}}
	if err := assignHosts(files, []string{"logs/a.jsonl=hv1", "b.jsonl=hv2"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.host)
	}
	if strings.Join(got, ",") != "hv1,hv2,c" {
		t.Errorf("hosts %v", got)
	}
	for _, bad := range []string{"a.jsonl", "=hv1", "a.jsonl=", "zzz.jsonl=hv1"} {
		if err := assignHosts([]mergeFile{{path: "a.jsonl"}}, []string{bad}); err == nil {
			t.Errorf("--host %q accepted", bad)
		}
	}
}

func TestShowProgress(t *testing.T) {
	big := int64(progressMinBytes)
	tests := []struct {
		name                        string
		disabled, stderrTTY, outTTY bool
		total                       int64
		want                        bool
	}{
		{"large input, stderr a terminal", false, true, false, big, true},
		{"stderr not a terminal", false, false, false, big, false},
		{"events to the same terminal", false, true, true, big, false},
		{"small input", false, true, false, big - 1, false},
		{"--no-progress", true, true, false, big, false},
	}
	for _, tc := range tests {
		if got := showProgress(tc.disabled, tc.stderrTTY, tc.outTTY, tc.total); got != tc.want {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}

func TestProgressLine(t *testing.T) {
	got := progressLine(512<<20, 1<<30, 2*time.Second)
	for _, want := range []string{"[===============>              ]", " 50%", "512.0 MiB / 1.0 GiB", "256.0 MiB/s", "ETA 2s"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if done := progressLine(10, 10, time.Second); strings.Contains(done, "ETA") || !strings.Contains(done, "100%") {
		t.Errorf("finished bar %q", done)
	}
	if sizeText(1023) != "1023 B" || sizeText(1536) != "1.5 KiB" {
		t.Errorf("sizeText: %s %s", sizeText(1023), sizeText(1536))
	}
}
