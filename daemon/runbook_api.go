package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering/runbook"
)

// runbookServer serves RunbookService. The interceptors have checked the
// caller's role (admin for Submit and Cancel); the state machine decides
// the rest, and its refusals come back as gRPC statuses.
type runbookServer struct {
	clockdv1.UnimplementedRunbookServiceServer
	d *Daemon
}

func (s *runbookServer) Submit(ctx context.Context, req *clockdv1.Book) (*clockdv1.RunbookStatus, error) {
	b, err := bookFromProto(req)
	if err != nil {
		return nil, err
	}
	e, err := s.d.runbooks.Submit(ctx, b)
	if err != nil {
		return nil, err
	}
	return runbookStatusOf(&e), nil
}

func (s *runbookServer) Get(ctx context.Context, req *clockdv1.GetRunbookRequest) (*clockdv1.RunbookStatus, error) {
	if err := checkRunbookID("id", req.GetId()); err != nil {
		return nil, err
	}
	e, err := s.d.runbooks.get(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return runbookStatusOf(&e), nil
}

func (s *runbookServer) List(context.Context, *clockdv1.ListRunbooksRequest) (*clockdv1.ListRunbooksResponse, error) {
	entries := s.d.machine.Runbooks()
	resp := &clockdv1.ListRunbooksResponse{Runbooks: make([]*clockdv1.RunbookSummary, len(entries))}
	for i := range entries {
		resp.Runbooks[i] = runbookSummaryOf(&entries[i])
	}
	return resp, nil
}

func (s *runbookServer) Cancel(ctx context.Context, req *clockdv1.CancelRunbookRequest) (*clockdv1.RunbookStatus, error) {
	if err := checkRunbookID("id", req.GetId()); err != nil {
		return nil, err
	}
	if n := len(req.GetReason()); n > runbook.MaxReasonLen {
		return nil, status.Errorf(codes.InvalidArgument, "reason is %d bytes, at most %d", n, runbook.MaxReasonLen)
	}
	e, err := s.d.runbooks.Cancel(ctx, req.GetId(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return runbookStatusOf(&e), nil
}

// Wait reads the book again after every run-book command applied here,
// until it has finished, or the timeout or the call's deadline passes.
func (s *runbookServer) Wait(ctx context.Context, req *clockdv1.WaitRunbookRequest) (*clockdv1.RunbookStatus, error) {
	id := req.GetId()
	if err := checkRunbookID("id", id); err != nil {
		return nil, err
	}
	if ns := req.GetTimeoutNanos(); ns < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "timeout_nanos is %d: want 0 (the call's deadline) or more", ns)
	} else if ns > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ns))
		defer cancel()
	}
	last, err := s.d.runbooks.get(ctx, id)
	for err == nil && !last.Finished() {
		changed := s.d.runbooks.watch()
		e, ok := s.d.machine.Runbook(id)
		switch {
		case !ok:
			// Only finished books are dropped, for newer ones.
			return nil, status.Errorf(codes.NotFound, "run-book %q finished and was dropped for newer ones", id)
		case e.Finished():
			last = e
			continue
		}
		last = e
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				ended, runs := runbookEnded(&last)
				return nil, status.Errorf(codes.DeadlineExceeded, "run-book %q has not finished: %d of %d runs have ended",
					id, ended, runs)
			}
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-changed:
		}
	}
	if err != nil {
		return nil, err
	}
	return runbookStatusOf(&last), nil
}

