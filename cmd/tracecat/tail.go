package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/timeline"
)

func tailCommand() *cli.Command {
	return &cli.Command{
		Name:      "tail",
		Usage:     "follow the cluster's ordered event log as events commit",
		UsageText: "tracecat tail --cluster HOST:PORT [--from GSN] [flags]",
		Description: "Writes each event of the cluster's log as it commits, in commit (GSN) order,\n" +
			"which every host agrees on, at the middle of the reference interval the\n" +
			"cluster stamped it with. Without --from it starts at the next event committed.\n" +
			"A broken stream is resumed from the GSN after the last one written, so no\n" +
			"event is written twice; GSNs the log no longer holds are reported as gaps.\n" +
			"Ctrl-C ends it (status 0) with the summary and the GSN to resume from on\n" +
			"stderr.\n\n" + exitHelp,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "from", EnvVars: env("FROM"),
				Usage: "start at `GSN` (default: the next event committed)"},
			&cli.IntFlag{Name: "retries", Value: 10, EnvVars: env("RETRIES"),
				Usage: "re-subscribe at most `N` times in a row after the stream fails without an event, then give up"},
		}, clusterFlags()...), outputFlags()...),
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			return commandErr(c, runTail(c))
		},
	}
}

func runTail(c *cli.Context) error {
	if c.Args().Present() {
		return usagef("unexpected argument %q: every input is a flag", c.Args().First())
	}
	from, err := parseGSN("from", c.String("from"))
	if err != nil {
		return err
	}
	if c.Int("retries") < 1 {
		return usagef("--retries must be at least 1")
	}
	if err := checkMaxReported(c); err != nil {
		return err
	}
	addr, tls, err := clusterFrom(c)
	if err != nil {
		return err
	}
	out, err := openOutput(c, c.App.Writer, true)
	if err != nil {
		return err
	}
	src, err := newEventSource(addr, tls)
	if err != nil {
		out.finish(err)
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer closeSource(src)
	sum, err := timeline.Tail(c.Context, src, timeline.LogOptions{From: from, Retries: c.Int("retries"),
		MaxRecorded: c.Int("max-reported"), Idle: out.Flush}, out.Write)
	if errors.Is(err, context.Canceled) {
		err = nil // Ctrl-C is how a tail ends
	}
	err = out.finish(err)
	printSummary(c.App.ErrWriter, &sum)
	if sum.LastGSN != 0 {
		fmt.Fprintf(c.App.ErrWriter, "resume with --from %d\n", sum.LastGSN+1)
	}
	return err
}
