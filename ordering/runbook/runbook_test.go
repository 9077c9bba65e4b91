package runbook_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering/runbook"
)

// validBook is a small book Validate accepts: a step on one host, a
// barrier on three that depends on it, and an idempotent step after the
// barrier. The cases below break one thing in it each.
func validBook() runbook.Book {
	return runbook.Book{ID: "upgrade", Steps: []runbook.Step{
		{ID: "drain", Hosts: hosts(1), Argv: []string{"drain", "--wait"}, Timeout: time.Minute, Retries: 1},
		{ID: "ready", Hosts: hosts(1, 2, 3), DependsOn: []string{"drain"}, Timeout: time.Minute},
		{ID: "install", Hosts: hosts(1, 2, 3), Argv: []string{"install"}, DependsOn: []string{"ready"},
			Timeout: time.Minute, Idempotent: true},
	}}
}

func hosts(ids ...consensus.NodeID) []consensus.NodeID { return ids }

// hostRange returns the hosts 1 to n.
func hostRange(n int) []consensus.NodeID {
	out := make([]consensus.NodeID, n)
	for i := range out {
		out[i] = consensus.NodeID(i + 1)
	}
	return out
}

// manySteps returns n steps, s1 to sn, each on hosts 1 to perStep.
func manySteps(n, perStep int) []runbook.Step {
	out := make([]runbook.Step, n)
	for i := range out {
		out[i] = runbook.Step{ID: fmt.Sprintf("s%d", i+1), Hosts: hostRange(perStep), Argv: []string{"true"},
			Timeout: time.Second}
	}
	return out
}

// encodedSize is the book's size as the log carries it, which
// MaxBookBytes limits: a Submit's body less its one-byte time.
func encodedSize(b runbook.Book) int {
	return len(runbook.AppendCommand(nil, runbook.Submit{Book: b})) - 1
}

// bookOfSize returns a valid book that encodes to exactly n bytes
// (n well above MaxArgvBytes): steps whose argv is one long string.
func bookOfSize(t *testing.T, n int) runbook.Book {
	t.Helper()
	const argBytes = 8000 // adjusted by less than this, its length prefix stays two bytes
	b := runbook.Book{ID: "big"}
	for encodedSize(b) < n-argBytes {
		b.Steps = append(b.Steps, runbook.Step{ID: fmt.Sprintf("s%d", len(b.Steps)+1), Hosts: hosts(1),
			Argv: []string{strings.Repeat("a", argBytes)}, Timeout: time.Second})
	}
	last := &b.Steps[len(b.Steps)-1].Argv[0]
	*last = strings.Repeat("a", len(*last)+n-encodedSize(b))
	if got := encodedSize(b); got != n {
		t.Fatalf("built a book of %d bytes, want %d", got, n)
	}
	return b
}

