package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/vclock/tso"
)

// timestampLayout is RFC 3339 to the millisecond, a timestamp's
// physical precision.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

func timestampCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "timestamp",
		Usage:     "reserve cluster-wide unique, increasing timestamps",
		UsageText: "clockd timestamp [-n N] [--json] [connection options]",
		Description: fmt.Sprintf("Reserves N consecutive timestamps in one call (1 to %d) and prints each\n"+
			"as the uint64 and decoded: physical=<reference time, ms> logical=<counter>.\n"+
			"A timestamp is physical_ms<<%d | logical; any timestamp reserved after this\n"+
			"call returned is larger, whichever member serves it.\n\n"+
			"--json prints one object: timestamps [{timestamp (decimal string), physical\n"+
			"(RFC 3339, ms), physical_unix_ms, logical}].",
			clockdv1.MaxTimestampBatch, tso.LogicalBits),
		Flags: []cli.Flag{
			&cli.UintFlag{Name: "count", Aliases: []string{"n"}, Value: 1, Usage: "how many timestamps, `N`", EnvVars: []string{"CLOCKD_TIMESTAMP_COUNT"}},
		},
		Action: timestampAction,
	}, true)
}

func timestampAction(c *cli.Context) error {
	n := c.Uint("count")
	if n < 1 || n > clockdv1.MaxTimestampBatch {
		return clientUsage(c, "-n/--count %d: want 1 to %d", n, clockdv1.MaxTimestampBatch)
	}
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	var first uint64
	err = cc.call(c.Context, func(ctx context.Context) (err error) {
		first, err = cc.Timestamps(ctx, uint32(n))
		return err
	})
	if err != nil {
		return clientError(c, cc, "", err)
	}
	if c.Bool("json") {
		out := timestampsJSON{Timestamps: make([]timestampJSON, 0, n)}
		for i := range uint64(n) {
			out.Timestamps = append(out.Timestamps, timestampToJSON(first+i))
		}
		return clientPrintJSON(c.App.Writer, out, false)
	}
	for i := range uint64(n) {
		if err := timestampPrint(c.App.Writer, first+i); err != nil {
			return err
		}
	}
	return nil
}

func timestampPrint(w io.Writer, ts uint64) error {
	_, err := fmt.Fprintf(w, "%d  physical=%s logical=%d\n", ts, timestampPhysical(ts), tso.Logical(ts))
	return err
}

func timestampPhysical(ts uint64) string {
	return time.UnixMilli(int64(tso.Physical(ts))).UTC().Format(timestampLayout)
}

// timestampJSON is one timestamp in JSON; its field names are part of the
// CLI. The timestamp itself exceeds 2^53, so it is a decimal string.
type timestampJSON struct {
	Timestamp      string `json:"timestamp"`
	Physical       string `json:"physical"`
	PhysicalUnixMs uint64 `json:"physical_unix_ms"`
	Logical        uint64 `json:"logical"`
}

type timestampsJSON struct {
	Timestamps []timestampJSON `json:"timestamps"`
}

func timestampToJSON(ts uint64) timestampJSON {
	return timestampJSON{Timestamp: strconv.FormatUint(ts, 10), Physical: timestampPhysical(ts),
		PhysicalUnixMs: tso.Physical(ts), Logical: tso.Logical(ts)}
}
