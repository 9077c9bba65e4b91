package main

import (
	"errors"
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
		&cli.DurationFlag{Name: "duration", Value: 5 * time.Second, EnvVars: env("DURATION"),
			Usage: "measured window of every gRPC, Timestamp and shm measurement"},
		&cli.DurationFlag{Name: "warmup", Value: time.Second, EnvVars: env("WARMUP"),
			Usage: "unmeasured load before every measurement, and NTP queries before the measured ones"},
		&cli.IntFlag{Name: "repeat", Value: 3, EnvVars: env("REPEAT"),
			Usage: "rounds of every row; each row reports its best round"},
		&cli.StringFlag{Name: "clients", Value: "1,64", EnvVars: env("CLIENTS"),
			Usage: "comma-separated concurrent gRPC client counts, one Now and one health row each"},
		&cli.IntFlag{Name: "conns", Value: 64, EnvVars: env("CONNS"),
			Usage: "gRPC connections that Now and the health check share, each from its own loopback address"},
		&cli.StringFlag{Name: "ts-callers", Value: "256,1024,4096", EnvVars: env("TS_CALLERS"),
			Usage: "comma-separated counts of goroutines calling client.Timestamp at once on one client, one row each"},
		&cli.IntFlag{Name: "ntp-queries", Value: 3000, EnvVars: env("NTP_QUERIES"),
			Usage: "measured NTP queries to each server"},
		&cli.StringFlag{Name: "clockd", EnvVars: env("CLOCKD"),
			Usage: "clockd binary to run (default: go build ./cmd/clockd of this module)"},
		&cli.StringSliceFlag{Name: "clockd-arg", EnvVars: env("CLOCKD_ARGS"),
			Usage: "extra flag of clockd run for every node, repeatable (e.g. --clockd-arg=--pprof)"},
		&cli.StringFlag{Name: "chronyd", EnvVars: env("CHRONYD"),
			Usage: "chronyd binary (default: chronyd on $PATH or /usr/sbin/chronyd; scripts/bench-deps.sh installs it)"},
		&cli.StringFlag{Name: "dir", EnvVars: env("DIR"),
			Usage: "parent of the temporary directory, removed at exit (default: $TMPDIR or /tmp)"},
		&cli.BoolFlag{Name: "json", EnvVars: env("JSON"), Usage: "print the report as JSON instead of tables"},
	}
}

// configFrom turns the flags into a Config; its errors are usage errors.
func configFrom(c *cli.Context) (Config, error) {
	cfg := Config{Duration: c.Duration("duration"), Warmup: c.Duration("warmup"), Repeat: c.Int("repeat"),
		Conns: c.Int("conns"), NTPQueries: c.Int("ntp-queries"),
		Clockd: c.String("clockd"), ClockdArgs: c.StringSlice("clockd-arg"), Chronyd: c.String("chronyd"),
		Dir: c.String("dir"), Command: commandLine(os.Args), Progress: os.Stderr}
	var err error
	if cfg.Clients, err = benchmain.Counts(c.String("clients")); err != nil {
		return cfg, fmt.Errorf("--clients: %w", err)
	}
	if cfg.TSCallers, err = benchmain.Counts(c.String("ts-callers")); err != nil {
		return cfg, fmt.Errorf("--ts-callers: %w", err)
	}
	switch {
	case cfg.Duration < 100*time.Millisecond || cfg.Warmup < 0:
		return cfg, errors.New("--duration must be at least 100ms and --warmup not negative")
	case cfg.Repeat < 1 || cfg.NTPQueries < 1:
		return cfg, errors.New("--repeat and --ntp-queries must be positive")
	case cfg.Conns < 1 || cfg.Conns >= maxLoopbackIndex:
		return cfg, fmt.Errorf("--conns must be 1 to %d", maxLoopbackIndex-1)
	}
	if cfg.Chronyd == "" {
		if cfg.Chronyd = findChronyd(); cfg.Chronyd == "" {
			cfg.NoChrony = "chronyd is not installed (not on $PATH, no /usr/sbin/chronyd); scripts/bench-deps.sh installs it"
		}
	}
	return cfg, nil
}

// commandLine is args as a shell would take them back.
func commandLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
