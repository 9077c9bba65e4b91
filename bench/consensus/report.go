package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one run measured. It is printed as a table, or as
// JSON with --json.
type Report struct {
	Machine  Machine  `json:"machine"`
	Settings Settings `json:"settings"`
	Floor    Floor    `json:"floor"`
	Rows     []Row    `json:"rows"`
	Ratios   []Ratio  `json:"ratios"`
	Targets  []Target `json:"targets"`
	Paused   []Paused `json:"paused_follower,omitempty"`
}

// Machine describes where the numbers come from.
type Machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Filesystem string `json:"filesystem"` // holding the data directories
	DataDir    string `json:"data_dir"`
	Clockd     string `json:"clockd_revision"`
	Raft       string `json:"hashicorp_raft_version"`
	// MemoryMonitors are the kernel's DAMON monitors running during the
	// run (benchmain.MemoryMonitors).
	MemoryMonitors []string `json:"memory_monitors,omitempty"`
}

// Settings are the run's parameters.
type Settings struct {
	Nodes        int     `json:"nodes"`
	CommandBytes int     `json:"command_bytes"`
	Clients      []int   `json:"clients"`
	DurationSec  float64 `json:"duration_sec"`
	WarmupSec    float64 `json:"warmup_sec"`
	Repeat       int     `json:"repeat"`
	PauseSec     float64 `json:"pause_sec"`
	PauseClients int     `json:"pause_clients"`
}

// Row is one engine at one client count.
type Row struct {
	Engine     string   `json:"engine"`
	Clients    int      `json:"clients"`
	Ops        uint64   `json:"ops"`
	Errors     uint64   `json:"errors"`
	FirstError string   `json:"first_error,omitempty"`
	WindowSec  float64  `json:"window_sec"`
	OpsPerSec  float64  `json:"ops_per_sec"`
	P50Us      float64  `json:"p50_us"`
	P99Us      float64  `json:"p99_us"`
	P999Us     float64  `json:"p999_us"`
	MaxUs      float64  `json:"max_us"`
	CPUSec     float64  `json:"cpu_sec"`       // utime+stime of all nodes over the window
	CPUSysSec  float64  `json:"cpu_sys_sec"`   // the stime part
	CPUPerOpUs float64  `json:"cpu_per_op_us"` // CPUSec / Ops
	Leader     uint64   `json:"leader"`
	PeakRSSKB  []uint64 `json:"peak_rss_kb"` // VmHWM of node 1, 2, 3
	// RunsOpsPerSec is every run's throughput, in run order, when the
	// row was measured more than once; the row's other fields are those
	// of the median run.
	RunsOpsPerSec []float64 `json:"runs_ops_per_sec,omitempty"`
}

// medianRun returns the run with the median throughput (the lower middle
// one of an even count), with every run's throughput attached.
func medianRun(runs []Row) Row {
	med, all := median(runs, func(r Row) float64 { return r.OpsPerSec })
	if len(runs) > 1 {
		med.RunsOpsPerSec = all
	}
	return med
}

// median returns the element with the median key (the lower middle one of
// an even count) and every element's key, in the given order.
func median[T any](xs []T, key func(T) float64) (T, []float64) {
	sorted := slices.Clone(xs)
	slices.SortFunc(sorted, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	keys := make([]float64, len(xs))
	for i, x := range xs {
		keys[i] = key(x)
	}
	return sorted[(len(sorted)-1)/2], keys
}

func newRow(eng string, leader uint64, m measured, mem []memKB) Row {
	r := Row{Engine: eng, Clients: m.res.Clients, Ops: m.res.Ops, Errors: m.res.Errors, FirstError: m.res.FirstError,
		WindowSec: time.Duration(m.res.WindowNs).Seconds(), OpsPerSec: m.res.OpsPerSec(),
		P50Us: float64(m.res.P50Ns) / 1e3, P99Us: float64(m.res.P99Ns) / 1e3, P999Us: float64(m.res.P999Ns) / 1e3,
		MaxUs: float64(m.res.MaxNs) / 1e3, CPUSec: m.cpu.Total().Seconds(), CPUSysSec: m.cpu.Sys.Seconds(), Leader: leader}
	if r.Ops > 0 {
		r.CPUPerOpUs = r.CPUSec * 1e6 / float64(r.Ops)
	}
	for _, x := range mem {
		r.PeakRSSKB = append(r.PeakRSSKB, x.HWM)
	}
	return r
}

// Ratio compares clockd with hashicorp/raft at one client count.
type Ratio struct {
	Clients    int     `json:"clients"`
	Throughput float64 `json:"throughput"` // clockd ops/s over raft ops/s; above 1 is better
	P99        float64 `json:"p99"`        // clockd p99 over raft p99; below 1 is better
}

// Target is one goal from the issue, checked against this run.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Op    string  `json:"op"` // "<=" or ">="
	Goal  float64 `json:"goal"`
	// Status is PASS, FAIL, or n/a when the run lacks the rows it needs.
	Status string `json:"status"`
}

