package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clockd/clockd/timeline"
	"github.com/clockd/clockd/timeline/timelinetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// binary is the tracecat built for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "tracecat-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tracecat")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// tracecat runs the binary in dir with args and environment env (added
// to a clean one).
func tracecat(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run tracecat: %v", err)
	}
	return r
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"merge", "--help"}, {"tail", "--help"}, {"export", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := tracecat(t, "", nil, args...)
			if r.code != 0 || !strings.Contains(r.stdout, "USAGE:") || !strings.Contains(r.stdout, "Exit status") {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	dir := "testdata/three-hosts"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"merge"}, "no FILE to merge"},
		{[]string{"merge", "--bogus", "hv1.jsonl"}, "flag provided but not defined"},
		{[]string{"merge", "--output", "xml", "hv1.jsonl"}, `--output "xml"`},
		{[]string{"merge", "--color", "sometimes", "hv1.jsonl"}, `--color "sometimes"`},
		{[]string{"merge", "--format", "csv", "hv1.jsonl"}, "--format"},
		{[]string{"merge", "--offset", "hv1", "hv1.jsonl"}, "want HOST=±DURATION"},
		{[]string{"merge", "--offset", "hv1=soon", "hv1.jsonl"}, "hv1=soon"},
		{[]string{"merge", "--host", "other.jsonl=hv9", "hv1.jsonl"}, "other.jsonl is not one of the files"},
		{[]string{"merge", "-", "-"}, "merge: - and - both read stdin, which can be read once"},
		{[]string{"merge", "-:jsonl", "-"}, "merge: -:jsonl and - both read stdin"},
		{[]string{"merge", "--offset", "hv1=+1ms", "--offset", "hv1=+2s", "hv1.jsonl"},
			"--offset hv1=+1ms and --offset hv1=+2s: host hv1 has two offsets"},
		{[]string{"merge", "--offset", "hv2=-2562047h", "hv1.jsonl"}, `offset "hv2=-2562047h": -2562047h0m0s is beyond ±200 years`},
		{[]string{"merge", "-:bogus"}, "a FILE whose name starts with '-' goes after --, as in merge -- -:bogus"},
		{[]string{"tail"}, "--cluster HOST:PORT is required"},
		{[]string{"tail", "--cluster", "nohost"}, "want HOST:PORT"},
		{[]string{"tail", "--cluster", "h:1", "--from", "x"}, "want a GSN"},
		{[]string{"export", "--cluster", "h:1"}, "--from GSN is required"},
		{[]string{"export", "--cluster", "h:99999", "--from", "1"}, "not 1 to 65535"},
		{[]string{"export", "--cluster", "h:1", "--from", "5", "--to", "3"}, "before --from"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := tracecat(t, dir, nil, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d (want 2), stderr %q (want %q)", r.code, r.stderr, tc.want)
			}
		})
	}
}

