package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clockd/clockd/internal/proccluster"
)

const (
	hookScript = "libvirt/qemu"
	hookReadme = "libvirt/README.md"

	hookUUID = "6f1c2a3b-4d5e-4f60-8172-93a4b5c6d7e8"
	// hookConnFlags are the connection flags the hook gives clockd by
	// default: this host's node certificate, as deploy/systemd installs it.
	hookConnFlags = "--addr 127.0.0.1:7401 --timeout 5s --tls-ca /etc/clockd/tls/ca.pem " +
		"--tls-cert /etc/clockd/tls/node.pem --tls-key /etc/clockd/tls/node-key.pem"
	// hookGuard bounds the waits for the hook's background work, so that a
	// broken hook fails the test instead of hanging it. Nothing is timed.
	hookGuard = time.Minute
)

// hookXML is a domain XML as libvirt gives the hook, with the UUID in
// capitals and a second UUID in the SMBIOS data that is not the domain's.
const hookXML = `<domain type='kvm' id='7'>
  <name>web-1</name>
  <uuid>6F1C2A3B-4D5E-4F60-8172-93A4B5C6D7E8</uuid>
  <memory unit='KiB'>1048576</memory>
  <sysinfo type='smbios'>
    <system>
      <entry name='uuid'>00000000-0000-0000-0000-000000000001</entry>
    </system>
  </sysinfo>
  <os><type arch='x86_64' machine='pc-q35-8.2'>hvm</type></os>
</domain>
`

// The fakes on the hook's PATH record their arguments, one line per run.
// The fake clockd prints one line, exits with FAKE_CLOCKD_EXIT, and, when
// called with --wait 1h (the hook's background resume, by default) and
// FAKE_CLOCKD_HOLD names a FIFO, first blocks until the test writes to it.
const (
	hookFakeClockd = `#!/bin/sh
printf '%s\n' "$*" >>"$FAKE_CLOCKD_CALLS"
case " $* " in
*" --wait 1h "*) if [ -n "${FAKE_CLOCKD_HOLD:-}" ]; then read -r _ <"$FAKE_CLOCKD_HOLD"; fi ;;
esac
echo "fake clockd output"
exit "${FAKE_CLOCKD_EXIT:-0}"
`
	hookFakeLogger = `#!/bin/sh
printf '%s\n' "$*" >>"$FAKE_LOGGER_LOG"
`
)

// hookHost is one hypervisor host: its fake clockd and logger, and the
// hook's state directory.
type hookHost struct {
	t                  *testing.T
	dir, rundir        string
	calls, logs, hold  string
	env                []string
	script, scriptPath string
}

func newHookHost(t *testing.T, env ...string) *hookHost {
	t.Helper()
	dir := t.TempDir()
	h := &hookHost{t: t, dir: dir, rundir: filepath.Join(dir, "run"), calls: filepath.Join(dir, "clockd-calls"),
		logs: filepath.Join(dir, "syslog"), hold: filepath.Join(dir, "hold")}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"clockd": hookFakeClockd, "logger": hookFakeLogger} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(h.hold, 0o600); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(hookScript)
	if err != nil {
		t.Fatal(err)
	}
	h.scriptPath = abs
	h.env = append([]string{
		"PATH=" + bin + ":/usr/bin:/bin",
		"CLOCKD_HOOK_CONF=" + filepath.Join(dir, "no-such-conf"),
		"CLOCKD_HOOK_RUNDIR=" + h.rundir,
		"FAKE_CLOCKD_CALLS=" + h.calls,
		"FAKE_LOGGER_LOG=" + h.logs,
		"FAKE_CLOCKD_HOLD=" + h.hold,
	}, env...)
	return h
}

// hookRun is one run of the hook. done is closed once every process the
// run started has exited: each of them holds an inherited pipe open.
type hookRun struct {
	stdout, stderr string
	code           int
	done           chan struct{}
}

// run runs the hook as libvirt does: GUEST OP SUBOP EXTRA, the domain XML
// on standard input.
func (h *hookHost) run(args ...string) hookRun {
	h.t.Helper()
	cmd := exec.Command(h.scriptPath, args...)
	cmd.Env = h.env
	cmd.Stdin = strings.NewReader(hookXML)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	r, w, err := os.Pipe()
	if err != nil {
		h.t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{w}
	err = cmd.Run()
	w.Close()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		h.t.Fatalf("qemu %v: %v", args, err)
	}
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, r)
		r.Close()
		close(done)
	}()
	return hookRun{stdout: out.String(), stderr: errOut.String(), code: cmd.ProcessState.ExitCode(), done: done}
}