// finish derives the ratios and checks the targets.
func (r *Report) finish() {
	r.Ratios = ratios(r.Rows)
	r.Targets = targets(r.Floor, r.Rows, r.Ratios)
}

func findRow(rows []Row, eng string, clients int) (Row, bool) {
	for _, r := range rows {
		if r.Engine == eng && r.Clients == clients {
			return r, true
		}
	}
	return Row{}, false
}

func ratios(rows []Row) []Ratio {
	var out []Ratio
	for _, c := range rows {
		if c.Engine != engineClockd {
			continue
		}
		h, ok := findRow(rows, engineRaft, c.Clients)
		if !ok {
			continue
		}
		out = append(out, Ratio{Clients: c.Clients, Throughput: div(c.OpsPerSec, h.OpsPerSec), P99: div(c.P99Us, h.P99Us)})
	}
	return out
}

// targetClients is the client count of the throughput and p99 targets.
const targetClients = 256

func targets(f Floor, rows []Row, rs []Ratio) []Target {
	floor := Target{Name: "clockd p50 at 1 client / (bolt write + RTT)", Op: "<=", Goal: 2.0}
	if c, ok := findRow(rows, engineClockd, 1); ok && f.FloorUs > 0 {
		floor.Value = c.P50Us / f.FloorUs
	}
	tput := Target{Name: fmt.Sprintf("throughput clockd/raft at %d clients", targetClients), Op: ">=", Goal: 10}
	p99 := Target{Name: fmt.Sprintf("p99 clockd/raft at %d clients", targetClients), Op: "<=", Goal: 1.0}
	for _, r := range rs {
		if r.Clients == targetClients {
			tput.Value, p99.Value = r.Throughput, r.P99
		}
	}
	out := []Target{floor, tput, p99}
	for i := range out {
		out[i].Status = out[i].check()
	}
	return out
}

