package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/vclock"
)

func nowCommand() *cli.Command {
	env := func(name string) []string { return []string{"CLOCKD_NOW_" + name} }
	return clientCommand(&cli.Command{
		Name:      "now",
		Usage:     "read the reference clock on a node",
		UsageText: "clockd now [--count N [--interval D] | --watch] [--json] [connection options]",
		Description: "Prints one reading: the time, the interval [earliest, latest] that holds the\n" +
			"true time, its half-width (±uncertainty) and the status (INITIALIZING,\n" +
			"SYNCHRONIZED, HOLDOVER or UNSYNCHRONIZED).\n\n" +
			"--count reads N times, --interval apart, one line each, and checks that no\n" +
			"reading is below the one before (a node's readings never go back): when one is,\n" +
			"it says so and the exit status is 1. --watch prints the current reading, then\n" +
			"one each time the status changes, until interrupted (exit status 0) or the\n" +
			"node stops reporting (1). Ctrl-C ends --count early too.\n\n" +
			"--json prints each reading as one JSON object on a line of its own: time,\n" +
			"time_unix_nano, earliest, earliest_unix_nano, latest, latest_unix_nano,\n" +
			"uncertainty_ns, status, bounded. An unbounded reading (INITIALIZING) has null\n" +
			"earliest, latest and uncertainty.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "count", Value: 1, Usage: "read `N` times, one line each", EnvVars: env("COUNT")},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "pause between the reads of --count", EnvVars: env("INTERVAL")},
			&cli.BoolFlag{Name: "watch", Usage: "print the reading at each status change, until interrupted", EnvVars: env("WATCH")},
		},
		Action: nowAction,
	}, true)
}

func nowAction(c *cli.Context) error {
	count, interval, watch := c.Int("count"), c.Duration("interval"), c.Bool("watch")
	switch {
	case watch && c.IsSet("count"):
		return clientUsage(c, "--watch and --count do not mix")
	case count < 1:
		return clientUsage(c, "--count %d: want 1 or more", count)
	case interval < 0:
		return clientUsage(c, "--interval %v: want 0 or more", interval)
	}
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &nowPrinter{out: c.App.Writer, errOut: c.App.ErrWriter, json: c.Bool("json"), lines: watch || c.IsSet("count")}
	if watch {
		err = nowWatch(ctx, c, cc, p)
	} else {
		err = nowRepeat(ctx, c, cc, p, count, interval)
	}
	if err != nil {
		return err
	}
	if p.back > 0 {
		return clientFailed(c, "%d of %d readings went back", p.back, p.reads)
	}
	return nil
}

// nowRepeat reads count times, interval apart, until interrupted.
func nowRepeat(ctx context.Context, c *cli.Context, cc *clientConn, p *nowPrinter, count int, interval time.Duration) error {
	for i := range count {
		var r vclock.Reading
		err := cc.call(ctx, func(ctx context.Context) (err error) {
			r, err = cc.Now(ctx)
			return err
		})
		if ctx.Err() != nil {
			return nil // interrupted
		}
		if err != nil {
			return clientError(c, cc, "", err)
		}
		if err := p.print(r); err != nil {
			return err
		}
		if i == count-1 {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
	return nil
}

// nowWatch prints the readings of a Watch until interrupted. The node
// sends its current reading at once, so that first one must come within
// --timeout; later ones come only when the status changes, which may be
// never.
func nowWatch(ctx context.Context, c *cli.Context, cc *clientConn, p *nowPrinter) error {
	wctx, first, cancel := watchStream(ctx, cc.timeout)
	defer cancel()
	w, err := cc.Watch(wctx)
	for err == nil {
		var r vclock.Reading
		if r, err = w.Recv(); err == nil {
			first.Stop()
			err = p.print(r)
		}
	}
	switch {
	case first.Fired() && p.reads == 0:
		return clientFailed(c, "no answer from %s within --timeout %v", cc.addr, cc.timeout)
	case ctx.Err() != nil:
		return nil // interrupted
	}
	return clientError(c, cc, "", err)
}

// nowPrinter prints readings and counts those below the one before.
type nowPrinter struct {
	out, errOut io.Writer
	json        bool
	lines       bool // one line per reading rather than a block

	prev  vclock.Reading
	reads int
	back  int
}

func (p *nowPrinter) print(r vclock.Reading) error {
	if p.reads > 0 && r.Time < p.prev.Time {
		p.back++
		fmt.Fprintf(p.errOut, "clockd now: reading %d went back %v: %s after %s\n", p.reads+1,
			time.Duration(p.prev.Time-r.Time), clientTime(r.Time), clientTime(p.prev.Time))
	}
	p.prev = r
	p.reads++
	switch {
	case p.json:
		return clientPrintJSON(p.out, clientReading(r), true)
	case p.lines:
		_, err := fmt.Fprintf(p.out, "%s  %-14s  %s\n", clientTime(r.Time), clientUncertainty(r), r.Status)
		return err
	}
	earliest, latest := "unbounded", "unbounded"
	if r.Bounded() {
		earliest, latest = clientTime(r.Earliest), clientTime(r.Latest)
	}
	clientFields(p.out, []clientField{
		{"Time", clientTime(r.Time)},
		{"Earliest", earliest},
		{"Latest", latest},
		{"Uncertainty", clientUncertainty(r)},
		{"Status", r.Status.String()},
	})
	return nil
}