// ok runs the hook and expects exit status 0 and nothing on standard
// output, which libvirt would take as a new domain XML.
func (h *hookHost) ok(args ...string) hookRun {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 || r.stdout != "" {
		h.t.Fatalf("qemu %v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
	}
	return r
}

func (h *hookHost) wait(r hookRun) {
	h.t.Helper()
	select {
	case <-r.done:
	case <-time.After(hookGuard):
		h.t.Fatalf("the hook's background work has not ended after %v", hookGuard)
	}
}

// holding waits until the fake clockd of a resume --wait blocks on the
// hold FIFO, and returns the FIFO's write end: a line written to it lets
// that clockd finish.
func (h *hookHost) holding() *os.File {
	h.t.Helper()
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(h.hold, os.O_WRONLY, 0)
		if err != nil {
			h.t.Error(err)
		}
		opened <- f
	}()
	select {
	case f := <-opened:
		if f == nil {
			h.t.FailNow()
		}
		return f
	case <-time.After(hookGuard):
		h.t.Fatalf("the hook started no clockd vm resume --wait within %v", hookGuard)
		return nil
	}
}

func (h *hookHost) lines(file string) []string {
	h.t.Helper()
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func (h *hookHost) wantCalls(want ...string) {
	h.t.Helper()
	if got := h.lines(h.calls); !slices.Equal(got, want) {
		h.t.Fatalf("clockd calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (h *hookHost) wantLog(want ...string) {
	h.t.Helper()
	log := strings.Join(h.lines(h.logs), "\n")
	for _, w := range want {
		if !strings.Contains(log, w) {
			h.t.Fatalf("syslog lacks %q:\n%s", w, log)
		}
	}
}

// wantRundir fails unless the hook's state directory holds exactly names.
func (h *hookHost) wantRundir(names ...string) {
	h.t.Helper()
	entries, err := os.ReadDir(h.rundir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		h.t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		h.t.Fatalf("%s holds %q, want %q", h.rundir, got, names)
	}
}

// TestHookLiveMigration plays libvirt's hook calls of a live migration on
// both hosts, in libvirt's order: the destination's before the transfer,
// the source's after the switchover, then the destination's resume.
func TestHookLiveMigration(t *testing.T) {
	src, dst := newHookHost(t), newHookHost(t)
	dst.ok("web-1", "migrate", "begin", "-")
	dst.wantRundir(hookUUID + ".incoming")
	dst.ok("web-1", "prepare", "begin", "-")
	dst.ok("web-1", "start", "begin", "-")
	started := dst.ok("web-1", "started", "begin", "-")
	hold := dst.holding() // the resume waits for the source's freeze
	dst.wantRundir(hookUUID+".waiter", hookUUID+".waiter.out")

	src.ok("web-1", "stopped", "end", "-")
	src.ok("web-1", "release", "end", "migrated")
	src.wantCalls("vm freeze --vm " + hookUUID + " --if-owner " + hookConnFlags)
	src.wantLog("-p daemon.info -- VM " + hookUUID + " (web-1): freeze: fake clockd output")

	hold.WriteString("frozen\n")
	hold.Close()
	dst.wait(started)
	dst.wantCalls(
		"vm list "+hookConnFlags,
		"vm resume --vm "+hookUUID+" --wait 1h "+hookConnFlags,
	)
	dst.wantLog("incoming migration: resuming here once the source host has frozen it, waiting up to 1h",
		"-p daemon.info -- VM "+hookUUID+" (web-1): resumed after the migration: fake clockd output")
	dst.wantRundir()
}

// TestHookFailedMigration: the destination's QEMU stops before the
// switchover. Its background resume is cancelled, and its freeze, which
// only the owner's hook makes, is a no-op that clockd answers.
func TestHookFailedMigration(t *testing.T) {
	dst := newHookHost(t)
	dst.ok("web-1", "migrate", "begin", "-")
	dst.ok("web-1", "prepare", "begin", "-")
	dst.ok("web-1", "start", "begin", "-")
	started := dst.ok("web-1", "started", "begin", "-")
	hold := dst.holding()
	dst.ok("web-1", "stopped", "end", "-")
	dst.ok("web-1", "release", "end", "failed")
	dst.wait(started)
	hold.Close()
	dst.wantCalls(
		"vm list "+hookConnFlags,
		"vm resume --vm "+hookUUID+" --wait 1h "+hookConnFlags,
		"vm freeze --vm "+hookUUID+" --if-owner "+hookConnFlags,
	)
	dst.wantLog("the domain stopped before its incoming migration completed: not resuming it here",
		"-p daemon.info -- VM "+hookUUID+" (web-1): resume after the migration cancelled")
	dst.wantRundir()
}

// TestHookBootAndShutdown: a domain started and stopped on one host
// resumes its clock (registering it the first time) and freezes it.
func TestHookBootAndShutdown(t *testing.T) {
	h := newHookHost(t)
	for _, op := range [][]string{{"prepare", "begin", "-"}, {"start", "begin", "-"}, {"started", "begin", "-"},
		{"stopped", "end", "-"}, {"release", "end", "shutdown"}} {
		h.wait(h.ok(append([]string{"web-1"}, op...)...))
	}
	h.wantCalls(
		"vm resume --vm "+hookUUID+" --wait 5s "+hookConnFlags,
		"vm freeze --vm "+hookUUID+" --if-owner "+hookConnFlags,
	)
	h.wantLog("VM "+hookUUID+" (web-1): resume: fake clockd output", "VM "+hookUUID+" (web-1): freeze: fake clockd output")
	h.wantRundir()
}

// TestHookIgnored: the calls the hook does not act on exit 0, print
// nothing (restore's output would replace the XML) and call no clockd.
func TestHookIgnored(t *testing.T) {
	h := newHookHost(t)
	for _, op := range [][]string{{"prepare", "begin", "-"}, {"start", "begin", "-"}, {"release", "end", "migrated"},
		{"restore", "begin", "-"}, {"reconnect", "begin", "-"}, {"attach", "begin", "-"}, {"started", "end", "-"}} {
		h.wait(h.ok(append([]string{"web-1"}, op...)...))
	}
	h.wantCalls()
}

// TestHookFailures: a failed clockd call is logged and repeated on
// standard error, and fails the hook (so libvirt refuses the incoming
// migration, stops the domain it could not resume, or logs the failed
// freeze) unless CLOCKD_HOOK_STRICT=0.
func TestHookFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		op   []string
		code int
		call string
		msg  string
	}{
		{"migrate", nil, []string{"migrate", "begin", "-"}, 1, "vm list " + hookConnFlags,
			"incoming migration: this host's clockd answers failed, exit status 1: fake clockd output"},
		{"resume", nil, []string{"started", "begin", "-"}, 1, "vm resume --vm " + hookUUID + " --wait 5s " + hookConnFlags,
			"resume failed, exit status 1: fake clockd output"},
		{"freeze", nil, []string{"stopped", "end", "-"}, 1, "vm freeze --vm " + hookUUID + " --if-owner " + hookConnFlags,
			"freeze failed, exit status 1: fake clockd output"},
		{"not strict", []string{"CLOCKD_HOOK_STRICT=0"}, []string{"started", "begin", "-"}, 0,
			"vm resume --vm " + hookUUID + " --wait 5s " + hookConnFlags, "resume failed, exit status 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookHost(t, append(tc.env, "FAKE_CLOCKD_EXIT=1")...)
			r := h.run(append([]string{"web-1"}, tc.op...)...)
			h.wait(r)
			want := "VM " + hookUUID + " (web-1): " + tc.msg
			if r.code != tc.code || r.stdout != "" || !strings.Contains(r.stderr, "clockd-hook: "+want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d with %q", r.code, r.stdout, r.stderr, tc.code, want)
			}
			h.wantCalls(tc.call)
			h.wantLog("-p daemon.err -- " + want)
			h.wantRundir()
		})
	}
}

