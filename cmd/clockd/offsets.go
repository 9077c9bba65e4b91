package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/offsetlog"
)

func offsetsCommand() *cli.Command {
	return commandGroup(&cli.Command{
		Name:        "offsets",
		Usage:       "export the hosts' wall-clock offsets to the reference, for correcting trace files",
		Subcommands: []*cli.Command{offsetsExportCommand()},
	})
}

// --output has no CLOCKD_* variable: a variable left set in a shell must
// not choose a file to overwrite.
func offsetsExportCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "export",
		Usage:     "write the node's offset history as JSON lines",
		UsageText: "clockd offsets export [-o FILE] [connection options]",
		Description: "Streams the node's record of every host's wall-clock offset to the reference,\n" +
			"one sample per host per tick, oldest first, and writes one JSON object per line,\n" +
			"its fields in this order:\n\n" +
			"  {\"host\":\"hv1\",\"ref_unix_nano\":…,\"offset_nanos\":…,\"err_nanos\":…}\n\n" +
			"host is the host's name as its traces carry it, ref_unix_nano the reference time\n" +
			"of the sample, offset_nanos the host's wall clock minus the reference, err_nanos\n" +
			"the error bound of the reference then. This is the file tracecat merge --offsets\n" +
			"reads. Every host records the same samples, so any node's history will do.\n\n" +
			"-o writes FILE (replaced only once the export is complete), else standard\n" +
			"output; the count of samples and hosts goes to standard error. --timeout bounds\n" +
			"the wait for each sample, not the whole export.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` instead of standard output (-: standard output)", TakesFile: true},
		},
		Action: offsetsExport,
	}, false)
}

func offsetsExport(c *cli.Context) error {
	path := c.String("output")
	if c.IsSet("output") && path == "" {
		return clientUsage(c, "-o/--output is empty: want a file, or - for standard output")
	}
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	out, commit, abort, err := offsetsOpen(path, c.App.Writer)
	if err != nil {
		return clientFailed(c, "-o %s: %v", path, err)
	}
	n, hosts, err := offsetsCopy(c.Context, cc, out)
	if err != nil {
		abort()
		if _, ok := err.(offsetsWriteError); ok {
			return clientFailed(c, "write %s after %d samples: %v", offsetsName(path), n, err)
		}
		return clientError(c, cc, fmt.Sprintf("after %d samples", n), err)
	}
	if err := commit(); err != nil {
		return clientFailed(c, "write %s: %v", offsetsName(path), err)
	}
	fmt.Fprintf(c.App.ErrWriter, "%s: %d samples of %d hosts written to %s\n", clientCommandPath(c), n, hosts, offsetsName(path))
	return nil
}

func offsetsName(path string) string {
	if path == "" || path == "-" {
		return "standard output"
	}
	return path
}

// offsetsOpen opens the destination: stdout, or a temporary file beside
// path that commit renames onto it and abort removes.
func offsetsOpen(path string, stdout io.Writer) (w *bufio.Writer, commit func() error, abort func(), err error) {
	if path == "" || path == "-" {
		w = bufio.NewWriter(stdout)
		return w, w.Flush, func() { w.Flush() }, nil
	}
	// Checked first, so the error names what the caller gave, not the
	// temporary file, and no export runs only to fail at the rename.
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, nil, nil, errors.New("is a directory: want a file")
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, nil, nil, fmt.Errorf("directory %s does not exist", filepath.Dir(path))
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create a file in %s: %w", filepath.Dir(path), errors.Unwrap(err))
	}
	w = bufio.NewWriter(f)
	commit = func() error {
		err := w.Flush()
		if err == nil {
			err = f.Chmod(0o644)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), path)
		}
		if err != nil {
			os.Remove(f.Name())
		}
		return err
	}
	abort = func() {
		f.Close()
		os.Remove(f.Name())
	}
	return w, commit, abort, nil
}

// offsetsWriteError is a failure to write the output, as opposed to one of
// the stream.
type offsetsWriteError struct{ error }

// offsetsCopy streams the samples into w. The call is cancelled when no
// sample arrives within --timeout.
func offsetsCopy(ctx context.Context, cc *clientConn, w io.Writer) (n, hosts int, err error) {
	ctx, watchdog, cancel := watchStream(ctx, cc.timeout)
	defer cancel()
	stream, err := clockdv1.NewOrderingServiceClient(cc.Conn()).Offsets(ctx, &clockdv1.OffsetsRequest{})
	if err != nil {
		if watchdog.Fired() {
			return 0, 0, fmt.Errorf("no answer from %s within --timeout %v", cc.addr, cc.timeout)
		}
		return 0, 0, err
	}
	seen := map[string]bool{}
	for {
		s, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, len(seen), nil
		}
		if err != nil {
			if watchdog.Fired() {
				return n, len(seen), fmt.Errorf("no sample from %s within --timeout %v", cc.addr, cc.timeout)
			}
			return n, len(seen), err
		}
		watchdog.Reset(cc.timeout)
		if err := offsetsWrite(w, s); err != nil {
			return n, len(seen), offsetsWriteError{err}
		}
		n++
		seen[s.GetHost()] = true
	}
}

// offsetsWrite writes one sample as the daemon's offset history holds it:
// offsetlog.Sample fixes the field names and their order.
func offsetsWrite(w io.Writer, s *clockdv1.OffsetSample) error {
	b, err := json.Marshal(offsetlog.Sample{Host: s.GetHost(), RefUnixNano: s.GetRefUnixNano(),
		OffsetNanos: s.GetOffsetNanos(), ErrNanos: s.GetErrNanos()})
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
