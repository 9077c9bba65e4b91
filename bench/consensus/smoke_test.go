package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clockd/clockd/bench/internal/benchmain"
)

// TestMain lets the test binary serve as a node process: the smoke test
// re-executes it with "node ...", as the real binary re-executes itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		os.Exit(benchmain.Run(newApp(), os.Args))
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole bench, both engines, small: two rows each, a
// short paused-follower scenario, and checks the report hangs together.
func TestSmoke(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	cfg := Config{Engines: []string{engineClockd, engineRaft}, Clients: []int{1, 8},
		Duration: time.Second, Warmup: 200 * time.Millisecond, Repeat: 1, PauseDuration: time.Second, PauseClients: 8,
		FloorWrites: 20, FloorPings: 100, Dir: t.TempDir(), Exe: exe, Progress: &progress}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	if len(rep.Rows) != 4 || len(rep.Ratios) != 2 || len(rep.Paused) != 2 {
		t.Fatalf("want 4 rows, 2 ratios, 2 paused results; got %+v", rep)
	}
	for _, r := range rep.Rows {
		if r.Ops == 0 || r.Errors != 0 || r.P50Us <= 0 || r.P99Us < r.P50Us || len(r.PeakRSSKB) != 3 || r.CPUSec <= 0 {
			t.Errorf("implausible row %+v", r)
		}
	}
	for _, p := range rep.Paused {
		if p.Ops == 0 || !p.CaughtUp || p.RSSStartKB == 0 || p.RSSMaxKB < p.RSSEndKB {
			t.Errorf("implausible paused result %+v", p)
		}
	}
	if f := rep.Floor; f.BoltWriteUs <= 0 || f.RTTUs <= 0 || f.FloorUs != f.BoltWriteUs+f.RTTUs {
		t.Errorf("implausible floor %+v", f)
	}
	if ents, _ := os.ReadDir(cfg.Dir); len(ents) != 0 {
		t.Errorf("run left %d entries in %s", len(ents), cfg.Dir)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Rows) != 4 {
		t.Fatalf("JSON round trip: %v, %d rows", err, len(back.Rows))
	}
	if !strings.Contains(progress.String(), "warming up") {
		t.Errorf("no progress lines:\n%s", progress.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "1,x"}, {"--clients", "0"}, {"--engines", "etcd"}, {"--duration", "1ms"}, {"--floor-writes", "0"}, {"--repeat", "0"}, {"--duration", "soon"},
	} {
		err := newApp().Run(append([]string{"bench-consensus"}, args...))
		if !errors.As(err, new(usageError)) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}

// TestClusterStartFailure checks that a node process that dies at start
// fails the cluster with its log tail, and that nothing is left running.
func TestClusterStartFailure(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := startCluster(t.Context(), exe, "etcd", t.TempDir())
	if err == nil {
		cl.close()
		t.Fatal("a cluster of an unknown engine started")
	}
	if !errors.Is(err, errChildGone) || !strings.Contains(err.Error(), `unknown engine "etcd"`) {
		t.Fatalf("error %q should say the node exited and why", err)
	}
}