// checkRunbookID checks an id a client sent: its bounds, and its
// characters (runbook.CheckID), so a malformed id is InvalidArgument, not
// NotFound.
func checkRunbookID(field, id string) error {
	switch {
	case id == "":
		return status.Errorf(codes.InvalidArgument, "%s is required", field)
	case len(id) > runbook.MaxIDLen:
		return status.Errorf(codes.InvalidArgument, "%s is %d bytes, at most %d", field, len(id), runbook.MaxIDLen)
	}
	if err := runbook.CheckID(id); err != nil {
		return status.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	return nil
}

// bookFromProto checks the bounds of a submitted book, naming the field
// at fault, and converts it: hosts sorted without repeats, as
// runbook.Book.Validate wants them, and a timeout of 0 made the default.
// The rules between fields (dependencies, barriers, ids' characters) are
// Validate's, after the hosts are resolved.
func bookFromProto(req *clockdv1.Book) (runbook.Book, error) {
	bad := func(format string, args ...any) (runbook.Book, error) {
		return runbook.Book{}, status.Errorf(codes.InvalidArgument, format, args...)
	}
	if err := checkRunbookID("id", req.GetId()); err != nil {
		return runbook.Book{}, err
	}
	steps := req.GetSteps()
	switch {
	case len(steps) == 0:
		return bad("steps: a run-book needs at least one")
	case len(steps) > runbook.MaxSteps:
		return bad("steps: %d, at most %d", len(steps), runbook.MaxSteps)
	}
	b := runbook.Book{ID: req.GetId(), Steps: make([]runbook.Step, len(steps))}
	for i, ps := range steps {
		field := func(name string) string { return fmt.Sprintf("steps[%d].%s", i, name) }
		if err := checkRunbookID(field("id"), ps.GetId()); err != nil {
			return runbook.Book{}, err
		}
		if n := len(ps.GetHosts()); n > runbook.MaxStepHosts {
			return bad("%s: %d hosts, at most %d", field("hosts"), n, runbook.MaxStepHosts)
		}
		if slices.Contains(ps.GetHosts(), 0) {
			return bad("%s: 0 is not a node ID", field("hosts"))
		}
		argvBytes := 0
		for _, a := range ps.GetArgv() {
			argvBytes += len(a)
		}
		if argvBytes > runbook.MaxArgvBytes {
			return bad("%s: %d bytes summed, at most %d", field("argv"), argvBytes, runbook.MaxArgvBytes)
		}
		if n := len(ps.GetDependsOn()); n > runbook.MaxSteps {
			return bad("%s: %d steps, at most %d", field("depends_on"), n, runbook.MaxSteps)
		}
		for j, dep := range ps.GetDependsOn() {
			if err := checkRunbookID(fmt.Sprintf("%s[%d]", field("depends_on"), j), dep); err != nil {
				return runbook.Book{}, err
			}
		}
		timeout := time.Duration(ps.GetTimeoutNanos())
		if timeout < 0 || timeout > runbook.MaxTimeout {
			return bad("%s: %d outside [0, %d] (0 is the default, %v; at most %v)", field("timeout_nanos"),
				int64(timeout), int64(runbook.MaxTimeout), runbook.DefaultTimeout, runbook.MaxTimeout)
		}
		if timeout == 0 {
			timeout = runbook.DefaultTimeout
		}
		if n := len(ps.GetMinVersion()); n > runbook.MaxIDLen {
			return bad("%s: %d bytes, at most %d", field("min_version"), n, runbook.MaxIDLen)
		}
		if r := ps.GetRetries(); r > runbook.MaxRetries {
			return bad("%s: %d, at most %d", field("retries"), r, runbook.MaxRetries)
		}
		hosts := make([]consensus.NodeID, len(ps.GetHosts()))
		for j, h := range ps.GetHosts() {
			hosts[j] = consensus.NodeID(h)
		}
		slices.Sort(hosts)
		b.Steps[i] = runbook.Step{ID: ps.GetId(), Hosts: slices.Compact(hosts), Argv: ps.GetArgv(),
			DependsOn: ps.GetDependsOn(), Timeout: timeout, Retries: int(ps.GetRetries()), Idempotent: ps.GetIdempotent(),
			MinVersion: ps.GetMinVersion()}
	}
	return b, nil
}

// validUTF8 makes a string from the state safe for a proto string field,
// which must be UTF-8: the output of a step, and what hosts reported, may
// not be.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func bookToProto(b *runbook.Book) *clockdv1.Book {
	out := &clockdv1.Book{Id: b.ID, Steps: make([]*clockdv1.BookStep, len(b.Steps))}
	for i, st := range b.Steps {
		ps := &clockdv1.BookStep{Id: st.ID, Hosts: make([]uint64, len(st.Hosts)),
			Argv: make([]string, len(st.Argv)), DependsOn: slices.Clone(st.DependsOn),
			TimeoutNanos: int64(st.Timeout), Retries: uint32(st.Retries), Idempotent: st.Idempotent,
			MinVersion: validUTF8(st.MinVersion)}
		for j, h := range st.Hosts {
			ps.Hosts[j] = uint64(h)
		}
		for j, a := range st.Argv {
			ps.Argv[j] = validUTF8(a)
		}
		out.Steps[i] = ps
	}
	return out
}

