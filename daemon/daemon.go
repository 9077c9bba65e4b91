package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/consensus/snapshot"
	"github.com/clockd/clockd/consensus/storage"
	"github.com/clockd/clockd/consensus/transport"
	"github.com/clockd/clockd/offsetlog"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
)

// Consensus timing: a 50ms protocol tick, elections after 10 to 20 ticks
// of silence, and a 1s lease, so a failover takes one to two seconds.
const (
	protocolTick = 50 * time.Millisecond
	leaseTime    = time.Second
)

// Daemon is one clockd node: consensus, the reference clock, the
// timestamp oracle and the services that serve them.
type Daemon struct {
	cfg   Config
	id    consensus.NodeID
	log   *zap.Logger
	clock vclock.Clock

	store    *storage.Store
	snaps    *snapshot.Store
	tr       *transport.Transport
	replica  *driver.Replica
	machine  *ordering.Machine
	host     *vclock.Host
	upstream *vclock.Upstream
	oracle   *oracle
	vms      *vms
	runbooks *runbooks
	events   *eventPipeline
	backfill *backfiller[ordering.LogEvent]
	offsets  *offsetlog.Log
	// offsetFill fills the offset history's gaps.
	offsetFill *backfiller[offsetlog.Tick]
	metrics    *metrics
	services   []service

	closers  []func() error
	storeErr atomic.Value // error: the event store or the offset history failed
}

// service is an edge of the daemon that serves until its context ends.
type service interface {
	Name() string
	Serve(ctx context.Context) error
}

// New opens the node's state and prepares every part; Run starts them.
func New(cfg Config) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = vclock.SystemClock{}
	}
	if cfg.HostName == "" {
		name, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("host_name: not set, and the system has none: %w", err)
		}
		cfg.HostName = name
	}
	d := &Daemon{cfg: cfg, id: consensus.NodeID(cfg.ID), log: cfg.Logger, clock: cfg.Clock}
	if err := d.open(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) open() error {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	d.closers = append(d.closers, unlock) // closed last
	d.metrics = newMetrics()
	if err = d.openHost(); err != nil {
		return err
	}
	if d.store, err = storage.OpenLogger(filepath.Join(cfg.DataDir, "consensus.db"), d.log); err != nil {
		return err
	}
	d.closers = append(d.closers, d.store.Close)
	if d.snaps, err = snapshot.Open(filepath.Join(cfg.DataDir, "snapshots"), d.log); err != nil {
		return err
	}
	if err = d.openEvents(); err != nil {
		return err
	}
	d.runbooks = newRunbooks(d)
	d.machine = &ordering.Machine{
		OnTick: func(t ordering.Tick) {
			d.host.ApplyTick(t)
			d.metrics.tickApplied(d.id, t)
			d.recordOffsets(t)
		},
		OnEvents:       d.events.writer.write,
		OnBatch:        d.events.noteBatch,
		BeforeSnapshot: d.beforeSnapshot,
		OnRunbooks:     d.runbooks.changed,
	}
	if err = d.openTransport(); err != nil {
		return err
	}
	if d.replica, err = driver.New(d.driverConfig(), d.store, d.snaps, link{d.tr}, d.machine); err != nil {
		return err
	}
	d.oracle = &oracle{d: d}
	d.vms = &vms{d: d}
	return d.openServices()
}

func (d *Daemon) openHost() error {
	cfg := d.cfg
	var src vclock.Source = vclock.WallSource{Clock: d.clock, ErrNs: int64(cfg.WallError)}
	if len(cfg.NTPServers) > 0 {
		d.upstream = &vclock.Upstream{Servers: cfg.NTPServers, Clock: d.clock, DriftPPM: cfg.MaxDriftPPM,
			Fallback: src, Logger: d.log}
		src = d.upstream
	}
	publish, err := d.openShm()
	if err != nil {
		return err
	}
	d.host, err = vclock.NewHost(vclock.HostConfig{ID: consensus.NodeID(cfg.ID), Clock: d.clock, Source: src,
		SlewPPM: cfg.SlewPPM, DriftPPM: cfg.MaxDriftPPM, HoldoverAfter: cfg.HoldoverAfter,
		UnsyncAfter: cfg.UnsyncAfter, HWM: vclock.FileHWM{Path: filepath.Join(cfg.DataDir, "hwm")},
		HWMWindow: cfg.HWMWindow, Publish: publish, Logger: d.log, Name: cfg.HostName})
	return err
}

