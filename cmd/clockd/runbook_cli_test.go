package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/internal/certs"
	"github.com/clockd/clockd/internal/proccluster"
)

// runbookcliFile writes a run-book file into dir.
func runbookcliFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runbookcliDecode decodes what a run printed on standard output, which
// must be exactly one status object in the documented shape.
func runbookcliDecode(t *testing.T, r cliResult) runbookStatusJSON {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	var st runbookStatusJSON
	if err := dec.Decode(&st); err != nil || dec.More() {
		t.Fatalf("printed %q: %v (stderr %q)", r.stdout, err, r.stderr)
	}
	return st
}

// runbookcliRuns is every run as "step host state".
func runbookcliRuns(st runbookStatusJSON) []string {
	var out []string
	for _, s := range st.Steps {
		for _, r := range s.Runs {
			out = append(out, s.ID+" "+strconv.FormatUint(r.Host, 10)+" "+r.State)
		}
	}
	return out
}

// TestRunbookCLI runs clockd runbook as processes against one real
// three-node cluster, whose every node executes its steps: a book of
// barriers on all hosts that ends succeeded by itself, a failing step
// retried and its dependent skipped, a book cancelled while one of its
// steps runs, the refusals, and bad input caught before any call.
func TestRunbookCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin, cl, ctx := startSynchronized(t, 2*time.Minute, proccluster.Config{Dir: dir, Nodes: 3,
		Args: []string{"--tick-interval", "200ms"}})
	t.Run("bad-input", func(t *testing.T) { runbookcliBadInput(t, bin, dir) })
	t.Run("barriers", func(t *testing.T) { runbookcliBarriers(t, bin, cl, dir) })
	t.Run("failure", func(t *testing.T) { runbookcliFailure(t, bin, cl, dir) })
	t.Run("refusals", func(t *testing.T) { runbookcliRefusals(t, bin, cl, dir) })
	t.Run("cancel", func(t *testing.T) { runbookcliCancel(t, ctx, bin, cl, dir) })
}

func runbookcliBarriers(t *testing.T, bin string, cl *proccluster.Cluster, dir string) {
	file := runbookcliFile(t, dir, "barriers.yaml", `id: barriers
steps:
  - id: reach
    hosts: all
  - id: pass
    hosts: all
    depends_on: [reach]
`)
	sub := runbookcliDecode(t, cliRun(t, bin, cliAt(cl, 1, "runbook", "submit", "--json", file)...))
	if sub.ID != "barriers" || sub.Seq != 1 || sub.SubmittedUnixNano <= 0 || len(sub.Steps) != 2 ||
		len(sub.Steps[0].Argv) != 0 || !slices.Equal(sub.Steps[1].DependsOn, []string{"reach"}) {
		t.Fatalf("submit --json: %+v", sub)
	}
	for _, s := range sub.Steps {
		if len(s.Runs) != 3 || s.Runs[0].Host != 1 || s.Runs[1].Host != 2 || s.Runs[2].Host != 3 {
			t.Fatalf("hosts all did not resolve to the three voters: %+v", s)
		}
	}
	var st runbookStatusJSON
	cliJSON(t, &st, bin, cliAt(cl, 1, "runbook", "status", "--json", "barriers")...)
	if st.ID != "barriers" || st.Seq != 1 || st.SubmittedUnixNano != sub.SubmittedUnixNano {
		t.Fatalf("status --json: %+v", st)
	}

	// Node 2 may not have applied the submission yet: wait waits for it.
	r := cliRun(t, bin, cliAt(cl, 2, "runbook", "wait", "--timeout", "1m", "--json", "barriers")...)
	done := runbookcliDecode(t, r)
	want := []string{"reach 1 succeeded", "reach 2 succeeded", "reach 3 succeeded",
		"pass 1 succeeded", "pass 2 succeeded", "pass 3 succeeded"}
	if r.code != 0 || done.Status != "succeeded" || done.Cancelled || !slices.Equal(runbookcliRuns(done), want) {
		t.Fatalf("wait: exit %d, %v, %+v", r.code, runbookcliRuns(done), done)
	}
	for _, s := range done.Steps {
		for _, run := range s.Runs {
			if run.Attempts != 1 || run.Token == 0 || run.Exit != 0 || run.EndUnixNano < run.StartUnixNano {
				t.Fatalf("step %s: %+v", s.ID, run)
			}
		}
	}

	// Node 2 answered wait, so it has applied the end; node 1 may lag.
	out := cliOK(t, bin, cliAt(cl, 2, "runbook", "status", "barriers")...)
	for _, w := range []string{"Run-book  : barriers\n", "Status    : succeeded\n", "STEP   HOST  STATE      ATTEMPTS  EXIT  TOKEN",
		"\npass   3     succeeded  1         0     "} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	if out := cliOK(t, bin, cliAt(cl, 2, "runbook", "list")...); !strings.Contains(out, "1    barriers  succeeded  2      6/6         ") {
		t.Errorf("list:\n%s", out)
	}
}

