package main

// The output side every subcommand shares: the writer for --output, the
// destination for -o, colour, and the summary.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/clockd/clockd/timeline"
)

// output is where the events go. Its Write and Flush, and finish, name
// their errors as the output's ("write the output: ..."), whichever
// format and however far the run got.
type output struct {
	timeline.Writer
	// commit finishes the destination: it renames -o's temporary file
	// over FILE, or does nothing for stdout.
	commit func() error
	// abort drops an unfinished -o file.
	abort func()
	// tty tells whether the events go to a terminal.
	tty bool
}

// openOutput opens the destination and writer of --output, -o and
// --color. A regular (or new) -o FILE is written as a temporary file
// beside it and renamed over it by commit, so that a failed run leaves
// FILE as it was; unless direct, when FILE is written as the events come
// (tail, whose output is read while it runs).
func openOutput(c *cli.Context, stdout io.Writer, direct bool) (*output, error) {
	format := c.String("output")
	switch format {
	case "text", "jsonl", "chrome":
	default:
		return nil, usagef("--output %q: want text, jsonl or chrome", format)
	}
	colorMode := c.String("color")
	switch colorMode {
	case "auto", "always", "never":
	default:
		return nil, usagef("--color %q: want auto, always or never", colorMode)
	}
	out := &output{commit: func() error { return nil }, abort: func() {}}
	dst := stdout
	if path := c.String("out"); path != "" && path != "-" {
		f, commit, abort, err := createOutput(path, direct)
		if err != nil {
			return nil, err
		}
		dst, out.commit, out.abort = f, commit, abort
	} else {
		out.tty = isTerminal(stdout)
	}
	switch format {
	case "jsonl":
		out.Writer = timeline.NewJSONLWriter(dst)
	case "chrome":
		out.Writer = timeline.NewChromeWriter(dst)
	default:
		color := colorMode == "always" || colorMode == "auto" && out.tty && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
		out.Writer = timeline.NewTextWriter(dst, color)
	}
	return out, nil
}

// createOutput opens path for writing: through a temporary file renamed
// by commit when path is a regular file or does not exist, else (direct,
// a device, a FIFO) directly.
func createOutput(path string, direct bool) (w io.Writer, commit func() error, abort func(), err error) {
	if fi, err := os.Stat(path); direct || err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("-o %s: %w", path, err)
		}
		return f, f.Close, func() { f.Close() }, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("-o %s: %w", path, err)
	}
	commit = func() error {
		if err := f.Close(); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("-o %s: %w", path, err)
		}
		if err := os.Chmod(f.Name(), 0o644); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("-o %s: %w", path, err)
		}
		if err := os.Rename(f.Name(), path); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("-o %s: %w", path, err)
		}
		return nil
	}
	abort = func() {
		f.Close()
		os.Remove(f.Name())
	}
	return f, commit, abort, nil
}

// Write writes ev.
func (o *output) Write(ev timeline.Event) error { return writeErr(o.Writer.Write(ev)) }

// Flush writes what the writer holds.
func (o *output) Flush() error { return writeErr(o.Writer.Flush()) }

// writeErr names err, when set, as the output's.
func writeErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("write the output: %w", err)
}

// finish closes the writer and the destination; after a failure (runErr)
// it still closes the writer, so that what was written stays readable,
// and then drops an -o file.
func (o *output) finish(runErr error) error {
	closeErr := o.Writer.Close()
	if runErr != nil {
		o.abort()
		return runErr
	}
	if closeErr != nil {
		o.abort()
		return writeErr(closeErr)
	}
	return o.commit()
}

// isTerminal tells whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// printSummary writes the summary to stderr.
func printSummary(stderr io.Writer, sum *timeline.Summary) {
	if err := sum.WriteText(stderr); err != nil {
		fmt.Fprintln(stderr, "tracecat: write the summary:", err)
	}
}
