package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/internal/proccluster"
	"github.com/clockd/clockd/offsetlog"
)

// vmcliCluster is the cluster TestVMCLI runs the commands against.
type vmcliCluster struct {
	t   *testing.T
	ctx context.Context
	bin string
	cl  *proccluster.Cluster
}

// at is the arguments of a command run against node id.
func (v *vmcliCluster) at(id uint64, args ...string) []string { return cliAt(v.cl, id, args...) }

func (v *vmcliCluster) record(t *testing.T, id uint64, args ...string) vmRecordJSON {
	t.Helper()
	var rec vmRecordJSON
	cliJSON(t, &rec, v.bin, v.at(id, append(args, "--json")...)...)
	return rec
}

func (v *vmcliCluster) status(t *testing.T, id uint64, vm string) vmStatusJSON {
	t.Helper()
	var st vmStatusJSON
	cliJSON(t, &st, v.bin, v.at(id, "vm", "status", "--vm", vm, "--json")...)
	return st
}

// waitApplied waits until node id has applied the record a change made
// through another node: owner at generation in state.
func (v *vmcliCluster) waitApplied(t *testing.T, id uint64, vm string, owner, gen uint64, state string) {
	t.Helper()
	cliPoll(t, v.ctx, "node "+strconv.FormatUint(id, 10)+" to apply VM "+vm+"'s record", func() bool {
		r := cliRun(t, v.bin, v.at(id, "vm", "status", "--vm", vm, "--json")...)
		var st vmStatusJSON
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil &&
			st.Record.Owner == owner && st.Record.Generation == gen && st.Record.State == state
	})
}

// vmcliWant fails the test unless the run exited with code and its
// stderr holds every one of want.
func vmcliWant(t *testing.T, r cliResult, code int, want ...string) {
	t.Helper()
	ok := r.code == code
	for _, w := range want {
		ok = ok && strings.Contains(r.stderr, w)
	}
	if !ok {
		t.Fatalf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", r.code, code, want, r.stdout, r.stderr)
	}
}

// TestVMCLI runs clockd vm and clockd offsets as processes against one
// real three-node cluster: a VM registered on node 1, read there and from
// node 2, frozen on node 1 with the token looked up, resumed on node 2 at
// the next generation, a stale owner fenced off, listed, released; a
// resume that waits for the freeze; bad usage; and the offset export.
func TestVMCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin, cl, ctx := startSynchronized(t, 2*time.Minute, proccluster.Config{Dir: dir, Nodes: 3,
		Args: []string{"--tick-interval", "200ms"}})
	v := &vmcliCluster{t: t, ctx: ctx, bin: bin, cl: cl}
	t.Run("lifecycle", func(t *testing.T) { vmcliLifecycle(t, v) })
	t.Run("resume-wait", func(t *testing.T) { vmcliResumeWait(t, v) })
	t.Run("bad-usage", func(t *testing.T) { vmcliBadUsage(t, bin, cl.Node(1).APIAddr) })
	t.Run("offsets-export", func(t *testing.T) { vmcliOffsets(t, v, dir) })
}