// runbookcliFailure: a step that exits 3 is tried again once and fails;
// the step that depends on it is skipped; submit --wait exits 1 naming
// both.
func runbookcliFailure(t *testing.T, bin string, cl *proccluster.Cluster, dir string) {
	file := runbookcliFile(t, dir, "fails.yaml", `id: fails
steps:
  - id: boom
    hosts: [2]
    argv: [/bin/sh, -c, "echo failing; exit 3"]
    retries: 1
  - id: after
    hosts: [2]
    depends_on: [boom]
`)
	r := cliRun(t, bin, cliAt(cl, 3, "runbook", "submit", "--wait", "--wait-timeout", "1m", "--json", file)...)
	st := runbookcliDecode(t, r)
	vmcliWant(t, r, 1, `clockd runbook submit: run-book "fails" failed: step "boom" on host 2 failed (exit 3 after 2 attempts), `+
		`step "after" on host 2 skipped (step "boom" cannot succeed)`)
	boom, after := st.Steps[0].Runs[0], st.Steps[1].Runs[0]
	if st.Status != "failed" || boom.State != "failed" || boom.Attempts != 2 || boom.Failures != 2 || boom.Exit != 3 ||
		boom.OutputTail != "failing\n" || boom.OutputSHA256 != vmcliSHA256("failing\n") {
		t.Fatalf("boom: %+v of %+v", boom, st)
	}
	if after.State != "skipped" || after.Attempts != 0 || after.Reason != `step "boom" cannot succeed` {
		t.Fatalf("after: %+v", after)
	}
	r = cliRun(t, bin, cliAt(cl, 3, "runbook", "wait", "fails")...)
	vmcliWant(t, r, 1, `run-book "fails" failed: step "boom" on host 2 failed (exit 3 after 2 attempts)`)
	for _, w := range []string{"boom   2     failed   2         3     ", "failing\n", `after  2     skipped  0         -     -      step "boom" cannot succeed`} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("wait lacks %q:\n%s", w, r.stdout)
		}
	}
}

func runbookcliRefusals(t *testing.T, bin string, cl *proccluster.Cluster, dir string) {
	again := runbookcliFile(t, dir, "barriers-again.yaml", "id: barriers\nsteps:\n  - id: reach\n    hosts: all\n  - id: pass\n    hosts: all\n    depends_on: [reach]\n")
	if st := runbookcliDecode(t, cliRun(t, bin, cliAt(cl, 2, "runbook", "submit", "--json", again)...)); st.Seq != 1 || st.Status != "succeeded" {
		t.Fatalf("the same book again: %+v", st)
	}
	other := runbookcliFile(t, dir, "barriers-other.yaml", "id: barriers\nsteps:\n  - id: other\n    hosts: [1]\n")
	vmcliWant(t, cliRun(t, bin, cliAt(cl, 2, "runbook", "submit", other)...), 1,
		`clockd runbook submit: already exists: run-book "barriers" exists, with other steps`)
	vmcliWant(t, cliRun(t, bin, cliAt(cl, 1, "runbook", "cancel", "nope")...), 1,
		`clockd runbook cancel: not found: no run-book "nope"`)
	vmcliWant(t, cliRun(t, bin, cliAt(cl, 1, "runbook", "status", "nope")...), 1, `not found: no run-book "nope"`)
	vmcliWant(t, cliRun(t, bin, cliAt(cl, 1, "runbook", "wait", "nope")...), 1, `not found: no run-book "nope"`)
	vmcliWant(t, cliRun(t, bin, cliAt(cl, 1, "runbook", "cancel", "barriers")...), 1,
		`failed precondition: run-book "barriers" has finished: succeeded`)
	stranger := runbookcliFile(t, dir, "stranger.yaml", "id: stranger\nsteps:\n  - id: s\n    hosts: [9]\n")
	vmcliWant(t, cliRun(t, bin, cliAt(cl, 1, "runbook", "submit", stranger)...), 1,
		`invalid argument: run-book "stranger": step "s": host 9 is not a member of the cluster`)
}

