package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/ntp"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

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
	_, cl, ctx := startSynchronized(t, 3*time.Minute, proccluster.Config{Dir: dir, Nodes: 3,
		WallOffset: map[uint64]time.Duration{3: time.Hour, 1: 20 * time.Millisecond},
		Args:       []string{"--tick-interval", "200ms", "--holdover-after", "2s"}})
	mon := cl.Monitor(ctx)

	st := status(t, ctx, cl, 1)
	if !slices.Contains(st.Falsetickers, 3) {
		t.Fatalf("node 3's clock is an hour fast, yet the falsetickers are %v", st.Falsetickers)
	}
	checkNTP(t, cl.Node(2))
	checkMetrics(t, cl.Node(st.LeaderId))
	checkSharedPage(t, ctx, cl, 2)
	checkSecondInstance(t, ctx, cl, 2)

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

// checkMetrics scrapes the leader's /metrics for the series operators
// alert on.
func checkMetrics(t *testing.T, n *proccluster.Node) {
	t.Helper()
	resp, err := http.Get("http://" + n.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clockd_status 2", "clockd_is_leader 1", `clockd_falseticker{host="3"} 1`,
		"clockd_commit_latency_seconds_count", "clockd_tick_age_seconds", "clockd_uncertainty_seconds",
		"clockd_leader_changes_total", "clockd_slew_in_progress",
		`clockd_ticks_total{result="committed"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	_, rest, _ := strings.Cut(string(body), `clockd_host_offset_seconds{host="3"} `)
	line, _, _ := strings.Cut(rest, "\n")
	if off, err := strconv.ParseFloat(line, 64); err != nil || off < 3599.8 || off > 3600.2 {
		t.Errorf("node 3's offset reads %q, want about 3600 s", line)
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

// checkSecondInstance starts a second clockd with node id's command line:
// it must be refused for the data directory in use, and leave the running
// node's shared page and ingest socket as they were.
func checkSecondInstance(t *testing.T, ctx context.Context, cl *proccluster.Cluster, id uint64) {
	t.Helper()
	out, err := cl.Command(id).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "data_dir is in use by another clockd") {
		t.Fatalf("a second clockd on node %d's data directory: %v\n%s", id, err, out)
	}
	checkSharedPage(t, ctx, cl, id)
	c, err := net.Dial("unix", filepath.Join(cl.Node(id).DataDir, "ingest.sock"))
	if err != nil {
		t.Fatalf("node %d's ingest socket after a second clockd was refused: %v", id, err)
	}
	c.Close()
}

// TestClusterMutualTLS runs the production set-up: every peer link and
// every API call over mutual TLS from one CA made by clockd certs, with
// roles taken from the certificates.
func TestClusterMutualTLS(t *testing.T) {
	dir := t.TempDir()
	_, cl, ctx := startSynchronized(t, 2*time.Minute, proccluster.Config{Dir: dir, Nodes: 3, TLS: true,
		Args: []string{"--tick-interval", "200ms"}})
	st := status(t, ctx, cl, 2) // as admin
	if len(st.Members) != 3 || st.LeaderId == 0 {
		t.Fatalf("status over mTLS: %v", st)
	}
	host, err := cl.DialAs(ctx, 1, "host-hv1")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.Now(ctx); err != nil {
		t.Fatalf("a host may read the time: %v", err)
	}
	if err := host.AddMember(ctx, 9, "127.0.0.1:1", false); grpcstatus.Code(err) != codes.PermissionDenied {
		t.Fatalf("a host changed the membership: %v", err)
	}
	anon, err := cl.DialAs(ctx, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.Now(ctx); grpcstatus.Code(err) != codes.Unauthenticated {
		t.Fatalf("a client without a certificate read the time: %v", err)
	}
	// VM changes: a host acts only for itself.
	mig := host.Migration()
	if _, err := mig.Resume(ctx, &clockdv1.ResumeRequest{Vm: "vm-tls", Generation: 1, RequestId: "r1"}); grpcstatus.Code(err) != codes.PermissionDenied {
		t.Fatalf("host hv1's certificate resumed a VM on node 1: %v", err)
	}
	node1, err := cl.DialAs(ctx, 1, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	defer node1.Close()
	if _, err := node1.Migration().Resume(ctx, &clockdv1.ResumeRequest{Vm: "vm-tls", Generation: 1, RequestId: "r1"}); err != nil {
		t.Fatalf("node 1 registering a VM on itself: %v", err)
	}
	node2, err := cl.DialAs(ctx, 2, "node-2")
	if err != nil {
		t.Fatal(err)
	}
	defer node2.Close()
	_, err = node2.Migration().Freeze(ctx, &clockdv1.FreezeRequest{Vm: "vm-tls", Owner: 1, Generation: 1, RequestId: "f1",
		VmTimeUnixNano: proto.Int64(time.Now().UnixNano())})
	if grpcstatus.Code(err) != codes.PermissionDenied {
		t.Fatalf("node 2's certificate froze node 1's VM: %v", err)
	}
	admin, err := cl.Dial(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	target := otherThan(st.LeaderId)
	if err := admin.TransferLeader(ctx, target); err != nil {
		t.Fatalf("transfer to %d: %v", target, err)
	}
	// The old leader has stepped down; the target campaigns at once.
	if got, err := waitLeader(ctx, cl, target, st.LeaderId); err != nil || got != target {
		t.Fatalf("after the transfer to %d the leader is %d (%v)", target, got, err)
	}
	if _, err := admin.Timestamps(ctx, 10); err != nil {
		t.Fatalf("timestamps after the transfer: %v", err)
	}
}