func vmcliLifecycle(t *testing.T, v *vmcliCluster) {
	bin, addr1 := v.bin, v.cl.Node(1).APIAddr
	reg := v.record(t, 1, "vm", "resume", "--vm", "web-1")
	if reg.VM != "web-1" || reg.Owner != 1 || reg.Generation != 1 || reg.State != "RUNNING" || reg.MaxSlewPPM <= 0 ||
		reg.Floor != clientTime(reg.FloorUnixNano) {
		t.Fatalf("register: %+v", reg)
	}
	r := cliRun(t, bin, v.at(1, "vm", "resume", "--vm", "web-1")...)
	vmcliWant(t, r, 0, `VM "web-1" already runs on the node at `+addr1+" (generation 1)")
	if !strings.Contains(r.stdout, "State      : RUNNING\n") {
		t.Fatalf("resume of a VM running here printed:\n%s", r.stdout)
	}

	served := v.status(t, 1, "web-1")
	if !served.Served || served.Reading == nil || served.LagNs == nil || served.Record.Owner != 1 {
		t.Fatalf("status on the owner: %+v", served)
	}
	if out := cliOK(t, bin, v.at(1, "vm", "status", "--vm", "web-1")...); !strings.Contains(out, "host 1 (the node at "+addr1+")") ||
		!strings.Contains(out, "Converged") || !strings.Contains(out, "Uncertainty : ±") {
		t.Fatalf("status on the owner:\n%s", out)
	}
	v.waitApplied(t, 2, "web-1", 1, 1, "RUNNING")
	peer1 := v.cl.Node(1).PeerAddr
	r = cliRun(t, bin, v.at(2, "vm", "status", "--vm", "web-1")...)
	if r.code != 0 || !strings.Contains(r.stdout, "does not own VM web-1: host 1 does (peer address "+peer1+")") {
		t.Fatalf("status on another node: %+v", r)
	}
	if st := v.status(t, 2, "web-1"); st.Served || st.Owner != 1 || st.OwnerPeerAddr != peer1 || st.Reading != nil {
		t.Fatalf("status --json on another node: %+v", st)
	}

	frozen := v.record(t, 1, "vm", "freeze", "--vm", "web-1")
	if frozen.State != "FROZEN" || frozen.Owner != 1 || frozen.Generation != 1 || frozen.FloorUnixNano < served.Reading.TimeUnixNano {
		t.Fatalf("freeze after a reading at %d: %+v", served.Reading.TimeUnixNano, frozen)
	}
	r = cliRun(t, bin, v.at(1, "vm", "freeze", "--vm", "web-1", "--json")...)
	vmcliWant(t, r, 0, `VM "web-1" is already frozen at generation 1`)
	if !strings.Contains(r.stdout, `"floor_unix_nano": "`+strconv.FormatInt(frozen.FloorUnixNano, 10)+`"`) {
		t.Fatalf("freeze retried printed another floor:\n%s", r.stdout)
	}

	v.waitApplied(t, 2, "web-1", 1, 1, "FROZEN")
	moved := v.record(t, 2, "vm", "resume", "--vm", "web-1")
	if moved.Owner != 2 || moved.Generation != 2 || moved.State != "RUNNING" || moved.FloorUnixNano != frozen.FloorUnixNano {
		t.Fatalf("resume on node 2: %+v after %+v", moved, frozen)
	}
	if st := v.status(t, 2, "web-1"); !st.Served || st.Reading.TimeUnixNano < frozen.FloorUnixNano {
		t.Fatalf("the VM clock on node 2 reads below the floor %d: %+v", frozen.FloorUnixNano, st.Reading)
	}

	// Node 1 is no longer the owner: its stale token is refused, by the
	// node when a time is given, by the CLI's check of the record when not.
	// The default request id would name the freeze of generation 1, which
	// succeeded: the node answers its retry with that success.
	fenced := `failed precondition: VM "web-1" is owned by host 2 at generation 2; host 1 at generation 1 may not freeze it`
	later := strconv.FormatInt(frozen.FloorUnixNano+1, 10)
	stale := []string{"vm", "freeze", "--vm", "web-1", "--owner", "1", "--generation", "1", "--vm-time", later}
	vmcliWant(t, cliRun(t, bin, v.at(1, append(stale, "--request-id", "stale-1")...)...), 1, fenced)
	if again := v.record(t, 1, stale...); again != frozen {
		t.Fatalf("the retried freeze of generation 1 answered %+v, want %+v", again, frozen)
	}
	v.waitApplied(t, 1, "web-1", 2, 2, "RUNNING")
	vmcliWant(t, cliRun(t, bin, v.at(1, "vm", "freeze", "--vm", "web-1", "--owner", "1", "--generation", "1")...), 1, fenced)
	vmcliWant(t, cliRun(t, bin, v.at(1, "vm", "resume", "--vm", "web-1")...), 1,
		`failed precondition: VM "web-1" runs on host 2 at generation 2: freeze it there first, or pass --wait`)

	db := v.record(t, 3, "vm", "resume", "--vm", "db-1", "--max-slew-ppm", "1000", "--max-lag", "0s")
	var list vmListJSON
	cliJSON(t, &list, bin, v.at(3, "vm", "list", "--json")...)
	if len(list.VMs) != 2 || list.VMs[0] != db || list.VMs[1].VM != "web-1" || list.VMs[1].Owner != 2 ||
		list.VMs[1].Generation != 2 || db.MaxSlewPPM != 1000 || db.MaxLagNs != 0 {
		t.Fatalf("vm list --json: %+v", list)
	}
	if out := cliOK(t, bin, v.at(3, "vm", "list")...); !strings.HasPrefix(out, "VM     OWNER  GEN  STATE    FLOOR") ||
		!strings.Contains(out, "max slew 1000 ppm, never steps\n") {
		t.Fatalf("vm list:\n%s", out)
	}

	if out := cliOK(t, bin, v.at(2, "vm", "release", "--vm", "web-1")...); out != "released VM web-1\n" {
		t.Fatalf("release printed %q", out)
	}
	vmcliWant(t, cliRun(t, bin, v.at(2, "vm", "status", "--vm", "web-1")...), 1, `clockd vm status: unknown VM "web-1"`)
	vmcliWant(t, cliRun(t, bin, v.at(2, "vm", "release", "--vm", "web-1")...), 1, `unknown VM "web-1"`)
	r = cliRun(t, bin, v.at(2, "vm", "freeze", "--vm", "web-1", "--if-owner")...)
	vmcliWant(t, r, 0, `VM "web-1" has no record: nothing to freeze`)
	r = cliRun(t, bin, v.at(1, "vm", "freeze", "--vm", "db-1", "--if-owner")...)
	vmcliWant(t, r, 0, `VM "db-1" belongs to host 3, not to the node at `+addr1+": nothing to freeze here")
}

