package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs every row briefly against a real cluster: clockd's NTP
// server only, since chronyd is the bench's business, not the tests'.
// It checks that each row measured something and that the report holds
// together; it asserts nothing about speed.
func TestSmoke(t *testing.T) {
	var progress bytes.Buffer
	cfg := Config{Clients: []int{1, 4}, Conns: 4, TSCallers: []int{16}, NTPQueries: 50,
		Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond, Repeat: 1,
		NoChrony: "left to the bench run", Dir: t.TempDir(), Command: "go test", Progress: &progress}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	if len(rep.GRPC) != 4 || len(rep.Ratios) != 2 || len(rep.Timestamp) != 1 || len(rep.NTP) != 2 || rep.Leader == 0 {
		t.Fatalf("want 4 gRPC rows, 2 ratios, 1 Timestamp row, 2 NTP rows and a leader; got %+v", rep)
	}
	for _, g := range rep.GRPC {
		if g.OpsPerSec <= 0 || g.Errors != 0 || g.P50Us <= 0 || g.P99Us < g.P50Us || g.BusiestSourcePerSec <= 0 {
			t.Errorf("implausible gRPC row %+v", g)
		}
	}
	for _, ra := range rep.Ratios {
		if ra.Throughput <= 0 || len(ra.Rounds) != 1 {
			t.Errorf("implausible ratio %+v", ra)
		}
	}
	if ts := rep.Timestamp[0]; ts.TimestampsPerSec <= 0 || ts.RPCsPerSec <= 0 || ts.AvgBatch < 1 || ts.Errors != 0 {
		t.Errorf("implausible Timestamp row %+v", ts)
	}
	if s := rep.Shm; s.ShmNs <= 0 || s.TimeNowNs <= 0 || s.MonoNs <= 0 || s.Ratio <= 0 {
		t.Errorf("implausible shm row %+v", s)
	}
	c, y := rep.NTP[0], rep.NTP[1]
	if c.Server != serverClockd || !c.Measured || c.Answers != cfg.NTPQueries || c.Errors != 0 || c.P50Us <= 0 || c.P99Us < c.P50Us {
		t.Errorf("implausible clockd NTP row %+v", c)
	}
	if y.Server != serverChronyd || y.Measured || y.Note != cfg.NoChrony {
		t.Errorf("chronyd row %+v, want not measured", y)
	}
	if got := rep.Targets[len(rep.Targets)-1]; got.Status != "NOT MEASURED" {
		t.Errorf("NTP target without chronyd: %+v", got)
	}
	if ents, _ := os.ReadDir(cfg.Dir); len(ents) != 0 {
		t.Errorf("run left %d entries in %s", len(ents), cfg.Dir)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"command: go test", "Now/health", "timestamps per request", "shm.Reader.Now", "chronyd not measured"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.GRPC) != 4 || len(back.Targets) != len(rep.Targets) {
		t.Fatalf("JSON round trip: %v, %+v", err, back)
	}
}

func TestTargets(t *testing.T) {
	measured := func(server string, p50 float64, errs int) NTPRow {
		return NTPRow{Server: server, Measured: true, P50Us: p50, P99Us: 2 * p50, Answers: 10, Errors: errs}
	}
	for _, tc := range []struct {
		name string
		rep  Report
		want []string // the status of every target, in order
	}{{
		name: "all pass",
		rep: Report{
			GRPC: []GRPCRow{{Kind: kindNow, Clients: 1, OpsPerSec: 95, RoundsOpsPerSec: []float64{95}},
				{Kind: kindHealth, Clients: 1, OpsPerSec: 100, RoundsOpsPerSec: []float64{100}}},
			Timestamp: []TimestampRow{{Callers: 8, TimestampsPerSec: 900_000}, {Callers: 64, TimestampsPerSec: 1_200_000}},
			Shm:       ShmRow{Ratio: 2.5},
			NTP:       []NTPRow{measured(serverClockd, 20, 0), measured(serverChronyd, 25, 0)},
		},
		want: []string{"PASS", "PASS", "PASS", "PASS"},
	}, {
		name: "below goals",
		rep: Report{
			GRPC: []GRPCRow{{Kind: kindNow, Clients: 64, OpsPerSec: 80, RoundsOpsPerSec: []float64{80}},
				{Kind: kindHealth, Clients: 64, OpsPerSec: 100, RoundsOpsPerSec: []float64{100}}},
			Timestamp: []TimestampRow{{Callers: 8, TimestampsPerSec: 900_000}},
			Shm:       ShmRow{Ratio: 3.5},
			NTP:       []NTPRow{measured(serverClockd, 30, 0), measured(serverChronyd, 25, 0)},
		},
		want: []string{"FAIL", "FAIL", "FAIL", "FAIL"},
	}, {
		name: "errors fail, missing chronyd is not measured",
		rep: Report{
			GRPC: []GRPCRow{{Kind: kindNow, Clients: 1, OpsPerSec: 100, Errors: 3, RoundsOpsPerSec: []float64{100}},
				{Kind: kindHealth, Clients: 1, OpsPerSec: 100, RoundsOpsPerSec: []float64{100}}},
			Timestamp: []TimestampRow{{Callers: 8, TimestampsPerSec: 2_000_000, Errors: 1}},
			Shm:       ShmRow{Ratio: 1},
			NTP:       []NTPRow{measured(serverClockd, 20, 0), {Server: serverChronyd, Note: "not installed"}},
		},
		want: []string{"FAIL", "FAIL", "PASS", "NOT MEASURED"},
	}, {
		name: "NTP errors fail",
		rep: Report{
			Timestamp: []TimestampRow{{Callers: 8, TimestampsPerSec: 2_000_000}},
			Shm:       ShmRow{Ratio: 1},
			NTP:       []NTPRow{measured(serverClockd, 20, 5), measured(serverChronyd, 25, 0)},
		},
		want: []string{"PASS", "PASS", "FAIL"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rep.finish()
			var got []string
			for _, tg := range tc.rep.Targets {
				got = append(got, tg.Status)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("statuses %v, want %v; targets %+v", got, tc.want, tc.rep.Targets)
			}
		})
	}
}

func TestNTPSources(t *testing.T) {
	var s ntpSources
	seen := map[string]int{}
	for range 3 * queriesPerSource {
		seen[s.addr().String()]++
	}
	if len(seen) != 3 || seen["127.3.0.1"] != queriesPerSource || seen["127.3.0.3"] != queriesPerSource {
		t.Errorf("addresses used %v, want 127.3.0.1 to 127.3.0.3, %d times each", seen, queriesPerSource)
	}
	s = ntpSources{next: maxLoopbackIndex - 1, used: queriesPerSource}
	if got := s.addr().String(); got != "127.3.0.1" {
		t.Errorf("after the last address: %s, want 127.3.0.1 again", got)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "1,x"}, {"--clients", "0"}, {"--ts-callers", "-1"}, {"--duration", "1ms"}, {"--repeat", "0"},
		{"--conns", "0"}, {"--ntp-queries", "0"}, {"--duration", "soon"},
	} {
		err := newApp().Run(append([]string{"bench-time"}, args...))
		if !errors.As(err, new(usageError)) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}
