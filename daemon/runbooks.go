package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/buildinfo"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/ordering/runbook"
	"github.com/clockd/clockd/vclock"
)

// callRunbookPropose: an encoded run-book command → its slot (uvarint)
// and encoded runbook.Result.
const callRunbookPropose = "runbook.propose"

// runbookKillGrace is how long a step's process group has, after its
// timeout's SIGKILL, to let go of its output before the host stops
// waiting for it.
const runbookKillGrace = 5 * time.Second

// runbooks is this node's side of the run-books: submitting and
// cancelling them, and executing this host's steps.
//
// The executor runs this host's steps one at a time, in the committed
// order (runbook.State.Next). For each it commits a Start under a claim
// it draws at random, runs the step's argv with the step's timeout (no
// shell; stdout and stderr together; the process and its group are
// killed at the timeout, and if clockd dies), then commits a Finish with
// the exit status, the SHA-256 of the whole output and its last
// runbook.MaxOutputTail bytes. A run that is running under a claim this
// process did not make was started by an earlier clockd on this host
// that stopped mid-step: an idempotent step is claimed again and re-run,
// any other is abandoned as unknown. So is a step under way when clockd
// is stopped: it is killed, and treated as above after the restart.
//
// A version gate (a barrier with a minimum version) is reached only by a
// clockd of that version or later: an older one leaves it pending, and
// with it this host's later steps, until the host is upgraded.
//
// The step sees CLOCKD_RUNBOOK, CLOCKD_STEP, CLOCKD_NODE_ID,
// CLOCKD_ATTEMPT and CLOCKD_FENCING_TOKEN in its environment; the token
// grows with every start in the cluster, so a step can fence what it
// changes elsewhere with it.
type runbooks struct {
	d    *Daemon
	wake chan struct{}
	// updated is closed, and replaced, after every run-book command
	// applied: watchers (RunbookService.Wait) wait on it.
	mu      sync.Mutex
	updated chan struct{}
	// unrun is the last Start this process proposed without learning
	// whether it committed (the leader changed, the call timed out). If
	// it did, its run is running under a claim of this process that ran
	// nothing: the executor starts it again under the same claim, which
	// the state answers with the same token, instead of taking it for a
	// run an earlier clockd left. Only the executor goroutine uses it.
	unrun struct {
		book, step string
		claim      uint64
	}
	// version is this clockd's (buildinfo.Version), which version gates
	// compare; heldAt names the gate it last logged being held at.
	version string
	heldAt  string
}

func newRunbooks(d *Daemon) *runbooks {
	return &runbooks{d: d, wake: make(chan struct{}, 1), updated: make(chan struct{}), version: buildinfo.Version()}
}

// watch returns a channel closed at the next change of the run-books.
func (x *runbooks) watch() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.updated
}

