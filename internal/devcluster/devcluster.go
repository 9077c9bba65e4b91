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
	for _, id := range c.ids {
		if n := c.Node(id); n != nil && n.Replica.Status().Role == consensus.Leader {
			return n
		}
	}
	return nil
}

// Restart starts node id from its bolt file, on its previous address if it
// had one.
func (c *Cluster) Restart(id consensus.NodeID) error {
	listen := "127.0.0.1:0"
	c.mu.Lock()
	if a, ok := c.addrs[id]; ok {
		listen = a
	}
	var peers []transport.Peer
	for _, p := range c.ids {
		if p != id {
			peers = append(peers, transport.Peer{ID: p, Addr: c.addrs[p]})
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
		}},
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
	dcfg.Core.ID, dcfg.Core.Members = id, c.ids
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
	for _, p := range c.nodes {
		if p.ID != id {
			p.tr.SetPeerAddr(id, n.addr)
			n.tr.SetPeerAddr(p.ID, p.addr)
		}
	}
	c.mu.Unlock()
	return nil
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
	for _, id := range c.ids {
		c.Stop(id)
	}
	c.running.Wait()
}