func (t Target) check() string {
	switch {
	case t.Value == 0:
		return "n/a"
	case t.Op == "<=" && t.Value <= t.Goal, t.Op == ">=" && t.Value >= t.Goal:
		return "PASS"
	}
	return "FAIL"
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// engineLabel is how reports name an engine.
func engineLabel(eng string) string {
	if eng == engineRaft {
		return "hashicorp/raft"
	}
	return eng
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as tables for people.
func (r *Report) WriteText(w io.Writer) error {
	m, s, f := r.Machine, r.Settings, r.Floor
	fmt.Fprintf(w, "clockd vs hashicorp/raft: %d nodes, one OS process each, loopback, %d-byte commands, fsync on\n",
		s.Nodes, s.CommandBytes)
	fmt.Fprintf(w, "clockd %s, hashicorp/raft %s\n", m.Clockd, m.Raft)
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, kernel %s, %s; data on %s under %s\n",
		m.CPUs, m.CPUModel, m.OS, m.Kernel, m.Go, m.Filesystem, m.DataDir)
	for _, mon := range m.MemoryMonitors {
		fmt.Fprintf(w, "kernel memory monitor: %s\n", mon)
	}
	fmt.Fprintf(w, "each row: a fresh cluster, %gs warm-up, then %gs measured", s.WarmupSec, s.DurationSec)
	if s.Repeat > 1 {
		fmt.Fprintf(w, "; %d rounds, each row shows its median run", s.Repeat)
	}
	fmt.Fprintf(w, "\n\n")
	fmt.Fprintf(w, "physical floor\n")
	line := func(label string, p50, p99 float64, note string) {
		fmt.Fprintf(w, "  %-52s p50 %7.3f ms  p99 %7.3f ms  %s\n", label, p50/1e3, p99/1e3, note)
	}
	line("fsync'd bolt write (raft-boltdb/v2 StoreLog, 64 B)", f.BoltWriteUs, f.BoltWriteP99, fmt.Sprintf("(%d writes)", f.BoltWrites))
	line("loopback TCP round trip (64 B)", f.RTTUs, f.RTTP99Us, fmt.Sprintf("(%d pings)", f.Pings))
	fmt.Fprintf(w, "  %-52s     %7.3f ms\n", "floor = bolt write + RTT", f.FloorUs/1e3)
	line(fmt.Sprintf("context: the same write, %d writers at once", s.Nodes), f.SharedBoltWriteUs, f.SharedBoltWriteP99,
		"(as the nodes share one disk)")
	if len(f.RoundsBoltWriteUs) > 1 {
		fmt.Fprintf(w, "  (median round; bolt write p50 by round: %s ms)\n", joinf(f.RoundsBoltWriteUs, 1e3, "%.3f"))
	}
	fmt.Fprintln(w)
	r.writeRows(w)
	fmt.Fprintf(w, "\ntargets\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "  %s\t%s\t(target %s %g)\t%s\n", t.Name, fmtRatio(t.Value), t.Op, t.Goal, t.Status)
	}
	tw.Flush()
	if len(r.Paused) > 0 {
		r.writePaused(w)
	}
	return nil
}

func (r *Report) writeRows(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	runs := r.Settings.Repeat > 1
	fmt.Fprint(tw, "engine\tclients\tops/s\t")
	if runs {
		fmt.Fprint(tw, "ops/s of each run\t")
	}
	fmt.Fprintln(tw, "p50 ms\tp99 ms\tCPU µs/op\tof it sys\tpeak RSS MiB n1/n2/n3 (*leader)\terrors\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t", engineLabel(row.Engine), row.Clients, row.OpsPerSec)
		if runs {
			fmt.Fprintf(tw, "%s\t", joinf(row.RunsOpsPerSec, 1, "%.0f"))
		}
		fmt.Fprintf(tw, "%.3f\t%.3f\t%.0f\t%s\t%s\t%d\t\n", row.P50Us/1e3, row.P99Us/1e3, row.CPUPerOpUs, sysShare(row),
			rssList(row.PeakRSSKB, row.Leader), row.Errors)
		for _, ra := range r.Ratios {
			if ra.Clients == row.Clients && row.Engine == engineRaft {
				gap := ""
				if runs {
					gap = "\t"
				}
				// Empty cells to the last column keep the column blocks
				// of the rows below aligned with those above.
				fmt.Fprintf(tw, "clockd/raft\t%d\t%s\t%s\t%s\t\t\t\t\t\n", ra.Clients, fmtRatio(ra.Throughput), gap,
					fmtRatio(ra.P99))
			}
		}
	}
	tw.Flush()
}

func (r *Report) writePaused(w io.Writer) {
	fmt.Fprintf(w, "\npaused follower: %d clients for %gs at the leader, one follower stopped (SIGSTOP) throughout\n",
		r.Settings.PauseClients, r.Settings.PauseSec)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "engine\tpaused\tops/s\tp99 ms\tleader RSS MiB start\tend\tmax\tcatch-up\terrors\t")
	for _, p := range r.Paused {
		catch := fmt.Sprintf("%.1fs", p.CatchUpSec)
		if !p.CaughtUp {
			catch = fmt.Sprintf("no (%.0fs)", p.CatchUpSec)
		}
		fmt.Fprintf(tw, "%s\tnode %d\t%.0f\t%.3f\t%.1f\t%.1f\t%.1f\t%s\t%d\t\n", engineLabel(p.Engine), p.PausedNode,
			p.OpsPerSec, p.P99Us/1e3, mib(p.RSSStartKB), mib(p.RSSEndKB), mib(p.RSSMaxKB), catch, p.Errors)
	}
	tw.Flush()
}

// sysShare is the kernel's share of a row's CPU time.
func sysShare(r Row) string {
	if r.CPUSec == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*r.CPUSysSec/r.CPUSec)
}

func rssList(kb []uint64, leader uint64) string {
	parts := make([]string, len(kb))
	for i, x := range kb {
		parts[i] = fmt.Sprintf("%.1f", mib(x))
		if uint64(i+1) == leader {
			parts[i] += "*"
		}
	}
	return strings.Join(parts, "/")
}

// joinf formats every value divided by scale, joined by "/".
func joinf(vs []float64, scale float64, format string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf(format, v/scale)
	}
	return strings.Join(parts, "/")
}

func fmtRatio(v float64) string {
	if v == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", v)
}
