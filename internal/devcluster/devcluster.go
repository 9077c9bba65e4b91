// Package devcluster runs a small consensus cluster inside one process:
// every node has its own bolt file (fsync on), its own gRPC transport on a
// loopback port and its own driver goroutine. It serves the dev demo and
// benchmarks; production runs one node per host.
//
// Nodes talk over plaintext gRPC on 127.0.0.1: the cluster is private to
// the process's host and exists only for development.
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/consensus/snapshot"
	"github.com/clockd/clockd/consensus/storage"
	"github.com/clockd/clockd/consensus/transport"
)

// Config describes a dev cluster.
type Config struct {
	Nodes        int           // acceptors, default 3
	Dir          string        // one bolt file per node goes here
	TickInterval time.Duration // default 20ms
	Core         consensus.Config
	Logger       *zap.Logger
	// NewStateMachine builds a node's state machine, on every (re)start.
	NewStateMachine func(id consensus.NodeID) driver.StateMachine
	// Driver overrides driver settings (snapshot thresholds); Core,
	// TickInterval and Logger are set by the cluster.
	Driver driver.Config
	// Filter, if set, decides whether a message or snapshot from one node
	// reaches another; false drops it, as a network partition would.
	Filter func(from, to consensus.NodeID) bool
}

// Node is one running member.
type Node struct {
	ID      consensus.NodeID
	Replica *driver.Replica
	SM      driver.StateMachine
	addr    string
	tr      *transport.Transport
	store   *storage.Store
	cancel  context.CancelFunc
}

// link wraps a node's transport with the cluster's filter, and lets the
// driver add members it learns from the log.
type link struct {
	from   consensus.NodeID
	tr     *transport.Transport
	filter func(from, to consensus.NodeID) bool
}

func (l *link) Send(msgs []consensus.Message) {
	if l.filter == nil {
		l.tr.Send(msgs)
		return
	}
	kept := msgs[:0:0]
	for _, m := range msgs {
		if l.filter(l.from, m.To) {
			kept = append(kept, m)
		}
	}
	l.tr.Send(kept)
}

func (l *link) SendSnapshot(ctx context.Context, to consensus.NodeID, r io.Reader, size int64) error {
	if l.filter != nil && !l.filter(l.from, to) {
		return fmt.Errorf("devcluster: link %d->%d cut", l.from, to)
	}
	return l.tr.SendSnapshot(ctx, to, r, size)
}

func (l *link) EnsurePeer(id consensus.NodeID, addr string) {
	if l.tr.AddPeer(transport.Peer{ID: id, Addr: addr}) != nil {
		l.tr.SetPeerAddr(id, addr)
	}
}

// Cluster is a set of nodes in this process.
type Cluster struct {
	cfg     Config
	ids     []consensus.NodeID
	mu      sync.Mutex
	nodes   map[consensus.NodeID]*Node // nil while stopped
	addrs   map[consensus.NodeID]string
	joined  map[consensus.NodeID]bool // nodes started with Join, not bootstrap members
	running sync.WaitGroup
}

