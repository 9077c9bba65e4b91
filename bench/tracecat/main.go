package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/bench/internal/benchmain"
)

func main() { os.Exit(benchmain.Run(newApp(), os.Args)) }

// usageError is a bad flag or flag value (exit status 2).
type usageError = benchmain.UsageError

func newApp() *cli.App {
	env := func(s string) []string { return []string{"CLOCKD_BENCH_" + s} }
	return &cli.App{
		Name:  "bench-tracecat",
		Usage: "measure tracecat merge against LC_ALL=C sort -m on this machine, in one run",
		Description: "Generates per-host JSON-lines files sorted by time, then times tracecat merge\n" +
			"(with an offsets file that corrects every host) and GNU sort -m over the same\n" +
			"files, interleaved, and prints bytes, events, seconds, MB/s and events/s of each\n" +
			"tool's best run and the throughput ratio tracecat/sort. Both outputs are checked:\n" +
			"every event present, in time order. Progress goes to stderr, the table to stdout.",
		OnUsageError: benchmain.OnUsageError,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "files", Value: 8, EnvVars: env("FILES"), Usage: "input files, one per host"},
			&cli.IntFlag{Name: "events", Value: 500_000, EnvVars: env("EVENTS"), Usage: "events per file"},
			&cli.IntFlag{Name: "repeat", Value: 3, EnvVars: env("REPEAT"), Usage: "timed runs of each tool; the best counts"},
			&cli.Int64Flag{Name: "seed", Value: 1, EnvVars: env("SEED"), Usage: "seed of the generated data"},
			&cli.StringFlag{Name: "dir", EnvVars: env("DIR"), Usage: "parent of the temporary data directory, removed at exit (default: $TMPDIR or /tmp)"},
			&cli.StringFlag{Name: "tracecat", EnvVars: env("TRACECAT"), Usage: "the tracecat binary to measure (default: go build ./cmd/tracecat)"},
			&cli.StringFlag{Name: "part", Value: "merge", EnvVars: env("PART"), Usage: "what to measure: merge (files against sort -m), log (append throughput of the cluster event log) or all"},
			&cli.BoolFlag{Name: "keep", EnvVars: env("KEEP"), Usage: "keep the generated data and print where"},
			&cli.IntFlag{Name: "log-clients", Value: 8, EnvVars: env("LOG_CLIENTS"), Usage: "log part: concurrent clients, each with one Append in flight"},
			&cli.IntFlag{Name: "log-batch", Value: 2000, EnvVars: env("LOG_BATCH"), Usage: "log part, saturation: events per Append"},
			&cli.StringFlag{Name: "log-compression", Value: "s2", EnvVars: env("LOG_COMPRESSION"), Usage: "log part: the nodes' event_compression, s2 or none"},
			&cli.IntFlag{Name: "log-paced-batch", Value: 1000, EnvVars: env("LOG_PACED_BATCH"), Usage: "log part, at 500,000 events/s offered: events per Append"},
		},
		Action: action,
	}
}

func action(c *cli.Context) error {
	cfg := Config{Files: c.Int("files"), PerFile: c.Int("events"), Repeat: c.Int("repeat"), Seed: c.Int64("seed"),
		Dir: c.String("dir"), Tracecat: c.String("tracecat"), Part: c.String("part"), KeepData: c.Bool("keep"),
		LogClients: c.Int("log-clients"), LogBatch: c.Int("log-batch"), LogPacedBatch: c.Int("log-paced-batch"),
		LogCompression: c.String("log-compression"), Progress: os.Stderr}
	switch {
	case cfg.Files < 1 || cfg.PerFile < 1 || cfg.Repeat < 1:
		return usageError{Err: errors.New("--files, --events and --repeat must be positive")}
	case cfg.LogClients < 1 || cfg.LogBatch < 1 || cfg.LogPacedBatch < 1:
		return usageError{Err: errors.New("--log-clients, --log-batch and --log-paced-batch must be positive")}
	case cfg.LogCompression != "s2" && cfg.LogCompression != "none":
		return usageError{Err: fmt.Errorf("--log-compression %q: want s2 or none", cfg.LogCompression)}
	case cfg.Part != "merge" && cfg.Part != "log" && cfg.Part != "all":
		return usageError{Err: fmt.Errorf("--part %q: want merge, log or all", cfg.Part)}
	}
	rep, err := Run(c.Context, cfg)
	if rep != nil {
		if werr := rep.WriteText(os.Stdout); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}
