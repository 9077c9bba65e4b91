// Command clockd is the clockd daemon and its admin CLI.
package main

import (
	"fmt"
	"os"
	"strings"

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
	usageErrors(app.Commands)
	app.OnUsageError = onUsageError
	app.CommandNotFound = func(c *cli.Context, name string) {
		names := make([]string, 0, len(app.Commands))
		for _, cmd := range app.Commands {
			if !cmd.Hidden {
				names = append(names, cmd.Name)
			}
		}
		fmt.Fprintf(os.Stderr, "clockd: unknown command %q: want one of %s (see --help)\n", name, strings.Join(names, ", "))
		os.Exit(2)
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "clockd:", err)
		os.Exit(1)
	}
}

// usageErrors gives onUsageError to every command that has none of its
// own, as the client commands have.
func usageErrors(cmds []*cli.Command) {
	for _, cmd := range cmds {
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = onUsageError
		}
		usageErrors(cmd.Subcommands)
	}
}
