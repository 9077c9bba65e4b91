package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// Config is one benchmark run.
type Config struct {
	Files, PerFile int    // input files (hosts) and events per file
	Repeat         int    // timed runs of each tool; the best counts
	Seed           int64  // of the generated data
	Dir            string // parent of the temporary directory
	Tracecat       string // the binary; "" builds cmd/tracecat
	Part           string // merge, log or all
	KeepData       bool   // leave the temporary directory
	LogClients     int    // log part: concurrent appenders
	LogBatch       int    // log part: events per Append at saturation
	LogPacedBatch  int    // log part: events per Append at the target rate
	LogCompression string // log part: the nodes' event_compression
	Progress       io.Writer
}

// Row is one tool's best run.
type Row struct {
	Tool    string
	Command string
	Bytes   int64 // input
	Events  int64
	Best    time.Duration
	All     []time.Duration
}

// MBps is input MB (10^6 bytes) per second of the best run.
func (r Row) MBps() float64 { return float64(r.Bytes) / 1e6 / r.Best.Seconds() }

// EventsPerSec is input events per second of the best run.
func (r Row) EventsPerSec() float64 { return float64(r.Events) / r.Best.Seconds() }

// Report is the result of the merge part.
type Report struct {
	Files, PerFile int
	Rows           []Row // tracecat, then sort
	Machine        string
}

// Run runs the parts cfg.Part names.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	switch cfg.Part {
	case "merge":
		return runMergePart(ctx, cfg)
	case "log":
		return nil, runLogPart(ctx, cfg)
	case "all":
		rep, err := runMergePart(ctx, cfg)
		if err != nil {
			return nil, err
		}
		// The merge part wrote and deleted gigabytes of files; the log
		// part's fsyncs would wait behind their writeback and the
		// release of their blocks.
		fmt.Fprintln(cfg.Progress, "syncing the disk before the log part ...")
		syscall.Sync()
		return rep, runLogPart(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown part %q", cfg.Part)
}

// runLogPart measures append throughput of the cluster's ordered event
// log (logpart.go).
func runLogPart(ctx context.Context, cfg Config) error { return runLogPartReal(ctx, cfg) }

// runMergePart generates the files, then times tracecat merge and
// LC_ALL=C sort -m over them, interleaved, cfg.Repeat times each, and
// checks both outputs.
func runMergePart(ctx context.Context, cfg Config) (*Report, error) {
	dir, err := os.MkdirTemp(cfg.Dir, "bench-tracecat-")
	if err != nil {
		return nil, err
	}
	if !cfg.KeepData {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintf(cfg.Progress, "data kept in %s\n", dir)
	}
	bin := cfg.Tracecat
	if bin == "" {
		bin = filepath.Join(dir, "tracecat")
		fmt.Fprintln(cfg.Progress, "building tracecat ...")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/clockd/clockd/cmd/tracecat").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build tracecat: %v\n%s", err, out)
		}
	}
	fmt.Fprintf(cfg.Progress, "generating %d files of %d events ...\n", cfg.Files, cfg.PerFile)
	ds, err := generate(dir, cfg.Files, cfg.PerFile, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	out := filepath.Join(dir, "out")
	tracecat := func(dst string) []string {
		return append([]string{bin, "merge", "--output", "jsonl", "--offsets", ds.Offsets, "--no-progress", "-o", dst}, ds.Files...)
	}
	sortCmd := func(dst string) []string { return append([]string{"sort", "-m", "-o", dst}, ds.Files...) }
	rows := []Row{
		{Tool: "tracecat merge", Command: "tracecat merge --output jsonl --offsets offsets.jsonl -o /dev/null hv*.jsonl", Bytes: ds.Bytes, Events: ds.Events},
		{Tool: "LC_ALL=C sort -m", Command: "LC_ALL=C sort -m -o /dev/null hv*.jsonl", Bytes: ds.Bytes, Events: ds.Events},
	}
	tools := []struct {
		argv  func(string) []string
		check func(string, int64) error
	}{{tracecat, checkTracecatOutput}, {sortCmd, checkSortOutput}}
	// One untimed run of each into a file, checked; the timed runs write
	// to /dev/null, so that the disk does not set the pace.
	for i, tool := range tools {
		fmt.Fprintf(cfg.Progress, "checking %s ...\n", rows[i].Tool)
		if _, err := timeCommand(ctx, tool.argv(out)); err != nil {
			return nil, fmt.Errorf("%s: %w", rows[i].Tool, err)
		}
		if err := tool.check(out, ds.Events); err != nil {
			return nil, fmt.Errorf("%s output: %w", rows[i].Tool, err)
		}
		os.Remove(out)
	}
	for rep := 0; rep < cfg.Repeat; rep++ {
		for i, tool := range tools {
			fmt.Fprintf(cfg.Progress, "run %d/%d: %s ...\n", rep+1, cfg.Repeat, rows[i].Tool)
			d, err := timeCommand(ctx, tool.argv(os.DevNull))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rows[i].Tool, err)
			}
			rows[i].All = append(rows[i].All, d)
			if rows[i].Best == 0 || d < rows[i].Best {
				rows[i].Best = d
			}
		}
	}
	return &Report{Files: cfg.Files, PerFile: cfg.PerFile, Rows: rows, Machine: machine()}, nil
}

