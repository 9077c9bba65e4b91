package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/clockd/clockd/internal/proccluster"
)

// Config is one bench run.
type Config struct {
	Clients    []int         // concurrent gRPC clients, one Now and one health row per value
	Conns      int           // gRPC connections in the pool, each from its own loopback address
	TSCallers  []int         // goroutines calling client.Timestamp at once, one row per value
	NTPQueries int           // measured queries to each NTP server in a round
	Duration   time.Duration // measured time of each kind of call in a round
	Warmup     time.Duration // before each window
	Repeat     int           // rounds of every row; each row reports its best
	// Clockd is the clockd binary; "" builds ./cmd/clockd of the module
	// the bench runs in.
	Clockd string
	// Chronyd is the chronyd binary; "" leaves the chronyd row out, with
	// NoChrony saying why.
	Chronyd  string
	NoChrony string
	// ClockdArgs are extra `clockd run` flags for every node.
	ClockdArgs []string
	Dir        string // parent of the run's temporary directory; "" for the system default
	Command    string // the command line, as the report prints it
	Progress   io.Writer
}

// clusterNodes is the size of the cluster every row runs against.
const clusterNodes = 3

// syncTimeout bounds the wait for every node to read SYNCHRONIZED.
const syncTimeout = 2 * time.Minute

// bench is one run in progress.
type bench struct {
	cfg    Config
	dir    string // the run's temporary directory
	start  time.Time
	cl     *proccluster.Cluster
	leader *proccluster.Node
}

// Run starts the cluster, measures every row against its leader and
// checks the targets. Every process it started is stopped and the
// temporary directory removed before it returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	dir, err := os.MkdirTemp(cfg.Dir, "bench-time-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b := &bench{cfg: cfg, dir: dir, start: time.Now()}
	rep := &Report{Command: cfg.Command, Machine: machineInfo(), Settings: settingsOf(cfg)}
	if err := b.startCluster(ctx); err != nil {
		return nil, err
	}
	defer b.cl.Stop()
	rep.Leader = b.leader.ID
	if rep.GRPC, err = b.grpcRows(ctx); err != nil {
		return nil, fmt.Errorf("Now and health check: %w", err)
	}
	if rep.Timestamp, err = b.timestampRows(ctx); err != nil {
		return nil, fmt.Errorf("Timestamp: %w", err)
	}
	if rep.Shm, err = b.shmRow(ctx); err != nil {
		return nil, fmt.Errorf("shared page: %w", err)
	}
	if rep.NTP, err = b.ntpRows(ctx); err != nil {
		return nil, fmt.Errorf("NTP: %w", err)
	}
	if id, err := b.leaderID(ctx); err != nil || id != rep.Leader {
		rep.LeaderChanged = true
	}
	rep.Machine.LoadAvgEnd = loadAvg()
	rep.finish()
	return rep, nil
}

func (b *bench) progress(format string, args ...any) {
	if b.cfg.Progress != nil {
		fmt.Fprintf(b.cfg.Progress, "[%4.0fs] "+format+"\n", append([]any{time.Since(b.start).Seconds()}, args...)...)
	}
}

// startCluster builds clockd when needed, starts the nodes, waits until
// every one reads SYNCHRONIZED and finds the leader.
func (b *bench) startCluster(ctx context.Context) error {
	bin := b.cfg.Clockd
	if bin == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		b.progress("building ./cmd/clockd")
		if bin, err = proccluster.Build(root, b.dir); err != nil {
			return err
		}
	}
	b.progress("starting %d clockd processes on loopback", clusterNodes)
	cl, err := proccluster.Start(proccluster.Config{Binary: bin, Dir: filepath.Join(b.dir, "cluster"),
		Nodes: clusterNodes, Args: b.cfg.ClockdArgs})
	if err != nil {
		return err
	}
	b.cl = cl
	wctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if err := cl.WaitSynchronized(wctx); err != nil {
		cl.Stop()
		return err
	}
	id, err := b.leaderID(wctx)
	if err != nil {
		cl.Stop()
		return err
	}
	b.leader = cl.Node(id)
	b.progress("every node SYNCHRONIZED; the leader is node %d (API %s, NTP %s)", id, b.leader.APIAddr, b.leader.NTPAddr)
	return nil
}

// leaderID asks node 1 for the leader and that node whether it leads,
// until both agree.
func (b *bench) leaderID(ctx context.Context) (uint64, error) {
	for {
		if id, err := b.agreedLeader(ctx); id != 0 || err != nil {
			return id, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *bench) agreedLeader(ctx context.Context) (uint64, error) {
	c, err := b.cl.Dial(ctx, 1)
	if err != nil {
		return 0, err
	}
	st, err := c.Status(ctx)
	c.Close()
	if err != nil || st.GetLeaderId() == 0 {
		return 0, err
	}
	id := st.GetLeaderId()
	if c, err = b.cl.Dial(ctx, id); err != nil {
		return 0, err
	}
	defer c.Close()
	if st, err = c.Status(ctx); err != nil || st.GetLeaderId() != id {
		return 0, err
	}
	return id, nil
}

// moduleRoot is the directory of the go.mod the bench runs in.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the clockd module; pass --clockd")
	}
	return filepath.Dir(mod), nil
}
