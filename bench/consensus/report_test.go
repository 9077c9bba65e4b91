package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNewRow(t *testing.T) {
	m := measured{res: loadResult{Clients: 4, Ops: 2000, WindowNs: int64(2 * time.Second), P50Ns: 1500, P99Ns: 9000},
		cpu: cpuTime{User: 300 * time.Millisecond, Sys: 700 * time.Millisecond}}
	r := newRow(engineClockd, 2, m, []memKB{{HWM: 1024}, {HWM: 2048}, {HWM: 3072}})
	if r.OpsPerSec != 1000 || r.P50Us != 1.5 || r.P99Us != 9 || r.CPUSec != 1 || r.CPUPerOpUs != 500 {
		t.Fatalf("row %+v", r)
	}
	if got := rssList(r.PeakRSSKB, r.Leader); got != "1.0/2.0*/3.0" {
		t.Fatalf("rssList = %q", got)
	}
	if got := sysShare(r); got != "70%" {
		t.Fatalf("sysShare = %q", got)
	}
}

func TestTargets(t *testing.T) {
	floor := Floor{FloorUs: 1000}
	full := []Row{
		{Engine: engineClockd, Clients: 1, OpsPerSec: 500, P50Us: 1800, P99Us: 3000},
		{Engine: engineRaft, Clients: 1, OpsPerSec: 400, P50Us: 2500, P99Us: 6000},
		{Engine: engineClockd, Clients: 256, OpsPerSec: 50000, P99Us: 8000},
		{Engine: engineRaft, Clients: 256, OpsPerSec: 4000, P99Us: 10000},
	}
	tests := []struct {
		name string
		rows []Row
		want []string // status of floor, throughput, p99
	}{
		{"all pass", full, []string{"PASS", "PASS", "PASS"}},
		{"slow clockd", []Row{
			{Engine: engineClockd, Clients: 1, P50Us: 2100},
			{Engine: engineClockd, Clients: 256, OpsPerSec: 4100, P99Us: 12000},
			{Engine: engineRaft, Clients: 256, OpsPerSec: 4000, P99Us: 10000},
		}, []string{"FAIL", "FAIL", "FAIL"}},
		{"no 256 row", full[:2], []string{"PASS", "n/a", "n/a"}},
		{"clockd only", []Row{full[0], full[2]}, []string{"PASS", "n/a", "n/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Floor: floor, Rows: tt.rows}
			r.finish()
			for i, tg := range r.Targets {
				if tg.Status != tt.want[i] {
					t.Errorf("%s = %v: %s, want %s", tg.Name, tg.Value, tg.Status, tt.want[i])
				}
			}
		})
	}
	r := &Report{Floor: floor, Rows: full}
	r.finish()
	if len(r.Ratios) != 2 || r.Ratios[1].Throughput != 12.5 || r.Ratios[1].P99 != 0.8 || r.Targets[0].Value != 1.8 {
		t.Fatalf("ratios %+v targets %+v", r.Ratios, r.Targets)
	}
	r.Machine.MemoryMonitors = []string{"DAMON kdamond 0: paddr"}
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"12.50x", "0.80x", "PASS", "hashicorp/raft", "kernel memory monitor: DAMON kdamond 0: paddr\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
	// The table's columns line up from its header to its last row, across
	// the ratio lines: every line is as wide as the header.
	var table []string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "engine" && len(table) == 0 || len(table) > 0) {
			if len(f) == 0 || f[0] == "targets" {
				break
			}
			table = append(table, line)
		}
	}
	if len(table) != 1+len(full)+len(r.Ratios) {
		t.Fatalf("table of %d lines, want %d:\n%s", len(table), 1+len(full)+len(r.Ratios), out.String())
	}
	for _, line := range table[1:] {
		if utf8.RuneCountInString(line) != utf8.RuneCountInString(table[0]) {
			t.Errorf("table columns do not line up:\n%s", strings.Join(table, "\n"))
			break
		}
	}
}

func TestMedianRun(t *testing.T) {
	tests := []struct {
		name string
		ops  []float64
		want float64
	}{
		{"one", []float64{5}, 5},
		{"three", []float64{9, 3, 6}, 6},
		{"even takes the lower middle", []float64{9, 3, 6, 1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs []Row
			var floors []Floor
			for i, v := range tt.ops {
				runs = append(runs, Row{OpsPerSec: v, Leader: uint64(i)})
				floors = append(floors, Floor{BoltWriteUs: v, Pings: i})
			}
			got := medianRun(runs)
			if got.OpsPerSec != tt.want || runs[got.Leader].OpsPerSec != tt.want {
				t.Fatalf("median run %+v, want throughput %v", got, tt.want)
			}
			if len(tt.ops) > 1 && !slices.Equal(got.RunsOpsPerSec, tt.ops) {
				t.Fatalf("runs %v, want %v in run order", got.RunsOpsPerSec, tt.ops)
			}
			f := medianFloor(floors)
			if f.BoltWriteUs != tt.want || floors[f.Pings].BoltWriteUs != tt.want {
				t.Fatalf("median floor %+v, want %v", f, tt.want)
			}
		})
	}
}