// TestHookSettings: the VM id from the domain's name, a plaintext
// cluster, and domains the hook cannot name.
func TestHookSettings(t *testing.T) {
	h := newHookHost(t, "CLOCKD_HOOK_VM_ID=name", "CLOCKD_HOOK_INSECURE=1", "CLOCKD_HOOK_ADDR=10.0.0.1:7411",
		"CLOCKD_HOOK_TIMEOUT=2s")
	h.wait(h.ok("web-1", "started", "begin", "-"))
	h.wantCalls("vm resume --vm web-1 --wait 5s --addr 10.0.0.1:7411 --timeout 2s --insecure")

	bad := newHookHost(t, "CLOCKD_HOOK_VM_ID=name")
	r := bad.run(".hidden", "started", "begin", "-")
	if r.code != 1 || !strings.Contains(r.stderr, `domain name ".hidden" is not a clockd VM id`) {
		t.Fatalf("a domain name that is no VM id: %+v", r)
	}
	bad.wantCalls()

	noUUID := newHookHost(t)
	cmd := exec.Command(noUUID.scriptPath, "web-1", "stopped", "end", "-")
	cmd.Env, cmd.Stdin = noUUID.env, strings.NewReader("<domain><name>web-1</name></domain>")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), `domain "web-1": no <uuid> in the domain XML`) {
		t.Fatalf("a domain XML without a UUID: %v\n%s", err, out)
	}
	noUUID.wantCalls()
}

