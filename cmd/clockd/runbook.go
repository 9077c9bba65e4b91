package main

// clockd runbook: run-books from the command line. A run-book file is
// read and checked here, so a mistake in it is reported with its file
// and line (or step, for a rule across steps) before anything is sent;
// the cluster resolves "all" hosts, checks the rest and commits it.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering/runbook"
)

// runbookDefaultWait is how long submit --wait and wait wait for a book
// by default.
const runbookDefaultWait = time.Hour

// runbookWaitSlice is the longest one Wait call asks for. Between calls
// the wait reports progress, and a node that restarted is asked again.
const runbookWaitSlice = 10 * time.Second

// runbookRetryDelay is the pause before asking again a node that could
// not be reached during a wait.
const runbookRetryDelay = time.Second

// runbookFormat is the run-book file format, as ordering/runbook reads it.
const runbookFormat = "The file format, in YAML (unknown keys are refused):\n\n" +
	"  id: upgrade-2026-12          # the book's id, unique in the cluster\n" +
	"  steps:\n" +
	"    - id: drain                # unique in the book\n" +
	"      hosts: [1]               # node IDs, or \"all\": every voting member\n" +
	"      argv: [/usr/local/sbin/drain, --wait]\n" +
	"      timeout: 5m              # default 10m, at most 24h\n" +
	"      retries: 2               # further attempts after a failure; default 0\n" +
	"      idempotent: true         # may run again after its host restarts mid-step\n" +
	"    - id: drained\n" +
	"      hosts: all               # no argv: a barrier every host must reach\n" +
	"      depends_on: [drain]      # earlier steps that must succeed on all their hosts\n" +
	"    - id: upgraded\n" +
	"      hosts: all\n" +
	"      min_version: v1.4.0      # a version gate: a barrier reached on clockd v1.4.0 or later\n\n" +
	"Ids are letters, digits and - _ . : (at most 128 bytes). argv runs without a\n" +
	"shell, with CLOCKD_RUNBOOK, CLOCKD_STEP, CLOCKD_NODE_ID, CLOCKD_ATTEMPT and\n" +
	"CLOCKD_FENCING_TOKEN in its environment. Each host runs its steps one at a\n" +
	"time, in the order the books and their steps were committed. A host held at a\n" +
	"version gate (clockd status shows each node's version) waits, with its later\n" +
	"steps, until it runs a clockd that new."

// runbookJSONHelp describes the JSON that status, wait, submit and cancel
// print.
const runbookJSONHelp = "--json prints one object: id, status (running, succeeded, failed or cancelled),\n" +
	"seq (the order of submission), cancelled, submitted_unix_nano, and steps [{id,\n" +
	"argv, depends_on, runs [{host, state (pending, running, succeeded, failed,\n" +
	"unknown or skipped), attempts, failures, token (the fencing token of the latest\n" +
	"start), exit (-1: killed or not started), start_unix_nano, end_unix_nano,\n" +
	"output_sha256 (of the whole output), output_tail (its last 1 KiB), reason}]}].\n" +
	"Here the *_unix_nano values are JSON numbers (integers), not strings."

// runbookExitHelp is the exit status of the commands that wait.
const runbookExitHelp = "Waiting, the exit status is 0 when every run succeeded, and 1 when the book\n" +
	"failed or was cancelled (the runs that did not succeed are named on standard\n" +
	"error) or did not finish in time. Progress goes to standard error every 10s."

func runbookCommand() *cli.Command {
	return commandGroup(&cli.Command{
		Name:  "runbook",
		Usage: "submit, follow and cancel run-books: steps every host runs in the committed order",
		Description: "A run-book is a list of steps, each run on some hosts once the steps it depends on\n" +
			"have succeeded everywhere. submit and cancel take the admin certificate; status,\n" +
			"wait and list any host or admin certificate. Every member answers: changes go\n" +
			"to the leader, reads are of the node at --addr's state.",
		Subcommands: []*cli.Command{runbookSubmitCommand(), runbookStatusCommand(), runbookWaitCommand(),
			runbookListCommand(), runbookCancelCommand()},
	})
}

func runbookSubmitCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "submit",
		Usage:     "commit a run-book from a YAML file",
		UsageText: "clockd runbook submit [--wait] [--wait-timeout D] [--json] [connection options] FILE",
		Description: "Reads the run-book in FILE (-: standard input) and checks it: a mistake is\n" +
			"reported with the file and its line (a rule across steps, such as depends_on,\n" +
			"with the step), exit status 2, before anything is sent. The\n" +
			"node at --addr then resolves hosts \"all\" to the voting members and commits the\n" +
			"book. Submitting the same file again is answered with the book's status; a\n" +
			"book with another content under a used id is refused (\"already exists\").\n" +
			"Prints the book's status as clockd runbook status does; with --wait, once it has\n" +
			"finished.\n\n" +
			"Example:\n\n  clockd runbook submit --wait upgrade.yaml\n\n" +
			runbookFormat + "\n\n" + runbookExitHelp,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "wait", Usage: "wait until the book has finished, and exit 1 unless it succeeded"},
			runbookWaitFlag("wait-timeout", "with --wait, wait up to `D` for the book to finish"),
		},
		Action: runbookSubmit,
	}, true)
}

func runbookStatusCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "status",
		Usage:     "show where each step of a run-book stands on each host",
		UsageText: "clockd runbook status [--json] [connection options] ID",
		Description: "Prints the book's status, then one line per step and host: the step, the\n" +
			"host, the run's state, its attempts, the latest attempt's exit status, the\n" +
			"fencing token of its latest start, and why it failed to start, ended unknown or\n" +
			"was skipped, or else the first line of the end of its output.\n\n" +
			"Example:\n\n  clockd runbook status --json upgrade-2026-12\n\n" + runbookJSONHelp,
		Action: runbookStatus,
	}, true)
}

func runbookWaitCommand() *cli.Command {
	cmd := clientCommand(&cli.Command{
		Name:      "wait",
		Usage:     "wait until a run-book has finished, and show it",
		UsageText: "clockd runbook wait [--timeout D] [--json] [connection options] ID",
		Description: "Waits, up to --timeout, until every run of the book has ended, then prints its\n" +
			"status as clockd runbook status does. Ctrl-C stops the wait, not the book.\n\n" +
			"Example:\n\n  clockd runbook wait --timeout 30m upgrade-2026-12\n\n" +
			runbookJSONHelp + "\n\n" + runbookExitHelp,
		Action: runbookWaitAction,
	}, true)
	// --timeout bounds the wait here, not one call.
	for i, f := range cmd.Flags {
		if f.Names()[0] == "timeout" {
			cmd.Flags[i] = runbookWaitFlag("timeout", "wait up to `D` for the book to finish")
		}
	}
	return cmd
}

func runbookListCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "list",
		Usage:     "list the run-books the cluster keeps",
		UsageText: "clockd runbook list [--json] [connection options]",
		Description: "One line per book, in submission order: its seq, id, status, steps, runs ended\n" +
			"of all (hosts summed over steps) and when it was submitted. The cluster keeps\n" +
			"every book that has not finished and the last 100 that have.\n\n" +
			"Example:\n\n  clockd runbook list\n\n" +
			"--json prints one object: runbooks [{seq, id, status, cancelled, steps, runs,\n" +
			"runs_ended, submitted_unix_nano}].",
		Action: runbookList,
	}, true)
}

func runbookCancelCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "cancel",
		Usage:     "skip every run of a run-book that has not started",
		UsageText: "clockd runbook cancel [--reason R] [--json] [connection options] ID",
		Description: "Runs under way finish and are recorded (a failure is not tried again); every\n" +
			"other run is skipped, with the reason. A book that has finished cannot be\n" +
			"cancelled. Prints the book's status as clockd runbook status does.\n\n" +
			"Example:\n\n  clockd runbook cancel --reason \"host 3 is being replaced\" upgrade-2026-12\n\n" +
			runbookJSONHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "the reason `R`, recorded on every run skipped (at most 1024 bytes)"},
		},
		Action: runbookCancel,
	}, true)
}

func runbookWaitFlag(name, usage string) cli.Flag {
	return &cli.DurationFlag{Name: name, Value: runbookDefaultWait, Usage: usage,
		EnvVars: []string{"CLOCKD_RUNBOOK_WAIT_TIMEOUT"}}
}

// runbookArg is the one argument a command takes, its ID or FILE. The
// flag parser stops at the first argument: flags after it are parsed
// here and set as if they came before.
func runbookArg(c *cli.Context, what string) (string, error) {
	args := c.Args().Slice()
	if len(args) == 0 {
		return "", clientUsage(c, "want the run-book's %s (see --help)", what)
	}
	set := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if err := f.Apply(set); err != nil {
			return "", clientUsage(c, "%v", err)
		}
	}
	if err := set.Parse(args[1:]); err != nil {
		return "", clientUsage(c, "%v (see --help)", err)
	}
	if set.NArg() > 0 {
		return "", clientUsage(c, "unexpected argument %q after the %s %q", set.Arg(0), what, args[0])
	}
	var err error
	help := false
	set.Visit(func(f *flag.Flag) {
		help = help || f.Name == "help" || f.Name == "h"
		if err == nil {
			err = c.Set(f.Name, f.Value.String())
		}
	})
	if help {
		cli.ShowSubcommandHelp(c)
		return "", cli.Exit("", 0)
	}
	if err != nil {
		return "", clientUsage(c, "%v (see --help)", err)
	}
	return args[0], nil
}

func runbookID(c *cli.Context) (string, error) {
	id, err := runbookArg(c, "ID")
	switch {
	case err != nil:
		return "", err
	case id == "":
		return "", clientUsage(c, "the ID is empty")
	case len(id) > runbook.MaxIDLen:
		return "", clientUsage(c, "the ID is %d bytes, at most %d", len(id), runbook.MaxIDLen)
	}
	if err := runbook.CheckID(id); err != nil {
		return "", clientUsage(c, "the ID: %v", err)
	}
	return id, nil
}

// runbookDial is clientDial for the commands that take an argument,
// which clientDial refuses: it reads the flags through a child context
// that has none.
func runbookDial(c *cli.Context) (*clientConn, error) {
	return clientDial(cli.NewContext(c.App, flag.NewFlagSet(c.Command.Name, flag.ContinueOnError), c))
}

func runbookClient(cc *clientConn) clockdv1.RunbookServiceClient {
	return clockdv1.NewRunbookServiceClient(cc.Conn())
}

// runbookWaitFor is the wait a flag asks for, which must be positive.
func runbookWaitFor(c *cli.Context, name string) (time.Duration, error) {
	d := c.Duration(name)
	if d <= 0 {
		return 0, clientUsage(c, "--%s %v: want a positive duration", name, d)
	}
	return d, nil
}

func runbookSubmit(c *cli.Context) error {
	file, err := runbookArg(c, "FILE")
	if err != nil {
		return err
	}
	wait := c.Bool("wait")
	waitFor, err := runbookWaitFor(c, "wait-timeout")
	if err != nil {
		return err
	}
	// CLOCKD_RUNBOOK_WAIT_TIMEOUT serves wait as well, so only the flag
	// given without --wait is a mistake.
	if c.IsSet("wait-timeout") && !wait && os.Getenv("CLOCKD_RUNBOOK_WAIT_TIMEOUT") == "" {
		return clientUsage(c, "--wait-timeout without --wait: add --wait, or leave --wait-timeout out")
	}
	b, err := runbookRead(c, file)
	if err != nil {
		return err
	}
	cc, err := runbookDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	st, err := runbookCall(c.Context, c, cc, func(ctx context.Context, rc clockdv1.RunbookServiceClient) (*clockdv1.RunbookStatus, error) {
		return rc.Submit(ctx, runbookToProto(&b))
	})
	if err != nil {
		return err
	}
	if !wait {
		return runbookPrint(c, st)
	}
	if st, err = runbookWait(c, cc, b.ID, waitFor, true); err != nil {
		return err
	}
	return runbookFinished(c, st)
}

