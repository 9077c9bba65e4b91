// Command clockd is the clockd daemon and its admin CLI.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/internal/buildinfo"
	"github.com/clockd/clockd/internal/certs"
)

func main() {
	app := &cli.App{
		Name:     "clockd",
		Usage:    "cluster-wide monotonic clock and trace-ordering daemon",
		Version:  buildinfo.Version(),
		Commands: []*cli.Command{runCommand(), devCommand(), demoCommand(), certs.Command(), statusCommand(), nowCommand(), timestampCommand(), membersCommand(), vmCommand(), runbookCommand(), offsetsCommand()},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "clockd:", err)
		os.Exit(1)
	}
}
