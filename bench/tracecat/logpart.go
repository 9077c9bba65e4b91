package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/bench/internal/benchmain"
	"github.com/clockd/clockd/internal/proccluster"
)

// The ordered-log part: append throughput of a 3-node loopback cluster
// (real clockd processes, fsync on) with 100-byte events, against the
// targets of at least 500,000 events/s and a p99 from append to commit of
// at most 50 ms at that rate, with each node's memory. One cluster runs
// two phases, each a 2 s warm-up and a 10 s window:
//
//   - Saturation: --log-clients clients, each a producer that sends a
//     batch of --log-batch events, waits for the answer and sends the
//     next. Its events/s is the cluster's throughput. Its latency is not
//     the target's: with a fixed number of events in flight, latency is
//     that number over the throughput (Little's law), whatever the
//     cluster does.
//   - Paced: the target rate offered, open loop. An Append of
//     --log-paced-batch events is due every batch/500,000 s; up to 64
//     are in flight, and each one's latency counts from when it was due,
//     not from when it was sent, so a cluster that falls behind shows it
//     (no coordinated omission). Every Append due in the window is
//     awaited. Its p99 is the target's.
//
// Events/s counts the events acknowledged as accepted: at saturation by
// appends that started and ended inside the window, paced by appends
// due in it. The leader's last GSN, read at the window's start and end,
// gives the rate independently. RSS is sampled every 100 ms: the table
// gives it at the start and at the end of the window and its peak over
// the window, and the process's lifetime peak (VmHWM). The header names
// the kernel's DAMON monitors when any runs (benchmain.MemoryMonitors): on
// the VM of the results in BENCHMARKS.md, each sampling pass of one
// stopped the whole VM for tens of milliseconds, and those stops set the
// paced p99.
//
// BENCH_LOG_DIR=DIR saves each append's start (or due time) and latency
// (latency.txt at saturation, latency-paced.txt paced) and the nodes'
// logs in DIR; with BENCH_LOG_PROFILE=1 also, for each phase
// in DIR/saturation and DIR/paced, a 5 s CPU profile, a heap profile and
// a 1 s execution trace of each node from the window (clockd run
// --pprof), and a 5 s CPU profile of the clients (clients.cpu.pprof).
const (
	logWarmup       = 2 * time.Second
	logMeasure      = 10 * time.Second
	logTargetRate   = 500_000
	logTargetP99    = 50 * time.Millisecond
	logPacedWorkers = 64 // paced phase: Appends in flight at most
)

