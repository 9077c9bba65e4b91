package runbook_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering/runbook"
)

var errCodec = errors.New("test: malformed state")

// TestScripts runs the scenarios in testdata/scripts. Each drives one
// State command by command and prints every answer, so a reader can
// follow the rules one decision at a time. Whatever a script says, the
// harness checks every answer with checkAnswer, and that the state
// comes back from its encoding unchanged.
//
// Commands:
//
//	submit [file=F] [members=(1,2,3)] [at=NS]   the book in the input (YAML) or testdata/F;
//	                                            steps on "all" hosts run on the members
//	start BOOK/STEP@HOST claim=C [at=NS]
//	finish BOOK/STEP@HOST token=T exit=E [at=NS] [output=X]
//	abandon BOOK/STEP@HOST token=T [reason=R]
//	cancel BOOK [reason=R]
//	show BOOK                                   the book's status, and each run
//	next host=H                                 the host's next run (State.Next)
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/scripts", func(t *testing.T, path string) {
		sc := &script{}
		datadriven.RunTest(t, path, sc.run)
	})
}

type script struct {
	s    runbook.State
	last uint64 // the largest token granted so far
}

func (sc *script) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "show":
		if len(d.CmdArgs) != 1 {
			d.Fatalf(t, "show BOOK")
		}
		e, ok := sc.s.Entry(d.CmdArgs[0].Key)
		if !ok {
			return "none\n"
		}
		return showEntry(&e)
	case "next":
		var h consensus.NodeID
		d.ScanArgs(t, "host", &h)
		w, ok := sc.s.Next(h)
		if !ok {
			return "none\n"
		}
		out := fmt.Sprintf("%s/%s", w.Book, showRun(w.Step.ID, w.Run))
		if w.Ready {
			out += " ready"
		} else {
			out += " not-ready"
		}
		if w.Cancelled {
			out += " cancelled"
		}
		return out + "\n"
	}
	cmd := scriptCommand(t, d)
	before := sc.s.AppendState(nil)
	res := sc.s.Apply(cmd)
	after := sc.s.AppendState(nil)
	if err := checkAnswer(&sc.s, cmd, res, before, after, &sc.last); err != nil {
		d.Fatalf(t, "%v", err)
	}
	if err := roundTrip(after); err != nil {
		d.Fatalf(t, "%v", err)
	}
	if res.Code != 0 {
		return fmt.Sprintf("refused %s: %s\n", codeName(res.Code), res.Msg)
	}
	switch cmd.(type) {
	case runbook.Submit, runbook.Cancel:
		return "ok\n"
	}
	return fmt.Sprintf("token %d\n", res.Token)
}

// scriptCommand builds the run-book command a script line names.
func scriptCommand(t *testing.T, d *datadriven.TestData) any {
	var at int64
	d.MaybeScanArgs(t, "at", &at)
	switch d.Cmd {
	case "submit":
		src, name := d.Input, "script"
		if d.HasArg("file") {
			d.ScanArgs(t, "file", &name)
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				d.Fatalf(t, "%v", err)
			}
			src = string(data)
		}
		b, err := runbook.Parse(strings.NewReader(src), name)
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		var members []consensus.NodeID
		d.MaybeScanArgs(t, "members", &members)
		b.ResolveAll(members)
		return runbook.Submit{Book: b, AtNs: at}
	case "cancel":
		c := runbook.Cancel{Book: d.CmdArgs[0].Key}
		d.MaybeScanArgs(t, "reason", &c.Reason)
		return c
	}
	book, step, host := scriptPlace(t, d)
	switch d.Cmd {
	case "start":
		c := runbook.Start{Book: book, Step: step, Host: host, AtNs: at}
		d.ScanArgs(t, "claim", &c.Claim)
		return c
	case "finish":
		c := runbook.Finish{Book: book, Step: step, Host: host, AtNs: at}
		d.ScanArgs(t, "token", &c.Token)
		d.ScanArgs(t, "exit", &c.Exit)
		d.MaybeScanArgs(t, "output", &c.Output)
		return c
	case "abandon":
		c := runbook.Abandon{Book: book, Step: step, Host: host, AtNs: at}
		d.ScanArgs(t, "token", &c.Token)
		d.MaybeScanArgs(t, "reason", &c.Reason)
		return c
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return nil
}

// scriptPlace reads the BOOK/STEP@HOST that starts a command's arguments.
func scriptPlace(t *testing.T, d *datadriven.TestData) (book, step string, host consensus.NodeID) {
	if len(d.CmdArgs) > 0 {
		book, rest, ok1 := strings.Cut(d.CmdArgs[0].Key, "/")
		step, h, ok2 := strings.Cut(rest, "@")
		n, err := strconv.ParseUint(h, 10, 64)
		if ok1 && ok2 && err == nil {
			return book, step, consensus.NodeID(n)
		}
	}
	d.Fatalf(t, "want BOOK/STEP@HOST first")
	return "", "", 0
}

