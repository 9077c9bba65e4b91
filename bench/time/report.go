package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clockd/clockd/api/server"
)

// Report is everything one run measured. It is printed as tables, or as
// JSON with --json.
type Report struct {
	Command  string   `json:"command"`
	Machine  Machine  `json:"machine"`
	Settings Settings `json:"settings"`
	Leader   uint64   `json:"leader"`
	// LeaderChanged is set when the leader at the end was another node,
	// or could not be found.
	LeaderChanged bool           `json:"leader_changed,omitempty"`
	GRPC          []GRPCRow      `json:"grpc"`
	Ratios        []GRPCRatio    `json:"grpc_ratios"`
	Timestamp     []TimestampRow `json:"timestamp"`
	Shm           ShmRow         `json:"shm"`
	NTP           []NTPRow       `json:"ntp"`
	Targets       []Target       `json:"targets"`
}

// Settings are the run's parameters.
type Settings struct {
	Nodes       int      `json:"nodes"`
	Clients     []int    `json:"clients"`
	Conns       int      `json:"conns"`
	TSCallers   []int    `json:"ts_callers"`
	NTPQueries  int      `json:"ntp_queries"`
	DurationSec float64  `json:"duration_sec"`
	WarmupSec   float64  `json:"warmup_sec"`
	Repeat      int      `json:"repeat"`
	ClockdArgs  []string `json:"clockd_args,omitempty"`
	// APIRatePerSec is the API server's per-client rate limit, which the
	// gRPC pool's source addresses keep clear of.
	APIRatePerSec float64 `json:"api_rate_per_sec"`
}

func settingsOf(cfg Config) Settings {
	return Settings{Nodes: clusterNodes, Clients: cfg.Clients, Conns: cfg.Conns, TSCallers: cfg.TSCallers,
		NTPQueries: cfg.NTPQueries, DurationSec: cfg.Duration.Seconds(), WarmupSec: cfg.Warmup.Seconds(),
		Repeat: cfg.Repeat, ClockdArgs: cfg.ClockdArgs, APIRatePerSec: server.DefaultLimits().RatePerSec}
}

