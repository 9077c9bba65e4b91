package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/internal/proccluster"
	"github.com/clockd/clockd/timeline"
)

// TestExportFromRealCluster appends events to a real 3-node cluster and
// exports them with tracecat from another node: every event, in GSN order.
func TestExportFromRealCluster(t *testing.T) {
	dir := t.TempDir()
	bin, err := proccluster.Build("../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := proccluster.Start(proccluster.Config{Binary: bin, Dir: dir, Nodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.WaitSynchronized(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := cl.Dial(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := clockdv1.NewOrderingServiceClient(c.Conn()).Append(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &clockdv1.AppendRequest{}
	for i := range 20 {
		req.Events = append(req.Events, &clockdv1.Event{Host: "hv1", Source: "app", SourceSeq: uint64(i + 1),
			LocalUnixNano: time.Now().UnixNano(), Kind: "log", Name: fmt.Sprintf("event-%02d", i)})
	}
	if err := st.Send(req); err != nil {
		t.Fatal(err)
	}
	if resp, err := st.CloseAndRecv(); err != nil || resp.Accepted != 20 {
		t.Fatalf("append: %v %v", resp, err)
	}
	for {
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"tracecat", "export", "--cluster", cl.Node(3).APIAddr, "--insecure",
			"--from", "1", "--to", "20", "--output", "jsonl"}, &stdout, &stderr)
		if code == 0 {
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if len(lines) != 20 || !strings.Contains(lines[0], "event-00") || !strings.Contains(lines[19], "event-19") {
				t.Fatalf("exported %d lines:\n%s", len(lines), stdout.String())
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("export: exit %d: %s", code, stderr.String())
		}
		time.Sleep(100 * time.Millisecond) // node 3 is still applying the batch
	}
}

// TestFromProtoUntimed checks that an event read from the cluster with
// local time 0, the time an event without one was sent with, is Untimed,
// and that the cluster's stamps still time it.
func TestFromProtoUntimed(t *testing.T) {
	for _, tc := range []struct {
		name         string
		localNs      int64
		refLo, refHi int64
		untimed      bool
		wantNs       int64
	}{
		{"local time set", 5, 0, 0, false, 5},
		{"local time 0", 0, 0, 0, true, 0},
		{"local time 0, stamped", 0, 100, 200, true, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			le := fromProto(&clockdv1.LogEvent{Gsn: 1, Event: &clockdv1.Event{Host: "hv1", Source: "s", SourceSeq: 1,
				LocalUnixNano: tc.localNs, RefEarliestUnixNano: tc.refLo, RefLatestUnixNano: tc.refHi, Kind: "log"}})
			if le.Event.Untimed != tc.untimed {
				t.Errorf("Untimed %v, want %v", le.Event.Untimed, tc.untimed)
			}
			if got := timeline.FromLog(le).TimeNs; got != tc.wantNs {
				t.Errorf("placed at %d, want %d", got, tc.wantNs)
			}
		})
	}
}