// TestHookScript checks the script's syntax with sh -n, with shellcheck
// when it is installed, its mode, and that README.md documents every
// setting the script reads.
func TestHookScript(t *testing.T) {
	fi, err := os.Stat(hookScript)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o111 != 0o111 {
		t.Errorf("%s has mode %v: libvirt runs only executable hooks", hookScript, fi.Mode())
	}
	if out, err := exec.Command("sh", "-n", hookScript).CombinedOutput(); err != nil {
		t.Errorf("sh -n %s: %v\n%s", hookScript, err, out)
	}
	if sc, err := exec.LookPath("shellcheck"); err != nil {
		t.Logf("shellcheck is not installed (apt-get install shellcheck): not run on %s", hookScript)
	} else if out, err := exec.Command(sc, "-s", "sh", hookScript).CombinedOutput(); err != nil {
		t.Errorf("shellcheck %s: %v\n%s", hookScript, err, out)
	}
	script, err := os.ReadFile(hookScript)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(hookReadme)
	if err != nil {
		t.Fatal(err)
	}
	settings := regexp.MustCompile(`CLOCKD_HOOK_[A-Z_]+`).FindAllString(string(script), -1)
	for _, s := range slices.Compact(slices.Sorted(slices.Values(settings))) {
		if s != "CLOCKD_HOOK_CONF" && !bytes.Contains(readme, []byte(s)) {
			t.Errorf("%s does not document %s", hookReadme, s)
		}
	}
}

// hookVMStatus is the part of `clockd vm status --json` the test reads.
type hookVMStatus struct {
	Served bool `json:"served"`
	Record struct {
		Owner      uint64 `json:"owner"`
		Generation uint64 `json:"generation"`
		State      string `json:"state"`
	} `json:"record"`
}

// TestHookWithClockd runs the hook with the real clockd against a real
// three-node cluster, hosts 1 and 2 each calling their own node: a boot
// on host 1, a live migration to host 2, and a cold move back.
func TestHookWithClockd(t *testing.T) {
	dir := t.TempDir()
	bin, err := proccluster.Build("..", dir)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := proccluster.Start(proccluster.Config{Binary: bin, Dir: dir, Nodes: 3, Args: []string{"--tick-interval", "200ms"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.WaitSynchronized(ctx); err != nil {
		t.Fatal(err)
	}
	host := func(id uint64) *hookHost {
		return newHookHost(t, "CLOCKD_HOOK_CLOCKD="+bin, "CLOCKD_HOOK_INSECURE=1", "CLOCKD_HOOK_ADDR="+cl.Node(id).APIAddr)
	}
	status := func(id uint64) (hookVMStatus, bool) {
		out, err := exec.Command(bin, "vm", "status", "--vm", hookUUID, "--json", "--insecure", "--addr", cl.Node(id).APIAddr).Output()
		var st hookVMStatus
		return st, err == nil && json.Unmarshal(out, &st) == nil
	}
	// want waits until node id has applied the record owner/generation/state.
	want := func(id, owner, gen uint64, state string) {
		t.Helper()
		for {
			st, ok := status(id)
			if ok && st.Record.Owner == owner && st.Record.Generation == gen && st.Record.State == state {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("node %d: %+v, want owner %d, generation %d, %s", id, st, owner, gen, state)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	h1, h2 := host(1), host(2)

	h1.wait(h1.ok("web-1", "started", "begin", "-"))
	want(2, 1, 1, "RUNNING") // registered by host 1, seen by host 2

	h2.ok("web-1", "migrate", "begin", "-")
	started := h2.ok("web-1", "started", "begin", "-")
	h1.ok("web-1", "stopped", "end", "-")
	h1.wantLog("(web-1): freeze: VM : " + hookUUID + " Owner : host 1 Generation : 1 State : FROZEN")
	h2.wait(started)
	h2.wantLog("(web-1): resumed after the migration: ", "VM : "+hookUUID+" Owner : host 2 Generation : 2 State : RUNNING")
	if st, ok := status(2); !ok || !st.Served {
		t.Fatalf("host 2 does not serve the VM it resumed: %+v", st)
	}

	// A cold move back: the freeze on host 2 may reach host 1's node just
	// after host 1's resume asks.
	h2.ok("web-1", "stopped", "end", "-")
	h1.ok("web-1", "started", "begin", "-")
	want(1, 1, 3, "RUNNING")
	h2.ok("web-1", "stopped", "end", "-")
	h2.wantLog(`VM "` + hookUUID + `" belongs to host 1, not to the node at ` + cl.Node(2).APIAddr + ": nothing to freeze here")
	h1.wantRundir()
	h2.wantRundir()
}