func showEntry(e *runbook.Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s #%d", e.Book.ID, e.Seq)
	if e.Cancelled {
		b.WriteString(" (cancelled)")
	}
	fmt.Fprintf(&b, ": %s\n", e.Status())
	for i, runs := range e.Runs {
		for _, r := range runs {
			b.WriteString(showRun(e.Book.Steps[i].ID, r) + "\n")
		}
	}
	return b.String()
}

// showRun prints a run: its state, then those of its token, attempts,
// failures, exit status, output and reason that are not zero (its claim,
// times and digest left out).
func showRun(step string, r runbook.Run) string {
	out := fmt.Sprintf("%s@%d %s", step, r.Host, r.State)
	for _, f := range []struct {
		name string
		v    int64
	}{{"token", int64(r.Token)}, {"attempts", int64(r.Attempts)}, {"failures", int64(r.Failures)}, {"exit", int64(r.Exit)}} {
		if f.v != 0 {
			out += fmt.Sprintf(" %s=%d", f.name, f.v)
		}
	}
	if r.Output != "" {
		out += fmt.Sprintf(" output=%q", r.Output)
	}
	if r.Reason != "" {
		out += fmt.Sprintf(" reason=%q", r.Reason)
	}
	return out
}

func codeName(c runbook.ErrorCode) string {
	switch c {
	case runbook.NotFound:
		return "not-found"
	case runbook.FailedPrecondition:
		return "failed-precondition"
	case runbook.AlreadyExists:
		return "already-exists"
	case runbook.InvalidArgument:
		return "invalid-argument"
	}
	return fmt.Sprintf("code-%d", c)
}

// checkAnswer checks what holds for every command, whatever came
// before: a refusal gives a reason and leaves the state's bytes as they
// were; a start that moved the state was granted a token larger than any
// before (*last, which it moves on), and one that did not is a retry of
// the claim the run is running under, answered with its token; a finish
// or abandon answered carries the run's latest token, which a start
// granted, and leaves the run no longer running.
func checkAnswer(s *runbook.State, cmd any, res runbook.Result, before, after []byte, last *uint64) error {
	moved := !bytes.Equal(before, after)
	if res.Code != 0 {
		if moved {
			return fmt.Errorf("refused (%s), yet the state changed", res.Msg)
		}
		if res.Msg == "" || res.Err() == nil || res.Err().Error() != "run-book: "+res.Msg {
			return fmt.Errorf("refused with code %d, reason %q and error %v", res.Code, res.Msg, res.Err())
		}
		return nil
	}
	if res.Err() != nil || res.Msg != "" {
		return fmt.Errorf("applied, yet with error %v", res.Err())
	}
	switch c := cmd.(type) {
	case runbook.Start:
		r := runOf(s, c.Book, c.Step, c.Host)
		switch {
		case r.State != runbook.Running || r.Token != res.Token || r.Claim != c.Claim:
			return fmt.Errorf("started with token %d, yet the run is %+v", res.Token, r)
		case moved && res.Token <= *last:
			return fmt.Errorf("granted token %d, not above the last granted, %d", res.Token, *last)
		case moved:
			*last = res.Token
		}
	case runbook.Finish, runbook.Abandon:
		book, step, host, token := endPlace(cmd)
		r := runOf(s, book, step, host)
		if res.Token != token || r.Token != token || token == 0 || r.State == runbook.Running {
			return fmt.Errorf("ended with token %d (answered %d), yet the run is %+v", token, res.Token, r)
		}
	case runbook.Submit, runbook.Cancel:
		if res.Token != 0 {
			return fmt.Errorf("answered with token %d", res.Token)
		}
	}
	return nil
}

func endPlace(cmd any) (book, step string, host consensus.NodeID, token uint64) {
	switch c := cmd.(type) {
	case runbook.Finish:
		return c.Book, c.Step, c.Host, c.Token
	case runbook.Abandon:
		return c.Book, c.Step, c.Host, c.Token
	}
	panic(fmt.Sprintf("%T ends no run", cmd))
}

// runOf returns a run the state holds, or a Run whose State is 255.
func runOf(s *runbook.State, book, step string, host consensus.NodeID) runbook.Run {
	e, _ := s.Entry(book)
	for i, st := range e.Book.Steps {
		for _, r := range e.Runs[i] {
			if st.ID == step && r.Host == host {
				return r
			}
		}
	}
	return runbook.Run{State: 255}
}

func decodeState(b []byte) (runbook.State, error) {
	d := wire.NewDecoder(b, errCodec)
	s := runbook.DecodeState(&d)
	return s, d.Finish()
}