// runbookRead reads and checks a run-book file. Steps on hosts "all"
// are checked as if on one host: the node resolves them.
func runbookRead(c *cli.Context, file string) (runbook.Book, error) {
	var r io.Reader = os.Stdin
	name := "<stdin>"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return runbook.Book{}, clientUsage(c, "%v", err)
		}
		defer f.Close()
		r, name = f, file
	}
	b, err := runbook.Parse(r, name)
	if err != nil {
		return runbook.Book{}, clientUsage(c, "%v", err)
	}
	check := runbook.Book{ID: b.ID, Steps: append([]runbook.Step(nil), b.Steps...)}
	check.ResolveAll([]consensus.NodeID{1})
	if err := check.Validate(); err != nil {
		return runbook.Book{}, clientUsage(c, "%s: %v", name, err)
	}
	return b, nil
}

func runbookToProto(b *runbook.Book) *clockdv1.Book {
	out := &clockdv1.Book{Id: b.ID}
	for _, s := range b.Steps {
		ps := &clockdv1.BookStep{Id: s.ID, Argv: s.Argv, DependsOn: s.DependsOn, TimeoutNanos: int64(s.Timeout),
			Retries: uint32(s.Retries), Idempotent: s.Idempotent, MinVersion: s.MinVersion}
		for _, h := range s.Hosts {
			ps.Hosts = append(ps.Hosts, uint64(h))
		}
		out.Steps = append(out.Steps, ps)
	}
	return out
}

func runbookStatus(c *cli.Context) error {
	id, err := runbookID(c)
	if err != nil {
		return err
	}
	cc, err := runbookDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	st, err := runbookCall(c.Context, c, cc, func(ctx context.Context, rc clockdv1.RunbookServiceClient) (*clockdv1.RunbookStatus, error) {
		return rc.Get(ctx, &clockdv1.GetRunbookRequest{Id: id})
	})
	if err != nil {
		return err
	}
	return runbookPrint(c, st)
}

func runbookWaitAction(c *cli.Context) error {
	id, err := runbookID(c)
	if err != nil {
		return err
	}
	waitFor, err := runbookWaitFor(c, "timeout")
	if err != nil {
		return err
	}
	cc, err := runbookDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	cc.timeout = clientDefaultTimeout // --timeout bounds the whole wait here, not each call
	st, err := runbookWait(c, cc, id, waitFor, false)
	if err != nil {
		return err
	}
	return runbookFinished(c, st)
}

