package ordering

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering/runbook"
)

func sampleRunbook(id string) runbook.Book {
	return runbook.Book{ID: id, Steps: []runbook.Step{
		{ID: "drain", Hosts: []consensus.NodeID{1}, Argv: []string{"drain"}, Timeout: time.Minute, Retries: 1},
		{ID: "ready", Hosts: []consensus.NodeID{1, 2}, DependsOn: []string{"drain"}, Timeout: time.Minute},
	}}
}

func runbookApply(t *testing.T, m *Machine, cmd any) runbook.Result {
	t.Helper()
	v := m.Apply(1, EncodeRunbook(cmd))
	res, ok := v.(runbook.Result)
	if !ok {
		t.Fatalf("%+v: Apply returned %T %v", cmd, v, v)
	}
	return res
}

// TestRunbookCommandsApply: the machine decodes each run-book command,
// applies it to its run-books, answers with the runbook.Result, and
// calls OnRunbooks once the state includes it, refusals too.
func TestRunbookCommandsApply(t *testing.T) {
	var m Machine
	var calls int
	var seen []runbook.RunState
	m.OnRunbooks = func() {
		calls++
		e, _ := m.Runbook("up")
		seen = append(seen, e.Runs[0][0].State)
	}
	steps := []struct {
		cmd  any
		want runbook.Result
		now  runbook.RunState // drain's state once applied
	}{
		{runbook.Submit{Book: sampleRunbook("up"), AtNs: 9}, runbook.Result{}, runbook.Pending},
		{runbook.Start{Book: "up", Step: "drain", Host: 1, Claim: 5}, runbook.Result{Token: 1}, runbook.Running},
		{runbook.Start{Book: "up", Step: "drain", Host: 1, Claim: 6}, runbook.Result{Code: runbook.FailedPrecondition,
			Msg: `step "drain" of run-book "up" is running on host 1 under token 1, and is not idempotent`}, runbook.Running},
		{runbook.Finish{Book: "up", Step: "drain", Host: 1, Token: 1, Exit: 1}, runbook.Result{Token: 1}, runbook.Pending},
		{runbook.Start{Book: "up", Step: "drain", Host: 1, Claim: 7}, runbook.Result{Token: 2}, runbook.Running},
		{runbook.Abandon{Book: "up", Step: "drain", Host: 1, Token: 2, Reason: "restarted"}, runbook.Result{Token: 2}, runbook.Unknown},
		{runbook.Cancel{Book: "up"}, runbook.Result{Code: runbook.FailedPrecondition,
			Msg: `run-book "up" has finished: failed`}, runbook.Unknown},
		{runbook.Cancel{Book: "nope"}, runbook.Result{Code: runbook.NotFound, Msg: `no run-book "nope"`}, runbook.Unknown},
	}
	for i, s := range steps {
		if got := runbookApply(t, &m, s.cmd); got != s.want {
			t.Fatalf("%T: %+v, want %+v", s.cmd, got, s.want)
		}
		if calls != i+1 || seen[i] != s.now {
			t.Fatalf("%T: OnRunbooks called %d times, last seeing %v, want %d seeing %v", s.cmd, calls, seen[i], i+1, s.now)
		}
	}
	e, ok := m.Runbook("up")
	if !ok || e.Status() != "failed" || e.Runs[1][0].State != runbook.Skipped || e.Runs[0][0].Reason != "restarted" {
		t.Fatalf("run-book %+v %v", e, ok)
	}
	if w, ok := m.NextRun(2); ok {
		t.Fatalf("host 2 has a next run, %+v", w)
	}
	// A run-book command that does not decode changes nothing, and
	// nobody is told.
	before := m.encode()
	enc := EncodeRunbook(runbook.Cancel{Book: "up"})
	if err, _ := m.Apply(1, enc[:len(enc)-1]).(error); !errors.Is(err, ErrCodec) {
		t.Fatalf("a truncated cancel applied as %v", err)
	}
	if calls != len(steps) || !bytes.Equal(before, m.encode()) {
		t.Fatal("a malformed run-book command changed the state, or was announced")
	}
	// Other commands are not run-book news.
	tick := sampleTick()
	m.Apply(1, EncodeTick(&tick))
	if calls != len(steps) {
		t.Fatal("a tick called OnRunbooks")
	}
}

