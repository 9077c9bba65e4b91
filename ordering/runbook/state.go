package runbook

import (
	"fmt"
	"slices"

	"github.com/clockd/clockd/consensus"
)

// RunState is where one step stands on one host.
type RunState uint8

// The run states. The numbers are on disk: never reuse one.
const (
	// Pending: not started, or to be tried again after a failure.
	Pending RunState = 0
	// Running: a host claimed it (Start) and has not reported an end.
	Running RunState = 1
	// Succeeded: exit status 0 (a barrier: reached).
	Succeeded RunState = 2
	// Failed: it failed with no retries left.
	Failed RunState = 3
	// Unknown: its host stopped while running it, and the step is not
	// idempotent, so nobody knows whether it took effect.
	Unknown RunState = 4
	// Skipped: never run, because a step it depends on failed or ended
	// unknown, or the book was cancelled.
	Skipped RunState = 5
)

func (s RunState) String() string {
	switch s {
	case Pending:
		return "pending"
	case Running:
		return "running"
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	case Skipped:
		return "skipped"
	}
	return fmt.Sprintf("RunState(%d)", uint8(s))
}

// Terminal reports whether the run has ended for good.
func (s RunState) Terminal() bool { return s >= Succeeded && s <= Skipped }

// Run is one step on one host.
type Run struct {
	Host     consensus.NodeID
	State    RunState
	Attempts int // starts granted, re-runs after a restart included
	Failures int // attempts that ended with a non-zero exit status
	// Token is the fencing token of the latest start: only a Finish or
	// Abandon carrying it counts. Tokens grow across the whole state.
	Token uint64
	// Claim is the id the host chose for its latest start, so that a
	// retried Start is answered, not refused.
	Claim uint64
	// StartNs and EndNs are the reference times the host reported.
	StartNs, EndNs int64
	// Exit is the latest attempt's exit status; -1 when it was killed
	// (its timeout, a signal) or could not start.
	Exit int
	// Digest is the hex SHA-256 of the latest attempt's whole output
	// (stdout and stderr as interleaved), and Output its last bytes, at
	// most MaxOutputTail.
	Digest string
	Output string
	// Reason says why a run failed to start, ended unknown or was
	// skipped.
	Reason string
}

// Entry is a submitted book and where each of its steps stands.
type Entry struct {
	// Seq is the book's place in submission order, from 1.
	Seq         uint64
	Book        Book
	SubmittedNs int64
	Cancelled   bool
	// Runs holds, for each step, one Run per host in Step.Hosts order.
	Runs [][]Run
}

// Finished reports whether every run has ended for good.
func (e *Entry) Finished() bool {
	for _, runs := range e.Runs {
		for _, r := range runs {
			if !r.State.Terminal() {
				return false
			}
		}
	}
	return true
}

// Status sums the book up: running, succeeded, failed or cancelled.
func (e *Entry) Status() string {
	if !e.Finished() {
		return "running"
	}
	if e.Cancelled {
		return "cancelled"
	}
	for _, runs := range e.Runs {
		for _, r := range runs {
			if r.State != Succeeded {
				return "failed"
			}
		}
	}
	return "succeeded"
}

func (e *Entry) clone() Entry {
	c := *e
	c.Runs = make([][]Run, len(e.Runs))
	for i, runs := range e.Runs {
		c.Runs[i] = slices.Clone(runs)
	}
	return c
}

// stepDone reports whether step i succeeded on every host.
func (e *Entry) stepDone(i int) bool {
	for _, r := range e.Runs[i] {
		if r.State != Succeeded {
			return false
		}
	}
	return true
}

func (e *Entry) run(step int, host consensus.NodeID) *Run {
	for j := range e.Runs[step] {
		if e.Runs[step][j].Host == host {
			return &e.Runs[step][j]
		}
	}
	return nil
}

// ErrorCode says why a command was refused.
type ErrorCode uint8

// The refusal codes.
const (
	NotFound           ErrorCode = 1
	FailedPrecondition ErrorCode = 2
	AlreadyExists      ErrorCode = 3
	InvalidArgument    ErrorCode = 4
)

