package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/internal/proccluster"
	"github.com/clockd/clockd/vclock"
	"github.com/clockd/clockd/vclock/tso"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "walk through a local 3-node cluster: agreement, timestamps, leader failover, a run-book",
		Description: "Starts three `clockd run` processes on loopback, one with a wall clock an hour\n" +
			"fast; shows the status and each node's reading; takes timestamps; kills the\n" +
			"leader with SIGKILL while clients keep reading, and shows the failover with\n" +
			"every reading still monotone; restarts the node; runs a run-book whose steps\n" +
			"every host runs in the committed order; and stops everything cleanly. It exits\n" +
			"1 if any reading went backwards, any timestamp repeated or the run-book failed.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "directory for the nodes' data and logs (default: temporary)", EnvVars: []string{"CLOCKD_DEMO_DIR"}},
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	if c.Args().Present() {
		return clientUsage(c, "unexpected argument %q (see --help)", c.Args().First())
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	step("starting 3 nodes on loopback; node 3's wall clock is one hour fast")
	cl, shutdown, err := startLocal(ctx, 3, c.String("dir"), []string{"3=1h"}, "--tick-interval", "250ms")
	if err != nil {
		return err
	}
	defer shutdown()
	mon := cl.Monitor(ctx)
	leader, err := demoStatus(ctx, cl, 1)
	if err != nil {
		return err
	}
	step("Now from each node")
	for _, n := range cl.Nodes {
		if err := demoNow(ctx, cl, n.ID); err != nil {
			return err
		}
	}
	step("timestamps: 3 from each node (the leader serves them; followers forward)")
	var stamps []uint64
	for _, n := range cl.Nodes {
		ts, err := demoTimestamps(ctx, cl, n.ID, 3)
		if err != nil {
			return err
		}
		stamps = append(stamps, ts...)
	}
	step(fmt.Sprintf("killing the leader, node %d, with SIGKILL", leader))
	cl.Kill(leader)
	last := mon.Last(leader)
	mon.Forget(leader)
	killed := time.Now()
	survivor := leader%3 + 1
	newLeader, err := waitLeader(ctx, cl, survivor, leader)
	if err != nil {
		return err
	}
	fmt.Printf("  node %d leads after %v\n", newLeader, time.Since(killed).Round(time.Millisecond))
	ts, err := demoTimestamps(ctx, cl, survivor, 3)
	if err != nil {
		return err
	}
	stamps = append(stamps, ts...)
	for _, n := range cl.Nodes {
		if n.ID != leader {
			if err := demoNow(ctx, cl, n.ID); err != nil {
				return err
			}
		}
	}
	step(fmt.Sprintf("restarting node %d: it resumes no lower than its last reading", leader))
	if err := cl.Start(leader); err != nil {
		return err
	}
	if err := cl.WaitSynchronized(ctx); err != nil {
		return err
	}
	r, err := readNow(ctx, cl, leader)
	if err != nil {
		return err
	}
	fmt.Printf("  before the kill: %s\n  after restart:   %s\n", fmtTime(last.Time), fmtTime(r.Time))
	if _, err := demoStatus(ctx, cl, leader); err != nil {
		return err
	}
	step("a run-book: each host reports in, all meet at a barrier, then node 2 and node 1 act in turn")
	bookOK, err := demoRunbook(ctx, cl)
	if err != nil {
		return err
	}
	violations := mon.Stop()
	step("summary")
	fmt.Printf("  %d readings checked while the leader died and came back\n", mon.Reads())
	sorted := slices.Clone(stamps)
	slices.Sort(sorted)
	unique := len(slices.Compact(sorted)) == len(stamps) && slices.IsSorted(stamps)
	fmt.Printf("  %d timestamps, increasing and unique: %v\n", len(stamps), unique)
	for _, v := range violations {
		fmt.Println("  VIOLATION:", v)
	}
	if r.Time < last.Time {
		violations = append(violations, "restarted node read lower than before")
	}
	step("stopping")
	if !bookOK {
		violations = append(violations, "the run-book did not succeed")
	}
	if len(violations) > 0 || !unique {
		return cli.Exit("demo found a violation", 1)
	}
	fmt.Println("  every reading monotone; clean stop")
	return nil
}

func step(s string) { fmt.Printf("\n== %s\n", s) }

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format("15:04:05.000000000") }