// runbookWait waits, up to wait, until book id has finished. It asks in
// Wait calls of at most runbookWaitSlice, each given cc.timeout more for
// the answer to arrive, so the wait ends at most that long after wait. Between calls it reports on standard error the runs ended so
// far, when they changed. A node that cannot be reached before it has
// answered (answered: the caller has had an answer from it already)
// fails the command at once, as every client command does; one that
// stops answering after it did (a restart) is said so and asked again.
func runbookWait(c *cli.Context, cc *clientConn, id string, wait time.Duration, answered bool) (*clockdv1.RunbookStatus, error) {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	deadline := time.Now().Add(wait)
	lastProgress := ""
	retrying := false
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, clientFailed(c, "run-book %q has not finished after %v (clockd runbook status %s shows where it stands)",
				id, wait, id)
		}
		slice := min(left, runbookWaitSlice)
		callCtx, cancel := context.WithTimeout(ctx, slice+cc.timeout)
		st, err := runbookClient(cc).Wait(callCtx, &clockdv1.WaitRunbookRequest{Id: id, TimeoutNanos: int64(slice)})
		cancel()
		code := grpcstatus.Code(err)
		switch {
		case err == nil:
			return st, nil
		case ctx.Err() != nil:
			return nil, clientFailed(c, "interrupted while waiting for run-book %q; it goes on (clockd runbook cancel %s stops it)", id, id)
		case code == codes.Unavailable && !answered:
			return nil, runbookError(c, cc, err)
		case code == codes.Unavailable:
			if !retrying {
				fmt.Fprintf(c.App.ErrWriter, "%s: the node at %s does not answer; asking again every %v until %s\n",
					clientCommandPath(c), cc.addr, runbookRetryDelay, deadline.Format(time.TimeOnly))
				retrying = true
			}
			select {
			case <-ctx.Done():
			case <-time.After(runbookRetryDelay):
			}
			continue
		case code != codes.DeadlineExceeded:
			return nil, runbookError(c, cc, err)
		}
		answered, retrying = true, false
		now, err := runbookCall(ctx, c, cc, func(ctx context.Context, rc clockdv1.RunbookServiceClient) (*clockdv1.RunbookStatus, error) {
			return rc.Get(ctx, &clockdv1.GetRunbookRequest{Id: id})
		})
		if err == nil {
			if p := runbookProgress(now); p != lastProgress {
				fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", clientCommandPath(c), p)
				lastProgress = p
			}
		}
	}
}

// runbookProgress is "run-book "x": 3 of 6 runs ended; running: step "s" on host 2".
func runbookProgress(st *clockdv1.RunbookStatus) string {
	ended, runs := 0, 0
	var running []string
	for i, sr := range st.GetSteps() {
		for _, r := range sr.GetRuns() {
			runs++
			switch r.GetState() {
			case clockdv1.RunState_RUN_STATE_PENDING:
			case clockdv1.RunState_RUN_STATE_RUNNING:
				running = append(running, fmt.Sprintf("step %q on host %d", runbookStepID(st, i), r.GetHost()))
			default:
				ended++
			}
		}
	}
	p := fmt.Sprintf("run-book %q: %d of %d runs ended", st.GetBook().GetId(), ended, runs)
	if len(running) > 0 {
		p += "; running: " + runbookFirst(running, 3)
	}
	return p
}

// runbookFirst joins the first n of list, and counts the rest.
func runbookFirst(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(list[:n], ", "), len(list)-n)
}

// runbookFinished prints a finished book, and fails unless it succeeded,
// naming the runs that did not.
func runbookFinished(c *cli.Context, st *clockdv1.RunbookStatus) error {
	if err := runbookPrint(c, st); err != nil {
		return err
	}
	if st.GetState() == clockdv1.RunbookState_RUNBOOK_STATE_SUCCEEDED {
		return nil
	}
	return clientFailed(c, "%s", runbookFailure(st))
}

// runbookFailure says how a book that did not succeed ended: 'run-book
// "x" failed: step "a" on host 1 failed (exit 3 after 2 attempts), ...'.
func runbookFailure(st *clockdv1.RunbookStatus) string {
	var bad []string
	for i, sr := range st.GetSteps() {
		for _, r := range sr.GetRuns() {
			var why string
			switch r.GetState() {
			case clockdv1.RunState_RUN_STATE_SUCCEEDED:
				continue
			case clockdv1.RunState_RUN_STATE_FAILED:
				why = fmt.Sprintf("exit %d after %d attempts", r.GetExit(), r.GetAttempts())
				if r.GetAttempts() == 1 {
					why = fmt.Sprintf("exit %d", r.GetExit())
				}
			default:
				why = runbookPrintable(r.GetReason(), 120)
			}
			s := fmt.Sprintf("step %q on host %d %s", runbookStepID(st, i), r.GetHost(), runbookState(r.GetState()))
			if why != "" {
				s += " (" + why + ")"
			}
			bad = append(bad, s)
		}
	}
	return fmt.Sprintf("run-book %q %s: %s", st.GetBook().GetId(), runbookStatusWords(st.GetState()), runbookFirst(bad, 5))
}