// Start starts every node and returns once all listen.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 3
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 20 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.NewStateMachine == nil {
		return nil, errors.New("devcluster: NewStateMachine is required")
	}
	c := &Cluster{cfg: cfg, nodes: map[consensus.NodeID]*Node{}, addrs: map[consensus.NodeID]string{}}
	for i := 1; i <= cfg.Nodes; i++ {
		c.ids = append(c.ids, consensus.NodeID(i))
	}
	for _, id := range c.ids {
		if err := c.Restart(id); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// IDs lists the members.
func (c *Cluster) IDs() []consensus.NodeID { return c.ids }

// Node returns a running node, or nil if it is stopped.
func (c *Cluster) Node(id consensus.NodeID) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// Leader returns the node that believes it leads, or nil.
func (c *Cluster) Leader() *Node {
	for _, id := range c.all() {
		if n := c.Node(id); n != nil && n.Replica.Status().Role == consensus.Leader {
			return n
		}
	}
	return nil
}

// all lists every node ever started: bootstrap members and joiners.
func (c *Cluster) all() []consensus.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.ids)
	for id := range c.joined {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Restart starts node id from its bolt file, on its previous address if it
// had one.
func (c *Cluster) Restart(id consensus.NodeID) error {
	c.mu.Lock()
	joiner := c.joined[id]
	c.mu.Unlock()
	return c.start(id, joiner)
}

func (c *Cluster) start(id consensus.NodeID, joiner bool) error {
	listen := "127.0.0.1:0"
	c.mu.Lock()
	if a, ok := c.addrs[id]; ok {
		listen = a
	}
	var peers []transport.Peer
	for p, a := range c.addrs {
		if p != id {
			peers = append(peers, transport.Peer{ID: p, Addr: a})
		}
	}
	for _, p := range c.ids {
		if _, ok := c.addrs[p]; !ok && p != id {
			peers = append(peers, transport.Peer{ID: p})
		}
	}
	c.mu.Unlock()

	log := c.cfg.Logger.With(zap.Uint64("node", uint64(id)))
	store, err := storage.OpenLogger(filepath.Join(c.cfg.Dir, fmt.Sprintf("node-%d.db", id)), log)
	if err != nil {
		return err
	}
	snaps, err := snapshot.Open(filepath.Join(c.cfg.Dir, fmt.Sprintf("node-%d-snapshots", id)), log)
	if err != nil {
		store.Close()
		return err
	}
	n := &Node{ID: id, store: store, SM: c.cfg.NewStateMachine(id)}
	filter := c.cfg.Filter
	n.tr, err = transport.New(transport.Config{ID: id, Listen: listen, Peers: peers, Insecure: true, Logger: log,
		OnSnapshot: func(from consensus.NodeID, r io.Reader) error {
			if filter != nil && !filter(from, id) {
				return fmt.Errorf("devcluster: link %d->%d cut", from, id)
			}
			return n.Replica.ReceiveSnapshot(from, r)
		},
		OnJoin: func(req transport.JoinRequest) (transport.JoinResponse, error) { return c.answerJoin(n, req) }},
		func(m consensus.Message) {
			if filter == nil || filter(m.From, id) {
				n.Replica.Step(m)
			}
		})
	if err != nil {
		store.Close()
		return err
	}
	dcfg := c.cfg.Driver
	dcfg.Core = c.cfg.Core
	dcfg.Core.ID, dcfg.Core.Members, dcfg.Core.Join = id, c.ids, joiner
	dcfg.TickInterval, dcfg.Logger = c.cfg.TickInterval, log
	n.Replica, err = driver.New(dcfg, store, snaps, &link{from: id, tr: n.tr, filter: filter}, n.SM)
	if err != nil {
		store.Close()
		return err
	}
	if err := n.tr.Start(); err != nil {
		store.Close()
		return err
	}
	n.addr = n.tr.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	c.running.Add(1)
	go func() {
		defer c.running.Done()
		n.Replica.Run(ctx)
	}()
	c.mu.Lock()
	c.addrs[id] = n.addr
	c.nodes[id] = n
	if !joiner {
		for _, p := range c.nodes {
			if p.ID != id {
				p.tr.SetPeerAddr(id, n.addr)
				n.tr.SetPeerAddr(p.ID, p.addr)
			}
		}
	}
	c.mu.Unlock()
	return nil
}

// Join starts a new node that knows only the address of member via, and
// asks to join through it, following the answer to the leader. It returns
// once the leader has added the node as a learner; the leader promotes it
// to a voter once it has caught up.
func (c *Cluster) Join(ctx context.Context, id, via consensus.NodeID) error {
	c.mu.Lock()
	if c.joined == nil {
		c.joined = map[consensus.NodeID]bool{}
	}
	c.joined[id] = true
	addr := c.addrs[via]
	c.mu.Unlock()
	if err := c.start(id, true); err != nil {
		return err
	}
	n := c.Node(id)
	for {
		resp, err := transport.Join(ctx, addr, transport.JoinRequest{ID: id, Addr: n.addr}, nil, "", true, 0)
		switch {
		case err != nil && ctx.Err() != nil:
			return err
		case err == nil && resp.Accepted:
			for _, p := range resp.Members {
				if p.ID != id {
					(&link{tr: n.tr}).EnsurePeer(p.ID, p.Addr)
				}
			}
			return nil
		case err == nil && resp.LeaderAddr != "":
			addr = resp.LeaderAddr // ask the leader
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// answerJoin is a member's side of Join: the leader adds the joiner;
// anyone else names the leader.
func (c *Cluster) answerJoin(n *Node, req transport.JoinRequest) (transport.JoinResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.Replica.Join(ctx, consensus.Member{ID: req.ID, Addr: req.Addr})
	var nl *consensus.NotLeaderError
	if errors.As(err, &nl) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return transport.JoinResponse{LeaderID: nl.Leader, LeaderAddr: c.addrs[nl.Leader], Reason: err.Error()}, nil
	}
	if err != nil {
		return transport.JoinResponse{Reason: err.Error()}, nil
	}
	members := append(n.tr.Peers(), transport.Peer{ID: n.ID, Addr: n.addr})
	return transport.JoinResponse{Accepted: true, Members: members}, nil
}

// Stop stops node id abruptly: its driver, transport and store close at
// once, as if the process died between two Readies.
func (c *Cluster) Stop(id consensus.NodeID) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n == nil {
		return
	}
	n.cancel()
	<-n.Replica.Done()
	n.tr.Close()
	n.store.Close()
}

// Close stops every node.
func (c *Cluster) Close() {
	for _, id := range c.all() {
		c.Stop(id)
	}
	c.running.Wait()
}
