package daemon

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering/runbook"
)

// TestBookFromProto: hosts come out sorted without repeats, a timeout of
// 0 is the default, and what Validate needs is kept as sent.
func TestBookFromProto(t *testing.T) {
	got, err := bookFromProto(&clockdv1.Book{Id: "up", Steps: []*clockdv1.BookStep{
		{Id: "drain", Hosts: []uint64{3, 1, 3, 2}, Argv: []string{"/bin/true", "-x"}, TimeoutNanos: int64(time.Minute),
			Retries: 2, Idempotent: true},
		{Id: "gate", DependsOn: []string{"drain"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := runbook.Book{ID: "up", Steps: []runbook.Step{
		{ID: "drain", Hosts: []consensus.NodeID{1, 2, 3}, Argv: []string{"/bin/true", "-x"}, Timeout: time.Minute,
			Retries: 2, Idempotent: true},
		{ID: "gate", Hosts: []consensus.NodeID{}, DependsOn: []string{"drain"}, Timeout: runbook.DefaultTimeout},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Back to the proto: the book as resolved.
	back := bookToProto(&got)
	if h := back.Steps[0].Hosts; !reflect.DeepEqual(h, []uint64{1, 2, 3}) || back.Steps[1].TimeoutNanos != int64(runbook.DefaultTimeout) {
		t.Fatalf("bookToProto: %v", back)
	}
}

// TestBookFromProtoRefusals: each bound a client can break is refused
// with InvalidArgument and a message naming the field.
func TestBookFromProtoRefusals(t *testing.T) {
	step := func(mod func(*clockdv1.BookStep)) *clockdv1.Book {
		s := &clockdv1.BookStep{Id: "s", Hosts: []uint64{1}, Argv: []string{"/bin/true"}}
		mod(s)
		return &clockdv1.Book{Id: "b", Steps: []*clockdv1.BookStep{{Id: "first"}, s}}
	}
	long := strings.Repeat("x", runbook.MaxIDLen+1)
	manySteps := &clockdv1.Book{Id: "b"}
	for range runbook.MaxSteps + 1 {
		manySteps.Steps = append(manySteps.Steps, &clockdv1.BookStep{Id: "s"})
	}
	for _, tc := range []struct {
		name string
		book *clockdv1.Book
		want string
	}{
		{"no id", &clockdv1.Book{Steps: []*clockdv1.BookStep{{Id: "s"}}}, "id is required"},
		{"long id", &clockdv1.Book{Id: long}, "id is 129 bytes, at most 128"},
		{"no steps", &clockdv1.Book{Id: "b"}, "steps: a run-book needs at least one"},
		{"many steps", manySteps, "steps: 257, at most 256"},
		{"step id", step(func(s *clockdv1.BookStep) { s.Id = "" }), "steps[1].id is required"},
		{"book id characters", &clockdv1.Book{Id: "a b"}, `id: id "a b": only letters, digits and - _ . : are allowed`},
		{"step id characters", step(func(s *clockdv1.BookStep) { s.Id = "s/1" }), `steps[1].id: id "s/1": only letters`},
		{"many hosts", step(func(s *clockdv1.BookStep) { s.Hosts = make([]uint64, 65) }), "steps[1].hosts: 65 hosts, at most 64"},
		{"host 0", step(func(s *clockdv1.BookStep) { s.Hosts = []uint64{2, 0} }), "steps[1].hosts: 0 is not a node ID"},
		{"argv", step(func(s *clockdv1.BookStep) { s.Argv = []string{strings.Repeat("a", runbook.MaxArgvBytes), "b"} }),
			"steps[1].argv: 16385 bytes summed, at most 16384"},
		{"dependency", step(func(s *clockdv1.BookStep) { s.DependsOn = []string{"first", long} }),
			"steps[1].depends_on[1] is 129 bytes, at most 128"},
		{"negative timeout", step(func(s *clockdv1.BookStep) { s.TimeoutNanos = -1 }), "steps[1].timeout_nanos: -1 outside"},
		{"long timeout", step(func(s *clockdv1.BookStep) { s.TimeoutNanos = int64(25 * time.Hour) }), "steps[1].timeout_nanos: 90000000000000 outside"},
		{"retries", step(func(s *clockdv1.BookStep) { s.Retries = 101 }), "steps[1].retries: 101, at most 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bookFromProto(tc.book)
			if s := status.Convert(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), tc.want) {
				t.Fatalf("got %v, want InvalidArgument %q", err, tc.want)
			}
		})
	}
}

// TestRunbookStatusOf: every run state maps to its proto name, which the
// CLI spells as runbook.RunState.String does; strings that are not UTF-8
// are repaired, as a proto string must be; the summary counts the runs.
func TestRunbookStatusOf(t *testing.T) {
	e := runbook.Entry{Seq: 4, SubmittedNs: 99, Cancelled: true,
		Book: runbook.Book{ID: "b", Steps: []runbook.Step{
			{ID: "a", Hosts: []consensus.NodeID{1, 2, 3}, Argv: []string{"/bin/sh"}, Timeout: time.Second},
			{ID: "z", Hosts: []consensus.NodeID{1, 2, 3}, Timeout: time.Second, DependsOn: []string{"a"}},
		}},
		Runs: [][]runbook.Run{
			{{Host: 1, State: runbook.Succeeded, Attempts: 1, Token: 7, StartNs: 10, EndNs: 20, Digest: "ab", Output: "ok\xff\n"},
				{Host: 2, State: runbook.Failed, Attempts: 2, Failures: 2, Token: 9, Exit: 3},
				{Host: 3, State: runbook.Unknown, Attempts: 1, Token: 8, Exit: -1, Reason: "restarted \xc3"}},
			{{Host: 1, State: runbook.Skipped, Reason: "cancelled"}, {Host: 2, State: runbook.Pending},
				{Host: 3, State: runbook.Running, Attempts: 1, Token: 11}},
		}}
	st := runbookStatusOf(&e)
	if st.State != clockdv1.RunbookState_RUNBOOK_STATE_RUNNING || st.Seq != 4 || st.SubmittedUnixNano != 99 || !st.Cancelled ||
		len(st.Steps) != 2 || st.Book.Steps[1].DependsOn[0] != "a" {
		t.Fatalf("status %v", st)
	}
	var names []string
	for _, sr := range st.Steps {
		for _, r := range sr.Runs {
			names = append(names, r.State.String())
		}
	}
	for i, s := range []runbook.RunState{runbook.Succeeded, runbook.Failed, runbook.Unknown, runbook.Skipped, runbook.Pending, runbook.Running} {
		if want := "RUN_STATE_" + strings.ToUpper(s.String()); names[i] != want {
			t.Errorf("run %d: %s, want %s", i, names[i], want)
		}
	}
	r := st.Steps[0].Runs[0]
	if !proto.Equal(r, &clockdv1.Run{Host: 1, State: clockdv1.RunState_RUN_STATE_SUCCEEDED, Attempts: 1, Token: 7,
		StartUnixNano: 10, EndUnixNano: 20, OutputSha256: "ab", OutputTail: "ok\uFFFD\n"}) {
		t.Errorf("run %v", r)
	}
	if u := st.Steps[0].Runs[2]; u.Exit != -1 || !utf8.ValidString(u.Reason) || u.Reason != "restarted \uFFFD" {
		t.Errorf("unknown run %v", u)
	}
	if _, err := proto.Marshal(st); err != nil {
		t.Fatalf("marshal: %v", err)
	}

	sum := runbookSummaryOf(&e)
	if sum.Id != "b" || sum.Steps != 2 || sum.Runs != 6 || sum.RunsEnded != 4 || sum.State != clockdv1.RunbookState_RUNBOOK_STATE_RUNNING {
		t.Errorf("summary %v", sum)
	}
	for _, tc := range []struct {
		runs [][]runbook.Run
		want clockdv1.RunbookState
	}{
		{[][]runbook.Run{{{State: runbook.Succeeded}}}, clockdv1.RunbookState_RUNBOOK_STATE_SUCCEEDED},
		{[][]runbook.Run{{{State: runbook.Succeeded}, {State: runbook.Skipped}}}, clockdv1.RunbookState_RUNBOOK_STATE_FAILED},
	} {
		if got := runbookStateToProto(&runbook.Entry{Runs: tc.runs}); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.runs, got, tc.want)
		}
	}
	if got := runbookStateToProto(&runbook.Entry{Cancelled: true, Runs: [][]runbook.Run{{{State: runbook.Skipped}}}}); got != clockdv1.RunbookState_RUNBOOK_STATE_CANCELLED {
		t.Errorf("cancelled: %v", got)
	}
}
