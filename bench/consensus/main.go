package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/bench/internal/benchmain"
)

func main() { os.Exit(benchmain.Run(newApp(), os.Args)) }

// usageError is a bad flag or flag value (exit status 2).
type usageError = benchmain.UsageError

func newApp() *cli.App {
	return &cli.App{
		Name:  "bench-consensus",
		Usage: "measure clockd consensus against hashicorp/raft on this machine, in one run",
		Description: "Starts 3-node clusters of each engine, one OS process per node, on loopback with\n" +
			"fsync'd raft-boltdb storage; runs closed-loop clients in the leader's process and\n" +
			"prints throughput, commit latency, CPU per command and peak RSS per node, the\n" +
			"machine's floor (one fsync'd bolt write plus one loopback round trip) and a\n" +
			"paused-follower memory scenario. Progress goes to stderr.",
		Flags:        flags(),
		OnUsageError: benchmain.OnUsageError,
		Action:       action,
		Commands:     []*cli.Command{nodeCommand()},
	}
}

func action(c *cli.Context) error {
	cfg, err := configFrom(c)
	if err != nil {
		return usageError{Err: err}
	}
	rep, err := Run(c.Context, cfg)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return rep.WriteJSON(os.Stdout)
	}
	return rep.WriteText(os.Stdout)
}