func runbookStatusWords(s clockdv1.RunbookState) string {
	if s == clockdv1.RunbookState_RUNBOOK_STATE_CANCELLED {
		return "was cancelled"
	}
	return runbookBookState(s)
}

func runbookStepID(st *clockdv1.RunbookStatus, i int) string {
	if steps := st.GetBook().GetSteps(); i < len(steps) {
		return steps[i].GetId()
	}
	return "#" + strconv.Itoa(i+1)
}

func runbookList(c *cli.Context) error {
	cc, err := clientDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	var resp *clockdv1.ListRunbooksResponse
	err = cc.call(c.Context, func(ctx context.Context) (err error) {
		resp, err = runbookClient(cc).List(ctx, &clockdv1.ListRunbooksRequest{})
		return err
	})
	if err != nil {
		return runbookError(c, cc, err)
	}
	if c.Bool("json") {
		out := runbookListJSON{Runbooks: make([]runbookSummaryJSON, 0, len(resp.GetRunbooks()))}
		for _, s := range resp.GetRunbooks() {
			out.Runbooks = append(out.Runbooks, runbookSummaryJSON{Seq: s.GetSeq(), ID: s.GetId(),
				Status: runbookBookState(s.GetState()), Cancelled: s.GetCancelled(), Steps: s.GetSteps(),
				Runs: s.GetRuns(), RunsEnded: s.GetRunsEnded(), SubmittedUnixNano: s.GetSubmittedUnixNano()})
		}
		return clientPrintJSON(c.App.Writer, out, false)
	}
	if len(resp.GetRunbooks()) == 0 {
		fmt.Fprintln(c.App.Writer, "no run-books")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tID\tSTATUS\tSTEPS\tRUNS ENDED\tSUBMITTED")
	for _, s := range resp.GetRunbooks() {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d/%d\t%s\n", s.GetSeq(), s.GetId(), runbookBookState(s.GetState()),
			s.GetSteps(), s.GetRunsEnded(), s.GetRuns(), clientTime(s.GetSubmittedUnixNano()))
	}
	return tw.Flush()
}

func runbookCancel(c *cli.Context) error {
	id, err := runbookID(c)
	if err != nil {
		return err
	}
	reason := c.String("reason")
	if len(reason) > runbook.MaxReasonLen {
		return clientUsage(c, "--reason is %d bytes, at most %d", len(reason), runbook.MaxReasonLen)
	}
	cc, err := runbookDial(c)
	if err != nil {
		return err
	}
	defer cc.Close()
	st, err := runbookCall(c.Context, c, cc, func(ctx context.Context, rc clockdv1.RunbookServiceClient) (*clockdv1.RunbookStatus, error) {
		return rc.Cancel(ctx, &clockdv1.CancelRunbookRequest{Id: id, Reason: reason})
	})
	if err != nil {
		return err
	}
	return runbookPrint(c, st)
}

// runbookCall makes one call that answers a book's status, retried as
// cc retries, its failure in runbookError's words.
func runbookCall(ctx context.Context, c *cli.Context, cc *clientConn,
	call func(context.Context, clockdv1.RunbookServiceClient) (*clockdv1.RunbookStatus, error)) (*clockdv1.RunbookStatus, error) {
	var st *clockdv1.RunbookStatus
	err := cc.call(ctx, func(ctx context.Context) (err error) {
		st, err = call(ctx, runbookClient(cc))
		return err
	})
	if err != nil {
		return nil, runbookError(c, cc, err)
	}
	return st, nil
}

