package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/timeline"
	"github.com/clockd/clockd/timeline/timelinetest"
)

// withSource makes newEventSource return src for the test.
func withSource(t *testing.T, src timeline.EventSource) *[]string {
	t.Helper()
	var addrs []string
	old := newEventSource
	newEventSource = func(addr string, _ tlsFlags) (timeline.EventSource, error) {
		addrs = append(addrs, addr)
		return src, nil
	}
	t.Cleanup(func() { newEventSource = old })
	return &addrs
}

// clusterLog is a log of n events of hosts hv1 and hv2, stamped by the
// cluster.
func clusterLog(n int) *timelinetest.Log {
	l := &timelinetest.Log{}
	for i := 1; i <= n; i++ {
		ref := int64(1700000000e9) + int64(i)*1e6
		l.Append(ingest.Event{Host: fmt.Sprint("hv", 1+i%2), Source: "vmm", SourceSeq: uint64(i), LocalNs: ref + 250,
			RefEarliest: ref - 50, RefLatest: ref + 50, Kind: ingest.KindLog, Name: fmt.Sprint("event ", i)})
	}
	return l
}

// jsonlGSNs reads the gsn of each line.
func jsonlGSNs(t *testing.T, out string) string {
	t.Helper()
	var gsns []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct{ GSN uint64 }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		gsns = append(gsns, fmt.Sprint(e.GSN))
	}
	return strings.Join(gsns, ",")
}

func TestExportWritesTheRange(t *testing.T) {
	addrs := withSource(t, clusterLog(20))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"tracecat", "export", "--cluster", "hv1:7401", "--insecure", "--from", "5", "--to", "12",
		"--batch", "3", "--output", "jsonl"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := jsonlGSNs(t, stdout.String()); got != "5,6,7,8,9,10,11,12" {
		t.Errorf("GSNs %s", got)
	}
	if len(*addrs) != 1 || (*addrs)[0] != "hv1:7401" {
		t.Errorf("connected to %v", *addrs)
	}
	if !strings.Contains(stderr.String(), "8 events (GSN 5 to 12)") {
		t.Errorf("summary:\n%s", stderr.String())
	}
}

func TestExportGolden(t *testing.T) {
	for _, output := range []string{"text", "chrome"} {
		t.Run(output, func(t *testing.T) {
			withSource(t, clusterLog(4))
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"tracecat", "export", "--cluster", "h:1", "--from", "1", "--output", output}, &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			checkGolden(t, "export."+output, stdout.String())
		})
	}
}

func TestExportPastTheEndFails(t *testing.T) {
	withSource(t, clusterLog(5))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"tracecat", "export", "--cluster", "h:1", "--from", "4", "--to", "9", "--output", "jsonl"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "the log has up to 5") {
		t.Errorf("exit %d, stderr %s", code, stderr.String())
	}
	if got := jsonlGSNs(t, stdout.String()); got != "4,5" {
		t.Errorf("GSNs written before the failure: %s", got)
	}
}

func TestExportUnreachableCluster(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"tracecat", "export", "--cluster", "127.0.0.1:1", "--insecure", "--from", "1"},
		&stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "127.0.0.1:1") {
		t.Errorf("exit %d, stderr %s", code, stderr.String())
	}
}

// lineCounter is a stdout that calls full once it has seen n lines.
type lineCounter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	n     int
	full  func()
	fired bool
}

func (w *lineCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.fired && bytes.Count(w.buf.Bytes(), []byte("\n")) >= w.n {
		w.fired = true
		w.full()
	}
	return len(p), nil
}

func TestTailResumesFromTheLastGSN(t *testing.T) {
	l := clusterLog(12)
	l.FailAfter = 4 // every stream breaks after 4 events
	l.Replay = 1    // and a resumed one resends the last event
	withSource(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lineCounter{n: 10, full: cancel}
	var stderr bytes.Buffer
	code := run(ctx, []string{"tracecat", "tail", "--cluster", "h:1", "--from", "3", "--output", "jsonl"}, stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := jsonlGSNs(t, stdout.buf.String()); got != "3,4,5,6,7,8,9,10,11,12" {
		t.Errorf("GSNs %s: each once, in order", got)
	}
	if l.Subscriptions < 3 {
		t.Errorf("%d subscriptions", l.Subscriptions)
	}
	if !strings.Contains(stderr.String(), "resume with --from 13") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}
