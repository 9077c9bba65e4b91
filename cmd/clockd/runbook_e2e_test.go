package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/internal/proccluster"
)

// TestRunbookProcesses runs run-books on three real clockd processes.
// Steps append to files, so what ran, where and in which order is read
// back from the disk, not from clockd:
//
//   - a book of steps, a barrier and dependencies runs in the order its
//     dependencies and each host's committed order require, every step
//     sees its committed fencing token, and every host reports the same
//     history;
//   - a host killed mid-step ends a step that is not idempotent as
//     unknown and skips what depends on it, and re-runs an idempotent one;
//     the killed clockd's step process dies with it;
//   - a step that outlives its timeout is killed, retried, then failed.
func TestRunbookProcesses(t *testing.T) {
	dir := t.TempDir()
	_, cl, ctx := startSynchronized(t, 4*time.Minute, proccluster.Config{Dir: dir, Nodes: 3})
	client := func(id uint64) clockdv1.RunbookServiceClient {
		conn, err := grpc.NewClient(cl.Node(id).APIAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return clockdv1.NewRunbookServiceClient(conn)
	}
	rb := []clockdv1.RunbookServiceClient{nil, client(1), client(2), client(3)}
	wait := func(id uint64, book string) *clockdv1.RunbookStatus {
		t.Helper()
		st, err := rb[id].Wait(ctx, &clockdv1.WaitRunbookRequest{Id: book, TimeoutNanos: int64(3 * time.Minute)})
		if err != nil {
			t.Fatalf("wait for %s on node %d: %v", book, id, err)
		}
		return st
	}
	sh := func(script string) []string { return []string{"/bin/sh", "-c", script} }

	t.Run("order", func(t *testing.T) {
		log := filepath.Join(dir, "order.log")
		echo := sh(`echo "$CLOCKD_NODE_ID $CLOCKD_STEP $CLOCKD_FENCING_TOKEN" >> ` + log)
		book := &clockdv1.Book{Id: "order", Steps: []*clockdv1.BookStep{
			{Id: "s1", Argv: echo}, // every voting member
			{Id: "gate", DependsOn: []string{"s1"}},
			{Id: "s2", Hosts: []uint64{2}, Argv: echo, DependsOn: []string{"gate"}},
			{Id: "s3", Hosts: []uint64{1, 3}, Argv: echo, DependsOn: []string{"s2"}},
			{Id: "s4", Hosts: []uint64{1}, Argv: echo}, // no dependency: host 1's order alone puts it after s3
		}}
		if _, err := rb[3].Submit(ctx, book); err != nil {
			t.Fatal(err)
		}
		st := wait(1, "order")
		if st.State != clockdv1.RunbookState_RUNBOOK_STATE_SUCCEEDED {
			t.Fatalf("book ended %v: %v", st.State, st)
		}
		committed := map[string]uint64{} // "host step" → token
		for i, step := range st.Book.Steps {
			for _, r := range st.Steps[i].Runs {
				committed[fmt.Sprintf("%d %s", r.Host, step.Id)] = r.Token
			}
		}
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 7 { // s1 ×3, s2, s3 ×2, s4; the barrier runs nothing
			t.Fatalf("%d steps ran, want 7:\n%s", len(lines), data)
		}
		pos := map[string]int{}
		for i, l := range lines {
			f := strings.Fields(l)
			key := f[0] + " " + f[1]
			if _, dup := pos[key]; dup {
				t.Fatalf("%q ran twice:\n%s", key, data)
			}
			pos[key] = i
			if tok, _ := strconv.ParseUint(f[2], 10, 64); tok == 0 || tok != committed[key] {
				t.Fatalf("%q saw token %s, the log committed %d", key, f[2], committed[key])
			}
		}
		before := func(a, b string) {
			t.Helper()
			if pos[a] >= pos[b] || committed[a] >= committed[b] {
				t.Fatalf("%q (line %d, token %d) must come before %q (line %d, token %d):\n%s",
					a, pos[a], committed[a], b, pos[b], committed[b], data)
			}
		}
		for _, h := range []string{"1", "2", "3"} {
			before(h+" s1", "2 s2") // through the barrier
		}
		before("2 s2", "1 s3")
		before("2 s2", "3 s3")
		before("1 s3", "1 s4")
		for id := uint64(2); id <= 3; id++ {
			if other := wait(id, "order"); !proto.Equal(other, st) {
				t.Fatalf("node %d reports another history:\n%v\nnode 1:\n%v", id, other, st)
			}
		}
	})

	t.Run("restart mid-step", func(t *testing.T) {
		started := filepath.Join(dir, "unknown.pid")
		unknown := &clockdv1.Book{Id: "unknown", Steps: []*clockdv1.BookStep{
			{Id: "slow", Hosts: []uint64{2}, Argv: sh(`echo $$ > ` + started + `.tmp && mv ` + started + `.tmp ` + started + ` && exec sleep 300`)},
			{Id: "after", Hosts: []uint64{2}, Argv: sh("true"), DependsOn: []string{"slow"}},
		}}
		done := filepath.Join(dir, "idempotent.done")
		pidFile := filepath.Join(dir, "idempotent.pid")
		idem := &clockdv1.Book{Id: "idempotent", Steps: []*clockdv1.BookStep{
			{Id: "once", Hosts: []uint64{3}, Idempotent: true, Argv: sh(`if [ -e ` + done + ` ]; then echo "attempt $CLOCKD_ATTEMPT finds it done"; exit 0; fi; ` +
				`touch ` + done + ` && echo $$ > ` + pidFile + `.tmp && mv ` + pidFile + `.tmp ` + pidFile + ` && exec sleep 300`)},
		}}
		for _, b := range []*clockdv1.Book{unknown, idem} {
			if _, err := rb[1].Submit(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			node uint64
			pid  string
		}{{2, started}, {3, pidFile}} {
			pid := waitPID(t, ctx, c.pid)
			cl.Kill(c.node)
			waitGone(t, ctx, pid)
			if err := cl.Start(c.node); err != nil {
				t.Fatal(err)
			}
		}
		st := wait(1, "unknown")
		if st.State != clockdv1.RunbookState_RUNBOOK_STATE_FAILED ||
			st.Steps[0].Runs[0].State != clockdv1.RunState_RUN_STATE_UNKNOWN ||
			st.Steps[1].Runs[0].State != clockdv1.RunState_RUN_STATE_SKIPPED {
			t.Fatalf("a step that is not idempotent, interrupted: want unknown, then skipped; got %v", st)
		}
		st = wait(1, "idempotent")
		r := st.Steps[0].Runs[0]
		if st.State != clockdv1.RunbookState_RUNBOOK_STATE_SUCCEEDED || r.Attempts != 2 ||
			!strings.Contains(r.OutputTail, "attempt 2 finds it done") {
			t.Fatalf("an idempotent step, interrupted: want it re-run and succeeded at attempt 2; got %v", st)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		book := &clockdv1.Book{Id: "timeout", Steps: []*clockdv1.BookStep{
			{Id: "hang", Hosts: []uint64{1}, Argv: []string{"sleep", "300"}, TimeoutNanos: int64(time.Second), Retries: 1},
		}}
		if _, err := rb[2].Submit(ctx, book); err != nil {
			t.Fatal(err)
		}
		st := wait(2, "timeout")
		r := st.Steps[0].Runs[0]
		if r.State != clockdv1.RunState_RUN_STATE_FAILED || r.Attempts != 2 || r.Failures != 2 || r.Exit != -1 ||
			!strings.Contains(r.OutputTail, "killed at its timeout of 1s") {
			t.Fatalf("want the step killed at its timeout twice, then failed; got %v", r)
		}
		// Node 1 ran, in this test: s1, s3, s4 and the two killed attempts.
		resp, err := http.Get("http://" + cl.Node(1).MetricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`clockd_runbook_steps_total{result="killed"} 2`,
			`clockd_runbook_steps_total{result="succeeded"} 3`} {
			if !strings.Contains(string(body), want+"\n") {
				t.Errorf("node 1's /metrics lacks %q", want)
			}
		}
	})
}

// TestRunbookVersionGate runs clockd built as release v1.4.0: every node
// reports that version, a gate for v1.4.0 is passed on every host, and a
// gate for v2.0.0 holds every host, with what comes after it, until the
// book is cancelled.
func TestRunbookVersionGate(t *testing.T) {
	dir := t.TempDir()
	bin, err := proccluster.BuildVersion("../..", dir, "v1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := proccluster.Start(proccluster.Config{Binary: bin, Dir: dir, Nodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := cl.WaitSynchronized(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := cl.Dial(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.Admin().Status(ctx, &clockdv1.StatusRequest{}); err != nil || st.Version != "v1.4.0" {
		t.Fatalf("node 2's status: version %q, %v", st.GetVersion(), err)
	}
	rb := clockdv1.NewRunbookServiceClient(c.Conn())
	book := func(id, version string) *clockdv1.Book {
		return &clockdv1.Book{Id: id, Steps: []*clockdv1.BookStep{
			{Id: "gate", MinVersion: version},
			{Id: "after", Hosts: []uint64{1}, Argv: []string{"true"}, DependsOn: []string{"gate"}},
		}}
	}
	if _, err := rb.Submit(ctx, book("current", "v1.4.0")); err != nil {
		t.Fatal(err)
	}
	st, err := rb.Wait(ctx, &clockdv1.WaitRunbookRequest{Id: "current", TimeoutNanos: int64(time.Minute)})
	if err != nil || st.State != clockdv1.RunbookState_RUNBOOK_STATE_SUCCEEDED {
		t.Fatalf("a gate for the version running: %v, %v", st, err)
	}

	if _, err := rb.Submit(ctx, book("newer", "v2.0.0")); err != nil {
		t.Fatal(err)
	}
	// Nothing will change: a bounded wait is the only way to see it.
	if _, err := rb.Wait(ctx, &clockdv1.WaitRunbookRequest{Id: "newer", TimeoutNanos: int64(time.Second)}); grpcstatus.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a gate for a newer version: wait answered %v, want DeadlineExceeded", err)
	}
	st, err = rb.Cancel(ctx, &clockdv1.CancelRunbookRequest{Id: "newer", Reason: "v2.0.0 is not out"})
	if err != nil {
		t.Fatal(err)
	}
	for i, sr := range st.Steps {
		for _, r := range sr.Runs {
			if r.State != clockdv1.RunState_RUN_STATE_SKIPPED || r.Attempts != 0 {
				t.Fatalf("step %s on host %d: %v; want it never started, then skipped", st.Book.Steps[i].Id, r.Host, r)
			}
		}
	}
	// The hosts were held by the gate alone: the next book runs.
	if _, err := rb.Submit(ctx, book("after-cancel", "v1.0.0")); err != nil {
		t.Fatal(err)
	}
	st, err = rb.Wait(ctx, &clockdv1.WaitRunbookRequest{Id: "after-cancel", TimeoutNanos: int64(time.Minute)})
	if err != nil || st.State != clockdv1.RunbookState_RUNBOOK_STATE_SUCCEEDED {
		t.Fatalf("after the cancel: %v, %v", st, err)
	}
}

// waitPID waits for a step to write its process ID to path.
func waitPID(t *testing.T, ctx context.Context, path string) int {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return pid
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no step wrote %s", path)
		case <-tick.C:
		}
	}
}

// waitGone waits until process pid has exited (gone, or a zombie).
func waitGone(t *testing.T, ctx context.Context, pid int) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// The state follows the parenthesised command name.
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("step process %d outlived its clockd", pid)
		case <-tick.C:
		}
	}
}