// runStateToProto maps the run states; the proto's numbers are one
// higher, 0 being unspecified.
func runStateToProto(s runbook.RunState) clockdv1.RunState {
	switch s {
	case runbook.Pending:
		return clockdv1.RunState_RUN_STATE_PENDING
	case runbook.Running:
		return clockdv1.RunState_RUN_STATE_RUNNING
	case runbook.Succeeded:
		return clockdv1.RunState_RUN_STATE_SUCCEEDED
	case runbook.Failed:
		return clockdv1.RunState_RUN_STATE_FAILED
	case runbook.Unknown:
		return clockdv1.RunState_RUN_STATE_UNKNOWN
	case runbook.Skipped:
		return clockdv1.RunState_RUN_STATE_SKIPPED
	}
	return clockdv1.RunState_RUN_STATE_UNSPECIFIED
}

// runbookStateToProto maps runbook.Entry.Status's words.
func runbookStateToProto(e *runbook.Entry) clockdv1.RunbookState {
	switch e.Status() {
	case "running":
		return clockdv1.RunbookState_RUNBOOK_STATE_RUNNING
	case "succeeded":
		return clockdv1.RunbookState_RUNBOOK_STATE_SUCCEEDED
	case "failed":
		return clockdv1.RunbookState_RUNBOOK_STATE_FAILED
	case "cancelled":
		return clockdv1.RunbookState_RUNBOOK_STATE_CANCELLED
	}
	return clockdv1.RunbookState_RUNBOOK_STATE_UNSPECIFIED
}

func runToProto(r *runbook.Run) *clockdv1.Run {
	return &clockdv1.Run{Host: uint64(r.Host), State: runStateToProto(r.State),
		Attempts: uint32(r.Attempts), Failures: uint32(r.Failures), Token: r.Token, Exit: int32(r.Exit),
		StartUnixNano: r.StartNs, EndUnixNano: r.EndNs, OutputSha256: validUTF8(r.Digest),
		OutputTail: validUTF8(r.Output), Reason: validUTF8(r.Reason)}
}

func runbookStatusOf(e *runbook.Entry) *clockdv1.RunbookStatus {
	out := &clockdv1.RunbookStatus{Book: bookToProto(&e.Book), Steps: make([]*clockdv1.StepRuns, len(e.Runs)),
		State: runbookStateToProto(e), Seq: e.Seq, SubmittedUnixNano: e.SubmittedNs, Cancelled: e.Cancelled}
	for i, runs := range e.Runs {
		sr := &clockdv1.StepRuns{Runs: make([]*clockdv1.Run, len(runs))}
		for j := range runs {
			sr.Runs[j] = runToProto(&runs[j])
		}
		out.Steps[i] = sr
	}
	return out
}

// runbookEnded counts a book's runs, and those that have ended.
func runbookEnded(e *runbook.Entry) (ended, runs int) {
	for _, step := range e.Runs {
		for _, r := range step {
			runs++
			if r.State.Terminal() {
				ended++
			}
		}
	}
	return ended, runs
}

func runbookSummaryOf(e *runbook.Entry) *clockdv1.RunbookSummary {
	ended, runs := runbookEnded(e)
	return &clockdv1.RunbookSummary{Id: e.Book.ID, State: runbookStateToProto(e), Seq: e.Seq,
		SubmittedUnixNano: e.SubmittedNs, Cancelled: e.Cancelled, Steps: uint32(len(e.Book.Steps)),
		Runs: uint32(runs), RunsEnded: uint32(ended)}
}
