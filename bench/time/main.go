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
		Name:  "bench-time",
		Usage: "measure clockd's time paths against their peers on this machine, in one run",
		Description: "Starts a 3-node cluster of `clockd run` processes on loopback and, against its leader,\n" +
			"measures Now over gRPC against the server's own gRPC health check, batched Timestamp\n" +
			"throughput through api/client, a shared-page read against time.Now(), and NTP query\n" +
			"latency against a chronyd it starts itself. Progress goes to stderr, the tables to stdout.",
		Flags:        flags(),
		OnUsageError: benchmain.OnUsageError,
		Action:       action,
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
