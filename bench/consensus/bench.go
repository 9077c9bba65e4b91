package main

import (
	"context"
	"fmt"
	"github.com/clockd/clockd/bench/internal/benchmain"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"
)

// Config is one bench run.
type Config struct {
	Engines       []string      // engineClockd, engineRaft
	Clients       []int         // one row per value and engine
	Duration      time.Duration // measured window of a row
	Warmup        time.Duration // before each window
	Repeat        int           // runs of every row; the median run is reported
	PauseDuration time.Duration // paused-follower scenario; 0 skips it
	PauseClients  int
	FloorWrites   int    // fsync'd bolt writes for the floor
	FloorPings    int    // loopback round trips for the floor
	Dir           string // parent of the run's temporary directory; "" for the system default
	Exe           string // this program, re-executed for every node
	Progress      io.Writer
}

// bench runs one Config.
type bench struct {
	cfg   Config
	dir   string // the run's temporary directory
	start time.Time
	n     int // clusters started, for directory names
}

// Run measures the floor, every row and the paused-follower scenario.
// Every node process is killed and the temporary directory removed before
// it returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	dir, err := os.MkdirTemp(cfg.Dir, "bench-consensus-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b := &bench{cfg: cfg, dir: dir, start: time.Now()}
	rep := &Report{Machine: machineInfo(dir), Settings: settingsOf(cfg)}
	if rep.Rows, rep.Floor, err = b.rounds(ctx); err != nil {
		return nil, err
	}
	if cfg.PauseDuration > 0 {
		for _, eng := range cfg.Engines {
			p, err := b.paused(ctx, eng)
			if err != nil {
				return nil, fmt.Errorf("%s, paused follower: %w", engineLabel(eng), err)
			}
			rep.Paused = append(rep.Paused, p)
		}
	}
	rep.finish()
	return rep, nil
}

func (b *bench) progress(format string, args ...any) {
	if b.cfg.Progress != nil {
		fmt.Fprintf(b.cfg.Progress, "[%4.0fs] "+format+"\n", append([]any{time.Since(b.start).Seconds()}, args...)...)
	}
}

// rounds measures the floor and then every row, Repeat times. The engines
// alternate and each round goes through all rows, so a slow spell of a
// shared disk falls on both engines and on different rows rather than on
// every run of one row. It reports the median run of each row and the
// round with the median floor.
func (b *bench) rounds(ctx context.Context) ([]Row, Floor, error) {
	runs := map[string][]Row{}
	var floors []Floor
	for i := range b.cfg.Repeat {
		if b.cfg.Repeat > 1 {
			b.progress("round %d of %d", i+1, b.cfg.Repeat)
		}
		b.progress("floor: %d fsync'd bolt writes and %d loopback round trips in %s", b.cfg.FloorWrites, b.cfg.FloorPings, b.dir)
		f, err := measureFloor(b.dir, b.cfg.FloorWrites, b.cfg.FloorPings)
		if err != nil {
			return nil, Floor{}, err
		}
		b.progress("floor: bolt write %.3f ms + loopback RTT %.3f ms", f.BoltWriteUs/1e3, f.RTTUs/1e3)
		floors = append(floors, f)
		for _, clients := range b.cfg.Clients {
			for _, eng := range b.cfg.Engines {
				row, err := b.row(ctx, eng, clients)
				if err != nil {
					return nil, Floor{}, fmt.Errorf("%s, %s: %w", engineLabel(eng), clientsLabel(clients), err)
				}
				k := fmt.Sprint(eng, clients)
				runs[k] = append(runs[k], row)
			}
		}
	}
	var out []Row
	for _, clients := range b.cfg.Clients {
		for _, eng := range b.cfg.Engines {
			out = append(out, medianRun(runs[fmt.Sprint(eng, clients)]))
		}
	}
	return out, medianFloor(floors), nil
}

// cluster starts a fresh cluster in a new directory and waits for its
// leader.
func (b *bench) cluster(ctx context.Context, eng, what string) (*cluster, uint64, error) {
	b.n++
	dir := filepath.Join(b.dir, fmt.Sprintf("%02d-%s", b.n, eng))
	b.progress("%s: starting %d %s node processes", what, clusterNodes, engineLabel(eng))
	cl, err := startCluster(ctx, b.cfg.Exe, eng, dir)
	if err != nil {
		return nil, 0, err
	}
	leader, err := cl.waitLeader(ctx)
	if err != nil {
		cl.close()
		return nil, 0, err
	}
	return cl, leader, nil
}

// row measures one engine at one client count on a fresh cluster, so
// every row's peak RSS is its own.
func (b *bench) row(ctx context.Context, eng string, clients int) (Row, error) {
	what := engineLabel(eng) + ", " + clientsLabel(clients)
	cl, leader, err := b.cluster(ctx, eng, what)
	if err != nil {
		return Row{}, err
	}
	defer cl.close()
	b.progress("%s: leader is node %d; warming up for %v, then measuring for %v", what, leader, b.cfg.Warmup, b.cfg.Duration)
	m, err := cl.load(ctx, leader, loadSpec{Clients: clients, Duration: b.cfg.Duration, Warmup: b.cfg.Warmup})
	if err != nil {
		return Row{}, err
	}
	mem, err := cl.mem()
	if err != nil {
		return Row{}, err
	}
	row := newRow(eng, leader, m, mem)
	b.progress("%s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms", what, row.OpsPerSec, row.P50Us/1e3, row.P99Us/1e3)
	if row.Errors > 0 {
		b.progress("%s: %d proposals failed, first: %s", what, row.Errors, row.FirstError)
	}
	return row, nil
}

func clientsLabel(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}

func machineInfo(dir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(),
		Filesystem: fsName(dir), DataDir: filepath.Dir(dir), Clockd: benchmain.Revision(revision), Raft: depVersion("github.com/hashicorp/raft"),
		Kernel: benchmain.Kernel(), CPUModel: benchmain.CPUModel(), MemoryMonitors: benchmain.MemoryMonitors()}
	return m
}

// revision is the clockd commit under test; the Makefile sets it with
// -ldflags "-X main.revision=...".
var revision string

// depVersion is the version of module path this binary was built with.
func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

func settingsOf(cfg Config) Settings {
	return Settings{Nodes: clusterNodes, CommandBytes: cmdBytes, Clients: cfg.Clients,
		DurationSec: cfg.Duration.Seconds(), WarmupSec: cfg.Warmup.Seconds(), Repeat: cfg.Repeat,
		PauseSec: cfg.PauseDuration.Seconds(), PauseClients: cfg.PauseClients}
}
