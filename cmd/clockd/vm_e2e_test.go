package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/internal/proccluster"
)

// TestVMMigrationProcesses migrates a VM between two real clockd
// processes whose wall clocks disagree (node 1 is 30 ms fast, node 2 30 ms
// slow): once with the VM behind the destination's reference (a long
// pause between freeze and resume), once ahead (a floor 400 ms in the
// future). Each time the destination is killed mid-slew and restarted.
// The VM clock, read from its owner throughout, never decreases, and it
// converges to the reference.
func TestVMMigrationProcesses(t *testing.T) {
	dir := t.TempDir()
	_, cl, ctx := startSynchronized(t, 3*time.Minute, proccluster.Config{Dir: dir, Nodes: 3,
		WallOffset: map[uint64]time.Duration{1: 30 * time.Millisecond, 2: -30 * time.Millisecond},
		Args:       []string{"--tick-interval", "200ms"}})
	mig := func(id uint64) clockdv1.MigrationServiceClient {
		conn, err := grpc.NewClient(cl.Node(id).APIAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return clockdv1.NewMigrationServiceClient(conn)
	}
	src, dst := mig(1), mig(2)
	// 5% slew so a 400 ms offset is absorbed in 8 s; no step.
	pol := &clockdv1.ResumeRequest{MaxSlewPpm: proto.Int64(50_000), MaxLagNanos: proto.Int64(0)}
	for i, c := range []struct {
		name  string
		pause time.Duration
		ahead time.Duration
	}{{"behind", 400 * time.Millisecond, 0}, {"ahead", 0, 400 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			vm := "vm-" + c.name
			reg := proto.Clone(pol).(*clockdv1.ResumeRequest)
			reg.Vm, reg.Generation, reg.RequestId = vm, 1, vm+"-register"
			if _, err := src.Resume(ctx, reg); err != nil {
				t.Fatalf("register on node 1: %v", err)
			}
			before := readVM(t, ctx, src, vm)
			freeze := &clockdv1.FreezeRequest{Vm: vm, Owner: 1, Generation: 1, RequestId: vm + "-freeze"}
			if c.ahead > 0 {
				freeze.VmTimeUnixNano = proto.Int64(before.Reading.TimeUnixNano + int64(c.ahead))
			}
			frozen, err := src.Freeze(ctx, freeze)
			if err != nil {
				t.Fatalf("freeze on node 1: %v", err)
			}
			if frozen.FloorUnixNano < before.Reading.TimeUnixNano {
				t.Fatalf("floor %d is below the VM's last reading %d", frozen.FloorUnixNano, before.Reading.TimeUnixNano)
			}
			time.Sleep(c.pause) // the VM's downtime, which the destination must make up
			res := proto.Clone(pol).(*clockdv1.ResumeRequest)
			res.Vm, res.Generation, res.RequestId = vm, 2, vm+"-resume"
			rec, err := dst.Resume(ctx, res)
			if err != nil {
				t.Fatalf("resume on node 2: %v", err)
			}
			// The same request id from another host is not a retry of
			// this resume: node 3 must not be told it owns the VM. A
			// retry from node 2 gets node 2's answer again.
			if _, err := mig(3).Resume(ctx, res); grpcstatus.Code(err) != codes.FailedPrecondition {
				t.Fatalf("node 3 resumed with node 2's request id: %v", err)
			}
			if again, err := dst.Resume(ctx, res); err != nil || again.Owner != 2 || again.Generation != 2 {
				t.Fatalf("node 2 retried its resume: %v, %v", again, err)
			}
			if _, err := src.Freeze(ctx, &clockdv1.FreezeRequest{Vm: vm, Owner: 1, Generation: 1, RequestId: vm + "-stale",
				VmTimeUnixNano: proto.Int64(frozen.FloorUnixNano + 1)}); err == nil {
				t.Fatal("the old owner froze the VM after it moved")
			}
			first := readVM(t, ctx, dst, vm)
			if first.Reading.TimeUnixNano < rec.FloorUnixNano {
				t.Fatalf("resumed at %d, below the floor %d", first.Reading.TimeUnixNano, rec.FloorUnixNano)
			}
			if c.pause > 0 && first.LagNanos < int64(c.pause)/2 || c.ahead > 0 && first.LagNanos > -int64(c.ahead)/2 {
				t.Fatalf("%s case starts with lag %v", c.name, time.Duration(first.LagNanos))
			}
			last := first.Reading.TimeUnixNano
			deadline := time.Now().Add(time.Minute)
			restarted := false
			for reads := 0; ; reads++ {
				r, err := dst.VMClock(ctx, &clockdv1.VMClockRequest{Vm: vm})
				if err != nil {
					if restarted {
						continue // the destination is coming back
					}
					t.Fatal(err)
				}
				if !r.Served {
					t.Fatalf("node 2 does not serve the VM it owns: %v", r)
				}
				if r.Reading.TimeUnixNano < last {
					t.Fatalf("VM clock went back by %v", time.Duration(last-r.Reading.TimeUnixNano))
				}
				last = r.Reading.TimeUnixNano
				if !restarted && reads == 100 {
					// Mid-slew: kill the destination and bring it back.
					cl.Kill(2)
					if err := cl.Start(2); err != nil {
						t.Fatal(err)
					}
					restarted = true
					dst = mig(2)
				}
				if restarted && r.Converged && r.LagNanos == 0 {
					t.Logf("%s: converged after %d reads; started %v behind", c.name, reads, time.Duration(first.LagNanos))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no convergence: lag %v", time.Duration(r.LagNanos))
				}
			}
			_ = i
		})
	}
}

func readVM(t *testing.T, ctx context.Context, c clockdv1.MigrationServiceClient, vm string) *clockdv1.VMClockResponse {
	t.Helper()
	r, err := c.VMClock(ctx, &clockdv1.VMClockRequest{Vm: vm})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Served {
		t.Fatal(fmt.Sprintf("VM %s not served: owner %d", vm, r.Owner))
	}
	return r
}