// TestValidateRefuses breaks one thing at a time and checks the error
// names it, and where it is.
func TestValidateRefuses(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(b *runbook.Book)
		want  []string
	}{
		{"empty book id", func(b *runbook.Book) { b.ID = "" },
			[]string{"book id is empty"}},
		{"long book id", func(b *runbook.Book) { b.ID = strings.Repeat("x", runbook.MaxIDLen+1) },
			[]string{"book id", `"xxxxxxxxxxxxxxxxxxxx"...`, "129 bytes, at most 128"}},
		{"book id with a space", func(b *runbook.Book) { b.ID = "up grade" },
			[]string{`book id "up grade"`, "only letters, digits and - _ . :"}},
		{"book id with a non-ASCII letter", func(b *runbook.Book) { b.ID = "upgrad\u00e9" },
			[]string{`book id "upgradé"`, "only letters"}},
		{"no steps", func(b *runbook.Book) { b.Steps = nil },
			[]string{`run-book "upgrade": no steps`}},
		{"too many steps", func(b *runbook.Book) { b.Steps = manySteps(runbook.MaxSteps+1, 1) },
			[]string{`run-book "upgrade"`, "257 steps, at most 256"}},
		{"empty step id", func(b *runbook.Book) { b.Steps[1].ID = "" },
			[]string{`run-book "upgrade": step 2: id is empty`}},
		{"long step id", func(b *runbook.Book) { b.Steps[1].ID = strings.Repeat("r", 200) },
			[]string{`run-book "upgrade": step 2: id "rrrrrrrrrrrrrrrrrrrr"...`, "200 bytes, at most 128"}},
		{"step id with a slash", func(b *runbook.Book) { b.Steps[2].ID = "in/stall" },
			[]string{`run-book "upgrade": step 3: id "in/stall"`, "only letters"}},
		{"step id used twice", func(b *runbook.Book) { b.Steps[2].ID = "drain" },
			[]string{`step "drain": id used twice`}},
		{"depends on itself", func(b *runbook.Book) { b.Steps[1].DependsOn = []string{"drain", "ready"} },
			[]string{`step "ready": depends on itself`}},
		{"depends on a later step", func(b *runbook.Book) { b.Steps[1].DependsOn = []string{"install"} },
			[]string{`step "ready": depends on "install", which comes after it`}},
		{"depends on a missing step", func(b *runbook.Book) { b.Steps[2].DependsOn = []string{"ready", "fetch"} },
			[]string{`step "install": depends on "fetch", which is not a step of the book`}},
		{"no hosts", func(b *runbook.Book) { b.Steps[0].Hosts = nil },
			[]string{`step "drain": no hosts`}},
		{"unsorted hosts", func(b *runbook.Book) { b.Steps[1].Hosts = hosts(1, 3, 2) },
			[]string{`step "ready": hosts must be sorted without repeats, got [1 3 2]`}},
		{"repeated host", func(b *runbook.Book) { b.Steps[2].Hosts = hosts(1, 2, 2, 3) },
			[]string{`step "install": hosts must be sorted without repeats, got [1 2 2 3]`}},
		{"host 0", func(b *runbook.Book) { b.Steps[1].Hosts = hosts(0, 1, 2) },
			[]string{`step "ready": host 0 is not a node ID`}},
		{"too many hosts", func(b *runbook.Book) { b.Steps[2].Hosts = hostRange(runbook.MaxStepHosts + 1) },
			[]string{`step "install": 65 hosts, at most 64`}},
		{"too many runs", func(b *runbook.Book) { b.Steps = manySteps(17, runbook.MaxStepHosts) },
			[]string{`run-book "upgrade": 1088 runs (hosts summed over steps), at most 1024`}},
		{"argv too big", func(b *runbook.Book) {
			b.Steps[0].Argv = []string{"drain", strings.Repeat("a", runbook.MaxArgvBytes-5+1)}
		}, []string{`step "drain": argv of 16385 bytes, at most 16384`}},
		{"empty argv[0]", func(b *runbook.Book) { b.Steps[2].Argv = []string{"", "install"} },
			[]string{`step "install": argv[0] is empty`}},
		{"zero timeout", func(b *runbook.Book) { b.Steps[0].Timeout = 0 },
			[]string{`step "drain": timeout 0s outside (0, 24h0m0s]`}},
		{"negative timeout", func(b *runbook.Book) { b.Steps[1].Timeout = -time.Second },
			[]string{`step "ready": timeout -1s outside`}},
		{"timeout over a day", func(b *runbook.Book) { b.Steps[2].Timeout = runbook.MaxTimeout + time.Nanosecond },
			[]string{`step "install": timeout 24h0m0.000000001s outside`}},
		{"negative retries", func(b *runbook.Book) { b.Steps[0].Retries = -1 },
			[]string{`step "drain": retries -1 outside [0, 100]`}},
		{"too many retries", func(b *runbook.Book) { b.Steps[2].Retries = runbook.MaxRetries + 1 },
			[]string{`step "install": retries 101 outside [0, 100]`}},
		{"barrier with retries", func(b *runbook.Book) { b.Steps[1].Retries = 1 },
			[]string{`step "ready": a barrier (no argv) takes no retries and no idempotent`}},
		{"idempotent barrier", func(b *runbook.Book) { b.Steps[1].Idempotent = true },
			[]string{`step "ready": a barrier (no argv)`}},
		{"version gate with argv", func(b *runbook.Book) { b.Steps[0].MinVersion = "v1.4.0" },
			[]string{`step "drain": min_version "v1.4.0": a version gate is a barrier (no argv)`}},
		{"version gate without a semantic version", func(b *runbook.Book) { b.Steps[1].MinVersion = "1.4" },
			[]string{`step "ready": min_version "1.4"`, "as v1.4.0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := validBook()
			c.spoil(&b)
			err := b.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("encoded size", func(t *testing.T) {
		b := bookOfSize(t, runbook.MaxBookBytes)
		if err := b.Validate(); err != nil {
			t.Fatalf("a book of exactly MaxBookBytes: %v", err)
		}
		b = bookOfSize(t, runbook.MaxBookBytes+1)
		err := b.Validate()
		if want := `run-book "big": 131073 bytes encoded, at most 131072`; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	})
}

// TestValidateAcceptsTheLimits: every limit is inclusive.
func TestValidateAcceptsTheLimits(t *testing.T) {
	cases := []struct {
		name string
		edit func(b *runbook.Book)
	}{
		{"the example", func(*runbook.Book) {}},
		{"longest ids", func(b *runbook.Book) {
			b.ID = strings.Repeat("b", runbook.MaxIDLen)
			b.Steps[0].ID = strings.Repeat("s", runbook.MaxIDLen)
			b.Steps[1].DependsOn = []string{b.Steps[0].ID}
		}},
		{"every allowed character", func(b *runbook.Book) { b.ID = "az-AZ_09.x:y" }},
		{"most steps", func(b *runbook.Book) { b.Steps = manySteps(runbook.MaxSteps, 1) }},
		{"most hosts", func(b *runbook.Book) { b.Steps[2].Hosts = hostRange(runbook.MaxStepHosts) }},
		{"most runs", func(b *runbook.Book) { b.Steps = manySteps(16, runbook.MaxStepHosts) }},
		{"largest argv", func(b *runbook.Book) {
			b.Steps[0].Argv = []string{"drain", strings.Repeat("a", runbook.MaxArgvBytes-5)}
		}},
		{"shortest and longest timeouts", func(b *runbook.Book) {
			b.Steps[0].Timeout, b.Steps[2].Timeout = time.Nanosecond, runbook.MaxTimeout
		}},
		{"most retries", func(b *runbook.Book) { b.Steps[2].Retries = runbook.MaxRetries }},
		{"large node IDs", func(b *runbook.Book) { b.Steps[1].Hosts = hosts(1, 1<<40, 1<<63) }},
		{"a dependency named twice", func(b *runbook.Book) { b.Steps[2].DependsOn = []string{"drain", "ready", "drain"} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := validBook()
			c.edit(&b)
			if err := b.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBarrier(t *testing.T) {
	b := validBook()
	if b.Steps[0].Barrier() || !b.Steps[1].Barrier() || b.Steps[2].Barrier() {
		t.Fatal("only the step without argv is a barrier")
	}
}

func TestRunStates(t *testing.T) {
	want := []struct {
		s        runbook.RunState
		name     string
		terminal bool
	}{
		{runbook.Pending, "pending", false},
		{runbook.Running, "running", false},
		{runbook.Succeeded, "succeeded", true},
		{runbook.Failed, "failed", true},
		{runbook.Unknown, "unknown", true},
		{runbook.Skipped, "skipped", true},
		{6, "RunState(6)", false},
	}
	for i, w := range want {
		if w.s != runbook.RunState(i) {
			t.Fatalf("%s is %d, want %d: the numbers are on disk", w.name, w.s, i)
		}
		if w.s.String() != w.name || w.s.Terminal() != w.terminal {
			t.Errorf("%d: %q terminal %v, want %q %v", i, w.s, w.s.Terminal(), w.name, w.terminal)
		}
	}
}
