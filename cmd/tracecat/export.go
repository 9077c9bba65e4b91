package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/timeline"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a range of the cluster's ordered event log",
		UsageText: "tracecat export --cluster HOST:PORT --from GSN [--to GSN] [flags]",
		Description: "Writes the events from --from to --to (GSNs, both included) in commit order,\n" +
			"each at the middle of the reference interval the cluster stamped it with.\n" +
			"Without --to it stops at the end of the log as it is when export gets there.\n" +
			"A log that ends before --to is a failure (status 1) after writing what it\n" +
			"holds; GSNs the log no longer holds (retention) are reported as a gap.\n\n" + exitHelp,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "from", EnvVars: env("FROM"), Usage: "first `GSN` (required)"},
			&cli.StringFlag{Name: "to", EnvVars: env("TO"), Usage: "last `GSN` (default: the end of the log)"},
			&cli.IntFlag{Name: "batch", Value: 1000, EnvVars: env("BATCH"), Usage: "events per read: `N`"},
		}, clusterFlags()...), outputFlags()...),
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			return commandErr(c, runExport(c))
		},
	}
}

func runExport(c *cli.Context) error {
	if c.Args().Present() {
		return usagef("unexpected argument %q: every input is a flag", c.Args().First())
	}
	if !c.IsSet("from") {
		return usagef("--from GSN is required")
	}
	from, err := parseGSN("from", c.String("from"))
	if err != nil {
		return err
	}
	to, err := parseGSN("to", c.String("to"))
	if err != nil {
		return err
	}
	if c.IsSet("to") && to < from {
		return usagef("--to %d is before --from %d", to, from)
	}
	if c.Int("batch") < 1 {
		return usagef("--batch must be at least 1")
	}
	if err := checkMaxReported(c); err != nil {
		return err
	}
	addr, tls, err := clusterFrom(c)
	if err != nil {
		return err
	}
	out, err := openOutput(c, c.App.Writer, false)
	if err != nil {
		return err
	}
	src, err := newEventSource(addr, tls)
	if err != nil {
		out.finish(err)
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer closeSource(src)
	sum, err := timeline.Export(c.Context, src, timeline.LogOptions{From: from, To: to, Batch: c.Int("batch"),
		MaxRecorded: c.Int("max-reported")}, out.Write)
	err = out.finish(err)
	printSummary(c.App.ErrWriter, &sum)
	return err
}
