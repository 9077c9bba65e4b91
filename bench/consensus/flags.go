package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/clockd/clockd/bench/internal/benchmain"
	"github.com/urfave/cli/v2"
)

func flags() []cli.Flag {
	env := func(s string) []string { return []string{"CLOCKD_BENCH_" + s} }
	return []cli.Flag{
		&cli.StringFlag{Name: "clients", Value: "1,64,256", EnvVars: env("CLIENTS"),
			Usage: "comma-separated concurrent client counts, one row per count and engine"},
		&cli.DurationFlag{Name: "duration", Value: 5 * time.Second, EnvVars: env("DURATION"),
			Usage: "measured window of each row"},
		&cli.DurationFlag{Name: "warmup", Value: time.Second, EnvVars: env("WARMUP"),
			Usage: "unmeasured load before each window"},
		&cli.IntFlag{Name: "repeat", Value: 1, EnvVars: env("REPEAT"),
			Usage: "measure every row this many times, engines interleaved, and report the median run (for noisy machines)"},
		&cli.DurationFlag{Name: "pause-duration", Value: 60 * time.Second, EnvVars: env("PAUSE_DURATION"),
			Usage: "paused-follower scenario: how long one follower stays stopped under load (0 skips it)"},
		&cli.IntFlag{Name: "pause-clients", Value: 64, EnvVars: env("PAUSE_CLIENTS"),
			Usage: "clients during the paused-follower scenario"},
		&cli.StringFlag{Name: "engines", Value: "clockd,raft", EnvVars: env("ENGINES"),
			Usage: "engines to measure: clockd, raft (hashicorp/raft)"},
		&cli.IntFlag{Name: "floor-writes", Value: 200, EnvVars: env("FLOOR_WRITES"),
			Usage: "fsync'd bolt writes timed for the floor"},
		&cli.IntFlag{Name: "floor-pings", Value: 1000, EnvVars: env("FLOOR_PINGS"),
			Usage: "loopback TCP round trips timed for the floor"},
		&cli.StringFlag{Name: "dir", EnvVars: env("DIR"),
			Usage: "parent of the temporary data directory, removed at exit (default: $TMPDIR or /tmp)"},
		&cli.BoolFlag{Name: "json", EnvVars: env("JSON"), Usage: "print the report as JSON instead of tables"},
	}
}

// configFrom turns the flags into a Config; its errors are usage errors.
func configFrom(c *cli.Context) (Config, error) {
	cfg := Config{Duration: c.Duration("duration"), Warmup: c.Duration("warmup"), Repeat: c.Int("repeat"),
		PauseDuration: c.Duration("pause-duration"), PauseClients: c.Int("pause-clients"),
		FloorWrites: c.Int("floor-writes"), FloorPings: c.Int("floor-pings"), Dir: c.String("dir"), Progress: os.Stderr}
	var err error
	if cfg.Exe, err = os.Executable(); err != nil {
		return cfg, err
	}
	if cfg.Clients, err = benchmain.Counts(c.String("clients")); err != nil {
		return cfg, fmt.Errorf("--clients: %w", err)
	}
	for _, e := range strings.Split(c.String("engines"), ",") {
		switch e = strings.TrimSpace(e); e {
		case engineClockd, engineRaft:
			cfg.Engines = append(cfg.Engines, e)
		default:
			return cfg, fmt.Errorf("--engines: unknown engine %q (want clockd, raft)", e)
		}
	}
	switch {
	case cfg.Duration < 100*time.Millisecond || cfg.Warmup < 0 || cfg.PauseDuration < 0:
		return cfg, fmt.Errorf("--duration must be at least 100ms; --warmup and --pause-duration not negative")
	case cfg.FloorWrites < 1 || cfg.FloorPings < 1 || cfg.PauseClients < 1 || cfg.Repeat < 1:
		return cfg, fmt.Errorf("--floor-writes, --floor-pings, --pause-clients and --repeat must be positive")
	}
	return cfg, nil
}
