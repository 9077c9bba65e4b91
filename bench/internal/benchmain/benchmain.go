// Package benchmain is the entry point the bench programs share: it runs
// a program's cli.App under a context that ends on Ctrl-C or SIGTERM,
// prints an error after the program's name, and maps the outcome to the
// exit status:
//
//	0    the run completed (whether or not the targets were met)
//	1    it failed: a cluster or a tool failed, a node died, I/O failed
//	2    bad flags (UsageError)
//	130  interrupted
package benchmain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit statuses.
const (
	ExitError       = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// UsageError is a bad flag or flag value.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// OnUsageError is the apps' cli.App.OnUsageError: a flag error is a
// UsageError.
func OnUsageError(_ *cli.Context, err error, _ bool) error { return UsageError{Err: err} }

// Run runs app with args and returns the exit status.
func Run(app *cli.App, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := app.RunContext(ctx, args)
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil:
		fmt.Fprintf(os.Stderr, "%s: interrupted\n", app.Name)
		return ExitInterrupted
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, err)
	if errors.As(err, new(UsageError)) {
		return ExitUsage
	}
	return ExitError
}