// roundTrip checks a state's bytes decode, and encode again the same.
func roundTrip(b []byte) error {
	s, err := decodeState(b)
	if err != nil {
		return fmt.Errorf("the state's own bytes do not decode: %w", err)
	}
	if again := s.AppendState(nil); !bytes.Equal(again, b) {
		return fmt.Errorf("the state decoded re-encodes as\n%x, not\n%x", again, b)
	}
	return nil
}

// apply applies cmd to s and fails the test unless it is applied.
func apply(t *testing.T, s *runbook.State, cmd any) uint64 {
	t.Helper()
	res := s.Apply(cmd)
	if res.Code != 0 {
		t.Fatalf("%+v refused: %s", cmd, res.Msg)
	}
	return res.Token
}

// refused applies cmd to s, and fails the test unless it is refused with
// code, for a reason that says want, and leaves the state as it was.
func refused(t *testing.T, s *runbook.State, cmd any, code runbook.ErrorCode, want string) {
	t.Helper()
	before := s.AppendState(nil)
	res := s.Apply(cmd)
	if res.Code != code || !strings.Contains(res.Msg, want) {
		t.Fatalf("%+v: answered %+v, want %s saying %q", cmd, res, codeName(code), want)
	}
	if !bytes.Equal(before, s.AppendState(nil)) {
		t.Fatalf("%+v: refused, yet the state changed", cmd)
	}
}

// oneStep is a book of one step, on the hosts given.
func oneStep(id string, on ...consensus.NodeID) runbook.Book {
	return runbook.Book{ID: id, Steps: []runbook.Step{{ID: "only", Hosts: on, Argv: []string{"run"},
		Timeout: time.Second, Retries: 1}}}
}

// TestFinishRecordsTheAttempt: a run keeps the latest attempt's times,
// exit status, digest and output; a new start clears the last attempt's.
func TestFinishRecordsTheAttempt(t *testing.T) {
	var s runbook.State
	apply(t, &s, runbook.Submit{Book: oneStep("b", 1), AtNs: 5})
	tok := apply(t, &s, runbook.Start{Book: "b", Step: "only", Host: 1, Claim: 7, AtNs: 100})
	digest := strings.Repeat("ab", runbook.MaxDigestLen/2)
	output := strings.Repeat("x", runbook.MaxOutputTail)
	apply(t, &s, runbook.Finish{Book: "b", Step: "only", Host: 1, Token: tok, Exit: 4, AtNs: 250,
		Digest: digest, Output: output})
	want := runbook.Run{Host: 1, State: runbook.Pending, Attempts: 1, Failures: 1, Token: tok, Claim: 7,
		StartNs: 100, EndNs: 250, Exit: 4, Digest: digest, Output: output}
	if r := runOf(&s, "b", "only", 1); r != want {
		t.Fatalf("after a failure: %+v, want %+v", r, want)
	}
	tok = apply(t, &s, runbook.Start{Book: "b", Step: "only", Host: 1, Claim: 8, AtNs: 300})
	want = runbook.Run{Host: 1, State: runbook.Running, Attempts: 2, Failures: 1, Token: tok, Claim: 8, StartNs: 300}
	if r := runOf(&s, "b", "only", 1); r != want {
		t.Fatalf("after the second start: %+v, want %+v", r, want)
	}
	e, _ := s.Entry("b")
	if e.SubmittedNs != 5 || e.Seq != 1 {
		t.Fatalf("entry submitted at %d with seq %d", e.SubmittedNs, e.Seq)
	}
}

// TestOversizedFieldsRefused: an output, digest or reason over its limit
// is refused and changes nothing.
func TestOversizedFieldsRefused(t *testing.T) {
	var s runbook.State
	apply(t, &s, runbook.Submit{Book: oneStep("b", 1, 2)})
	t1 := apply(t, &s, runbook.Start{Book: "b", Step: "only", Host: 1, Claim: 1})
	apply(t, &s, runbook.Start{Book: "b", Step: "only", Host: 2, Claim: 1})
	long := strings.Repeat("y", runbook.MaxOutputTail+1)
	refused(t, &s, runbook.Finish{Book: "b", Step: "only", Host: 1, Token: t1, Output: long},
		runbook.InvalidArgument, "output of 1025 bytes (at most 1024)")
	refused(t, &s, runbook.Finish{Book: "b", Step: "only", Host: 1, Token: t1, Digest: strings.Repeat("0", 65)},
		runbook.InvalidArgument, "digest of 65 (at most 64)")
	refused(t, &s, runbook.Abandon{Book: "b", Step: "only", Host: 1, Token: t1, Reason: long},
		runbook.InvalidArgument, "reason of 1025 bytes, at most 1024")
	refused(t, &s, runbook.Cancel{Book: "b", Reason: long}, runbook.InvalidArgument, "reason of 1025 bytes")
	apply(t, &s, runbook.Abandon{Book: "b", Step: "only", Host: 1, Token: t1, Reason: long[1:]})
	apply(t, &s, runbook.Cancel{Book: "b", Reason: long[1:]})
}