// changed wakes the executor; the state machine calls it after every
// run-book command, on the driver goroutine.
func (x *runbooks) changed() {
	x.mu.Lock()
	close(x.updated)
	x.updated = make(chan struct{})
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// Submit commits b. Steps without hosts run on every voting member.
func (x *runbooks) Submit(ctx context.Context, b runbook.Book) (runbook.Entry, error) {
	cur, _, err := x.d.replica.Members(ctx)
	if err != nil {
		return runbook.Entry{}, grpcError(err)
	}
	var voters []consensus.NodeID
	members := map[consensus.NodeID]bool{}
	for _, m := range cur.Members {
		members[m.ID] = true
		if !m.Learner {
			voters = append(voters, m.ID)
		}
	}
	b.ResolveAll(voters)
	if err := b.Validate(); err != nil {
		return runbook.Entry{}, status.Error(codes.InvalidArgument, err.Error())
	}
	for _, s := range b.Steps {
		for _, h := range s.Hosts {
			if !members[h] {
				return runbook.Entry{}, status.Errorf(codes.InvalidArgument,
					"run-book %q: step %q: host %d is not a member of the cluster", b.ID, s.ID, h)
			}
		}
	}
	if _, err := x.propose(ctx, runbook.Submit{Book: b, AtNs: x.now()}); err != nil {
		return runbook.Entry{}, err
	}
	return x.get(ctx, b.ID)
}

// Cancel skips every run of book id that has not started.
func (x *runbooks) Cancel(ctx context.Context, id, reason string) (runbook.Entry, error) {
	if _, err := x.propose(ctx, runbook.Cancel{Book: id, Reason: reason}); err != nil {
		return runbook.Entry{}, err
	}
	return x.get(ctx, id)
}

// get returns book id as this node has applied it. A book this node
// does not know yet may have been committed through another member a
// moment ago: get then waits until this node has applied everything
// committed before the call (readBarrier), and looks again.
func (x *runbooks) get(ctx context.Context, id string) (runbook.Entry, error) {
	if e, ok := x.d.machine.Runbook(id); ok {
		return e, nil
	}
	if err := x.d.readBarrier(ctx); err != nil {
		return runbook.Entry{}, err
	}
	if e, ok := x.d.machine.Runbook(id); ok {
		return e, nil
	}
	return runbook.Entry{}, status.Errorf(codes.NotFound, "no run-book %q", id)
}

func (x *runbooks) now() int64 { return x.d.host.Now().Time }

// propose commits a run-book command through the leader and waits until
// this node has applied it. A refusal comes back as a gRPC status with
// the refusal's code.
func (x *runbooks) propose(ctx context.Context, cmd any) (runbook.Result, error) {
	enc := ordering.EncodeRunbook(cmd)
	out, err := x.d.onLeader(ctx, func() ([]byte, error) { return x.proposeLocal(ctx, enc) }, callRunbookPropose, enc)
	if err != nil {
		return runbook.Result{}, grpcError(err)
	}
	slot, k := binary.Uvarint(out)
	if k <= 0 {
		return runbook.Result{}, status.Error(codes.Internal, "run-book result without a slot")
	}
	res, err := runbook.DecodeResult(out[k:], ordering.ErrCodec)
	if err != nil {
		return runbook.Result{}, status.Errorf(codes.Internal, "run-book result: %v", err)
	}
	if err := x.d.replica.WaitApplied(ctx, slot); err != nil {
		return runbook.Result{}, grpcError(err)
	}
	return res, runbookStatus(res)
}

func (x *runbooks) proposeLocal(ctx context.Context, cmd []byte) ([]byte, error) {
	res, err := x.d.replica.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	r, ok := res.Value.(runbook.Result)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "not a run-book command: %v", res.Value)
	}
	return append(binary.AppendUvarint(nil, res.Slot), runbook.EncodeResult(r)...), nil
}

// serveProposal is the leader's side of callRunbookPropose.
func (x *runbooks) serveProposal(ctx context.Context, _ consensus.NodeID, cmd []byte) ([]byte, error) {
	k, _, err := ordering.Decode(cmd)
	if err != nil || k < ordering.KindRunbookSubmit || k > ordering.KindRunbookCancel {
		return nil, status.Errorf(codes.InvalidArgument, "not a run-book command (kind %d): %v", k, err)
	}
	out, err := x.proposeLocal(ctx, cmd)
	return out, grpcError(err)
}

func runbookStatus(r runbook.Result) error {
	switch r.Code {
	case 0:
		return nil
	case runbook.NotFound:
		return status.Error(codes.NotFound, r.Msg)
	case runbook.AlreadyExists:
		return status.Error(codes.AlreadyExists, r.Msg)
	case runbook.FailedPrecondition:
		return status.Error(codes.FailedPrecondition, r.Msg)
	}
	return status.Error(codes.InvalidArgument, r.Msg)
}

// run executes this host's steps until ctx ends. It never fails the
// node: a command it cannot commit is tried again.
func (x *runbooks) run(ctx context.Context) error {
	// Act on a state that holds every command committed before now, and
	// with the reference clock running (the times committed are its):
	// fencing makes acting on an older state safe, but a restarted host
	// would take its own step, claimed before the restart, for one not
	// yet started.
	if !x.d.caughtUp(ctx) {
		return nil
	}
	for {
		err := x.d.readBarrier(ctx)
		if err == nil && x.d.host.Now().Status != vclock.StatusInitializing {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(protocolTick):
		}
	}
	for ctx.Err() == nil {
		w, ok := x.d.machine.NextRun(x.d.id)
		acted := false
		switch {
		case !ok:
		case w.Run.State == runbook.Running && x.unrunIs(w) && w.Run.Claim == x.unrun.claim:
			acted = x.execute(ctx, w)
		case w.Run.State == runbook.Running:
			acted = x.recover(ctx, w)
		case w.Run.State == runbook.Pending && w.Ready && !w.Cancelled && !x.gatePasses(w):
			// A version gate this clockd is too old for: this host's steps
			// wait for its upgrade.
		case w.Run.State == runbook.Pending && w.Ready && !w.Cancelled:
			if wait := time.Duration(w.Run.EndNs + int64(retryDelay(w.Run.Failures)) - x.now()); wait > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				continue
			}
			acted = x.execute(ctx, w)
		}
		if acted {
			continue
		}
		// Wait for a change; look again now and then, as a command
		// refused for a transient reason changes nothing.
		select {
		case <-ctx.Done():
		case <-x.wake:
		case <-time.After(time.Second):
		}
	}
	return nil
}