func TestMergeGolden(t *testing.T) {
	for _, output := range []string{"text", "jsonl", "chrome"} {
		t.Run(output, func(t *testing.T) {
			r := tracecat(t, "testdata/three-hosts", nil, "merge", "--offsets", "offsets.jsonl", "--output", output,
				"hv1.jsonl", "hv2.jsonl", "hv3.log")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			checkGolden(t, "three-hosts."+output, r.stdout+"--- stderr\n"+r.stderr)
		})
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/tracecat -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update if intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestMergeRecoversTrueOrder writes what three drifting hosts recorded as
// JSON lines, and the offsets clockd would have sampled each second, and
// expects tracecat merge to put every event back in true order; without
// the offsets the order comes out wrong.
func TestMergeRecoversTrueOrder(t *testing.T) {
	seed := time.Now().UnixNano()
	clocks := []timelinetest.DriftClock{
		{Host: "hv1", StartOffsetNs: 120e6, EndOffsetNs: 150e6},
		{Host: "hv2", StartOffsetNs: -80e6, EndOffsetNs: -20e6},
		{Host: "hv3", StartOffsetNs: 5e6, EndOffsetNs: -40e6},
	}
	sc := timelinetest.Drift(seed, clocks, 1700000000e9, 5000, 1e6)
	dir := t.TempDir()
	var files []string
	for _, c := range clocks {
		var b strings.Builder
		for _, e := range sc.PerHost[c.Host] {
			fmt.Fprintf(&b, `{"ts":%d,"host":%q,"msg":%q,"component":"vmm"}`+"\n", e.LocalNs, e.Host, e.Name)
		}
		files = append(files, c.Host+".jsonl")
		writeFile(t, dir, c.Host+".jsonl", b.String())
	}
	var offs bytes.Buffer
	if err := timeline.WriteOffsets(&offs, sc.Samples); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "offsets.jsonl", offs.String())

	order := func(args ...string) []string {
		r := tracecat(t, dir, nil, append(append([]string{"merge", "--output", "jsonl"}, args...), files...)...)
		if r.code != 0 {
			t.Fatalf("seed %d: exit %d: %s", seed, r.code, r.stderr)
		}
		var names []string
		sc := bufio.NewScanner(strings.NewReader(r.stdout))
		for sc.Scan() {
			var e struct{ Msg string }
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("seed %d: %v: %s", seed, err, sc.Text())
			}
			names = append(names, e.Msg)
		}
		return names
	}
	got := order("--offsets", "offsets.jsonl")
	if len(got) != len(sc.Truth) {
		t.Fatalf("seed %d: %d events of %d", seed, len(got), len(sc.Truth))
	}
	for i, name := range got {
		if name != sc.Truth[i].Name {
			t.Fatalf("seed %d: position %d holds %s, the truth has %s", seed, i, name, sc.Truth[i].Name)
		}
	}
	wrong := 0
	for i, name := range order() {
		if name != sc.Truth[i].Name {
			wrong++
		}
	}
	if wrong == 0 {
		t.Fatalf("seed %d: the uncorrected merge is in true order too: the test has no teeth", seed)
	}
	t.Logf("uncorrected: %d of %d events out of place", wrong, len(got))
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMergeBadInputs(t *testing.T) {
	dir := t.TempDir()
	good := `{"ts":"2023-11-14T22:13:20.001Z","msg":"a"}` + "\n"
	writeFile(t, dir, "good.jsonl", good)
	writeFile(t, dir, "bad.jsonl", good+"{\"ts\":\"2023-11-14T22:13:20.002Z\",\"msg\":\n"+good+`{"ts":"2023-11-14T22:13:20.003Z","ms`)
	writeFile(t, dir, "junk.bin", "\x00\x01\x02\x03garbage\xff\xfe")
	writeFile(t, dir, "prose.txt", "Dear diary,\ntoday the clocks disagreed.\n")
	writeFile(t, dir, "strnum.offsets", `{"host":"good","ref_unix_nano":1,"offset_nanos":1}`+"\n"+
		`{"host":"good","ref_unix_nano":"1700000000000000000","offset_nanos":1}`+"\n")
	writeFile(t, dir, "huge.offsets", `{"host":"good","ref_unix_nano":1700000000000000000,"offset_nanos":9223372036854775807}`+"\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"malformed lines are skipped and named", []string{"bad.jsonl", "good.jsonl"}, 0,
			[]string{"bad.jsonl:2: malformed record", "bad.jsonl:4: malformed record", "2 malformed records skipped"}},
		{"strict fails at the first", []string{"--strict", "bad.jsonl"}, 1, []string{"tracecat: merge: bad.jsonl:2: malformed record"}},
		{"binary garbage", []string{"good.jsonl", "junk.bin"}, 1, []string{"junk.bin: ingest: unknown format"}},
		{"unknown text", []string{"prose.txt"}, 1, []string{"prose.txt: ingest: unknown format", "Dear diary"}},
		{"missing file", []string{"good.jsonl", "nothere.jsonl"}, 1, []string{"nothere.jsonl: no such file"}},
		{"every bad file is named", []string{"junk.bin", "nothere.jsonl", "good.jsonl"}, 1,
			[]string{"2 of 3 inputs cannot be read", "junk.bin", "nothere.jsonl"}},
		{"a directory", []string{"."}, 1, []string{".: is a directory"}},
		{"bad offsets file", []string{"--offsets", "good.jsonl", "good.jsonl"}, 1, []string{"--offsets good.jsonl: line 1"}},
		{"offsets field of the wrong type", []string{"--offsets", "strnum.offsets", "good.jsonl"}, 1,
			[]string{`--offsets strnum.offsets: line 2: field "ref_unix_nano": want a whole number of ns, got string`}},
		{"offset beyond 200 years", []string{"--offsets", "huge.offsets", "good.jsonl"}, 1,
			[]string{`--offsets huge.offsets: line 1: host "good": offset_nanos 9223372036854775807 is beyond ±`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tracecat(t, dir, nil, append([]string{"merge"}, tc.args...)...)
			if r.code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, tc.wantCode, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

func TestMergeOutputFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.jsonl", `{"ts":"2023-11-14T22:13:20.001Z","msg":"a"}`+"\n"+"oops\n")
	r := tracecat(t, dir, nil, "merge", "--output", "chrome", "-o", "out.json", "a.jsonl")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	first, err := os.ReadFile(filepath.Join(dir, "out.json"))
	if err != nil || !json.Valid(first) {
		t.Fatalf("out.json: %v\n%s", err, first)
	}
	// A failed run leaves the file as it was.
	r = tracecat(t, dir, nil, "merge", "--strict", "-o", "out.json", "a.jsonl")
	if r.code != 1 {
		t.Fatalf("strict run: exit %d", r.code)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "out.json")); !bytes.Equal(again, first) {
		t.Errorf("a failed run changed out.json")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestMergeFormatsHostsAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.data", `{"ts":"2023-11-14T22:13:20.001Z","msg":"a"}`+"\n")
	writeFile(t, dir, "hv7.trace.jsonl", `{"ts":"2023-11-14T22:13:20.002Z","msg":"b"}`+"\n")
	r := tracecat(t, dir, []string{"TRACECAT_OUTPUT=jsonl", "TRACECAT_OFFSET=hostA=+1ms"},
		"merge", "--host", "a.data=hostA", "a.data:jsonl", "hv7.trace.jsonl")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"ts":"2023-11-14T22:13:20.000000000Z"`) ||
		!strings.Contains(lines[0], `"host":"hostA"`) || !strings.Contains(lines[1], `"host":"hv7"`) {
		t.Errorf("output:\n%s", r.stdout)
	}
	if !strings.Contains(lines[1], `"issue":"no-offsets"`) {
		t.Errorf("hv7 has no offset but is not marked:\n%s", lines[1])
	}
}

func TestMergeStdin(t *testing.T) {
	line := `{"ts":"2023-11-14T22:13:20.001Z","msg":"from stdin"}` + "\n"
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
	}{
		{"-", []string{"merge", "-"}, line},
		{"-:FORMAT alone", []string{"merge", "-:jsonl"}, line},
		{"-:FORMAT after flags", []string{"merge", "--max-reported", "3", "--format", "syslog", "--strict", "-:jsonl"}, line},
		{"-:FORMAT after --", []string{"merge", "--", "-:jsonl"}, line},
		{"a byte-order mark", []string{"merge", "-:jsonl"}, "\ufeff" + line},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, tc.args...)
			cmd.Env = append(os.Environ(), "TRACECAT_OUTPUT=jsonl")
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || !strings.Contains(string(out), `"host":"stdin","source":"stdin","seq":1,"kind":"log","msg":"from stdin"`) ||
				!strings.Contains(stderr.String(), "1 events, 0 late, 0 inconsistent, 0 malformed") {
				t.Errorf("err %v, output %s, stderr %s", err, out, stderr.String())
			}
		})
	}
}

// TestMergeEdgeInputs checks inputs that are valid however odd: traces
// that start at time 0, and files that start with a byte-order mark.
func TestMergeEdgeInputs(t *testing.T) {
	dir := t.TempDir()
	bom := "\ufeff"
	writeFile(t, dir, "ts0.json", `{"traceEvents":[{"name":"a","ph":"X","ts":0,"dur":1,"pid":1,"tid":1},`+
		`{"name":"b","ph":"i","ts":5,"pid":1,"tid":1,"s":"t"}]}`)
	writeFile(t, dir, "epoch.jsonl", `{"time":"1970-01-01T00:00:00Z","msg":"epoch","host":"h"}`+"\n")
	writeFile(t, dir, "hv2.jsonl", bom+`{"time":1700000000006200000,"msg":"a"}`+"\n"+`{"time":1700000000007000000,"msg":"b"}`+"\n")
	writeFile(t, dir, "bom.json", bom+`{"traceEvents":[{"name":"a","ph":"i","ts":1,"pid":1,"tid":1,"s":"t"}]}`)
	writeFile(t, dir, "bom.log", bom+"<13>1 2026-11-24T19:47:45.094054+00:00 vm app - - - hello\n")
	writeFile(t, dir, "bom.offsets", bom+`{"host":"hv2","ref_unix_nano":1700000000000000000,"offset_nanos":1000000,"err_nanos":1}`+"\n")
	gotrace, err := filepath.Abs("../../ingest/testdata/chrome/gotrace.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"a Chrome trace from ts 0", []string{"--strict", "ts0.json"}, "2 events, 0 late, 0 inconsistent"},
		{"go tool trace's sample", []string{"--strict", gotrace}, "83 events, 26 late, 0 inconsistent"},
		{"the Unix epoch", []string{"--strict", "epoch.jsonl"}, "1 events, 0 late, 0 inconsistent"},
		{"JSON lines with a BOM", []string{"hv2.jsonl"}, "2 events, 0 late, 0 inconsistent, 0 malformed"},
		{"JSON lines with a BOM, format given", []string{"hv2.jsonl:jsonl"}, "2 events, 0 late, 0 inconsistent, 0 malformed"},
		{"Chrome with a BOM", []string{"bom.json"}, "1 events, 0 late, 0 inconsistent, 0 malformed"},
		{"syslog with a BOM", []string{"bom.log"}, "1 events, 0 late, 0 inconsistent, 0 malformed"},
		{"offsets with a BOM", []string{"--strict", "--offsets", "bom.offsets", "hv2.jsonl"}, "2 events, 0 late, 0 inconsistent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tracecat(t, dir, nil, append([]string{"merge"}, tc.args...)...)
			if r.code != 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant %q", r.code, r.stderr, tc.want)
			}
		})
	}
}
