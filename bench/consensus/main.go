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
	exitError       = 1   // a cluster failed, a node died, I/O failed
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
		fmt.Fprintln(os.Stderr, "bench-consensus: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(os.Stderr, "bench-consensus:", err)
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
		Name:  "bench-consensus",
		Usage: "measure clockd consensus against hashicorp/raft on this machine, in one run",
		Description: "Starts 3-node clusters of each engine, one OS process per node, on loopback with\n" +
			"fsync'd raft-boltdb storage; runs closed-loop clients in the leader's process and\n" +
			"prints throughput, commit latency, CPU per command and peak RSS per node, the\n" +
			"machine's floor (one fsync'd bolt write plus one loopback round trip) and a\n" +
			"paused-follower memory scenario. Progress goes to stderr.",
		Flags:    flags(),
		Action:   action,
		Commands: []*cli.Command{nodeCommand()},
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