// runbookcliCancel cancels a book while its first step runs on host 3:
// the step blocks reading a FIFO, which the test opens for writing (so
// the open returns once the step runs), and closes after the cancel.
func runbookcliCancel(t *testing.T, ctx context.Context, bin string, cl *proccluster.Cluster, dir string) {
	fifo := filepath.Join(dir, "hold.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := runbookcliFile(t, dir, "held.yaml", `id: held
steps:
  - id: hold
    hosts: [3]
    argv: [/bin/cat, `+fifo+`]
  - id: later
    hosts: all
    depends_on: [hold]
`)
	cliOK(t, bin, cliAt(cl, 1, "runbook", "submit", file)...)
	type openResult struct {
		f   *os.File
		err error
	}
	opened := make(chan openResult, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		opened <- openResult{f, err}
	}()
	var w *os.File
	select {
	case o := <-opened:
		if o.err != nil {
			t.Fatal(o.err)
		}
		w = o.f
	case <-ctx.Done():
		t.Fatal("the step never opened its FIFO")
	}
	r := cliRun(t, bin, cliAt(cl, 1, "runbook", "cancel", "--reason", "host 3 is replaced", "--json", "held")...)
	st := runbookcliDecode(t, r)
	if r.code != 0 || !st.Cancelled || st.Status != "running" || st.Steps[0].Runs[0].State != "running" ||
		st.Steps[1].Runs[0].Reason != "run-book cancelled: host 3 is replaced" {
		t.Fatalf("cancel: exit %d, %+v", r.code, st)
	}
	w.WriteString("held\n")
	w.Close()
	r = cliRun(t, bin, cliAt(cl, 1, "runbook", "wait", "held")...)
	vmcliWant(t, r, 1, `run-book "held" was cancelled: step "later" on host 1 skipped (run-book cancelled: host 3 is replaced)`)
	if !strings.Contains(r.stdout, "Status    : cancelled\n") || !strings.Contains(r.stdout, "hold   3     succeeded  1         0") {
		t.Fatalf("wait:\n%s", r.stdout)
	}
	if out := cliOK(t, bin, cliAt(cl, 1, "runbook", "list", "--json")...); !strings.Contains(out, `"id": "held",
      "status": "cancelled"`) {
		t.Fatalf("list --json:\n%s", out)
	}
}

// runbookcliBadInput checks that each bad file or usage exits 2 with a
// message naming the file and line or the flag, without any call: the
// address is one where nothing listens.
func runbookcliBadInput(t *testing.T, bin, dir string) {
	badTimeout := runbookcliFile(t, dir, "bad-timeout.yaml", "id: b\nsteps:\n  - id: ok\n    hosts: all\n  - id: slow\n    hosts: [1]\n    argv: [/bin/true]\n    timeout: soon\n")
	badHosts := runbookcliFile(t, dir, "bad-hosts.yaml", "id: b\nsteps:\n  - id: s\n    hosts: [one]\n")
	badKey := runbookcliFile(t, dir, "bad-key.yaml", "id: b\nsteps:\n  - id: s\n    hosts: all\n    retry: 2\n")
	badDep := runbookcliFile(t, dir, "bad-dep.yaml", "id: b\nsteps:\n  - id: s\n    hosts: all\n    depends_on: [t]\n  - id: t\n    hosts: all\n")
	badBarrier := runbookcliFile(t, dir, "bad-barrier.yaml", "id: b\nsteps:\n  - id: s\n    hosts: all\n    retries: 1\n")
	addr := cliClosedAddr(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"runbook", "submit", badTimeout}, badTimeout + `:8: step "slow": timeout "soon" is not a duration like 90s or 5m`},
		{[]string{"runbook", "submit", badHosts}, badHosts + `:4: step "s": hosts: "one" is not a node ID`},
		{[]string{"runbook", "submit", badKey}, "line 5: field retry not found"},
		{[]string{"runbook", "submit", badDep}, badDep + `: run-book "b": step "s": depends on "t", which comes after it`},
		{[]string{"runbook", "submit", badBarrier}, `step "s": a barrier (no argv) takes no retries and no idempotent`},
		{[]string{"runbook", "submit", filepath.Join(dir, "none.yaml")}, "none.yaml: no such file or directory"},
		{[]string{"runbook", "submit"}, "clockd runbook submit: want the run-book's FILE"},
		{[]string{"runbook", "submit", "--wait-timeout", "0s", badDep}, "--wait-timeout 0s: want a positive duration"},
		{[]string{"runbook", "submit", "--wait-timeout", "5m", badDep}, "--wait-timeout without --wait"},
		{[]string{"runbook", "status"}, "want the run-book's ID"},
		{[]string{"runbook", "status", "a", "b"}, `unexpected argument "b" after the ID "a"`},
		{[]string{"runbook", "status", "a", "--bogus"}, "-bogus"},
		{[]string{"runbook", "status", strings.Repeat("a", 129)}, "the ID is 129 bytes, at most 128"},
		{[]string{"runbook", "wait", "bad id!"}, `the ID: id "bad id!": only letters, digits and - _ . : are allowed`},
		{[]string{"runbook", "wait", "--timeout", "0s", "a"}, "--timeout 0s: want a positive duration"},
		{[]string{"runbook", "cancel", "--reason", strings.Repeat("r", 1025), "a"}, "--reason is 1025 bytes, at most 1024"},
		{[]string{"runbook", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"runbook", "frob"}, `clockd runbook: unknown subcommand "frob"`},
	} {
		name := strings.ReplaceAll(strings.Join(tc.args, " "), dir+string(filepath.Separator), "")
		t.Run(name[:min(len(name), 60)], func(t *testing.T) {
			r := cliRun(t, bin, append(tc.args, "--insecure", "--addr", addr)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 naming %q", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
	// Standard input, named as such.
	cmd := exec.Command(bin, "runbook", "submit", "-", "--insecure", "--addr", addr)
	cmd.Env = cliEnv()
	cmd.Stdin = strings.NewReader("id: b\nsteps:\n  - id: s\n    timeout: 5\n    hosts: all\n")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(errOut.String(), `<stdin>:4: step "s": timeout "5"`) {
		t.Fatalf("submit -: %v, %q", err, errOut.String())
	}
	// A node out of reach fails wait at once, as it does every other
	// command, and does not leave it retrying until --timeout.
	r := cliRun(t, bin, "runbook", "wait", "--timeout", "30s", "--insecure", "--addr", addr, "a")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach "+addr) {
		t.Fatalf("wait on a closed port: exit %d, stderr %q; want exit 1 naming the address", r.code, r.stderr)
	}
}

// TestRunbookCLIMutualTLS: over mutual TLS a host certificate may read
// run-books but not submit one; the admin's may.
func TestRunbookCLIMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin, cl, _ := startSynchronized(t, 2*time.Minute, proccluster.Config{Dir: dir, Nodes: 1, TLS: true,
		Args: []string{"--tick-interval", "200ms"}})
	ca := filepath.Join(cl.TLSDir(), certs.CAFile)
	conn := []string{"--tls-ca", ca, "--addr", cl.Node(1).APIAddr}
	host := append([]string{"--tls-cert", filepath.Join(cl.TLSDir(), "host-hv1.pem")}, conn...)
	file := runbookcliFile(t, dir, "gate.yaml", "id: gate\nsteps:\n  - id: g\n    hosts: all\n")

	vmcliWant(t, cliRun(t, bin, append([]string{"runbook", "submit", file}, host...)...), 1,
		"permission denied: auth: role host may not call "+clockdv1.RunbookService_Submit_FullMethodName,
		"(submit and cancel take the admin certificate")
	if out := cliOK(t, bin, append([]string{"runbook", "list"}, host...)...); out != "no run-books\n" {
		t.Fatalf("list as host: %q", out)
	}
	cliOK(t, bin, append([]string{"runbook", "submit", "--wait", file}, conn...)...)
	vmcliWant(t, cliRun(t, bin, append([]string{"runbook", "cancel", "gate"}, host...)...), 1, "permission denied")
	if out := cliOK(t, bin, append([]string{"runbook", "wait", "gate"}, host...)...); !strings.Contains(out, "g     1     succeeded") {
		t.Fatalf("wait as host:\n%s", out)
	}
}

func TestRunbookCLIFormats(t *testing.T) {
	run := func(host uint64, state clockdv1.RunState, mod func(*clockdv1.Run)) *clockdv1.Run {
		r := &clockdv1.Run{Host: host, State: state}
		if mod != nil {
			mod(r)
		}
		return r
	}
	failed := func(r *clockdv1.Run) { r.Attempts, r.Failures, r.Exit = 3, 3, 7 }
	st := &clockdv1.RunbookStatus{State: clockdv1.RunbookState_RUNBOOK_STATE_FAILED,
		Book: &clockdv1.Book{Id: "b", Steps: []*clockdv1.BookStep{{Id: "a"}, {Id: "z"}}},
		Steps: []*clockdv1.StepRuns{
			{Runs: []*clockdv1.Run{run(1, clockdv1.RunState_RUN_STATE_SUCCEEDED, nil), run(2, clockdv1.RunState_RUN_STATE_FAILED, failed),
				run(3, clockdv1.RunState_RUN_STATE_UNKNOWN, func(r *clockdv1.Run) { r.Reason = "host 3 restarted\n\x1b[2J" })}},
			{Runs: []*clockdv1.Run{run(1, clockdv1.RunState_RUN_STATE_SKIPPED, nil), run(2, clockdv1.RunState_RUN_STATE_SKIPPED, nil),
				run(3, clockdv1.RunState_RUN_STATE_SKIPPED, nil), run(4, clockdv1.RunState_RUN_STATE_SKIPPED, nil),
				run(5, clockdv1.RunState_RUN_STATE_SKIPPED, nil)}},
		}}
	for _, tc := range []struct{ got, want string }{
		{runbookFailure(st), `run-book "b" failed: step "a" on host 2 failed (exit 7 after 3 attempts), ` +
			`step "a" on host 3 unknown (host 3 restarted\n\x1b[2J), step "z" on host 1 skipped, step "z" on host 2 skipped, ` +
			`step "z" on host 3 skipped and 2 more`},
		{runbookProgress(st), `run-book "b": 8 of 8 runs ended`},
		{runbookExit(run(1, clockdv1.RunState_RUN_STATE_PENDING, failed)), "7"},
		{runbookExit(run(1, clockdv1.RunState_RUN_STATE_PENDING, nil)), "-"},
		{runbookExit(run(1, clockdv1.RunState_RUN_STATE_UNKNOWN, func(r *clockdv1.Run) { r.Exit = -1 })), "-"},
		{runbookExit(run(1, clockdv1.RunState_RUN_STATE_FAILED, func(r *clockdv1.Run) { r.Exit = -1 })), "-1"},
		{runbookDetail(run(1, clockdv1.RunState_RUN_STATE_SUCCEEDED, func(r *clockdv1.Run) { r.OutputTail = "\n  first\nsecond\n" })), "first"},
		{runbookDetail(run(1, clockdv1.RunState_RUN_STATE_SKIPPED, func(r *clockdv1.Run) { r.Reason, r.OutputTail = "why", "out" })), "why"},
		{runbookPrintable("tab\there\x00é", 80), `tab\there\x00é`},
		{runbookPrintable(strings.Repeat("é", 90), 80), strings.Repeat("é", 80) + "…"},
		{runbookState(clockdv1.RunState_RUN_STATE_SKIPPED), "skipped"},
		{runbookBookState(clockdv1.RunbookState_RUNBOOK_STATE_CANCELLED), "cancelled"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
	st.Steps[0].Runs[0].State = clockdv1.RunState_RUN_STATE_RUNNING
	st.Steps[0].Runs[1].State = clockdv1.RunState_RUN_STATE_PENDING
	if got, want := runbookProgress(st), `run-book "b": 6 of 8 runs ended; running: step "a" on host 1`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var b bytes.Buffer
	if err := runbookStatusPrint(&b, st); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(b.String()) {
		if strings.HasSuffix(line, " \n") || strings.ContainsRune(line, 0x1b) {
			t.Errorf("status line %q", line)
		}
	}
}