// Result is what applying a run-book command answers: the start's token,
// or why the command was refused (the state is then unchanged).
type Result struct {
	Token uint64
	Code  ErrorCode // 0: applied
	Msg   string
}

// Err is the refusal as an error, or nil.
func (r Result) Err() error {
	if r.Code == 0 {
		return nil
	}
	return &Error{Code: r.Code, Msg: r.Msg}
}

// Error is a refused run-book command.
type Error struct {
	Code ErrorCode
	Msg  string
}

func (e *Error) Error() string { return "run-book: " + e.Msg }

func refuse(code ErrorCode, format string, args ...any) Result {
	return Result{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Submit commits a book. A retry of the same book is answered as the
// first was; another book under a used id is refused.
type Submit struct {
	Book Book
	AtNs int64
}

// Start claims a step for a host. It is granted when the run is pending,
// the book is not cancelled, every earlier run of the host (all books,
// in submission order) has ended, and the step's dependencies succeeded.
// A run already running under another claim is granted again only for an
// idempotent step (its host restarted mid-step).
type Start struct {
	Book, Step string
	Host       consensus.NodeID
	Claim      uint64
	AtNs       int64
}

// Finish reports how an attempt ended. Only the latest start's token
// counts; a repeat of a Finish already applied is answered, not refused.
type Finish struct {
	Book, Step string
	Host       consensus.NodeID
	Token      uint64
	Exit       int
	AtNs       int64
	Digest     string
	Output     string
}

// Abandon ends a running, non-idempotent step as unknown: its host
// restarted while running it.
type Abandon struct {
	Book, Step string
	Host       consensus.NodeID
	Token      uint64
	AtNs       int64
	Reason     string
}

// Cancel skips every run of a book that has not started; runs under way
// finish and are recorded.
type Cancel struct {
	Book   string
	Reason string
}

// State is every book the cluster was given and where it stands. It is
// deterministic: Apply depends on the command and the state alone. It is
// not safe for concurrent use; ordering.Machine guards it.
type State struct {
	entries []*Entry // submission order
	byID    map[string]*Entry
	seq     uint64 // the last Entry.Seq given
	tokens  uint64 // the last token given
}

// Apply applies one run-book command: a Submit, Start, Finish, Abandon
// or Cancel.
func (s *State) Apply(cmd any) Result {
	switch c := cmd.(type) {
	case Submit:
		return s.submit(c)
	case Start:
		return s.start(c)
	case Finish:
		return s.finish(c)
	case Abandon:
		return s.abandon(c)
	case Cancel:
		return s.cancel(c)
	}
	panic(fmt.Sprintf("runbook: %T is not a command", cmd))
}

func (s *State) submit(c Submit) Result {
	if err := c.Book.Validate(); err != nil {
		return refuse(InvalidArgument, "%v", err)
	}
	if e, ok := s.byID[c.Book.ID]; ok {
		if e.Book.equal(&c.Book) {
			return Result{}
		}
		return refuse(AlreadyExists, "run-book %q exists, with other steps", c.Book.ID)
	}
	s.prune()
	s.seq++
	e := &Entry{Seq: s.seq, Book: c.Book, SubmittedNs: c.AtNs, Runs: make([][]Run, len(c.Book.Steps))}
	for i, st := range c.Book.Steps {
		e.Runs[i] = make([]Run, len(st.Hosts))
		for j, h := range st.Hosts {
			e.Runs[i][j] = Run{Host: h}
		}
	}
	if s.byID == nil {
		s.byID = map[string]*Entry{}
	}
	s.entries = append(s.entries, e)
	s.byID[e.Book.ID] = e
	return Result{}
}

// prune drops the oldest finished books while KeptFinished or more are
// kept, making room for one more.
func (s *State) prune() {
	finished := 0
	for _, e := range s.entries {
		if e.Finished() {
			finished++
		}
	}
	for i := 0; finished >= KeptFinished && i < len(s.entries); {
		if e := s.entries[i]; e.Finished() {
			delete(s.byID, e.Book.ID)
			s.entries = slices.Delete(s.entries, i, i+1)
			finished--
			continue
		}
		i++
	}
}

// lookup finds a command's run.
func (s *State) lookup(book, step string, host consensus.NodeID) (*Entry, int, *Run, Result) {
	e, ok := s.byID[book]
	if !ok {
		return nil, 0, nil, refuse(NotFound, "no run-book %q", book)
	}
	st, i := e.Book.step(step)
	if st == nil {
		return nil, 0, nil, refuse(NotFound, "run-book %q has no step %q", book, step)
	}
	r := e.run(i, host)
	if r == nil {
		return nil, 0, nil, refuse(NotFound, "step %q of run-book %q does not run on host %d", step, book, host)
	}
	return e, i, r, Result{}
}

func (s *State) start(c Start) Result {
	e, i, r, res := s.lookup(c.Book, c.Step, c.Host)
	if res.Code != 0 {
		return res
	}
	st := &e.Book.Steps[i]
	switch {
	case r.State == Running && r.Claim == c.Claim:
		return Result{Token: r.Token} // a retry of the start that claimed it
	case r.State == Running && !st.Idempotent:
		return refuse(FailedPrecondition, "step %q of run-book %q is running on host %d under token %d, and is not idempotent",
			c.Step, c.Book, c.Host, r.Token)
	case r.State == Running && e.Cancelled:
		return refuse(FailedPrecondition, "run-book %q is cancelled; step %q under token %d is not run again",
			c.Book, c.Step, r.Token)
	case r.State == Running:
		// The host restarted mid-step: an idempotent step runs again.
	case r.State.Terminal():
		return refuse(FailedPrecondition, "step %q of run-book %q has ended on host %d: %s", c.Step, c.Book, c.Host, r.State)
	case e.Cancelled:
		return refuse(FailedPrecondition, "run-book %q is cancelled", c.Book)
	default:
		if prev, ok := s.unfinishedBefore(e, i, c.Host); ok {
			return refuse(FailedPrecondition, "host %d has not finished step %q of run-book %q, which comes before",
				c.Host, prev.step, prev.book)
		}
		for _, dep := range st.DependsOn {
			if _, j := e.Book.step(dep); !e.stepDone(j) {
				return refuse(FailedPrecondition, "step %q of run-book %q waits for step %q", c.Step, c.Book, dep)
			}
		}
	}
	s.tokens++
	r.State, r.Token, r.Claim, r.StartNs = Running, s.tokens, c.Claim, c.AtNs
	r.Attempts++
	r.EndNs, r.Exit, r.Digest, r.Output, r.Reason = 0, 0, "", "", ""
	return Result{Token: r.Token}
}

type place struct{ book, step string }

// unfinishedBefore finds a run of host that has not ended and comes
// before step i of e in the committed order.
func (s *State) unfinishedBefore(e *Entry, i int, host consensus.NodeID) (place, bool) {
	for _, o := range s.entries {
		last := len(o.Runs)
		if o == e {
			last = i
		}
		for k := 0; k < last; k++ {
			if r := o.run(k, host); r != nil && !r.State.Terminal() {
				return place{o.Book.ID, o.Book.Steps[k].ID}, true
			}
		}
		if o == e {
			break
		}
	}
	return place{}, false
}

func (s *State) finish(c Finish) Result {
	e, i, r, res := s.lookup(c.Book, c.Step, c.Host)
	if res.Code != 0 {
		return res
	}
	switch {
	case r.Token == c.Token && c.Token != 0 && r.State != Running && r.State != Unknown:
		return Result{Token: r.Token} // a repeat of the finish applied (no start grants token 0)
	case r.Token != c.Token || r.State != Running:
		return refuse(FailedPrecondition, "token %d of step %q of run-book %q on host %d is stale: the latest is %d (%s)",
			c.Token, c.Step, c.Book, c.Host, r.Token, r.State)
	}
	if len(c.Output) > MaxOutputTail || len(c.Digest) > MaxDigestLen {
		return refuse(InvalidArgument, "output of %d bytes (at most %d) or digest of %d (at most %d)",
			len(c.Output), MaxOutputTail, len(c.Digest), MaxDigestLen)
	}
	r.Exit, r.EndNs, r.Digest, r.Output = c.Exit, c.AtNs, c.Digest, c.Output
	switch {
	case c.Exit == 0:
		r.State = Succeeded
	case r.Failures < e.Book.Steps[i].Retries && !e.Cancelled:
		r.Failures++
		r.State = Pending
	default:
		r.Failures++
		r.State = Failed
		if e.Cancelled {
			r.Reason = "run-book cancelled"
		}
		skipDependents(e, i)
	}
	return Result{Token: r.Token}
}

func (s *State) abandon(c Abandon) Result {
	e, i, r, res := s.lookup(c.Book, c.Step, c.Host)
	if res.Code != 0 {
		return res
	}
	switch {
	case r.Token == c.Token && r.State == Unknown:
		return Result{Token: r.Token}
	case r.Token != c.Token || r.State != Running:
		return refuse(FailedPrecondition, "token %d of step %q of run-book %q on host %d is stale: the latest is %d (%s)",
			c.Token, c.Step, c.Book, c.Host, r.Token, r.State)
	}
	if len(c.Reason) > MaxReasonLen {
		return refuse(InvalidArgument, "reason of %d bytes, at most %d", len(c.Reason), MaxReasonLen)
	}
	r.State, r.EndNs, r.Exit, r.Reason = Unknown, c.AtNs, -1, c.Reason
	skipDependents(e, i)
	return Result{Token: r.Token}
}

// skipDependents skips the pending runs of every step that depends,
// directly or through others, on step i, which can no longer succeed.
func skipDependents(e *Entry, i int) {
	blocked := map[string]bool{e.Book.Steps[i].ID: true}
	for j := i + 1; j < len(e.Book.Steps); j++ {
		st := &e.Book.Steps[j]
		if !slices.ContainsFunc(st.DependsOn, func(d string) bool { return blocked[d] }) {
			continue
		}
		blocked[st.ID] = true
		for k := range e.Runs[j] {
			if r := &e.Runs[j][k]; r.State == Pending {
				r.State, r.Reason = Skipped, fmt.Sprintf("step %q cannot succeed", e.Book.Steps[i].ID)
			}
		}
	}
}

func (s *State) cancel(c Cancel) Result {
	e, ok := s.byID[c.Book]
	if !ok {
		return refuse(NotFound, "no run-book %q", c.Book)
	}
	if e.Finished() && !e.Cancelled {
		return refuse(FailedPrecondition, "run-book %q has finished: %s", c.Book, e.Status())
	}
	if len(c.Reason) > MaxReasonLen {
		return refuse(InvalidArgument, "reason of %d bytes, at most %d", len(c.Reason), MaxReasonLen)
	}
	e.Cancelled = true
	reason := "run-book cancelled"
	if c.Reason != "" {
		reason += ": " + c.Reason
	}
	for i := range e.Runs {
		for j := range e.Runs[i] {
			if r := &e.Runs[i][j]; r.State == Pending {
				r.State, r.Reason = Skipped, reason
			}
		}
	}
	return Result{}
}

// Entry returns a copy of the book called id: its runs are copied, its
// Book shares slices with the state, which the caller must not change.
func (s *State) Entry(id string) (Entry, bool) {
	e, ok := s.byID[id]
	if !ok {
		return Entry{}, false
	}
	return e.clone(), true
}

// Entries returns a copy of every book kept, in submission order.
func (s *State) Entries() []Entry {
	out := make([]Entry, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.clone()
	}
	return out
}

// Work is a host's next run: what its executor does next.
type Work struct {
	Book string
	Step Step
	Run  Run
	// Ready: the step's dependencies succeeded, so a pending run may
	// start.
	Ready     bool
	Cancelled bool
}

// Next returns host's first run, in the committed order, that has not
// ended; false when every run of host has.
func (s *State) Next(host consensus.NodeID) (Work, bool) {
	for _, e := range s.entries {
		for i := range e.Runs {
			r := e.run(i, host)
			if r == nil || r.State.Terminal() {
				continue
			}
			st := e.Book.Steps[i]
			ready := true
			for _, dep := range st.DependsOn {
				if _, j := e.Book.step(dep); !e.stepDone(j) {
					ready = false
				}
			}
			return Work{Book: e.Book.ID, Step: st, Run: *r, Ready: ready, Cancelled: e.Cancelled}, true
		}
	}
	return Work{}, false
}