func runLogPartReal(ctx context.Context, cfg Config) error {
	dir, err := os.MkdirTemp(cfg.Dir, "bench-eventlog-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	saveDir, profiling := os.Getenv("BENCH_LOG_DIR"), os.Getenv("BENCH_LOG_DIR") != "" && os.Getenv("BENCH_LOG_PROFILE") != ""
	cl, leader, err := startLogCluster(ctx, cfg, dir, profiling)
	if err != nil {
		return err
	}
	defer cl.Stop()

	fmt.Fprintf(cfg.Progress, "saturation: %d clients appending %d-event batches to leader %d for %v after %v warm-up\n",
		cfg.LogClients, cfg.LogBatch, leader.ID, logMeasure, logWarmup)
	sat, err := runLogPhase(ctx, cl, leader, func(w *logWindow) func(int) error {
		return func(i int) error { return w.appendLoop(ctx, cl, leader.ID, i, cfg.LogBatch) }
	}, cfg.LogClients, profiling, phaseDir(saveDir, "saturation"))
	if err != nil {
		return err
	}
	interval := time.Duration(float64(time.Second) * float64(cfg.LogPacedBatch) / float64(logTargetRate))
	fmt.Fprintf(cfg.Progress, "paced: %d-event batches every %v (%d events/s) to leader %d for %v after %v warm-up\n",
		cfg.LogPacedBatch, interval, logTargetRate, leader.ID, logMeasure, logWarmup)
	var due atomic.Int64
	paced, err := runLogPhase(ctx, cl, leader, func(w *logWindow) func(int) error {
		return func(i int) error { return w.pacedLoop(ctx, cl, leader.ID, i, cfg.LogPacedBatch, interval, &due) }
	}, logPacedWorkers, profiling, phaseDir(saveDir, "paced"))
	if err != nil {
		return err
	}
	if saveDir != "" {
		sat.w.save(cl, saveDir)
		os.WriteFile(filepath.Join(saveDir, "latency-paced.txt"), []byte(strings.Join(paced.w.trace, "\n")+"\n"), 0o644)
	}
	printLogPart(cfg, sat, paced, cl, leader)
	return nil
}

// storeBytes is the size of node n's event store (DATA_DIR/events).
func storeBytes(n *proccluster.Node) int64 {
	var total int64
	filepath.WalkDir(filepath.Join(n.DataDir, "events"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// logPhase is one measured window of load on the cluster.
type logPhase struct {
	w          *logWindow
	gsns       uint64 // the leader's GSN advance over the window
	rss        map[uint64]*rssTrace
	clientsCPU time.Duration
}

// runLogPhase runs n clients made by client until the window ends, and
// returns what they saw and what the nodes used.
func runLogPhase(ctx context.Context, cl *proccluster.Cluster, leader *proccluster.Node,
	client func(*logWindow) func(int) error, n int, profiling bool, saveDir string) (*logPhase, error) {
	start := time.Now()
	w := &logWindow{from: start.Add(logWarmup), end: start.Add(logWarmup + logMeasure)}
	mem := sampleRSS(cl, w.from, w.end)
	run := client(w)
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(i); err != nil {
				errc <- err
			}
		}()
	}
	var gsn0, gsn1 uint64
	var self0, self1 time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(time.Until(w.from))
		gsn0, self0 = lastGSN(leader), procCPU(os.Getpid()).cpu
		if profiling {
			profile(cl, saveDir)
		}
		time.Sleep(time.Until(w.end))
		gsn1, self1 = lastGSN(leader), procCPU(os.Getpid()).cpu
	}()
	wg.Wait()
	close(errc)
	rss := mem.stop()
	if err := <-errc; err != nil {
		return nil, err
	}
	return &logPhase{w: w, gsns: gsn1 - gsn0, rss: rss, clientsCPU: self1 - self0}, nil
}

// startLogCluster builds clockd, starts three nodes and waits for them.
func startLogCluster(ctx context.Context, cfg Config, dir string, profiling bool) (*proccluster.Cluster, *proccluster.Node, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintln(cfg.Progress, "building clockd and starting 3 nodes")
	bin, err := proccluster.Build(root, dir)
	if err != nil {
		return nil, nil, err
	}
	args := []string{"--event-compression", cfg.LogCompression}
	if profiling {
		args = append(args, "--pprof")
	}
	cl, err := proccluster.Start(proccluster.Config{Binary: bin, Dir: dir, Nodes: 3, Args: args})
	if err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.WaitSynchronized(wctx); err != nil {
		cl.Stop()
		return nil, nil, err
	}
	c, err := cl.Dial(ctx, 1)
	if err != nil {
		cl.Stop()
		return nil, nil, err
	}
	st, err := c.Status(ctx)
	c.Close()
	if err != nil {
		cl.Stop()
		return nil, nil, err
	}
	return cl, cl.Node(st.LeaderId), nil
}

// logWindow is the measured window and what the clients saw in it.
type logWindow struct {
	from, end time.Time
	events    atomic.Int64 // acknowledged as accepted
	due       atomic.Int64 // paced: Appends due in the window

	mu    sync.Mutex
	lat   []time.Duration
	trace []string // each append: ms into the window, wall time, latency ms
}

// save writes each append's start and latency, and the nodes' logs.
func (w *logWindow) save(cl *proccluster.Cluster, dir string) {
	os.WriteFile(filepath.Join(dir, "latency.txt"), []byte(strings.Join(w.trace, "\n")+"\n"), 0o644)
	for _, n := range cl.Nodes {
		if b, err := os.ReadFile(n.LogPath); err == nil {
			os.WriteFile(filepath.Join(dir, filepath.Base(n.LogPath)), b, 0o644)
		}
	}
}

func printLogPart(cfg Config, sat, paced *logPhase, cl *proccluster.Cluster, leader *proccluster.Node) {
	out := os.Stdout
	row := func(name string, v any) { fmt.Fprintf(out, "%-36s %14v\n", name, v) }
	fmt.Fprintf(out, "\nordered event log: 3 clockd processes on loopback, fsync on, 100-byte events, %v windows, event_compression %s\n",
		logMeasure, cfg.LogCompression)
	for _, mon := range benchmain.MemoryMonitors() {
		fmt.Fprintf(out, "kernel memory monitor: %s\n", mon)
	}
	fmt.Fprintf(out, "\nsaturation: %d clients, each with one %d-event Append in flight\n", cfg.LogClients, cfg.LogBatch)
	satRate := sat.print(row, cl, float64(sat.w.events.Load())/logMeasure.Seconds())
	fmt.Fprintf(out, "\npaced: a %d-event Append due every %v (%d events/s offered), latency from when it was due\n",
		cfg.LogPacedBatch, time.Duration(float64(time.Second)*float64(cfg.LogPacedBatch)/logTargetRate), logTargetRate)
	row("appends due in the window", paced.w.due.Load())
	paced.print(row, cl, float64(paced.w.events.Load())/logMeasure.Seconds())
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	// At the offered rate every due event must be acknowledged; a cluster
	// that falls behind shows it in the latency, which counts from when
	// each Append was due.
	keptUp := paced.w.events.Load() == paced.w.due.Load()*int64(cfg.LogPacedBatch)
	p99 := paced.w.quantile(0.99)
	if n := lastGSN(leader); n > 0 {
		fmt.Fprintf(out, "\nthe leader's event store: %d events, %.1f bytes an event\n", n, float64(storeBytes(leader))/float64(n))
	}
	fmt.Fprintf(out, "\nsaturation throughput %.0f events/s; at %d events/s offered: p99 %v\n", satRate, logTargetRate,
		p99.Round(10*time.Microsecond))
	fmt.Fprintf(out, "target >= %d events/s: %s; target p99 <= %v at that rate: %s\n", logTargetRate,
		verdict(satRate >= logTargetRate), logTargetP99, verdict(keptUp && p99 <= logTargetP99))
}

// quantile is the q-quantile of the window's latencies (sorted by print).
func (w *logWindow) quantile(q float64) time.Duration {
	lat := w.lat
	if len(lat) == 0 {
		return 0
	}
	if !slices.IsSorted(lat) {
		slices.Sort(lat)
	}
	return lat[min(len(lat)-1, int(q*float64(len(lat))))]
}

// print writes the phase's rows and returns its acknowledged events/s.
func (ph *logPhase) print(row func(string, any), cl *proccluster.Cluster, rate float64) float64 {
	w := ph.w
	row("events/s (acknowledged)", fmt.Sprintf("%.0f", rate))
	row("events/s (leader's GSN advance)", fmt.Sprintf("%.0f", float64(ph.gsns)/logMeasure.Seconds()))
	row("MB/s of events", fmt.Sprintf("%.1f", rate*100/1e6))
	row("appends measured", len(w.lat))
	row("append→commit p50", w.quantile(0.50).Round(10*time.Microsecond))
	row("append→commit p99", w.quantile(0.99).Round(10*time.Microsecond))
	row("append→commit max", w.quantile(1).Round(10*time.Microsecond))
	mib := func(kb int) string { return fmt.Sprintf("%.0f", float64(kb)/1024) }
	row("RSS MiB: start / end / peak / HWM", "CPU s, faults, disk B/event")
	var cpu time.Duration
	var written int64
	e := w.events.Load()
	perEvent := func(b int64) string {
		if e == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(b)/float64(e))
	}
	for _, n := range cl.Nodes {
		t := ph.rss[n.ID]
		cpu += t.use1.cpu - t.use0.cpu
		written += t.use1.written - t.use0.written
		row(fmt.Sprintf("  node %d", n.ID), fmt.Sprintf("%s / %s / %s / %s %6.1f %7d %5s", mib(t.start), mib(t.end),
			mib(t.peak), mib(t.hwm), (t.use1.cpu-t.use0.cpu).Seconds(), t.use1.faults-t.use0.faults,
			perEvent(t.use1.written-t.use0.written)))
	}
	row("disk MB/s written, all nodes", fmt.Sprintf("%.1f", float64(written)/logMeasure.Seconds()/1e6))
	row("clients' CPU s", fmt.Sprintf("%.1f", ph.clientsCPU.Seconds()))
	if e > 0 {
		row("nodes' CPU µs per event", fmt.Sprintf("%.2f", float64(cpu.Microseconds())/float64(e)))
	}
	return rate
}