// vmcliResumeWait starts a resume on node 2 while node 1 runs the VM,
// and freezes it on node 1 once the resume says it waits.
func vmcliResumeWait(t *testing.T, v *vmcliCluster) {
	v.record(t, 1, "vm", "resume", "--vm", "mig-1")
	v.waitApplied(t, 2, "mig-1", 1, 1, "RUNNING")
	cmd := exec.Command(v.bin, v.at(2, "vm", "resume", "--vm", "mig-1", "--wait", "1m", "--json")...)
	cmd.Env = cliEnv()
	var out bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd.Stdout, cmd.Stderr = &out, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.Contains(line, `VM "mig-1" runs on host 1 at generation 1: waiting up to 1m0s for its freeze`) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("resume --wait wrote %q: %v", line, err)
	}
	frozen := v.record(t, 1, "vm", "freeze", "--vm", "mig-1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("resume --wait: %v\n%s", err, out.String())
	}
	var rec vmRecordJSON
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil || rec.Owner != 2 || rec.Generation != 2 ||
		rec.FloorUnixNano != frozen.FloorUnixNano {
		t.Fatalf("resume --wait printed %s: %v", out.String(), err)
	}
}

// vmcliBadUsage checks that each misuse exits 2 naming the flag at fault,
// before any call: addr is a live node.
func vmcliBadUsage(t *testing.T, bin, addr string) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"vm", "freeze"}, "clockd vm freeze: --vm is required"},
		{[]string{"vm", "freeze", "--vm", "x", "--vm-time", "yesterday"}, `--vm-time "yesterday": want RFC 3339`},
		{[]string{"vm", "freeze", "--vm", "x", "--vm-time", "-5"}, `--vm-time "-5": want a time after 1970`},
		{[]string{"vm", "freeze", "--vm", "x", "--generation", "0"}, "--generation 0: want 1 or more"},
		{[]string{"vm", "freeze", "--vm", "x", "--if-owner", "--owner", "1"}, "--if-owner and --owner do not mix"},
		{[]string{"vm", "freeze", "--vm", "x", "--owner", "one"}, "-owner"},
		{[]string{"vm", "resume", "--vm", "x", "--max-slew-ppm", "0"}, "--max-slew-ppm 0: want 1 to 999999"},
		{[]string{"vm", "resume", "--vm", "x", "--max-lag", "-1s"}, "--max-lag -1s: want 0 or more"},
		{[]string{"vm", "resume", "--vm", "x", "--wait", "-1s"}, "--wait -1s: want 0 or more"},
		{[]string{"vm", "resume", "--vm", "x", "--request-id", ""}, "--request-id is empty"},
		{[]string{"vm", "status", "--vm", strings.Repeat("a", 129)}, "--vm is 129 bytes, at most 128"},
		{[]string{"vm", "status", "--vm", "x", "--bogus"}, "-bogus"},
		{[]string{"vm", "release"}, "--vm is required"},
		{[]string{"vm", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"vm", "frob"}, `clockd vm: unknown subcommand "frob"`},
		{[]string{"offsets", "export", "extra"}, `unexpected argument "extra"`},
		{[]string{"offsets", "export", "-o", ""}, "-o/--output is empty"},
		{[]string{"offsets", "frob"}, `unknown subcommand "frob"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			words := slices.IndexFunc(tc.args, func(a string) bool { return strings.HasPrefix(a, "-") })
			if words < 0 {
				words = len(tc.args)
			}
			args := slices.Concat(tc.args[:words], []string{"--insecure", "--addr", addr}, tc.args[words:])
			r := cliRun(t, bin, args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Fatalf("clockd %v: exit %d, stdout %q, stderr %q; want exit 2 naming %q", args, r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
}

// vmcliOffsets exports node 1's offset history to a file and to standard
// output. Each line must be exactly the daemon's format: decoding it
// into offsetlog.Sample and encoding it again gives the same bytes.
func vmcliOffsets(t *testing.T, v *vmcliCluster, dir string) {
	file := filepath.Join(dir, "offsets.jsonl")
	var samples []offsetlog.Sample
	var r cliResult
	// Every node names itself hvN; the first ticks may miss a node.
	cliPoll(t, v.ctx, "samples of hv1, hv2 and hv3", func() bool {
		r = cliRun(t, v.bin, v.at(1, "offsets", "export", "-o", file)...)
		if r.code != 0 {
			t.Fatalf("offsets export: %+v", r)
		}
		samples = vmcliParseOffsets(t, file)
		hosts := map[string]int{}
		for _, s := range samples {
			hosts[s.Host]++
		}
		return len(hosts) == 3 && hosts["hv1"] > 0 && hosts["hv2"] > 0 && hosts["hv3"] > 0
	})
	if want := "clockd offsets export: " + strconv.Itoa(len(samples)) + " samples of 3 hosts written to " + file + "\n"; r.stderr != want || r.stdout != "" {
		t.Fatalf("offsets export -o printed %q, %q; want %q on stderr", r.stdout, r.stderr, want)
	}
	for _, s := range samples {
		if s.RefUnixNano <= 0 || s.ErrNanos < 0 {
			t.Fatalf("sample %+v", s)
		}
	}

	// Node 2 holds the same history once it has applied as far as node 1
	// had: a follower may be a tick behind.
	var lines []string
	cliPoll(t, v.ctx, "node 2's history to reach node 1's", func() bool {
		r = cliRun(t, v.bin, v.at(2, "offsets", "export")...)
		lines = strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		vmcliWant(t, r, 0, "clockd offsets export: "+strconv.Itoa(len(lines))+" samples of 3 hosts written to standard output")
		return len(lines) >= len(samples)
	})
	for i, s := range samples {
		if got, _ := json.Marshal(s); string(got) != lines[i] {
			t.Fatalf("sample %d: node 1 exported %s, node 2 %s", i, got, lines[i])
		}
	}
	none := filepath.Join(dir, "none")
	vmcliWant(t, cliRun(t, v.bin, v.at(1, "offsets", "export", "-o", filepath.Join(none, "offsets.jsonl"))...), 1,
		"-o "+filepath.Join(none, "offsets.jsonl")+": directory "+none+" does not exist")
	vmcliWant(t, cliRun(t, v.bin, v.at(1, "offsets", "export", "-o", dir)...), 1, "-o "+dir+": is a directory: want a file")
}

func vmcliParseOffsets(t *testing.T, file string) []offsetlog.Sample {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []offsetlog.Sample
	for line := range strings.Lines(string(data)) {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var s offsetlog.Sample
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("%s: line %q: %v", file, line, err)
		}
		again, _ := json.Marshal(s)
		if string(again)+"\n" != line {
			t.Fatalf("%s: line %q is not in the daemon's format %s", file, line, again)
		}
		out = append(out, s)
	}
	return out
}

func TestOffsetsWrite(t *testing.T) {
	var b bytes.Buffer
	for _, s := range []*clockdv1.OffsetSample{
		{Host: "hv1", RefUnixNano: 1_795_549_004_775_674_487, OffsetNanos: -1_234_567, ErrNanos: 50_000_000},
		{Host: `odd"name`, RefUnixNano: 1},
	} {
		if err := offsetsWrite(&b, s); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"host":"hv1","ref_unix_nano":1795549004775674487,"offset_nanos":-1234567,"err_nanos":50000000}` + "\n" +
		`{"host":"odd\"name","ref_unix_nano":1,"offset_nanos":0,"err_nanos":0}` + "\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func vmcliSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestVMCLIFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{vmLag(1_500_000), "+1.5ms (VM clock behind the reference)"},
		{vmLag(-2_000), "-2µs (VM clock ahead of the reference)"},
		{vmLag(0), "0s"},
		{vmPolicy(&clockdv1.VMRecord{MaxSlewPpm: 500, MaxLagNanos: 1e9}), "max slew 500 ppm, max lag 1s"},
		{vmPolicy(&clockdv1.VMRecord{MaxSlewPpm: 50_000}), "max slew 50000 ppm, never steps"},
		{vmRequestID("freeze", "web-1", 3), "freeze/web-1/3"},
		{vmRequestID("release", "web-1", 0), "release/web-1"},
		{vmRequestID("resume", strings.Repeat("v", 128), 12),
			"resume/sha256:" + vmcliSHA256(strings.Repeat("v", 128)) + "/12"},
		{vmHostWords(0, "127.0.0.1:7401"), "the node at 127.0.0.1:7401"},
		{vmHostWords(4, "127.0.0.1:7401"), "host 4"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if id := vmRequestID("resume", strings.Repeat("v", 128), 1<<63); len(id) > vmMaxRequestIDLen {
		t.Errorf("request id of %d bytes: %s", len(id), id)
	}
	for in, want := range map[string]int64{
		"1795549004775674487":                 1_795_549_004_775_674_487,
		"2026-11-24T19:36:44.775674487Z":      1_795_549_004_775_674_487,
		"2026-11-24T20:36:44.775674487+01:00": 1_795_549_004_775_674_487,
		"2026-11-24T19:36:44Z":                1_795_549_004_000_000_000,
		"0":                                   0, "-1": 0, "1969-12-31T23:59:59Z": 0, "2026-11-24": 0, "": 0,
	} {
		got, err := vmParseTime(in)
		if (err == nil) != (want != 0) || got != want {
			t.Errorf("vmParseTime(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestVMCLIErrors checks the words and exit status vmError gives the
// migration API's refusals.
func TestVMCLIErrors(t *testing.T) {
	cc := &clientConn{addr: "127.0.0.1:7401", timeout: time.Second}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{grpcstatus.Error(codes.NotFound, `unknown VM "x"`),
			`clockd vm status: unknown VM "x" (clockd vm list shows the VMs the cluster knows)`},
		{grpcstatus.Error(codes.FailedPrecondition, `VM "x" is owned by host 2 at generation 2; host 1 at generation 1 may not freeze it`),
			`clockd vm status: failed precondition: VM "x" is owned by host 2 at generation 2; host 1 at generation 1 may not freeze it`},
		{grpcstatus.Error(codes.PermissionDenied, `VM "x" belongs to host 2; this certificate speaks for hosts [1]`),
			`clockd vm status: permission denied: VM "x" belongs to host 2; this certificate speaks for hosts [1] (freeze, resume and release take the owning host's node certificate, --tls-cert /etc/clockd/tls/node.pem, or the admin certificate)`},
		{grpcstatus.Error(codes.InvalidArgument, `VM "x": vm_time_unix_nano is required when host 1, not the owner 2, serves the freeze`),
			`(pass --vm-time; clockd vm status shows the owner)`},
		{grpcstatus.Error(codes.DeadlineExceeded, "context deadline exceeded"),
			"clockd vm status: no answer from 127.0.0.1:7401 within --timeout 1s"},
	} {
		app := &cli.App{Name: "clockd", ExitErrHandler: func(*cli.Context, error) {}, Commands: []*cli.Command{{
			Name: "vm", Subcommands: []*cli.Command{{
				Name:   "status",
				Action: func(c *cli.Context) error { return vmError(c, cc, tc.err) },
			}},
		}}}
		err := app.Run([]string{"clockd", "vm", "status"})
		var exit cli.ExitCoder
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want exit 1 with %q", tc.err, err, tc.want)
		}
	}
}
