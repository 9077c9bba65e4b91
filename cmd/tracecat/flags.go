package main

// The flags and errors every subcommand shares, and the exit statuses.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1   // an input, the output or the cluster failed
	exitUsage       = 2   // bad flags or arguments
	exitInterrupted = 130 // Ctrl-C or SIGTERM during merge or export
)

const exitHelp = "Exit status: 0 done (late and inconsistent events and skipped malformed records\n" +
	"are reported on stderr, not failures), 1 failed (an input cannot be read or its\n" +
	"format is unknown, a --strict violation, the output or the cluster failed), 2\n" +
	"bad usage, 130 interrupted. Flags can also be set through the TRACECAT_*\n" +
	"variables shown (connection flags also through CLOCKD_*)."

// usageError is bad usage: exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// onUsageError marks a flag parser's error as bad usage. An unknown
// "flag" that is not a flag's name (-:FORMAT with an unknown format, a
// file whose name starts with '-') gets a hint.
func onUsageError(_ *cli.Context, err error, _ bool) error {
	const undefined = "flag provided but not defined: -"
	if name, ok := strings.CutPrefix(err.Error(), undefined); ok && !flagLike(name) {
		return usageError{fmt.Errorf("%w: stdin in a format is -:FORMAT, FORMAT one of auto, jsonl, journal, "+
			"syslog, ftrace, otlp or chrome; a FILE whose name starts with '-' goes after --, as in "+
			"merge -- %s (see --help)", err, "-"+name)}
	}
	return usageError{fmt.Errorf("%w (see --help)", err)}
}

// flagLike tells whether name, the text after an argument's first '-',
// could be a flag's name: letters, digits and '-'.
func flagLike(name string) bool {
	name = strings.TrimPrefix(name, "-")
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return name != ""
}

// exitStatus prints err, if any, and maps it to an exit status.
func exitStatus(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "tracecat:", err)
	switch {
	case errors.As(err, new(usageError)):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailed
}

// commandErr prefixes err with the subcommand's name.
func commandErr(c *cli.Context, err error) error {
	if err == nil {
		return nil
	}
	var u usageError
	if errors.As(err, &u) {
		return usageError{fmt.Errorf("%s: %w", c.Command.Name, u.error)}
	}
	return fmt.Errorf("%s: %w", c.Command.Name, err)
}

// env lists the variables of a flag: TRACECAT_<name>, then the extra ones.
func env(name string, extra ...string) []string {
	return append([]string{"TRACECAT_" + name}, extra...)
}

// outputFlags are the flags of every command that writes events.
func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "output", Value: "text", EnvVars: env("OUTPUT"),
			Usage: "output `FORMAT`: text (one line per event), jsonl (one JSON object per event) or chrome (Trace Event Format JSON for Perfetto and chrome://tracing)"},
		// No variable: one left set in a shell must not choose a file to
		// overwrite.
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, TakesFile: true,
			Usage: "write the events to `FILE` (replaced once the output is complete) instead of stdout"},
		&cli.StringFlag{Name: "color", Value: "auto", EnvVars: env("COLOR"),
			Usage: "colour text output by host: `WHEN` is auto (when stdout is a terminal and NO_COLOR is unset), always or never"},
		&cli.IntFlag{Name: "max-reported", Value: 20, EnvVars: env("MAX_REPORTED"),
			Usage: "list at most `N` late events, inconsistencies and malformed records (per input) in the summary; the counts are always complete"},
	}
}

// checkMaxReported refuses a --max-reported below 1.
func checkMaxReported(c *cli.Context) error {
	if c.Int("max-reported") < 1 {
		return usagef("--max-reported must be at least 1")
	}
	return nil
}

// tlsFlags are the connection settings of tail and export.
type tlsFlags struct {
	Insecure                  bool
	CA, Cert, Key, ServerName string
}

// clusterFlags are the connection flags of tail and export.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cluster", EnvVars: env("CLUSTER", "CLOCKD_ADDR"),
			Usage: "a clockd node's API `HOST:PORT`"},
		&cli.BoolFlag{Name: "insecure", EnvVars: env("INSECURE", "CLOCKD_INSECURE"),
			Usage: "plaintext, for nodes run with --insecure (clockd dev); the --tls-* flags are ignored"},
		&cli.StringFlag{Name: "tls-ca", Value: "/etc/clockd/tls/ca.pem", EnvVars: env("TLS_CA", "CLOCKD_TLS_CA"), TakesFile: true,
			Usage: "cluster CA certificate (PEM) the node's certificate must chain to"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: env("TLS_CERT", "CLOCKD_TLS_CERT"), TakesFile: true,
			Usage: "client certificate (PEM)"},
		&cli.StringFlag{Name: "tls-key", EnvVars: env("TLS_KEY", "CLOCKD_TLS_KEY"), TakesFile: true,
			Usage: "client private key (PEM)"},
		&cli.StringFlag{Name: "server-name", EnvVars: env("SERVER_NAME", "CLOCKD_SERVER_NAME"),
			Usage: "`NAME` the node's certificate must carry (default: the host of --cluster)"},
	}
}

// clusterFrom reads the connection flags.
func clusterFrom(c *cli.Context) (string, tlsFlags, error) {
	addr := c.String("cluster")
	if addr == "" {
		return "", tlsFlags{}, usagef("--cluster HOST:PORT is required")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "", tlsFlags{}, usagef("--cluster %q: want HOST:PORT", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", tlsFlags{}, usagef("--cluster %q: port %q is not 1 to 65535", addr, port)
	}
	return addr, tlsFlags{Insecure: c.Bool("insecure"), CA: c.String("tls-ca"), Cert: c.String("tls-cert"),
		Key: c.String("tls-key"), ServerName: c.String("server-name")}, nil
}

// parseGSN reads a GSN flag value.
func parseGSN(flag, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, usagef("--%s %q: want a GSN, a whole number", flag, s)
	}
	return n, nil
}