// GRPCRow is one kind of call at one client count: its best round.
type GRPCRow struct {
	Kind       string  `json:"kind"` // Now or health
	Clients    int     `json:"clients"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	P50Us      float64 `json:"p50_us"`
	P99Us      float64 `json:"p99_us"`
	Errors     int     `json:"errors"` // over every round
	FirstError string  `json:"first_error,omitempty"`
	// BusiestSourcePerSec is the call rate of the busiest connection, and
	// so of its source address, in the best round.
	BusiestSourcePerSec float64   `json:"busiest_source_per_sec"`
	RoundsOpsPerSec     []float64 `json:"rounds_ops_per_sec"`
}

func newGRPCRow(kind string, clients int, runs []loadResult) GRPCRow {
	row := GRPCRow{Kind: kind, Clients: clients}
	for _, r := range runs {
		row.RoundsOpsPerSec = append(row.RoundsOpsPerSec, r.opsPerSec())
		row.Errors += r.Errors
		if row.FirstError == "" {
			row.FirstError = r.FirstError
		}
	}
	if i := best(row.RoundsOpsPerSec); i >= 0 {
		r := runs[i]
		row.OpsPerSec, row.BusiestSourcePerSec = r.opsPerSec(), perSec(r.BusiestConnOps, r.Window)
		row.P50Us, row.P99Us = float64(r.P50.Nanoseconds())/1e3, float64(r.P99.Nanoseconds())/1e3
	}
	return row
}

// GRPCRatio compares Now with the health check at one client count.
type GRPCRatio struct {
	Clients int `json:"clients"`
	// Throughput is Now's best calls/s over the health check's.
	Throughput float64 `json:"throughput"`
	// Rounds is the same ratio within each round, the two kinds measured
	// back to back.
	Rounds []float64 `json:"rounds"`
}

// TimestampRow is client.Timestamp under load: its best round.
type TimestampRow struct {
	Callers          int       `json:"callers"`
	TimestampsPerSec float64   `json:"timestamps_per_sec"`
	RPCsPerSec       float64   `json:"rpcs_per_sec"`
	AvgBatch         float64   `json:"avg_batch"` // timestamps asked for per request
	Errors           int       `json:"errors"`    // over every round
	FirstError       string    `json:"first_error,omitempty"`
	RoundsPerSec     []float64 `json:"rounds_timestamps_per_sec"`
}

func newTimestampRow(callers int, runs []tsRun) TimestampRow {
	row := TimestampRow{Callers: callers}
	for _, r := range runs {
		row.RoundsPerSec = append(row.RoundsPerSec, perSec(r.Timestamps, r.Window))
		row.Errors += r.Errors
		if row.FirstError == "" {
			row.FirstError = r.FirstError
		}
	}
	if i := best(row.RoundsPerSec); i >= 0 {
		r := runs[i]
		row.TimestampsPerSec, row.RPCsPerSec = perSec(r.Timestamps, r.Window), perSec(r.RPCs, r.Window)
		row.AvgBatch = div(float64(r.Asked), float64(r.RPCs))
	}
	return row
}

// ShmRow is the cost of a shared-page read against time.Now(): each
// function's fastest round.
type ShmRow struct {
	Path         string    `json:"path"`
	ShmNs        float64   `json:"shm_ns"`
	TimeNowNs    float64   `json:"time_now_ns"`
	MonoNs       float64   `json:"mono_ns"`
	Ratio        float64   `json:"ratio"` // ShmNs / TimeNowNs
	RoundsShmNs  []float64 `json:"rounds_shm_ns"`
	RoundsTimeNs []float64 `json:"rounds_time_now_ns"`
	RoundsMonoNs []float64 `json:"rounds_mono_ns"`
	RoundsRatios []float64 `json:"rounds_ratios"`
	ShmNsSpread  float64   `json:"shm_ns_spread"`
	TimeNsSpread float64   `json:"time_now_ns_spread"`
	MonoNsSpread float64   `json:"mono_ns_spread"`
}

func newShmRow(path string, shmNs, timeNs, monoNs []float64) ShmRow {
	row := ShmRow{Path: path, ShmNs: slices.Min(shmNs), TimeNowNs: slices.Min(timeNs), MonoNs: slices.Min(monoNs),
		RoundsShmNs: shmNs, RoundsTimeNs: timeNs, RoundsMonoNs: monoNs,
		ShmNsSpread: spread(shmNs), TimeNsSpread: spread(timeNs), MonoNsSpread: spread(monoNs)}
	row.Ratio = div(row.ShmNs, row.TimeNowNs)
	for i := range shmNs {
		row.RoundsRatios = append(row.RoundsRatios, div(shmNs[i], timeNs[i]))
	}
	return row
}

// NTPRow is one NTP server's query latency: its best round, the one with
// the lowest p50.
type NTPRow struct {
	Server   string `json:"server"`
	Addr     string `json:"addr,omitempty"`
	Measured bool   `json:"measured"`
	// Note says why a server was not measured.
	Note       string    `json:"note,omitempty"`
	Queries    int       `json:"queries"` // per round
	Answers    int       `json:"answers"` // valid answers over every round
	Errors     int       `json:"errors"`  // timeouts, kisses and invalid answers over every round
	FirstError string    `json:"first_error,omitempty"`
	P50Us      float64   `json:"p50_us"`
	P99Us      float64   `json:"p99_us"`
	RoundsP50  []float64 `json:"rounds_p50_us"`
}

func newNTPRow(s *ntpServer, queries int) NTPRow {
	r := NTPRow{Server: s.name, Addr: s.addr, Measured: true, Queries: queries, Errors: s.errors}
	if s.first != nil {
		r.FirstError = s.first.Error()
	}
	neg := make([]float64, len(s.rounds))
	for i, x := range s.rounds {
		r.Answers += x.answers
		r.RoundsP50 = append(r.RoundsP50, us(x.p50))
		neg[i] = -us(x.p50)
	}
	if i := best(neg); i >= 0 {
		r.P50Us, r.P99Us = us(s.rounds[i].p50), us(s.rounds[i].p99)
	}
	return r
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// Target is one goal, checked against this run.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Op    string  `json:"op"` // "<=" or ">="
	Goal  float64 `json:"goal"`
	Unit  string  `json:"unit"` // "x" for a ratio, else the value's unit
	// Status is PASS, FAIL, or NOT MEASURED; Note says why when the rows
	// behind it had errors or are missing.
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// Goals.
const (
	goalNowOverHealth = 0.90
	goalTimestamps    = 1_000_000
	goalShmOverNow    = 3.0
	goalNTPOverChrony = 1.0
)

// finish derives the ratios and checks the targets.
func (r *Report) finish() {
	r.Ratios = grpcRatios(r.GRPC)
	r.Targets = nil
	for _, ra := range r.Ratios {
		t := Target{Name: fmt.Sprintf("Now/health calls/s, %s", clientsLabel(ra.Clients)), Value: ra.Throughput,
			Op: ">=", Goal: goalNowOverHealth, Unit: "x"}
		for _, g := range r.GRPC {
			if g.Clients == ra.Clients && g.Errors > 0 {
				t.Note = fmt.Sprintf("%s had %d errors", g.Kind, g.Errors)
			}
		}
		r.Targets = append(r.Targets, t)
	}
	ts := timestampTarget(r.Timestamp)
	shm := Target{Name: "shm.Reader.Now / time.Now() ns", Value: r.Shm.Ratio, Op: "<=", Goal: goalShmOverNow, Unit: "x"}
	r.Targets = append(r.Targets, ts, shm, ntpTarget(r.NTP))
	for i := range r.Targets {
		r.Targets[i].Status = r.Targets[i].check()
	}
}

// timestampTarget checks the count of callers that reached the highest
// rate.
func timestampTarget(rows []TimestampRow) Target {
	t := Target{Name: "Timestamp with client batching", Op: ">=", Goal: goalTimestamps, Unit: "timestamps/s"}
	keys := make([]float64, len(rows))
	for i, r := range rows {
		keys[i] = r.TimestampsPerSec
	}
	i := best(keys)
	if i < 0 {
		return t
	}
	t.Name = fmt.Sprintf("Timestamp with client batching, %d callers (the best count)", rows[i].Callers)
	t.Value = rows[i].TimestampsPerSec
	if rows[i].Errors > 0 {
		t.Note = fmt.Sprintf("%d errors", rows[i].Errors)
	}
	return t
}

func ntpTarget(rows []NTPRow) Target {
	t := Target{Name: "NTP p50 clockd/chronyd", Op: "<=", Goal: goalNTPOverChrony, Unit: "x"}
	c, y, ok := ntpPair(rows)
	switch {
	case !ok:
		t.Note = "chronyd " + y.Note
	case c.Errors+y.Errors > 0:
		t.Note = fmt.Sprintf("%d clockd and %d chronyd queries failed", c.Errors, y.Errors)
	}
	if ok {
		t.Value = div(c.P50Us, y.P50Us)
	}
	return t
}

// ntpPair returns the clockd and chronyd rows, and whether both were
// measured.
func ntpPair(rows []NTPRow) (clockd, chronyd NTPRow, ok bool) {
	for _, r := range rows {
		switch r.Server {
		case serverClockd:
			clockd = r
		case serverChronyd:
			chronyd = r
		}
	}
	return clockd, chronyd, clockd.Measured && chronyd.Measured
}

func grpcRatios(rows []GRPCRow) []GRPCRatio {
	var out []GRPCRatio
	for _, n := range rows {
		if n.Kind != kindNow {
			continue
		}
		for _, h := range rows {
			if h.Kind != kindHealth || h.Clients != n.Clients {
				continue
			}
			ra := GRPCRatio{Clients: n.Clients, Throughput: div(n.OpsPerSec, h.OpsPerSec)}
			for i := range min(len(n.RoundsOpsPerSec), len(h.RoundsOpsPerSec)) {
				ra.Rounds = append(ra.Rounds, div(n.RoundsOpsPerSec[i], h.RoundsOpsPerSec[i]))
			}
			out = append(out, ra)
		}
	}
	return out
}

// check grades t: a target whose rows are missing or had errors does not
// pass.
func (t Target) check() string {
	switch {
	case t.Value == 0:
		return "NOT MEASURED"
	case t.Note != "":
		return "FAIL"
	case t.Op == "<=" && t.Value <= t.Goal, t.Op == ">=" && t.Value >= t.Goal:
		return "PASS"
	}
	return "FAIL"
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as tables for people.
func (r *Report) WriteText(w io.Writer) error {
	m, s := r.Machine, r.Settings
	fmt.Fprintf(w, "clockd time paths: %d `clockd run` processes on loopback (plaintext gRPC), measured at the leader, node %d\n",
		s.Nodes, r.Leader)
	if r.LeaderChanged {
		fmt.Fprintf(w, "WARNING: node %d was no longer the leader at the end of the run\n", r.Leader)
	}
	fmt.Fprintf(w, "command: %s\n", r.Command)
	fmt.Fprintf(w, "clockd %s; %d CPUs (%s), %s, kernel %s, %s; load average %s at start, %s at end\n",
		m.Clockd, m.CPUs, m.CPUModel, m.OS, m.Kernel, m.Go, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(w, "gRPC, Timestamp and shm: %gs warm-up, then %gs measured; every row: best of %d rounds, noise = (max-min)/max\n\n",
		s.WarmupSec, s.DurationSec, s.Repeat)
	r.writeGRPC(w)
	r.writeTimestamp(w)
	r.writeShm(w)
	r.writeNTP(w)
	fmt.Fprintf(w, "targets\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets {
		note := ""
		if t.Note != "" {
			note = " (" + t.Note + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t(target %s %s)\t%s%s\n", t.Name, fmtValue(t.Value, t.Unit), t.Op, fmtValue(t.Goal, t.Unit), t.Status, note)
	}
	return tw.Flush()
}

func (r *Report) writeGRPC(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "Now against the gRPC health check (grpc_health_v1 Check) of the same server: %d connections from %d loopback\n"+
		"source addresses, shared by both; the API server allows %g calls/s per source address\n", s.Conns, s.Conns, s.APIRatePerSec)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "call\tclients\tcalls/s\tp50 µs\tp99 µs\tcalls/s of each round\tnoise\tbusiest source calls/s\terrors\t")
	for _, g := range r.GRPC {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.1f\t%.1f\t%s\t%.0f%%\t%.0f\t%d\t\n", g.Kind, g.Clients, g.OpsPerSec, g.P50Us, g.P99Us,
			joinf(g.RoundsOpsPerSec, "%.0f"), 100*spread(g.RoundsOpsPerSec), g.BusiestSourcePerSec, g.Errors)
		if g.Kind != kindHealth {
			continue
		}
		for _, ra := range r.Ratios {
			if ra.Clients == g.Clients {
				fmt.Fprintf(tw, "Now/health\t%d\t%.2fx\t\t\t%s\t\t\t\t\n", ra.Clients, ra.Throughput, joinf(ra.Rounds, "%.2fx"))
			}
		}
	}
	tw.Flush()
	for _, g := range r.GRPC {
		if g.FirstError != "" {
			fmt.Fprintf(w, "  first %s error at %s: %s\n", g.Kind, clientsLabel(g.Clients), g.FirstError)
		}
		if g.BusiestSourcePerSec > 0.8*s.APIRatePerSec {
			fmt.Fprintf(w, "  WARNING: %s at %s: one source address made %.0f calls/s, near the API limit; raise --conns\n",
				g.Kind, clientsLabel(g.Clients), g.BusiestSourcePerSec)
		}
	}
	fmt.Fprintln(w)
}

func (r *Report) writeTimestamp(w io.Writer) {
	fmt.Fprintf(w, "Timestamp with client batching: goroutines calling Timestamp on one client.Client (one connection)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "callers\ttimestamps/s\trequests/s\ttimestamps per request\ttimestamps/s of each round\tnoise\terrors\t")
	for _, t := range r.Timestamp {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.1f\t%s\t%.0f%%\t%d\t\n", t.Callers, t.TimestampsPerSec, t.RPCsPerSec, t.AvgBatch,
			joinf(t.RoundsPerSec, "%.0f"), 100*spread(t.RoundsPerSec), t.Errors)
	}
	tw.Flush()
	for _, t := range r.Timestamp {
		if t.FirstError != "" {
			fmt.Fprintf(w, "  first error at %d callers: %s\n", t.Callers, t.FirstError)
		}
	}
	fmt.Fprintln(w)
}

func (r *Report) writeShm(w io.Writer) {
	s := r.Shm
	fmt.Fprintf(w, "shared page read against time.Now(), one goroutine (page %s)\n", s.Path)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "function\tns/call\tns/call of each round\tnoise\t")
	fmt.Fprintf(tw, "%s\t%.1f\t%s\t%.0f%%\t\n", readTimeNow, s.TimeNowNs, joinf(s.RoundsTimeNs, "%.1f"), 100*s.TimeNsSpread)
	fmt.Fprintf(tw, "%s\t%.1f\t%s\t%.0f%%\t\n", readShm, s.ShmNs, joinf(s.RoundsShmNs, "%.1f"), 100*s.ShmNsSpread)
	fmt.Fprintf(tw, "%s/%s\t%.2fx\t%s\t\t\n", readShm, readTimeNow, s.Ratio, joinf(s.RoundsRatios, "%.2fx"))
	fmt.Fprintf(tw, "of it: %s\t%.1f\t%s\t%.0f%%\t\n", readMono, s.MonoNs, joinf(s.RoundsMonoNs, "%.1f"), 100*s.MonoNsSpread)
	tw.Flush()
	fmt.Fprintln(w)
}

func (r *Report) writeNTP(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "NTP query latency: beevik/ntp QueryWithOptions, one query outstanding, %d rounds of %d per server,\n"+
		"alternating; each loopback source address sends %d queries to each server\n", s.Repeat, s.NTPQueries, queriesPerSource)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\taddress\tp50 µs\tp99 µs\tp50 µs of each round\tnoise\tanswers\terrors\t")
	for _, n := range r.NTP {
		if !n.Measured {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t\n", n.Server)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%s\t%.0f%%\t%d\t%d\t\n", n.Server, n.Addr, n.P50Us, n.P99Us,
			joinf(n.RoundsP50, "%.1f"), 100*spread(n.RoundsP50), n.Answers, n.Errors)
	}
	if c, y, ok := ntpPair(r.NTP); ok {
		var rounds []float64
		for i := range min(len(c.RoundsP50), len(y.RoundsP50)) {
			rounds = append(rounds, div(c.RoundsP50[i], y.RoundsP50[i]))
		}
		fmt.Fprintf(tw, "clockd/chronyd\t\t%.2fx\t\t%s\t\t\t\t\n", div(c.P50Us, y.P50Us), joinf(rounds, "%.2fx"))
	}
	tw.Flush()
	for _, n := range r.NTP {
		if !n.Measured {
			fmt.Fprintf(w, "  %s not measured: %s\n", n.Server, n.Note)
		}
		if n.FirstError != "" {
			fmt.Fprintf(w, "  first %s error: %s\n", n.Server, n.FirstError)
		}
	}
	fmt.Fprintln(w)
}

// joinf formats every value and joins them with "/".
func joinf(vs []float64, format string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf(format, v)
	}
	return strings.Join(parts, "/")
}

func fmtValue(v float64, unit string) string {
	switch {
	case v == 0:
		return "-"
	case unit == "x":
		return fmt.Sprintf("%.2fx", v)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}
