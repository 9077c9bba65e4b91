package main

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/consensus/snapshot"
	"github.com/clockd/clockd/consensus/storage"
	"github.com/clockd/clockd/consensus/transport"
)

// clockdEngine is one clockd replica as a real deployment runs it: bolt
// storage with fsync (consensus/storage), a snapshot store, the gRPC
// transport and the driver, every setting at its default. The transport
// is plaintext (Insecure): the cluster lives on loopback for the bench.
type clockdEngine struct {
	store  *storage.Store
	tr     *transport.Transport
	rep    *driver.Replica
	cancel context.CancelFunc // stops Run; a no-op before Start
	failed chan error
	ran    bool // Start was called, so Run is running or has returned
}

func newClockd(o nodeOptions) (*clockdEngine, error) {
	log := nodeLogger()
	e := &clockdEngine{cancel: func() {}, failed: make(chan error, 1)}
	var err error
	if e.store, err = storage.OpenLogger(filepath.Join(o.Dir, "paxos.db"), log); err != nil {
		return nil, err
	}
	snaps, err := snapshot.Open(filepath.Join(o.Dir, "snapshots"), log)
	if err != nil {
		e.store.Close()
		return nil, err
	}
	members := make([]consensus.NodeID, 0, len(o.Members))
	var peers []transport.Peer
	for _, m := range o.Members {
		members = append(members, consensus.NodeID(m))
		if m != o.ID {
			peers = append(peers, transport.Peer{ID: consensus.NodeID(m)}) // address comes with "peer"
		}
	}
	e.tr, err = transport.New(transport.Config{ID: consensus.NodeID(o.ID), Listen: "127.0.0.1:0", Peers: peers,
		Insecure: true, Logger: log,
		OnSnapshot: func(from consensus.NodeID, r io.Reader) error { return e.rep.ReceiveSnapshot(from, r) }},
		func(m consensus.Message) { e.rep.Step(m) })
	if err != nil {
		e.store.Close()
		return nil, err
	}
	e.rep, err = driver.New(driver.Config{Core: consensus.Config{ID: consensus.NodeID(o.ID), Members: members}, Logger: log},
		e.store, snaps, e.tr, &counterSM{})
	if err == nil {
		err = e.tr.Start()
	}
	if err != nil {
		e.tr.Close()
		e.store.Close()
		return nil, err
	}
	return e, nil
}

func (e *clockdEngine) Addr() string { return e.tr.Addr() }

func (e *clockdEngine) SetPeer(id uint64, addr string) error {
	return e.tr.SetPeerAddr(consensus.NodeID(id), addr)
}

func (e *clockdEngine) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.ran = cancel, true
	go func() {
		if err := e.rep.Run(ctx); err != nil {
			e.failed <- err
		}
	}()
	return nil
}

func (e *clockdEngine) Status() nodeStatus {
	st := e.rep.Status()
	return nodeStatus{Role: st.Role.String(), Leader: uint64(st.Leader), Applied: st.Applied}
}

func (e *clockdEngine) Propose(ctx context.Context, cmd []byte) error {
	_, err := e.rep.Propose(ctx, cmd)
	return err
}

func (e *clockdEngine) Failed() <-chan error { return e.failed }

func (e *clockdEngine) Close() error {
	e.cancel()
	if e.ran {
		<-e.rep.Done() // the store must outlive Run
	}
	e.tr.Close()
	return e.store.Close()
}

// counterSM is the trivial replicated state machine: it counts commands.
// Every method runs on the driver goroutine.
type counterSM struct{ n uint64 }

func (s *counterSM) Apply(uint64, []byte) any { s.n++; return nil }

func (s *counterSM) Snapshot(w io.Writer) error {
	return binary.Write(w, binary.LittleEndian, s.n)
}

func (s *counterSM) Restore(r io.Reader) error {
	return binary.Read(r, binary.LittleEndian, &s.n)
}

// nodeLogger logs warnings and errors as JSON on stderr, which the
// coordinator sends to the node's log file.
func nodeLogger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stderr), zap.WarnLevel))
}
