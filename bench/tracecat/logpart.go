package main

import (
	"context"
	"fmt"
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
// at most 50 ms, with each node's peak RSS.
const (
	logClients       = 8
	logBatch         = 2000
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
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	fmt.Fprintln(cfg.Progress, "building clockd and starting 3 nodes")
	bin, err := proccluster.Build(root, dir)
	if err != nil {
		return err
	}
	cl, err := proccluster.Start(proccluster.Config{Binary: bin, Dir: dir, Nodes: 3})
	if err != nil {
		return err
	}
	defer cl.Stop()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.WaitSynchronized(wctx); err != nil {
		return err
	}
	c, err := cl.Dial(ctx, 1)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	c.Close()
	if err != nil {
		return err
	}
	leader := st.LeaderId
	fmt.Fprintf(cfg.Progress, "%d clients appending %d-event batches to leader %d for %v after %v warm-up\n",
		logClients, logBatch, leader, logMeasure, logWarmup)

	var events atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	measureFrom, end := start.Add(logWarmup), start.Add(logWarmup+logMeasure)
	var wg sync.WaitGroup
	errc := make(chan error, logClients)
	for i := range logClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := appendLoop(ctx, cl, leader, i, measureFrom, end, &events, &mu, &lat); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	rate := float64(events.Load()) / logMeasure.Seconds()
	slices.Sort(lat)
	p := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	out := os.Stdout
	fmt.Fprintf(out, "\nordered event log: 3 clockd processes on loopback, fsync on, %d clients, %d events per Append\n",
		logClients, logBatch)
	fmt.Fprintf(out, "%-28s %14s\n", "events/s (committed)", fmt.Sprintf("%.0f", rate))
	fmt.Fprintf(out, "%-28s %14s\n", "MB/s of events", fmt.Sprintf("%.1f", rate*100/1e6))
	fmt.Fprintf(out, "%-28s %14v\n", "append→commit p50", p(0.50).Round(10*time.Microsecond))
	fmt.Fprintf(out, "%-28s %14v\n", "append→commit p99", p(0.99).Round(10*time.Microsecond))
	for _, n := range cl.Nodes {
		fmt.Fprintf(out, "%-28s %14s\n", fmt.Sprintf("node %d peak RSS", n.ID), peakRSS(n.Pid()))
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(out, "target >= %d events/s: %s; target p99 <= %v: %s\n", logTargetRate,
		verdict(rate >= logTargetRate), logTargetP99, verdict(p(0.99) <= logTargetP99))
	return nil
}

func appendLoop(ctx context.Context, cl *proccluster.Cluster, leader uint64, client int, from, end time.Time,
	events *atomic.Int64, mu *sync.Mutex, lat *[]time.Duration) error {
	c, err := cl.Dial(ctx, leader)
	if err != nil {
		return err
	}
	defer c.Close()
	o := clockdv1.NewOrderingServiceClient(c.Conn())
	name := strings.Repeat("x", logEventNameSize)
	source := fmt.Sprintf("bench-%d", client)
	seq := uint64(0)
	for time.Now().Before(end) {
		req := &clockdv1.AppendRequest{Events: make([]*clockdv1.Event, logBatch)}
		now := time.Now().UnixNano()
		for i := range req.Events {
			seq++
			req.Events[i] = &clockdv1.Event{Host: "bench", Source: source, SourceSeq: seq, LocalUnixNano: now,
				Kind: "log", Name: name}
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
		if t0.After(from) && time.Now().Before(end) {
			events.Add(int64(resp.Accepted))
			mu.Lock()
			*lat = append(*lat, d)
			mu.Unlock()
		}
	}
	return nil
}

// peakRSS reads VmHWM of a process.
func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "?"
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}