// runbookError is clientError with the words of the run-book API, whose
// messages name the book and the step.
func runbookError(c *cli.Context, cc *clientConn, err error) error {
	st, ok := grpcstatus.FromError(err)
	if !ok {
		return clientError(c, cc, "", err)
	}
	msg := st.Message()
	switch st.Code() {
	case codes.NotFound:
		return clientFailed(c, "not found: %s (clockd runbook list shows the run-books the node at %s keeps)", msg, cc.addr)
	case codes.AlreadyExists:
		return clientFailed(c, "already exists: %s (a run-book's id names one submission: choose another)", msg)
	case codes.FailedPrecondition, codes.InvalidArgument:
		return clientFailed(c, "%s: %s", clientCodeWords(st.Code()), msg)
	case codes.PermissionDenied:
		return clientFailed(c, "permission denied: %s (submit and cancel take the admin certificate, "+
			"clockd certs init --admin; status, wait and list a host or admin certificate)", msg)
	}
	return clientError(c, cc, "", err)
}

// runbookStatusJSON is a book's status in JSON; its field names and
// order are part of the CLI.
type runbookStatusJSON struct {
	ID                string            `json:"id"`
	Status            string            `json:"status"`
	Seq               uint64            `json:"seq"`
	Cancelled         bool              `json:"cancelled"`
	SubmittedUnixNano int64             `json:"submitted_unix_nano"`
	Steps             []runbookStepJSON `json:"steps"`
}

type runbookStepJSON struct {
	ID        string   `json:"id"`
	Argv      []string `json:"argv"`
	DependsOn []string `json:"depends_on"`
	// MinVersion is set on a version gate only.
	MinVersion string           `json:"min_version,omitempty"`
	Runs       []runbookRunJSON `json:"runs"`
}

type runbookRunJSON struct {
	Host          uint64 `json:"host"`
	State         string `json:"state"`
	Attempts      uint32 `json:"attempts"`
	Failures      uint32 `json:"failures"`
	Token         uint64 `json:"token"`
	Exit          int32  `json:"exit"`
	StartUnixNano int64  `json:"start_unix_nano"`
	EndUnixNano   int64  `json:"end_unix_nano"`
	OutputSHA256  string `json:"output_sha256"`
	OutputTail    string `json:"output_tail"`
	Reason        string `json:"reason"`
}

type runbookSummaryJSON struct {
	Seq               uint64 `json:"seq"`
	ID                string `json:"id"`
	Status            string `json:"status"`
	Cancelled         bool   `json:"cancelled"`
	Steps             uint32 `json:"steps"`
	Runs              uint32 `json:"runs"`
	RunsEnded         uint32 `json:"runs_ended"`
	SubmittedUnixNano int64  `json:"submitted_unix_nano"`
}

type runbookListJSON struct {
	Runbooks []runbookSummaryJSON `json:"runbooks"`
}

// runbookState is a run state as runbook.RunState.String spells it.
func runbookState(s clockdv1.RunState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RUN_STATE_"))
}

// runbookBookState is a book's state as runbook.Entry.Status spells it.
func runbookBookState(s clockdv1.RunbookState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RUNBOOK_STATE_"))
}