// timeCommand runs argv with LC_ALL=C and returns its wall time.
func timeCommand(ctx context.Context, argv []string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	return d, nil
}

// checkSortOutput checks that sort's output has every event, in the order
// of the ts fields: the 19 digits after {"ts":.
func checkSortOutput(path string, events int64) error {
	return scanLines(path, events, func(line []byte) ([]byte, error) {
		const prefix = `{"ts":`
		if len(line) < len(prefix)+19 || !bytes.HasPrefix(line, []byte(prefix)) {
			return nil, fmt.Errorf("line without a leading ts: %.60q", line)
		}
		return line[len(prefix) : len(prefix)+19], nil
	})
}

// checkTracecatOutput checks that tracecat's output has every event, in
// the order of their corrected times (ts, fixed-width RFC 3339 in UTC, so
// byte order is time order), and none late or inconsistent.
func checkTracecatOutput(path string, events int64) error {
	return scanLines(path, events, func(line []byte) ([]byte, error) {
		const prefix = `{"ts":"`
		if !bytes.HasPrefix(line, []byte(prefix)) || len(line) < len(prefix)+30 {
			return nil, fmt.Errorf("line without a leading ts: %.60q", line)
		}
		if bytes.Contains(line, []byte(`"late_ns":`)) || bytes.Contains(line, []byte(`"issue":`)) {
			return nil, fmt.Errorf("late or inconsistent event: %.200q", line)
		}
		return line[len(prefix) : len(prefix)+30], nil
	})
}

// scanLines checks that path has want lines whose keys never decrease.
func scanLines(path string, want int64, key func([]byte) ([]byte, error)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var n int64
	var prev []byte
	for sc.Scan() {
		n++
		k, err := key(sc.Bytes())
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if bytes.Compare(k, prev) < 0 {
			return fmt.Errorf("line %d: time %s after %s: out of order", n, k, prev)
		}
		prev = append(prev[:0], k...)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("%d lines, want %d", n, want)
	}
	return nil
}

// machine describes where the run happened.
func machine() string {
	s := fmt.Sprintf("%d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if out, err := exec.Command("sort", "--version").Output(); err == nil {
		first, _, _ := bytes.Cut(out, []byte("\n"))
		s += ", " + string(first)
	}
	return s
}

// WriteText prints the table.
func (r *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "tracecat merge vs LC_ALL=C sort -m: %d JSON-lines files x %d events, best of %d runs each\n",
		r.Files, r.PerFile, len(r.Rows[0].All))
	fmt.Fprintf(&b, "machine: %s\n\n", r.Machine)
	fmt.Fprintf(&b, "%-18s %14s %12s %9s %9s %12s\n", "tool", "bytes", "events", "seconds", "MB/s", "events/s")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "%-18s %14d %12d %9.3f %9.1f %12.0f\n", row.Tool, row.Bytes, row.Events, row.Best.Seconds(), row.MBps(), row.EventsPerSec())
	}
	ratio := r.Rows[1].Best.Seconds() / r.Rows[0].Best.Seconds()
	verdict := "target met"
	if ratio < 1 {
		verdict = "target NOT met"
	}
	fmt.Fprintf(&b, "\nratio tracecat/sort (throughput): %.2f (target >= 1: %s)\n", ratio, verdict)
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "  %s: %s; runs:", row.Tool, row.Command)
		for _, d := range row.All {
			b.WriteString(" " + strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
		}
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}
