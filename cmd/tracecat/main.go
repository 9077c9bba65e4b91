// Command tracecat merges per-host trace files into one timeline, each
// host's clock corrected to the cluster's reference, and reads the
// cluster's ordered event log (tail, export). See timeline's doc.go for
// the model and guarantees.
//
// default.pgo is a CPU profile of `make bench-tracecat`'s merge, which
// go build uses for profile-guided optimization. Remake it after large
// changes to the merge path: run the timed command with the hidden
// --cpuprofile FILE flag (bench-tracecat --keep keeps the data) and
// merge the profiles of a few runs with go tool pprof -proto.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line until it is done or ctx ends, and returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return exitStatus(stderr, newApp(stdout, stderr).RunContext(ctx, stdinFormatArgs(args)))
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:    "tracecat",
		Usage:   "merge per-host traces into one trusted timeline",
		Version: buildinfo.Version(),
		Description: "merge reads trace files (JSON lines, journal export, RFC 5424 syslog, ftrace,\n" +
			"OTLP JSON, Chrome trace JSON), corrects each host's clock with the offsets\n" +
			"clockd recorded, and writes one timeline as text, JSON lines or a Chrome trace\n" +
			"that opens in Perfetto. tail and export read the cluster's ordered event log.\n\n" + exitHelp,
		Commands:        []*cli.Command{mergeCommand(), tailCommand(), exportCommand()},
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		OnUsageError:    onUsageError,
		ExitErrHandler:  func(*cli.Context, error) {}, // exitStatus handles every error
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q (see --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
}
