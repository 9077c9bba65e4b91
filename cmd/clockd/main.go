// Command clockd is the clockd daemon and its admin CLI.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:     "clockd",
		Usage:    "cluster-wide monotonic clock and trace-ordering daemon",
		Commands: []*cli.Command{devCommand()},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "clockd:", err)
		os.Exit(1)
	}
}
