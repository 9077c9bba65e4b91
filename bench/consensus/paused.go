package main

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// catchUpTimeout bounds the wait for a resumed follower to catch up.
const catchUpTimeout = 3 * time.Minute

// Paused is the paused-follower scenario of one engine: one follower is
// stopped with SIGSTOP for the whole load run, then resumed.
type Paused struct {
	Engine        string   `json:"engine"`
	Clients       int      `json:"clients"`
	PauseSec      float64  `json:"pause_sec"`
	Leader        uint64   `json:"leader"`
	PausedNode    uint64   `json:"paused_node"`
	Ops           uint64   `json:"ops"`
	Errors        uint64   `json:"errors"`
	FirstError    string   `json:"first_error,omitempty"`
	OpsPerSec     float64  `json:"ops_per_sec"`
	P99Us         float64  `json:"p99_us"`
	RSSStartKB    uint64   `json:"leader_rss_start_kb"` // VmRSS as the pause began
	RSSEndKB      uint64   `json:"leader_rss_end_kb"`   // VmRSS as it ended
	RSSMaxKB      uint64   `json:"leader_rss_max_kb"`   // largest VmRSS sampled, once a second
	RSSSeriesKB   []uint64 `json:"leader_rss_series_kb"`
	CaughtUp      bool     `json:"caught_up"`
	CatchUpSec    float64  `json:"catch_up_sec"`
	CatchUpTarget uint64   `json:"catch_up_index"` // the leader's applied index when the pause ended
}

// paused runs the scenario on a fresh cluster.
func (b *bench) paused(ctx context.Context, eng string) (Paused, error) {
	what := fmt.Sprintf("%s paused follower", engineLabel(eng))
	cl, leader, err := b.cluster(ctx, eng, what)
	if err != nil {
		return Paused{}, err
	}
	defer cl.close()
	follower := uint64(1)
	if follower == leader {
		follower = 2
	}
	p := Paused{Engine: eng, Clients: b.cfg.PauseClients, PauseSec: b.cfg.PauseDuration.Seconds(),
		Leader: leader, PausedNode: follower}
	if err := cl.node(follower).signal(syscall.SIGSTOP); err != nil {
		return p, err
	}
	b.progress("%s: node %d stopped (SIGSTOP); %d clients for %v at leader %d", what, follower, p.Clients, b.cfg.PauseDuration, leader)
	sampler := startRSSSampler(cl.node(leader).pid(), time.Second)
	m, err := cl.load(ctx, leader, loadSpec{Clients: p.Clients, Duration: b.cfg.PauseDuration})
	series := sampler.stop()
	if err != nil {
		return p, err
	}
	p.Ops, p.Errors, p.FirstError = m.res.Ops, m.res.Errors, m.res.FirstError
	p.OpsPerSec, p.P99Us = m.res.OpsPerSec(), float64(m.res.P99Ns)/1e3
	p.RSSSeriesKB = series
	if len(series) > 0 {
		p.RSSStartKB, p.RSSEndKB = series[0], series[len(series)-1]
		p.RSSMaxKB = maxOf(series)
	}
	st, err := cl.status(ctx, leader)
	if err != nil {
		return p, err
	}
	p.CatchUpTarget = st.Applied
	if err := cl.node(follower).signal(syscall.SIGCONT); err != nil {
		return p, err
	}
	b.progress("%s: %.0f ops/s; leader RSS %.1f -> %.1f MiB; node %d resumed, catching up to index %d",
		what, p.OpsPerSec, mib(p.RSSStartKB), mib(p.RSSEndKB), follower, st.Applied)
	t0 := time.Now()
	p.CaughtUp, err = cl.waitApplied(ctx, follower, st.Applied, catchUpTimeout)
	p.CatchUpSec = time.Since(t0).Seconds()
	switch {
	case err != nil:
	case p.CaughtUp:
		b.progress("%s: node %d caught up in %.1fs", what, follower, p.CatchUpSec)
	default:
		b.progress("%s: node %d did not catch up within %v", what, follower, catchUpTimeout)
	}
	return p, err
}

// waitApplied polls node id until it has applied index, or timeout.
func (cl *cluster) waitApplied(ctx context.Context, id, index uint64, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := cl.status(ctx, id)
		if err != nil {
			return false, err
		}
		if st.Applied >= index {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick.C:
		}
	}
}

// rssSampler reads a process's VmRSS at start, every interval, and at stop.
type rssSampler struct {
	quit chan struct{}
	done chan []uint64
}

func startRSSSampler(pid int, interval time.Duration) *rssSampler {
	s := &rssSampler{quit: make(chan struct{}), done: make(chan []uint64, 1)}
	go func() {
		var series []uint64
		sample := func() {
			if m, err := procMem(pid); err == nil {
				series = append(series, m.RSS)
			}
		}
		sample()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				sample()
			case <-s.quit:
				sample()
				s.done <- series
				return
			}
		}
	}()
	return s
}

// stop takes the last sample and returns them all, oldest first.
func (s *rssSampler) stop() []uint64 {
	close(s.quit)
	return <-s.done
}

func maxOf(xs []uint64) uint64 {
	var m uint64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func mib(kb uint64) float64 { return float64(kb) / 1024 }
