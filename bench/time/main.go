package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit codes.
const (
	exitError       = 1   // the cluster failed, a node died, I/O failed
	exitUsage       = 2   // bad flags
	exitInterrupted = 130 // Ctrl-C or SIGTERM
)

func main() { os.Exit(run(os.Args)) }

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newApp().RunContext(ctx, args)
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "bench-time: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(os.Stderr, "bench-time:", err)
	if errors.As(err, new(usageError)) {
		return exitUsage
	}
	return exitError
}

// usageError is a bad flag or flag value.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func newApp() *cli.App {
	return &cli.App{
		Name:  "bench-time",
		Usage: "measure clockd's time paths against their peers on this machine, in one run",
		Description: "Starts a 3-node cluster of `clockd run` processes on loopback and, against its leader,\n" +
			"measures Now over gRPC against the server's own gRPC health check, batched Timestamp\n" +
			"throughput through api/client, a shared-page read against time.Now(), and NTP query\n" +
			"latency against a chronyd it starts itself. Progress goes to stderr, the tables to stdout.",
		Flags:  flags(),
		Action: action,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
}

func action(c *cli.Context) error {
	cfg, err := configFrom(c)
	if err != nil {
		return usageError{err}
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