func readNow(ctx context.Context, cl *proccluster.Cluster, id uint64) (vclock.Reading, error) {
	c, err := cl.Dial(ctx, id)
	if err != nil {
		return vclock.Reading{}, err
	}
	defer c.Close()
	return c.Now(ctx)
}

func demoNow(ctx context.Context, cl *proccluster.Cluster, id uint64) error {
	r, err := readNow(ctx, cl, id)
	if err != nil {
		return err
	}
	fmt.Printf("  node %d: %s ±%-12v %v\n", id, fmtTime(r.Time), time.Duration(r.Uncertainty()), r.Status)
	return nil
}

func demoTimestamps(ctx context.Context, cl *proccluster.Cluster, id uint64, n uint32) ([]uint64, error) {
	c, err := cl.Dial(ctx, id)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	first, err := c.Timestamps(ctx, n)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for i := range uint64(n) {
		ts := first + i
		fmt.Printf("  via node %d: %d  (%s + %d)\n", id, ts,
			time.UnixMilli(int64(tso.Physical(ts))).UTC().Format("15:04:05.000"), tso.Logical(ts))
		out = append(out, ts)
	}
	return out, nil
}

// demoStatus prints node id's view of the cluster and returns the leader.
func demoStatus(ctx context.Context, cl *proccluster.Cluster, id uint64) (uint64, error) {
	c, err := cl.Dial(ctx, id)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return 0, err
	}
	step(fmt.Sprintf("status from node %d", id))
	fmt.Printf("  leader %d, %d members, falsetickers %v, last tick #%d\n", st.LeaderId, len(st.Members),
		st.Falsetickers, st.LastTickSeq)
	r := st.Reference.VClock()
	fmt.Printf("  reference %s ±%v %v; this host's wall clock is %v off\n", fmtTime(r.Time),
		time.Duration(r.Uncertainty()), r.Status, time.Duration(st.LocalOffsetNanos).Round(time.Microsecond))
	return st.LeaderId, nil
}

// waitLeader polls node via until it names a leader other than old.
func waitLeader(ctx context.Context, cl *proccluster.Cluster, via, old uint64) (uint64, error) {
	c, err := cl.Dial(ctx, via)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		st, err := c.Status(ctx)
		if err == nil && st.LeaderId != 0 && st.LeaderId != old {
			return st.LeaderId, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no new leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// demoRunbook submits a small run-book through node 3, waits for it on
// node 1 and prints where each step ran and under which fencing token.
func demoRunbook(ctx context.Context, cl *proccluster.Cluster) (bool, error) {
	echo := []string{"/bin/sh", "-c", `echo "node $CLOCKD_NODE_ID ran $CLOCKD_STEP under token $CLOCKD_FENCING_TOKEN"`}
	book := &clockdv1.Book{Id: "demo", Steps: []*clockdv1.BookStep{
		{Id: "report-in", Argv: echo}, // every voting member
		{Id: "all-here", DependsOn: []string{"report-in"}},
		{Id: "first", Hosts: []uint64{2}, Argv: echo, DependsOn: []string{"all-here"}},
		{Id: "second", Hosts: []uint64{1}, Argv: echo, DependsOn: []string{"first"}},
	}}
	sub, err := cl.Dial(ctx, 3)
	if err != nil {
		return false, err
	}
	defer sub.Close()
	if _, err := clockdv1.NewRunbookServiceClient(sub.Conn()).Submit(ctx, book); err != nil {
		return false, err
	}
	fmt.Println("  submitted through node 3")
	c, err := cl.Dial(ctx, 1)
	if err != nil {
		return false, err
	}
	defer c.Close()
	st, err := clockdv1.NewRunbookServiceClient(c.Conn()).Wait(ctx,
		&clockdv1.WaitRunbookRequest{Id: "demo", TimeoutNanos: int64(time.Minute)})
	if err != nil {
		return false, err
	}
	for i, s := range st.Book.Steps {
		for _, r := range st.Steps[i].Runs {
			what := strings.TrimSpace(r.OutputTail)
			if len(s.Argv) == 0 {
				what = fmt.Sprintf("node %d reached the barrier %s", r.Host, s.Id)
			}
			fmt.Printf("  token %2d  %-9s  %s\n", r.Token, runbookState(r.State), what)
		}
	}
	fmt.Printf("  run-book %s (node 1's view)\n", runbookBookState(st.State))
	return st.State == clockdv1.RunbookState_RUNBOOK_STATE_SUCCEEDED, nil
}