// appendLoop appends batches of n events, one at a time, until the window
// ends, and records those that started and ended in it. The request is
// kept in its wire encoding and refilled for each batch (wireAppend), so
// that the load costs the machine little beside the cluster: each event
// gets the next sequence number of its source and the time its batch was
// filled plus its index in nanoseconds (distinct and increasing, one
// clock read per batch).
func (w *logWindow) appendLoop(ctx context.Context, cl *proccluster.Cluster, leader uint64, client, n int) error {
	c, err := cl.Dial(ctx, leader)
	if err != nil {
		return err
	}
	defer c.Close()
	o := clockdv1.NewOrderingServiceClient(c.Conn())
	req := newWireAppend(fmt.Sprintf("bench-%d", client), n)
	seq := uint64(0)
	for time.Now().Before(w.end) {
		req.fill(&seq, time.Now().UnixNano())
		t0 := time.Now()
		resp, err := appendOnce(ctx, o, req)
		if err != nil {
			return err
		}
		if d := time.Since(t0); t0.After(w.from) && time.Now().Before(w.end) {
			w.record(t0, d, int64(resp.Accepted))
		}
	}
	return nil
}

// pacedLoop is one of the paced phase's workers. Append k (counted
// across all workers by due) is due at the window's warm-up start plus k
// intervals; a worker takes the next k, waits until it is due, sends it
// and records its latency from when it was due, so that an Append sent
// late because every worker was busy counts its wait (no coordinated
// omission). Appends due in the window are all awaited, even those that
// end after it; the workers stop at the first Append due after it. Each
// worker is a source of its own, named apart from the saturation
// clients' so that its sequence numbers are new.
func (w *logWindow) pacedLoop(ctx context.Context, cl *proccluster.Cluster, leader uint64, worker, n int,
	interval time.Duration, next *atomic.Int64) error {
	c, err := cl.Dial(ctx, leader)
	if err != nil {
		return err
	}
	defer c.Close()
	o := clockdv1.NewOrderingServiceClient(c.Conn())
	req := newWireAppend(fmt.Sprintf("paced-%d", worker), n)
	start := w.from.Add(-logWarmup)
	seq := uint64(0)
	for {
		k := next.Add(1) - 1
		due := start.Add(time.Duration(k) * interval)
		if !due.Before(w.end) {
			return nil
		}
		time.Sleep(time.Until(due))
		req.fill(&seq, time.Now().UnixNano())
		resp, err := appendOnce(ctx, o, req)
		if err != nil {
			return err
		}
		if d := time.Since(due); !due.Before(w.from) {
			w.due.Add(1)
			w.record(due, d, int64(resp.Accepted))
		}
	}
}