// gatePasses reports whether this clockd may reach w's step: any step
// but a version gate, and a gate its version satisfies. It logs a gate
// it is held at, once.
func (x *runbooks) gatePasses(w runbook.Work) bool {
	if w.Step.MinVersion == "" || buildinfo.AtLeast(x.version, w.Step.MinVersion) {
		return true
	}
	if at := w.Book + "\x00" + w.Step.ID; x.heldAt != at {
		x.heldAt = at
		x.d.log.Warn("run-book version gate: this host's steps wait until it runs a newer clockd",
			zap.String("runbook", w.Book), zap.String("step", w.Step.ID),
			zap.String("min-version", w.Step.MinVersion), zap.String("version", x.version))
	}
	return false
}

// retryDelay is how long after a failed attempt the next one starts:
// 1s, doubling with each failure, at most a minute.
func retryDelay(failures int) time.Duration {
	if failures == 0 {
		return 0
	}
	return min(time.Second<<min(failures-1, 6), time.Minute)
}

func (x *runbooks) unrunIs(w runbook.Work) bool {
	return x.unrun.claim != 0 && x.unrun.book == w.Book && x.unrun.step == w.Step.ID
}

// recover handles a run an earlier clockd on this host left running.
func (x *runbooks) recover(ctx context.Context, w runbook.Work) bool {
	if w.Step.Idempotent && !w.Cancelled {
		x.d.log.Warn("run-book step was running when clockd stopped; it is idempotent, running it again",
			zap.String("runbook", w.Book), zap.String("step", w.Step.ID), zap.Uint64("token", w.Run.Token))
		return x.execute(ctx, w)
	}
	why := "it is not idempotent"
	if w.Step.Idempotent {
		why = "its run-book is cancelled"
	}
	x.d.log.Warn("run-book step was running when clockd stopped; it ends unknown, as "+why,
		zap.String("runbook", w.Book), zap.String("step", w.Step.ID), zap.Uint64("token", w.Run.Token))
	_, err := x.propose(ctx, runbook.Abandon{Book: w.Book, Step: w.Step.ID, Host: x.d.id, Token: w.Run.Token,
		AtNs: x.now(), Reason: fmt.Sprintf("host %d restarted while the step ran (token %d), and %s",
			x.d.id, w.Run.Token, why)})
	if err == nil {
		x.d.metrics.runbookSteps.WithLabelValues("abandoned").Inc()
	}
	return x.logRefusal(err, w, "abandon")
}