// TestRunbookSnapshot: a snapshot carries the run-books, a restore
// announces them, and the restored machine writes the same snapshot and
// answers the next command as the original does.
func TestRunbookSnapshot(t *testing.T) {
	var a Machine
	tick := sampleTick()
	a.Apply(1, EncodeTick(&tick))
	for _, cmd := range []any{
		runbook.Submit{Book: sampleRunbook("one"), AtNs: 1},
		runbook.Submit{Book: sampleRunbook("two"), AtNs: 2},
		runbook.Start{Book: "one", Step: "drain", Host: 1, Claim: 3, AtNs: 4},
		runbook.Finish{Book: "one", Step: "drain", Host: 1, Token: 1, AtNs: 5, Digest: "ab", Output: "drained"},
		runbook.Start{Book: "one", Step: "ready", Host: 2, Claim: 6, AtNs: 7},
		runbook.Cancel{Book: "two", Reason: "not today"},
	} {
		if res := runbookApply(t, &a, cmd); res.Code != 0 {
			t.Fatalf("%+v refused: %s", cmd, res.Msg)
		}
	}
	var snap bytes.Buffer
	if err := a.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	var b Machine
	restored := 0
	b.OnRunbooks = func() { restored++ }
	if err := b.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if restored != 1 {
		t.Fatalf("OnRunbooks called %d times by a restore", restored)
	}
	if !reflect.DeepEqual(b.Runbooks(), a.Runbooks()) || len(b.Runbooks()) != 2 {
		t.Fatalf("restored %+v\nwant %+v", b.Runbooks(), a.Runbooks())
	}
	var again bytes.Buffer
	if err := b.Snapshot(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap.Bytes(), again.Bytes()) {
		t.Fatal("the restored machine writes another snapshot")
	}
	for _, cmd := range []any{
		runbook.Finish{Book: "one", Step: "ready", Host: 2, Token: 2},
		runbook.Start{Book: "one", Step: "ready", Host: 1, Claim: 8},
		runbook.Submit{Book: sampleRunbook("one")},
		runbook.Submit{Book: sampleRunbook("three")},
	} {
		if ra, rb := runbookApply(t, &a, cmd), runbookApply(t, &b, cmd); ra != rb {
			t.Fatalf("%+v: the original answers %+v, the restored %+v", cmd, ra, rb)
		}
	}
	if wa, _ := a.NextRun(1); !reflect.DeepEqual(wa, mustNext(t, &b, 1)) || wa.Run.Token != 3 {
		t.Fatalf("host 1's next run: %+v and %+v", wa, mustNext(t, &b, 1))
	}
	if !bytes.Equal(a.encode(), b.encode()) {
		t.Fatal("the machines parted after the restore")
	}
}

func mustNext(t *testing.T, m *Machine, host consensus.NodeID) runbook.Work {
	t.Helper()
	w, ok := m.NextRun(host)
	if !ok {
		t.Fatalf("host %d has no next run", host)
	}
	return w
}