// record adds one Append of the window: when it started (or was due),
// its latency and the events it had accepted.
func (w *logWindow) record(t0 time.Time, d time.Duration, accepted int64) {
	w.events.Add(accepted)
	w.mu.Lock()
	w.lat = append(w.lat, d)
	w.trace = append(w.trace, fmt.Sprintf("%d %s %.1f", t0.Sub(w.from).Milliseconds(),
		t0.UTC().Format("15:04:05.000"), float64(d.Microseconds())/1000))
	w.mu.Unlock()
}

// lastGSN reads the node's last stored GSN from its metrics.
func lastGSN(n *proccluster.Node) uint64 {
	resp, err := http.Get("http://" + n.MetricsAddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "clockd_event_log_last_gsn "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return uint64(f)
		}
	}
	return 0
}

// rssTrace is one node's resident memory over the window, in KiB, and
// the CPU time it used in the window.
type rssTrace struct {
	start, end, peak, hwm int
	use0, use1            cpuUse
}

type rssSampler struct {
	stopc chan struct{}
	done  chan map[uint64]*rssTrace
}

// sampleRSS samples every node's RSS every 100 ms from now until stop.
func sampleRSS(cl *proccluster.Cluster, from, end time.Time) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan map[uint64]*rssTrace, 1)}
	go func() {
		out := map[uint64]*rssTrace{}
		for _, n := range cl.Nodes {
			out[n.ID] = &rssTrace{}
		}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			now := time.Now()
			for _, n := range cl.Nodes {
				r, hwm := procStatus(n.Pid(), "VmRSS:"), procStatus(n.Pid(), "VmHWM:")
				tr := out[n.ID]
				tr.hwm = max(tr.hwm, hwm)
				if now.Before(from) || now.After(end) {
					continue
				}
				if tr.start == 0 {
					tr.start, tr.use0 = r, procCPU(n.Pid())
				}
				tr.end, tr.peak, tr.use1 = r, max(tr.peak, r), procCPU(n.Pid())
			}
			select {
			case <-s.stopc:
				s.done <- out
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() map[uint64]*rssTrace {
	close(s.stopc)
	return <-s.done
}

// cpuUse is the user and system time a process used, its minor page
// faults, and the bytes it has had written to the disk (write_bytes of
// /proc/PID/io: data the page cache sent to storage on its behalf).
type cpuUse struct {
	cpu     time.Duration
	faults  int64
	written int64
}

func procCPU(pid int) cpuUse {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuUse{}
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return cpuUse{}
	}
	flt, _ := strconv.ParseInt(f[7], 10, 64)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return cpuUse{cpu: time.Duration(ut+st) * 10 * time.Millisecond, faults: flt, // USER_HZ = 100
		written: procWritten(pid)}
}

// procWritten is write_bytes from /proc/PID/io, or 0 when unreadable.
func procWritten(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// procStatus reads a field of /proc/PID/status, in KiB.
func procStatus(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	return 0
}

// phaseDir is the directory, under dir, of one phase's profiles: made
// when dir is set, else "".
func phaseDir(dir, phase string) string {
	if dir == "" {
		return ""
	}
	d := filepath.Join(dir, phase)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return dir
	}
	return d
}

// profile saves a 5 s CPU profile and a heap profile of every node, and
// a 5 s CPU profile of the bench's own process, the clients.
func profile(cl *proccluster.Cluster, dir string) {
	var wg sync.WaitGroup
	if f, err := os.Create(filepath.Join(dir, "clients.cpu.pprof")); err == nil {
		if err := pprof.StartCPUProfile(f); err == nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(5 * time.Second)
				pprof.StopCPUProfile()
				f.Close()
			}()
		} else {
			f.Close()
		}
	}
	for _, n := range cl.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fetch := func(path, name string) {
				resp, err := http.Get("http://" + n.MetricsAddr + path)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				os.WriteFile(filepath.Join(dir, fmt.Sprintf("node%d.%s", n.ID, name)), b, 0o644)
			}
			fetch("/debug/pprof/profile?seconds=5", "cpu.pprof")
			fetch("/debug/pprof/heap", "heap.pprof")
			fetch("/debug/pprof/trace?seconds=1", "trace.out")
		}()
	}
	wg.Wait()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}
