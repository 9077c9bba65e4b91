package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/clockd/clockd/timeline"
	"github.com/clockd/clockd/timeline/timelinetest"
)

func TestMergeWarnsOfUnmatchedOffsets(t *testing.T) {
	dir := "testdata/three-hosts"
	files := []string{dir + "/hv1.jsonl", dir + "/hv2.jsonl"}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // in stderr
		not      []string // not in stderr
	}{
		{"a typo", []string{"--offsets", dir + "/offsets.jsonl", "--offset", "hv-2=+1ms"}, 0,
			[]string{"  warning: --offset hv-2=+1ms matched no event: no event has host hv-2 (hosts seen: hv1, hv2)\n"}, nil},
		{"every unmatched one", []string{"--offset", "hv1=0s", "--offset", "hv9=1ms", "--offset", "hv8=2ms"}, 0,
			[]string{"warning: --offset hv9=1ms matched no event", "warning: --offset hv8=2ms matched no event"},
			[]string{"--offset hv1=0s matched"}},
		{"strict fails", []string{"--strict", "--offsets", dir + "/offsets.jsonl", "--offset", "hv-2=+1ms"}, 1,
			[]string{"tracecat: merge: --offset hv-2=+1ms matched no event: no event has host hv-2 (hosts seen: hv1, hv2)\n"},
			[]string{"warning"}},
		{"the offsets file's hosts are not checked", []string{"--strict", "--offsets", dir + "/offsets.jsonl"}, 0,
			nil, []string{"warning", "hv3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(append([]string{"tracecat", "merge", "--output", "jsonl"}, tc.args...), files...)
			code := run(context.Background(), args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			for _, w := range tc.not {
				if strings.Contains(stderr.String(), w) {
					t.Errorf("stderr has %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

func TestHostList(t *testing.T) {
	seen := map[string]bool{}
	for _, h := range []string{"hv03", "hv01", "hv02", "hv04", "hv05", "hv06", "hv07", "hv08", "hv09", "hv10", "hv11", "hv12"} {
		seen[h] = true
	}
	if got, want := hostList(seen), "hv01, hv02, hv03, hv04, hv05, hv06, hv07, hv08, hv09, hv10 and 2 more"; got != want {
		t.Errorf("hostList = %q, want %q", got, want)
	}
	if got := hostList(map[string]bool{"a b": true, "\x1b[31m": true, "": true}); got != `"", "\x1b[31m", "a b"` {
		t.Errorf("hostList of odd names = %q", got)
	}
	if got := hostList(nil); got != "none" {
		t.Errorf("hostList(nil) = %q", got)
	}
}

// TestWriteErrorsNameTheOutput writes to a full device: every output
// format says that writing the output failed, once.
func TestWriteErrorsNameTheOutput(t *testing.T) {
	for _, output := range []string{"text", "jsonl", "chrome"} {
		t.Run(output, func(t *testing.T) {
			full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
			if err != nil {
				t.Skipf("no /dev/full: %v", err)
			}
			defer full.Close()
			var stderr bytes.Buffer
			code := run(context.Background(), []string{"tracecat", "merge", "--output", output,
				"testdata/three-hosts/hv1.jsonl"}, full, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), "tracecat: merge: write the output: ") ||
				strings.Count(stderr.String(), "write the output") != 1 {
				t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
			}
		})
	}
}

// cancelingSource cancels the tail when it subscribes, before any event.
type cancelingSource struct{ cancel context.CancelFunc }

func (s cancelingSource) Read(context.Context, uint64, int) ([]timeline.LogEvent, uint64, error) {
	return nil, 0, errors.New("not used")
}

func (s cancelingSource) Subscribe(ctx context.Context, _ uint64) (<-chan timeline.LogEvent, <-chan error) {
	s.cancel()
	return make(chan timeline.LogEvent), make(chan error)
}

func TestTailInterruptedBeforeAnyEventSaysWhereToResume(t *testing.T) {
	for _, tc := range []struct {
		from string
		want string
	}{
		{"5", "resume with --from 5\n"},
		{"", ""}, // the next event committed: nothing to resume from
	} {
		t.Run("from "+tc.from, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			withSource(t, cancelingSource{cancel})
			args := []string{"tracecat", "tail", "--cluster", "h:1"}
			if tc.from != "" {
				args = append(args, "--from", tc.from)
			}
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if got := stderr.String(); strings.Contains(got, "resume with") != (tc.want != "") || !strings.HasSuffix(got, tc.want) {
				t.Errorf("stderr:\n%s\nwant it to end with %q", got, tc.want)
			}
		})
	}
}

func TestTailSaysOnceThatItRetries(t *testing.T) {
	withSource(t, timelinetest.FailingSource{Err: errors.New("connection refused")})
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"tracecat", "tail", "--cluster", "h:1", "--retries", "2"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	notice := "tracecat: tail: event log stream from the start: connection refused; retrying, up to twice in a row (--retries)\n"
	final := "tracecat: tail: event log stream from the start: connection refused (gave up after 2 retries in a row)\n"
	got := stderr.String()
	if strings.Count(got, "retrying") != 1 || !strings.HasPrefix(got, notice) || !strings.HasSuffix(got, final) {
		t.Errorf("stderr:\n%s\nwant first\n%sand last\n%s", got, notice, final)
	}
}
