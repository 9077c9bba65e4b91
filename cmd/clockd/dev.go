package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/internal/devcluster"
)

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a local consensus cluster in this process and exercise it",
		Description: "Starts --nodes replicas on loopback (real gRPC, bolt files with fsync), runs\n" +
			"--clients concurrent proposers for --duration, kills the leader a third of the\n" +
			"way in and restarts it at two thirds, then checks that every node applied the\n" +
			"same commands in the same order.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 3, Usage: "number of acceptors", EnvVars: []string{"CLOCKD_DEV_NODES"}},
			&cli.IntFlag{Name: "clients", Value: 16, Usage: "concurrent proposers", EnvVars: []string{"CLOCKD_DEV_CLIENTS"}},
			&cli.DurationFlag{Name: "duration", Value: 9 * time.Second, Usage: "how long clients propose"},
			&cli.StringFlag{Name: "dir", Usage: "data directory (default: a new temporary directory, removed at exit)"},
		},
		Action: runDev,
	}
}

// digestSM counts applied commands and chains their hash, so two nodes
// that applied the same sequence have the same digest.
type digestSM struct {
	mu     sync.Mutex
	count  uint64
	digest uint64
}

func (s *digestSM) Apply(slot uint64, cmd []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := fnv.New64a()
	fmt.Fprintf(h, "%d:", s.digest)
	h.Write(cmd)
	s.digest = h.Sum64()
	s.count++
	return s.count
}

func (s *digestSM) Snapshot(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return binary.Write(w, binary.LittleEndian, [2]uint64{s.count, s.digest})
}

func (s *digestSM) Restore(r io.Reader) error {
	var v [2]uint64
	if err := binary.Read(r, binary.LittleEndian, &v); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count, s.digest = v[0], v[1]
	return nil
}

func (s *digestSM) state() (uint64, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, s.digest
}

func runDev(c *cli.Context) error {
	nodes, clients, duration := c.Int("nodes"), c.Int("clients"), c.Duration("duration")
	if nodes < 1 || nodes > 9 {
		return fmt.Errorf("--nodes %d: want 1 to 9", nodes)
	}
	if clients < 1 {
		return fmt.Errorf("--clients %d: want at least 1", clients)
	}
	if duration < 3*time.Second {
		return fmt.Errorf("--duration %v: want at least 3s", duration)
	}
	dir := c.String("dir")
	if dir == "" {
		tmp, err := os.MkdirTemp("", "clockd-dev")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()

	cl, err := devcluster.Start(devcluster.Config{Nodes: nodes, Dir: dir,
		NewStateMachine: func(consensus.NodeID) driver.StateMachine { return &digestSM{} }})
	if err != nil {
		return err
	}
	defer cl.Close()
	fmt.Printf("started %d nodes in %s\n", nodes, dir)

	var acked atomic.Int64
	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			propose(load, cl, i, &acked)
		}()
	}
	err = narrate(ctx, cl, duration, &acked)
	stopLoad()
	wg.Wait()
	if err != nil {
		return err
	}
	return verify(ctx, cl, acked.Load())
}

// propose keeps one command in flight, at whichever node leads.
func propose(ctx context.Context, cl *devcluster.Cluster, client int, acked *atomic.Int64) {
	for seq := 0; ctx.Err() == nil; {
		n := cl.Leader()
		if n == nil {
			waitABit(ctx)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := n.Replica.Propose(pctx, fmt.Appendf(nil, "client-%d-cmd-%d", client, seq))
		cancel()
		if err == nil {
			acked.Add(1)
			seq++
			continue
		}
		var nl *consensus.NotLeaderError
		if !errors.As(err, &nl) && !errors.Is(err, driver.ErrOutcomeUnknown) && !errors.Is(err, driver.ErrStopped) && ctx.Err() == nil {
			fmt.Printf("client %d: %v\n", client, err)
		}
		waitABit(ctx)
	}
}

func waitABit(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Millisecond):
	}
}

// narrate prints progress every second, kills the leader a third of the way
// in and restarts it at two thirds.
func narrate(ctx context.Context, cl *devcluster.Cluster, duration time.Duration, acked *atomic.Int64) error {
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var killed consensus.NodeID
	var last int64
	for time.Since(start) < duration {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		el := time.Since(start)
		now := acked.Load()
		fmt.Printf("t=%2.0fs  %6d cmds/s  %s\n", el.Seconds(), now-last, describe(cl))
		last = now
		switch {
		case killed == 0 && el >= duration/3:
			if l := cl.Leader(); l != nil && len(cl.IDs()) > 1 {
				killed = l.ID
				cl.Stop(killed)
				fmt.Printf("killed the leader, node %d\n", killed)
			}
		case killed != 0 && el >= 2*duration/3 && cl.Node(killed) == nil:
			if err := cl.Restart(killed); err != nil {
				return fmt.Errorf("restart node %d: %w", killed, err)
			}
			fmt.Printf("restarted node %d from its bolt file\n", killed)
		}
	}
	return nil
}

func describe(cl *devcluster.Cluster) string {
	out := ""
	for _, id := range cl.IDs() {
		n := cl.Node(id)
		if n == nil {
			out += fmt.Sprintf("  node %d: down", id)
			continue
		}
		st := n.Replica.Status()
		out += fmt.Sprintf("  node %d: %-9s commit=%d", id, st.Role, st.Commit)
	}
	return out
}

// verify waits until every node has applied the same slots, then compares
// their digests.
func verify(ctx context.Context, cl *devcluster.Cluster, acked int64) error {
	fmt.Printf("clients stopped after %d acknowledged commands; waiting for every node to catch up\n", acked)
	deadline := time.After(30 * time.Second)
	for {
		var applied []uint64
		for _, id := range cl.IDs() {
			if n := cl.Node(id); n != nil {
				applied = append(applied, n.Replica.Status().Applied)
			}
		}
		same := len(applied) == len(cl.IDs())
		for _, a := range applied {
			same = same && a == applied[0]
		}
		if same {
			break
		}
		select {
		case <-deadline:
			return fmt.Errorf("nodes did not converge: applied slots %v", applied)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	var first [2]uint64
	for i, id := range cl.IDs() {
		count, digest := cl.Node(id).SM.(*digestSM).state()
		if i == 0 {
			first = [2]uint64{count, digest}
		} else if first != [2]uint64{count, digest} {
			return fmt.Errorf("node %d applied %d commands with digest %x, node 1 applied %d with %x",
				id, count, digest, first[0], first[1])
		}
	}
	if first[0] < uint64(acked) {
		return fmt.Errorf("nodes applied %d commands, fewer than the %d acknowledged", first[0], acked)
	}
	fmt.Printf("ok: all %d nodes applied the same %d commands in the same order (digest %016x)\n",
		len(cl.IDs()), first[0], first[1])
	return nil
}