// TestEndWithoutAStart: a token no start granted (0, on a run never
// started) is refused like a stale one, not answered as a repeat.
func TestEndWithoutAStart(t *testing.T) {
	var s runbook.State
	apply(t, &s, runbook.Submit{Book: oneStep("b", 1, 2)})
	refused(t, &s, runbook.Finish{Book: "b", Step: "only", Host: 1, Token: 0},
		runbook.FailedPrecondition, "token 0 of step \"only\" of run-book \"b\" on host 1 is stale")
	refused(t, &s, runbook.Abandon{Book: "b", Step: "only", Host: 1, Token: 0},
		runbook.FailedPrecondition, "is stale")
	apply(t, &s, runbook.Cancel{Book: "b"})
	refused(t, &s, runbook.Finish{Book: "b", Step: "only", Host: 2, Token: 0},
		runbook.FailedPrecondition, "the latest is 0 (skipped)")
}

// TestEntriesAreCopies: changing a run returned by Entry, Entries or
// Next changes nothing in the state.
func TestEntriesAreCopies(t *testing.T) {
	var s runbook.State
	apply(t, &s, runbook.Submit{Book: oneStep("b", 1)})
	before := s.AppendState(nil)
	e, _ := s.Entry("b")
	e.Runs[0][0].State = runbook.Failed
	s.Entries()[0].Runs[0][0].Token = 9
	w, _ := s.Next(1)
	w.Run.Attempts = 3
	if !bytes.Equal(before, s.AppendState(nil)) {
		t.Fatal("a returned copy wrote into the state")
	}
}

// TestPrune: the state keeps at most KeptFinished finished books,
// dropping the oldest finished first, and never an unfinished one; a
// refused or retried submission drops nothing.
func TestPrune(t *testing.T) {
	var s runbook.State
	apply(t, &s, runbook.Submit{Book: oneStep("open", 2)}) // host 2 never starts it
	total := runbook.KeptFinished + 5
	for i := range total {
		id := fmt.Sprintf("b%d", i)
		apply(t, &s, runbook.Submit{Book: oneStep(id, 1)})
		tok := apply(t, &s, runbook.Start{Book: id, Step: "only", Host: 1, Claim: 1})
		apply(t, &s, runbook.Finish{Book: id, Step: "only", Host: 1, Token: tok})
		if n := countFinished(s.Entries()); n > runbook.KeptFinished {
			t.Fatalf("after book %d, %d finished books kept", i, n)
		}
	}
	es := s.Entries()
	if len(es) != runbook.KeptFinished+1 || es[0].Book.ID != "open" || es[1].Book.ID != "b5" ||
		es[len(es)-1].Book.ID != fmt.Sprintf("b%d", total-1) || es[len(es)-1].Seq != uint64(total+1) {
		t.Fatalf("kept %d books, from %s (after %s) to %s #%d", len(es), es[0].Book.ID, es[1].Book.ID,
			es[len(es)-1].Book.ID, es[len(es)-1].Seq)
	}
	if _, ok := s.Entry("b4"); ok {
		t.Fatal("b4 was kept")
	}
	refused(t, &s, runbook.Start{Book: "b0", Step: "only", Host: 1, Claim: 1}, runbook.NotFound, `no run-book "b0"`)
	// At the limit, neither a refused book nor a retried one drops any.
	bad := oneStep("bad", 1)
	bad.Steps[0].Timeout = 0
	refused(t, &s, runbook.Submit{Book: bad}, runbook.InvalidArgument, "timeout")
	refused(t, &s, runbook.Submit{Book: oneStep("b5", 3)}, runbook.AlreadyExists, `run-book "b5" exists`)
	before := s.AppendState(nil)
	apply(t, &s, runbook.Submit{Book: oneStep("b5", 1)})
	apply(t, &s, runbook.Submit{Book: oneStep("open", 2)})
	if !bytes.Equal(before, s.AppendState(nil)) {
		t.Fatal("a retried submission changed the state")
	}
	apply(t, &s, runbook.Submit{Book: oneStep("next", 1)})
	if es := s.Entries(); len(es) != runbook.KeptFinished+1 || es[0].Book.ID != "open" || es[1].Book.ID != "b6" {
		t.Fatalf("after one more book, kept %d, from %s then %s", len(es), es[0].Book.ID, es[1].Book.ID)
	}
}

func countFinished(es []runbook.Entry) int {
	n := 0
	for i := range es {
		if es[i].Finished() {
			n++
		}
	}
	return n
}
