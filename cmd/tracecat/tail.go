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
			"When the stream fails, a line on stderr says so and that tail retries, up to\n" +
			"--retries times in a row; it gives up (status 1) when they all fail.\n" +
			"Ctrl-C ends it (status 0) with the summary and, once an event was written or\n" +
			"--from given, the GSN to resume from on stderr.\n\n" + exitHelp,
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
	retries := c.Int("retries")
	sum, err := timeline.Tail(c.Context, src, timeline.LogOptions{From: from, Retries: retries,
		MaxRecorded: c.Int("max-reported"), Idle: out.Flush, Retrying: func(err error) {
			fmt.Fprintf(c.App.ErrWriter, "tracecat: tail: %v; retrying, up to %s in a row (--retries)\n", err, times(retries))
		}}, out.Write)
	if errors.Is(err, context.Canceled) {
		err = nil // Ctrl-C is how a tail ends
	}
	err = out.finish(err)
	printSummary(c.App.ErrWriter, &sum)
	if gsn := resumeGSN(from, &sum); gsn != 0 {
		fmt.Fprintf(c.App.ErrWriter, "resume with --from %d\n", gsn)
	}
	return err
}

// resumeGSN is the GSN a tail that started at from (0: the next event
// committed) and wrote what sum says would resume from: the one after
// the last written, else from itself, as nothing was consumed. 0 when
// there is none: no event written, and none asked for.
func resumeGSN(from uint64, sum *timeline.Summary) uint64 {
	if sum.LastGSN != 0 {
		return sum.LastGSN + 1
	}
	return from
}

// times is "once", "twice" or "N times".
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprint(n, " times")
}
