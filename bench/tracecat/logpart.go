package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/internal/proccluster"
)

// The ordered-log part: append throughput of a 3-node loopback cluster
// (real clockd processes, fsync on) with 100-byte events, against the
// targets of at least 500,000 events/s and a p99 from append to commit of
// at most 50 ms, with each node's memory.
//
// Each client is one producer: it sends a batch, waits for the answer,
// and sends the next. Events/s counts the events acknowledged as
// accepted by appends that started and ended inside the measured window;
// the leader's last GSN, read at the window's start and end, gives the
// same rate independently. Latency is taken over every append of the
// window. RSS is sampled every 100 ms: the table gives it at the start
// and at the end of the window and its peak over the window, and the
// process's lifetime peak (VmHWM).
//
// BENCH_LOG_DIR=DIR saves each append's start and latency and the nodes'
// logs in DIR; with BENCH_LOG_PROFILE=1 also a 5 s CPU profile, a heap
// profile and a 1 s execution trace of each node from the window (clockd
// run --pprof).
const (
	logWarmup        = 2 * time.Second
	logMeasure       = 10 * time.Second
	logTargetRate    = 500_000
	logTargetP99     = 50 * time.Millisecond
	logEventNameSize = 60 // with host, source and kind: about 100 bytes an event
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
	fmt.Fprintf(cfg.Progress, "%d clients appending %d-event batches to leader %d for %v after %v warm-up\n",
		cfg.LogClients, cfg.LogBatch, leader.ID, logMeasure, logWarmup)
	start := time.Now()
	w := &logWindow{from: start.Add(logWarmup), end: start.Add(logWarmup + logMeasure)}
	mem := sampleRSS(cl, w.from, w.end)
	var wg sync.WaitGroup
	errc := make(chan error, cfg.LogClients)
	for i := range cfg.LogClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.appendLoop(ctx, cl, leader.ID, i, cfg.LogBatch); err != nil {
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
	if err := <-errc; err != nil {
		return err
	}
	rss := mem.stop()
	if saveDir != "" {
		w.save(cl, saveDir)
	}
	printLogPart(cfg, w, gsn1-gsn0, cl, rss, self1-self0)
	return nil
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
	var args []string
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

func printLogPart(cfg Config, w *logWindow, gsns uint64, cl *proccluster.Cluster, rss map[uint64]*rssTrace,
	clientsCPU time.Duration) {
	events, lat := w.events.Load(), w.lat
	rate := float64(events) / logMeasure.Seconds()
	slices.Sort(lat)
	p := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	out := os.Stdout
	fmt.Fprintf(out, "\nordered event log: 3 clockd processes on loopback, fsync on, %d clients, %d events per Append\n",
		cfg.LogClients, cfg.LogBatch)
	row := func(name string, v any) { fmt.Fprintf(out, "%-34s %14v\n", name, v) }
	row("events/s (acknowledged)", fmt.Sprintf("%.0f", rate))
	row("events/s (leader's GSN advance)", fmt.Sprintf("%.0f", float64(gsns)/logMeasure.Seconds()))
	row("MB/s of events", fmt.Sprintf("%.1f", rate*100/1e6))
	row("appends measured", len(lat))
	row("append→commit p50", p(0.50).Round(10*time.Microsecond))
	row("append→commit p99", p(0.99).Round(10*time.Microsecond))
	row("append→commit max", p(1).Round(10*time.Microsecond))
	mib := func(kb int) string { return fmt.Sprintf("%.0f", float64(kb)/1024) }
	fmt.Fprintf(out, "%-34s %14s\n", "RSS MiB: start / end / peak / HWM", "CPU s, faults")
	var cpu time.Duration
	for _, n := range cl.Nodes {
		t := rss[n.ID]
		cpu += t.use1.cpu - t.use0.cpu
		row(fmt.Sprintf("  node %d", n.ID), fmt.Sprintf("%s / %s / %s / %s %6.1f %7d", mib(t.start), mib(t.end),
			mib(t.peak), mib(t.hwm), (t.use1.cpu-t.use0.cpu).Seconds(), t.use1.faults-t.use0.faults))
	}
	row("clients' CPU s", fmt.Sprintf("%.1f", clientsCPU.Seconds()))
	if events > 0 {
		row("nodes' CPU µs per event", fmt.Sprintf("%.2f", float64(cpu.Microseconds())/float64(events)))
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(out, "target >= %d events/s: %s; target p99 <= %v: %s\n", logTargetRate,
		verdict(rate >= logTargetRate), logTargetP99, verdict(p(0.99) <= logTargetP99))
}

// appendLoop appends batches of n events, one at a time, until the window
// ends, and records those that started and ended in it. The request and
// its events are made once and refilled for each batch, as a lean client
// would, so that the load costs the machine little beside the cluster:
// each event gets the next sequence number of its source and the time
// its batch was filled plus its index in nanoseconds (distinct and
// increasing, one clock read per batch).
func (w *logWindow) appendLoop(ctx context.Context, cl *proccluster.Cluster, leader uint64, client, n int) error {
	c, err := cl.Dial(ctx, leader)
	if err != nil {
		return err
	}
	defer c.Close()
	o := clockdv1.NewOrderingServiceClient(c.Conn())
	name := strings.Repeat("x", logEventNameSize)
	source := fmt.Sprintf("bench-%d", client)
	req := &clockdv1.AppendRequest{Events: make([]*clockdv1.Event, n)}
	events := make([]clockdv1.Event, n)
	for i := range req.Events {
		events[i] = clockdv1.Event{Host: "bench", Source: source, Kind: "log", Name: name}
		req.Events[i] = &events[i]
	}
	seq := uint64(0)
	for time.Now().Before(w.end) {
		now := time.Now().UnixNano()
		for i, e := range req.Events {
			seq++
			e.SourceSeq, e.LocalUnixNano = seq, now+int64(i)
		}
		t0 := time.Now()
		st, err := o.Append(ctx)
		if err != nil {
			return err
		}
		if err := st.Send(req); err != nil {
			return err
		}
		resp, err := st.CloseAndRecv()
		if err != nil {
			return err
		}
		d := time.Since(t0)
		if t0.After(w.from) && time.Now().Before(w.end) {
			w.events.Add(int64(resp.Accepted))
			w.mu.Lock()
			w.lat = append(w.lat, d)
			w.trace = append(w.trace, fmt.Sprintf("%d %s %.1f", t0.Sub(w.from).Milliseconds(),
				t0.UTC().Format("15:04:05.000"), float64(d.Microseconds())/1000))
			w.mu.Unlock()
		}
	}
	return nil
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

// cpuUse is the user and system time a process used, and its minor page
// faults.
type cpuUse struct {
	cpu    time.Duration
	faults int64
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
	return cpuUse{cpu: time.Duration(ut+st) * 10 * time.Millisecond, faults: flt} // USER_HZ = 100
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

// profile saves a 5 s CPU profile and a heap profile of every node.
func profile(cl *proccluster.Cluster, dir string) {
	var wg sync.WaitGroup
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
