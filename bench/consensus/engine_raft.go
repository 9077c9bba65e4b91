package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// raftLogCacheEntries sizes the in-memory read cache in front of the bolt
// log, as Consul, Nomad and Vault deploy hashicorp/raft. Writes still go
// to bolt, fsynced, before Apply can commit.
const raftLogCacheEntries = 512

// raftEngine is one hashicorp/raft server: raft.DefaultConfig() with only
// LocalID and Logger set, raft-boltdb/v2 (fsync on) as log and stable
// store, a file snapshot store, and the NetworkTransport over TCP.
type raftEngine struct {
	id     uint64
	store  *raftboltdb.BoltStore
	snaps  *raft.FileSnapshotStore
	trans  *raft.NetworkTransport
	peers  map[uint64]string
	log    hclog.Logger
	r      *raft.Raft
	failed chan error // never written: hashicorp/raft keeps running on storage errors
}

func newRaft(o nodeOptions) (*raftEngine, error) {
	e := &raftEngine{id: o.ID, peers: map[uint64]string{}, failed: make(chan error),
		log: hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})}
	for _, m := range o.Members {
		e.peers[m] = ""
	}
	var err error
	e.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(o.Dir, "raft.db"), NoSync: false})
	if err != nil {
		return nil, fmt.Errorf("open raft-boltdb: %w", err)
	}
	if e.snaps, err = raft.NewFileSnapshotStore(o.Dir, 2, os.Stderr); err != nil {
		e.store.Close()
		return nil, err
	}
	if e.trans, err = raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, os.Stderr); err != nil {
		e.store.Close()
		return nil, err
	}
	e.peers[o.ID] = string(e.trans.LocalAddr())
	return e, nil
}

func (e *raftEngine) Addr() string { return string(e.trans.LocalAddr()) }

func (e *raftEngine) SetPeer(id uint64, addr string) error {
	if _, ok := e.peers[id]; !ok || id == e.id {
		return fmt.Errorf("unknown peer %d", id)
	}
	e.peers[id] = addr
	return nil
}

// Start bootstraps every server with the same configuration, which
// hashicorp/raft documents as safe, then starts it.
func (e *raftEngine) Start() error {
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(strconv.FormatUint(e.id, 10))
	cfg.Logger = e.log
	var conf raft.Configuration
	for _, id := range slices.Sorted(maps.Keys(e.peers)) {
		if e.peers[id] == "" {
			return fmt.Errorf("no address for peer %d", id)
		}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter,
			ID: raft.ServerID(strconv.FormatUint(id, 10)), Address: raft.ServerAddress(e.peers[id])})
	}
	if err := raft.BootstrapCluster(cfg, e.store, e.store, e.snaps, e.trans, conf); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	logs, err := raft.NewLogCache(raftLogCacheEntries, e.store)
	if err != nil {
		return err
	}
	e.r, err = raft.NewRaft(cfg, &counterFSM{}, logs, e.store, e.snaps, e.trans)
	return err
}

func (e *raftEngine) Status() nodeStatus {
	if e.r == nil {
		return nodeStatus{Role: "stopped"}
	}
	_, lid := e.r.LeaderWithID()
	leader, _ := strconv.ParseUint(string(lid), 10, 64)
	return nodeStatus{Role: strings.ToLower(e.r.State().String()), Leader: leader, Applied: e.r.AppliedIndex()}
}

func (e *raftEngine) Propose(ctx context.Context, cmd []byte) error {
	timeout := proposeTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	return e.r.Apply(cmd, timeout).Error()
}

func (e *raftEngine) Failed() <-chan error { return e.failed }

func (e *raftEngine) Close() error {
	if e.r != nil {
		e.r.Shutdown().Error()
	}
	e.trans.Close()
	return e.store.Close()
}

// counterFSM is the trivial replicated state machine: it counts commands.
type counterFSM struct{ n atomic.Uint64 }

func (f *counterFSM) Apply(*raft.Log) any { f.n.Add(1); return nil }

func (f *counterFSM) Snapshot() (raft.FSMSnapshot, error) { return counterSnap(f.n.Load()), nil }

func (f *counterFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var n uint64
	if err := binary.Read(rc, binary.LittleEndian, &n); err != nil {
		return err
	}
	f.n.Store(n)
	return nil
}

type counterSnap uint64

func (s counterSnap) Persist(sink raft.SnapshotSink) error {
	if err := binary.Write(sink, binary.LittleEndian, uint64(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (counterSnap) Release() {}