// TestRunbookSnapshotVersion4: a snapshot from before the run-books
// restores with none. Version 5 appends the run-book state, which for no
// run-books is three zeros (the last sequence number, the last token,
// no books); version 4 is the rest.
func TestRunbookSnapshotVersion4(t *testing.T) {
	var src Machine
	tick := sampleTick()
	src.Apply(1, EncodeTick(&tick))
	src.Apply(2, EncodeCeiling(Ceiling{Ms: 12345}))
	v5 := src.encode()
	if v5[0] != 5 || !bytes.Equal(v5[len(v5)-3:], []byte{0, 0, 0}) {
		t.Fatalf("a snapshot without run-books is %x", v5)
	}
	v4 := append([]byte{4}, v5[1:len(v5)-3]...)

	var m Machine
	runbookApply(t, &m, runbook.Submit{Book: sampleRunbook("old")})
	calls := 0
	m.OnRunbooks = func() { calls++ }
	if err := m.Restore(bytes.NewReader(v4)); err != nil {
		t.Fatal(err)
	}
	if len(m.Runbooks()) != 0 || calls != 1 || m.CeilingMs() != 12345 {
		t.Fatalf("restored run-books %+v, %d calls, ceiling %d", m.Runbooks(), calls, m.CeilingMs())
	}
	if _, ok := m.Runbook("old"); ok {
		t.Fatal("the run-book from before the restore survived it")
	}
	if !bytes.Equal(m.encode(), v5) {
		t.Fatal("the version 4 snapshot restored to another state")
	}
	if res := runbookApply(t, &m, runbook.Submit{Book: sampleRunbook("new")}); res.Code != 0 {
		t.Fatalf("submit after a version 4 restore: %s", res.Msg)
	}
	// Version 4 holds no run-books: bytes after it are refused.
	if err := m.Restore(bytes.NewReader(append(bytes.Clone(v4), 0, 0, 0))); !errors.Is(err, ErrCodec) {
		t.Fatalf("a version 4 snapshot with run-book bytes restored: %v", err)
	}

	raw, err := os.ReadFile("testdata/snapshot-v3.bin")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(bytes.NewReader(raw)); err != nil || len(m.Runbooks()) != 0 {
		t.Fatalf("version 3 restored with run-books %+v, %v", m.Runbooks(), err)
	}
}

// TestRunbookSnapshotRefusesABadState: the run-book state is checked as
// the rest of the snapshot is.
func TestRunbookSnapshotRefusesABadState(t *testing.T) {
	var m Machine
	tick := sampleTick()
	m.Apply(1, EncodeTick(&tick))
	runbookApply(t, &m, runbook.Submit{Book: sampleRunbook("one")})
	good := m.encode()
	for n := len(good) - 40; n < len(good); n++ {
		if err := new(Machine).Restore(bytes.NewReader(good[:n])); !errors.Is(err, ErrCodec) {
			t.Fatalf("cut to %d of %d bytes: %v", n, len(good), err)
		}
	}
	if err := new(Machine).Restore(bytes.NewReader(append(bytes.Clone(good), 0))); !errors.Is(err, ErrCodec) {
		t.Fatalf("with a trailing byte: %v", err)
	}
}

// FuzzDecodeRunbook: no bytes make Decode panic, and a run-book command
// that decodes comes back the same from its encoding. The encoding is
// canonical (shortest varints), so it is the input itself unless the
// input spelled a varint long.
func FuzzDecodeRunbook(f *testing.F) {
	f.Add(EncodeRunbook(runbook.Submit{Book: sampleRunbook("up"), AtNs: -3}))
	f.Add(EncodeRunbook(runbook.Start{Book: "up", Step: "drain", Host: 1, Claim: 1 << 60, AtNs: 9}))
	f.Add(EncodeRunbook(runbook.Finish{Book: "up", Step: "drain", Host: 1, Token: 3, Exit: -1, AtNs: 4,
		Digest: "ab", Output: "out"}))
	f.Add(EncodeRunbook(runbook.Abandon{Book: "up", Step: "drain", Host: 2, Token: 4, AtNs: 5, Reason: "r"}))
	f.Add(EncodeRunbook(runbook.Cancel{Book: "up", Reason: "why"}))
	f.Add([]byte{byte(KindRunbookSubmit), codecVersion, 0, 0x80, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, v, err := Decode(b)
		if err != nil || k < KindRunbookSubmit || k > KindRunbookCancel {
			return
		}
		again := EncodeRunbook(v)
		_, v2, err := Decode(again)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("%x decoded as %+v; its encoding %x as %+v, %v", b, v, again, v2, err)
		}
		if len(again) > len(b) || (len(again) == len(b) && !bytes.Equal(again, b)) {
			t.Fatalf("%x decoded as %+v, which encodes as %x", b, v, again)
		}
	})
}
