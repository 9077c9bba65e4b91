package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/beevik/ntp"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/internal/proccluster"
	"github.com/clockd/clockd/vclock"
	"github.com/clockd/clockd/vclock/shm"
)

// TestClusterProcesses runs three real clockd processes on loopback. Node
// 3's wall clock is an hour fast: it must be named a falseticker and not
// drag the reference. The leader is killed with SIGKILL under timestamp
// load and restarted; timestamps stay unique and increasing, every node's
// readings stay monotone and contain the true time, and the restarted node
// reads no lower than before it died.
func TestClusterProcesses(t *testing.T) {
	dir := t.TempDir()
	bin, err := proccluster.Build("../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := proccluster.Start(proccluster.Config{Binary: bin, Dir: dir, Nodes: 3,
		WallOffset: map[uint64]time.Duration{3: time.Hour, 1: 20 * time.Millisecond},
		Args:       []string{"--tick-interval", "200ms", "--holdover-after", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := cl.WaitSynchronized(ctx); err != nil {
		t.Fatal(err)
	}
	mon := cl.Monitor(ctx)

	st := status(t, ctx, cl, 1)
	if !slices.Contains(st.Falsetickers, 3) {
		t.Fatalf("node 3's clock is an hour fast, yet the falsetickers are %v", st.Falsetickers)
	}
	checkNTP(t, cl.Node(2))
	checkSharedPage(t, ctx, cl, 2)

	// Timestamps under load while the leader dies.
	leader := st.LeaderId
	var tsMu sync.Mutex
	var stamps []uint64
	tsCtx, stopTS := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, id := range []uint64{1, 2, 3} {
		if id == leader {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := cl.Dial(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for tsCtx.Err() == nil {
				first, err := c.Timestamps(tsCtx, 4)
				if err != nil {
					continue // during the failover
				}
				tsMu.Lock()
				stamps = append(stamps, first, first+1, first+2, first+3)
				tsMu.Unlock()
			}
		}()
	}
	waitCount(t, ctx, &tsMu, &stamps, 200)
	cl.Kill(leader)
	before := mon.Last(leader) // the last reading the dead process gave
	mon.Forget(leader)
	tsMu.Lock()
	atKill := len(stamps)
	tsMu.Unlock()
	waitCount(t, ctx, &tsMu, &stamps, atKill+400) // served by the new leader
	if st := status(t, ctx, cl, otherThan(leader)); st.LeaderId == leader || st.LeaderId == 0 {
		t.Fatalf("no new leader after killing %d: %d", leader, st.LeaderId)
	}
	if err := cl.Start(leader); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitSynchronized(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := cl.Dial(ctx, leader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Now(ctx)
	c.Close()
	if err != nil || r.Time < before.Time {
		t.Fatalf("restarted node %d reads %d (%v), below %d before it died", leader, r.Time, err, before.Time)
	}
	stopTS()
	wg.Wait()
	for _, v := range mon.Stop() {
		t.Error(v)
	}

	slices.Sort(stamps)
	for i := 1; i < len(stamps); i++ {
		if stamps[i] == stamps[i-1] {
			t.Fatalf("timestamp %d was served twice", stamps[i])
		}
	}
	t.Logf("%d timestamps, all unique; %d readings checked", len(stamps), mon.Reads())
}

func otherThan(id uint64) uint64 { return id%3 + 1 }

func status(t *testing.T, ctx context.Context, cl *proccluster.Cluster, id uint64) *clockdv1.StatusResponse {
	t.Helper()
	c, err := cl.Dial(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func waitCount(t *testing.T, ctx context.Context, mu *sync.Mutex, s *[]uint64, n int) {
	t.Helper()
	for ctx.Err() == nil {
		mu.Lock()
		got := len(*s)
		mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling a counter another goroutine fills
	}
	t.Fatalf("waiting for %d timestamps: %v", n, ctx.Err())
}

func checkNTP(t *testing.T, n *proccluster.Node) {
	t.Helper()
	resp, err := ntp.Query(n.NTPAddr)
	if err != nil {
		t.Fatalf("NTP query: %v", err)
	}
	if err := resp.Validate(); err != nil {
		t.Fatalf("NTP answer: %v", err)
	}
	// The reference follows the two good clocks (one 20 ms fast), so the
	// host's real clock is within the reading's bound of it.
	if off := resp.ClockOffset.Abs(); off > resp.RootDistance+resp.RTT {
		t.Fatalf("NTP offset %v beyond root distance %v", resp.ClockOffset, resp.RootDistance)
	}
}

func checkSharedPage(t *testing.T, ctx context.Context, cl *proccluster.Cluster, id uint64) {
	t.Helper()
	r, err := shm.Open(cl.Node(id).ShmPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := cl.Dial(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := r.Now()
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Now()
	if err != nil {
		t.Fatal(err)
	}
	// The page and the API read the same output: the API's reading lies
	// between two page readings taken around it.
	if a.Status != vclock.StatusSynchronized || b.Time < a.Time || p.Time < b.Time {
		t.Fatalf("page %+v, API %+v, page again %+v", a, b, p)
	}
}
