package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Engine names, as the node command and the report spell them.
const (
	engineClockd = "clockd"
	engineRaft   = "raft" // github.com/hashicorp/raft
)

// clusterNodes is the size of every cluster.
const clusterNodes = 3

// leaderTimeout bounds the wait for a leader every node agrees on.
const leaderTimeout = 30 * time.Second

// cluster is three node processes of one engine.
type cluster struct {
	engine string
	nodes  []*child // nodes[i] has id i+1
}

// startCluster starts the processes, tells each where the others listen
// and starts the engines. On error every process already started is
// killed.
func startCluster(ctx context.Context, exe, engine, dir string) (*cluster, error) {
	cl := &cluster{engine: engine}
	if err := cl.start(ctx, exe, dir); err != nil {
		cl.close()
		return nil, err
	}
	return cl, nil
}

func (cl *cluster) start(ctx context.Context, exe, dir string) error {
	var ids []string
	for i := 1; i <= clusterNodes; i++ {
		ids = append(ids, strconv.Itoa(i))
	}
	addrs := make([]string, clusterNodes)
	for i := range clusterNodes {
		c, err := startChild(exe, cl.engine, uint64(i+1), strings.Join(ids, ","), dir)
		if err != nil {
			return err
		}
		cl.nodes = append(cl.nodes, c)
		if addrs[i], err = c.expect(ctx, "listening", 30*time.Second); err != nil {
			return err
		}
	}
	for i, c := range cl.nodes {
		for j, a := range addrs {
			if i == j {
				continue
			}
			if _, err := c.call(ctx, "ok", "peer %d %s", j+1, a); err != nil {
				return err
			}
		}
	}
	for _, c := range cl.nodes {
		if _, err := c.call(ctx, "started", "start"); err != nil {
			return err
		}
	}
	return nil
}

// node returns the process of member id (1-based).
func (cl *cluster) node(id uint64) *child { return cl.nodes[id-1] }

func (cl *cluster) status(ctx context.Context, id uint64) (nodeStatus, error) {
	rest, err := cl.node(id).call(ctx, "status", "status")
	if err != nil {
		return nodeStatus{}, err
	}
	var st nodeStatus
	if _, err := fmt.Sscanf(rest, "%s %d %d", &st.Role, &st.Leader, &st.Applied); err != nil {
		return st, fmt.Errorf("node %d: bad status %q: %w", id, rest, err)
	}
	return st, nil
}

// waitLeader polls every node's status until one calls itself leader and
// every node names it, and returns its id.
func (cl *cluster) waitLeader(ctx context.Context) (uint64, error) {
	deadline := time.Now().Add(leaderTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, err := cl.agreedLeader(ctx); id != 0 || err != nil {
			return id, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: no leader agreed by all %d nodes within %v", cl.engine, clusterNodes, leaderTimeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// agreedLeader returns the leader if every node names the same one and it
// calls itself leader, else 0.
func (cl *cluster) agreedLeader(ctx context.Context) (uint64, error) {
	var leader uint64
	for i := range cl.nodes {
		st, err := cl.status(ctx, uint64(i+1))
		if err != nil {
			return 0, err
		}
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			return 0, nil
		}
		leader = st.Leader
	}
	st, err := cl.status(ctx, leader)
	if err != nil || st.Role != "leader" {
		return 0, err
	}
	return leader, nil
}

// measured is the outcome of one load request, as the coordinator saw it.
type measured struct {
	res loadResult
	cpu cpuTime // all nodes, over the window
}

// load has the leader's process run spec, sampling every node's CPU time
// as the window opens and closes.
func (cl *cluster) load(ctx context.Context, leader uint64, spec loadSpec) (measured, error) {
	var m measured
	c := cl.node(leader)
	if err := c.send("load %d %s %s", spec.Clients, spec.Duration, spec.Warmup); err != nil {
		return m, err
	}
	if _, err := c.expect(ctx, "window-start", spec.Warmup+time.Minute); err != nil {
		return m, err
	}
	cpu0, err := cl.cpu()
	if err != nil {
		return m, err
	}
	if _, err := c.expect(ctx, "window-end", spec.Duration+time.Minute); err != nil {
		return m, err
	}
	cpu1, err := cl.cpu()
	if err != nil {
		return m, err
	}
	m.cpu = cpu1.Sub(cpu0)
	rest, err := c.expect(ctx, "result", proposeTimeout+time.Minute)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal([]byte(rest), &m.res); err != nil {
		return m, fmt.Errorf("node %d: bad result %q: %w", leader, rest, err)
	}
	return m, nil
}

// cpu sums the CPU time every node process has used.
func (cl *cluster) cpu() (cpuTime, error) {
	var sum cpuTime
	for _, c := range cl.nodes {
		t, err := procCPU(c.pid())
		if err != nil {
			return sum, err
		}
		sum = sum.Add(t)
	}
	return sum, nil
}

// mem reads every node's memory, in id order.
func (cl *cluster) mem() ([]memKB, error) {
	var out []memKB
	for _, c := range cl.nodes {
		m, err := procMem(c.pid())
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// close kills every node process.
func (cl *cluster) close() {
	for _, c := range cl.nodes {
		c.kill()
	}
}