// execute claims w's run, runs it and commits how it ended. It reports
// whether the state moved on.
func (x *runbooks) execute(ctx context.Context, w runbook.Work) bool {
	claim := rand.Uint64() | 1 // never 0, which means none
	if x.unrunIs(w) {
		claim = x.unrun.claim
	}
	x.unrun.book, x.unrun.step, x.unrun.claim = w.Book, w.Step.ID, claim
	res, err := x.propose(ctx, runbook.Start{Book: w.Book, Step: w.Step.ID, Host: x.d.id, Claim: claim, AtNs: x.now()})
	if moved := x.logRefusal(err, w, "start"); err != nil {
		if moved { // refused: nothing runs under the claim
			x.unrun.claim = 0
		}
		return moved
	}
	x.unrun.claim = 0
	token := res.Token
	if e, ok := x.d.machine.Runbook(w.Book); ok { // applied here: propose waited
		for i, st := range e.Book.Steps {
			for _, r := range e.Runs[i] {
				if st.ID == w.Step.ID && r.Host == x.d.id {
					w.Run = r
				}
			}
		}
	}
	log := x.d.log.With(zap.String("runbook", w.Book), zap.String("step", w.Step.ID), zap.Uint64("token", token))
	out := newStepOutput()
	exit := 0
	if !w.Step.Barrier() {
		log.Info("run-book step starting", zap.Strings("argv", w.Step.Argv), zap.Int("attempt", w.Run.Attempts))
		var result string
		exit, result = x.runStep(ctx, w, token, out)
		if ctx.Err() != nil {
			// Stopping: the step was killed. The next clockd here finds
			// it running under a claim of ours, and recovers it.
			log.Warn("run-book step killed: clockd is stopping")
			return true
		}
		log.Info("run-book step ended", zap.Int("exit", exit), zap.String("result", result))
		x.d.metrics.runbookSteps.WithLabelValues(result).Inc()
	}
	fin := runbook.Finish{Book: w.Book, Step: w.Step.ID, Host: x.d.id, Token: token, Exit: exit,
		Digest: out.digest(), Output: out.tail()}
	for attempt := 0; ; attempt++ {
		fin.AtNs = x.now()
		_, err := x.propose(ctx, fin)
		switch code := status.Code(err); {
		case err == nil:
			return true
		case ctx.Err() != nil:
			return true
		case code == codes.FailedPrecondition || code == codes.NotFound || code == codes.InvalidArgument:
			log.Error("run-book step's end refused", zap.Error(err))
			return true
		default:
			log.Warn("run-book step's end not committed yet; trying again", zap.Error(err))
			select {
			case <-ctx.Done():
				return true
			case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
			}
		}
	}
}

// logRefusal logs why a command did not commit, and reports whether the
// state moved on regardless (it did, if the command was refused because
// the run is no longer where it was).
func (x *runbooks) logRefusal(err error, w runbook.Work, what string) bool {
	if err == nil {
		return true
	}
	code := status.Code(err)
	x.d.log.Info("run-book "+what+" not committed", zap.String("runbook", w.Book), zap.String("step", w.Step.ID),
		zap.Error(err))
	return code == codes.FailedPrecondition || code == codes.NotFound
}

// runStep runs w's argv with its timeout and returns its exit status (-1
// when it could not start or was killed) and a word for how it ended:
// succeeded, failed, killed or unstartable.
func (x *runbooks) runStep(ctx context.Context, w runbook.Work, token uint64, out *stepOutput) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, w.Step.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.Step.Argv[0], w.Step.Argv[1:]...)
	cmd.Env = append(os.Environ(),
		"CLOCKD_RUNBOOK="+w.Book,
		"CLOCKD_STEP="+w.Step.ID,
		"CLOCKD_NODE_ID="+strconv.FormatUint(uint64(x.d.id), 10),
		"CLOCKD_ATTEMPT="+strconv.Itoa(w.Run.Attempts),
		"CLOCKD_FENCING_TOKEN="+strconv.FormatUint(token, 10))
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, killed whole; and killed if clockd dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = runbookKillGrace
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, "succeeded"
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		fmt.Fprintf(out, "\nclockd: killed at its timeout of %v\n", w.Step.Timeout)
		return -1, "killed"
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), "failed"
	case errors.As(err, &ee):
		fmt.Fprintf(out, "\nclockd: %v\n", err)
		return -1, "killed"
	}
	fmt.Fprintf(out, "\nclockd: %v\n", err)
	return -1, "unstartable"
}

// stepOutput keeps the SHA-256 of everything a step wrote and its last
// runbook.MaxOutputTail bytes.
type stepOutput struct {
	hash hash.Hash
	end  []byte
}

func newStepOutput() *stepOutput { return &stepOutput{hash: sha256.New()} }

func (o *stepOutput) Write(p []byte) (int, error) {
	o.hash.Write(p)
	o.end = append(o.end, p...)
	if n := len(o.end) - runbook.MaxOutputTail; n > 0 {
		o.end = append(o.end[:0], o.end[n:]...)
	}
	return len(p), nil
}

func (o *stepOutput) digest() string { return hex.EncodeToString(o.hash.Sum(nil)) }

// tail is the output's end as valid UTF-8 (a string field in the API):
// invalid bytes, and a character the cut split, read as U+FFFD.
func (o *stepOutput) tail() string {
	s := strings.ToValidUTF8(string(o.end), "\uFFFD")
	for len(s) > runbook.MaxOutputTail {
		_, n := utf8.DecodeRuneInString(s)
		s = s[n:]
	}
	return s
}