func runbookStatusToJSON(st *clockdv1.RunbookStatus) runbookStatusJSON {
	out := runbookStatusJSON{ID: st.GetBook().GetId(), Status: runbookBookState(st.GetState()), Seq: st.GetSeq(),
		Cancelled: st.GetCancelled(), SubmittedUnixNano: st.GetSubmittedUnixNano(), Steps: []runbookStepJSON{}}
	for i, ps := range st.GetBook().GetSteps() {
		// Never null, so that an empty list prints as [].
		s := runbookStepJSON{ID: ps.GetId(), Argv: append([]string{}, ps.GetArgv()...),
			DependsOn: append([]string{}, ps.GetDependsOn()...), MinVersion: ps.GetMinVersion(), Runs: []runbookRunJSON{}}
		if i < len(st.GetSteps()) {
			for _, r := range st.GetSteps()[i].GetRuns() {
				s.Runs = append(s.Runs, runbookRunJSON{Host: r.GetHost(), State: runbookState(r.GetState()),
					Attempts: r.GetAttempts(), Failures: r.GetFailures(), Token: r.GetToken(), Exit: r.GetExit(),
					StartUnixNano: r.GetStartUnixNano(), EndUnixNano: r.GetEndUnixNano(),
					OutputSHA256: r.GetOutputSha256(), OutputTail: r.GetOutputTail(), Reason: r.GetReason()})
			}
		}
		out.Steps = append(out.Steps, s)
	}
	return out
}

// runbookPrint prints a book's status as text, or as JSON under --json.
func runbookPrint(c *cli.Context, st *clockdv1.RunbookStatus) error {
	if c.Bool("json") {
		return clientPrintJSON(c.App.Writer, runbookStatusToJSON(st), false)
	}
	return runbookStatusPrint(c.App.Writer, st)
}

func runbookStatusPrint(w io.Writer, st *clockdv1.RunbookStatus) error {
	state := runbookBookState(st.GetState())
	if st.GetCancelled() && st.GetState() == clockdv1.RunbookState_RUNBOOK_STATE_RUNNING {
		state += " (cancelled: the runs under way finish)"
	}
	clientFields(w, []clientField{
		{"Run-book", st.GetBook().GetId()},
		{"Status", state},
		{"Seq", strconv.FormatUint(st.GetSeq(), 10)},
		{"Submitted", clientTime(st.GetSubmittedUnixNano())},
	})
	fmt.Fprintln(w)
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tHOST\tSTATE\tATTEMPTS\tEXIT\tTOKEN\tDETAIL")
	for i, sr := range st.GetSteps() {
		for _, r := range sr.GetRuns() {
			token := "-"
			if r.GetToken() != 0 {
				token = strconv.FormatUint(r.GetToken(), 10)
			}
			detail := runbookDetail(r)
			if steps := st.GetBook().GetSteps(); i < len(steps) && steps[i].GetMinVersion() != "" && detail == "" {
				detail = "version gate: clockd " + runbookPrintable(steps[i].GetMinVersion(), 40) + " or later"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", runbookStepID(st, i), r.GetHost(), runbookState(r.GetState()),
				r.GetAttempts(), runbookExit(r), token, detail)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// An empty DETAIL leaves the padding before it at the line's end.
	for line := range strings.Lines(table.String()) {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	return nil
}

// runbookExit is the exit status of the run's latest attempt that ended
// with one, or "-".
func runbookExit(r *clockdv1.Run) string {
	switch s := r.GetState(); {
	case s == clockdv1.RunState_RUN_STATE_SUCCEEDED || s == clockdv1.RunState_RUN_STATE_FAILED,
		s == clockdv1.RunState_RUN_STATE_PENDING && r.GetFailures() > 0:
		return strconv.Itoa(int(r.GetExit()))
	}
	return "-"
}

// runbookDetail is the run's reason, or else the first line of the end
// of its output that has any text.
func runbookDetail(r *clockdv1.Run) string {
	if r.GetReason() != "" {
		return runbookPrintable(r.GetReason(), 80)
	}
	for line := range strings.Lines(r.GetOutputTail()) {
		if line = strings.TrimSpace(line); line != "" {
			return runbookPrintable(line, 80)
		}
	}
	return ""
}

// runbookPrintable makes text from a host or a step safe for a terminal
// line: control characters (escape sequences, newlines) are shown
// escaped, and it is cut at max runes.
func runbookPrintable(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case r == utf8.RuneError, !unicode.IsControl(r):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		default:
			fmt.Fprintf(&b, `\x%02x`, r)
		}
	}
	return b.String()
}