func (d *Daemon) driverConfig() driver.Config {
	// Slots carry up to 2 MiB of commands, so a batch of trace events of
	// up to maxCommandBytes fits in one, well inside the transport's 4 MiB
	// frames.
	core := consensus.Config{ID: d.id, Lease: leaseTime, MaxDriftPPM: int(d.cfg.MaxDriftPPM),
		MaxBatchBytes: 2 << 20, MaxMsgBytes: 2 << 20}
	if d.cfg.Join != "" {
		core.Join = true
	}
	for _, s := range d.cfg.Members {
		m, _ := ParseMember(s) // validated
		core.Members = append(core.Members, m.ID)
	}
	// Snapshots come every 16 MiB of commands, and the log keeps at most
	// 8 MiB of them behind a snapshot for followers that lag: with slots
	// of trace events, a count of slots would not bound memory. A follower
	// further behind installs a snapshot, and its event store fetches the
	// events it skipped from the other members (backfiller): the log need
	// not hold them in every member's memory.
	return driver.Config{Core: core, TickInterval: protocolTick, Logger: d.log,
		SnapshotBytes: 16 << 20, SnapshotTrailingBytes: 8 << 20}
}

func (d *Daemon) openTransport() error {
	tcfg := transport.Config{ID: d.id, Listen: d.cfg.PeerListen, Logger: d.log, Handlers: d.handlers(),
		OnSnapshot: func(from consensus.NodeID, r io.Reader) error { return d.replica.ReceiveSnapshot(from, r) },
		OnJoin:     d.answerJoin}
	if d.cfg.Insecure {
		tcfg.Insecure = true
	} else {
		tcfg.TLS = &transport.TLSFiles{CertFile: d.cfg.TLSCert, KeyFile: d.cfg.TLSKey, CAFile: d.cfg.TLSCA}
	}
	for _, s := range d.cfg.Members {
		m, _ := ParseMember(s)
		if m.ID != d.id {
			tcfg.Peers = append(tcfg.Peers, transport.Peer{ID: m.ID, Addr: m.Addr, Name: PeerName(m.ID)})
		}
	}
	var err error
	d.tr, err = transport.New(tcfg, func(m consensus.Message) {
		if r := d.replica; r != nil {
			r.Step(m)
		}
	})
	return err
}

// PeerAddr is the address the peer transport listens on, once Run started.
func (d *Daemon) PeerAddr() string { return d.tr.Addr() }

// Run serves until ctx ends or a part fails, then stops every part. A
// storage failure stops the node: it returns the error.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.close()
	if err := d.tr.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(d.services)+2)
	goRun := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	goRun("consensus", d.replica.Run)
	goRun("reference output", func(ctx context.Context) error { d.host.Run(ctx); return nil })
	goRun("ticker", func(ctx context.Context) error { d.runTicker(ctx); return nil })
	goRun("start-up", d.startUp)
	goRun("event pipeline", d.events.run)
	goRun("event backfill", d.backfill.run)
	goRun("offset backfill", d.offsetFill.run)
	goRun("run-books", d.runbooks.run)
	if d.upstream != nil {
		goRun("upstream NTP", func(ctx context.Context) error { d.upstream.Run(ctx); return nil })
	}
	for _, s := range d.services {
		goRun(s.Name(), s.Serve)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
		d.log.Error("node stopping", zap.Error(err))
	}
	cancel()
	wg.Wait()
	return err
}

// startUp joins the cluster if asked to, waits until this node has caught
// up with the leader, and reports readiness.
func (d *Daemon) startUp(ctx context.Context) error {
	if d.cfg.Join != "" {
		if err := d.join(ctx); err != nil {
			return err
		}
	}
	d.status("waiting for a leader and catching up")
	if !d.caughtUp(ctx) {
		return nil
	}
	st := d.replica.Status()
	d.log.Info("node ready", zap.Uint64("leader", uint64(st.Leader)), zap.Uint64("applied", st.Applied))
	d.status(fmt.Sprintf("serving; leader %d", st.Leader))
	if d.cfg.OnReady != nil {
		d.cfg.OnReady()
	}
	return nil
}

// caughtUp waits until there is a leader and this node has applied what
// it knows committed; false if ctx ended first.
func (d *Daemon) caughtUp(ctx context.Context) bool {
	for {
		st := d.replica.Status()
		if st.Leader != 0 && st.Commit > 0 && st.Applied >= st.Commit {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(protocolTick):
		}
	}
}

func (d *Daemon) status(s string) {
	if d.cfg.OnStatus != nil {
		d.cfg.OnStatus(s)
	}
}

// Healthy is what the systemd watchdog checks: consensus is running and
// the high-water mark is being stored.
func (d *Daemon) Healthy() error {
	select {
	case <-d.replica.Done():
		return errors.New("consensus stopped")
	default:
	}
	if err, _ := d.storeErr.Load().(error); err != nil {
		return err
	}
	return d.host.Err()
}

func (d *Daemon) close() {
	if d.tr != nil {
		d.tr.Close()
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			d.log.Warn("close failed", zap.Error(err))
		}
	}
	d.closers = nil
}
