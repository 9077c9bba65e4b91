package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
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
	"github.com/clockd/clockd/vclock"
	"github.com/clockd/clockd/vclock/tso"
)

var cliUpdateGolden = flag.Bool("update-cli-golden", false, "rewrite cmd/clockd/testdata/*.golden from the output")

// cliResult is what one run of the CLI printed, and its exit status.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cliRun runs the binary with args, without the caller's CLOCKD_*
// variables, and waits for it.
func cliRun(t *testing.T, bin string, args ...string) cliResult {
	t.Helper()
	return cliRunEnv(t, bin, nil, args...)
}

// cliRunEnv is cliRun with the variables env added.
func cliRunEnv(t *testing.T, bin string, env []string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cliEnv(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("clockd %v: %v", args, err)
	}
	return cliResult{stdout: out.String(), stderr: errOut.String(), code: cmd.ProcessState.ExitCode()}
}

func cliEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CLOCKD_") })
}

// cliOK runs the binary and fails the test unless it exits 0.
func cliOK(t *testing.T, bin string, args ...string) string {
	t.Helper()
	r := cliRun(t, bin, args...)
	if r.code != 0 {
		t.Fatalf("clockd %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// cliJSON runs the binary and decodes its output into v.
func cliJSON(t *testing.T, v any, bin string, args ...string) {
	t.Helper()
	out := cliOK(t, bin, args...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("clockd %v printed %q: %v", args, out, err)
	}
}

// cliAt is the connection flags for node id of a plaintext cluster.
func cliAt(cl *proccluster.Cluster, id uint64, args ...string) []string {
	return append(args, "--insecure", "--addr", cl.Node(id).APIAddr)
}

// cliClosedAddr is a loopback address where nothing listens.
func cliClosedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// cliPoll runs check until it reports done or ctx ends. It is for state
// that other processes reach on their own (a configuration applied, a
// leader elected).
func cliPoll(t *testing.T, ctx context.Context, what string, check func() bool) {
	t.Helper()
	for !check() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestCLI runs the client commands as processes against one real
// three-node cluster: their outputs parse, the changes they make happen,
// bad usage exits 2 naming the flag, and a node that is down exits 1.
func TestCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin, cl, ctx := startSynchronized(t, 2*time.Minute, proccluster.Config{Dir: dir, Nodes: 3,
		Args: []string{"--tick-interval", "200ms"}})

	t.Run("wrong port", func(t *testing.T) {
		// The peer port speaks gRPC, but not the API.
		r := cliRun(t, bin, "status", "--insecure", "--addr", cl.Node(2).PeerAddr)
		if r.code != 1 || !strings.Contains(r.stderr, "is --addr the node's API port, api_listen?") {
			t.Fatalf("status at the peer port: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("status", func(t *testing.T) {
		var st statusJSON
		cliJSON(t, &st, bin, cliAt(cl, 2, "status", "--json")...)
		ids := []uint64{}
		for _, m := range st.Members {
			ids = append(ids, m.ID)
		}
		if st.NodeID != 2 || st.LeaderID < 1 || st.LeaderID > 3 || !slices.Equal(ids, []uint64{1, 2, 3}) ||
			st.Reference.Status != "SYNCHRONIZED" || st.LastTickAgeNs == nil || st.AppliedSlot == 0 {
			t.Fatalf("status --json: %+v", st)
		}
		out := cliOK(t, bin, cliAt(cl, 2, "status")...)
		for _, want := range []string{"Node ID        : 2\n", "Leader         : " + strconv.FormatUint(st.LeaderID, 10),
			"Status         : SYNCHRONIZED\n", "Members        : 1", "Falsetickers   : none\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("now", func(t *testing.T) {
		out := cliOK(t, bin, cliAt(cl, 1, "now")...)
		if !strings.Contains(out, "Status      : SYNCHRONIZED\n") || !strings.Contains(out, "Uncertainty : ±") {
			t.Fatalf("now:\n%s", out)
		}
		var r clientReadingJSON
		cliJSON(t, &r, bin, cliAt(cl, 3, "now", "--json")...)
		if !r.Bounded || r.EarliestUnixNano == nil || *r.EarliestUnixNano > r.TimeUnixNano || r.Time != clientTime(r.TimeUnixNano) {
			t.Fatalf("now --json: %+v", r)
		}
		env := []string{"CLOCKD_ADDR=" + cl.Node(2).APIAddr, "CLOCKD_INSECURE=true", "CLOCKD_JSON=true", "CLOCKD_NOW_COUNT=2"}
		if res := cliRunEnv(t, bin, env, "now"); res.code != 0 || strings.Count(res.stdout, `"status":"SYNCHRONIZED"`) != 2 {
			t.Fatalf("now with CLOCKD_* variables: %+v", res)
		}
	})

	t.Run("now-count", func(t *testing.T) {
		out := cliOK(t, bin, cliAt(cl, 1, "now", "--count", "20", "--interval", "10ms")...)
		if n := strings.Count(out, "SYNCHRONIZED\n"); n != 20 {
			t.Fatalf("now --count 20 printed %d readings:\n%s", n, out)
		}
	})

	t.Run("now-watch", func(t *testing.T) { cliWatch(t, bin, cliAt(cl, 2, "now", "--watch", "--json")...) })

	t.Run("timestamp", func(t *testing.T) {
		var out timestampsJSON
		cliJSON(t, &out, bin, cliAt(cl, 3, "timestamp", "-n", "5", "--json")...)
		if len(out.Timestamps) != 5 {
			t.Fatalf("timestamp -n 5 --json: %+v", out)
		}
		var prev uint64
		for i, ts := range out.Timestamps {
			v, err := strconv.ParseUint(ts.Timestamp, 10, 64)
			if err != nil || (i > 0 && v <= prev) || ts.PhysicalUnixMs != tso.Physical(v) || ts.Logical != tso.Logical(v) {
				t.Fatalf("timestamp %d of %+v: %v", i, out, err)
			}
			prev = v
		}
		text := cliOK(t, bin, cliAt(cl, 1, "timestamp")...)
		if v, _, _ := strings.Cut(text, " "); !strings.Contains(text, " physical=") || cliParse(v) <= prev {
			t.Fatalf("timestamp after %d: %q", prev, text)
		}
	})

	t.Run("members", func(t *testing.T) {
		var list membersListJSON
		cliJSON(t, &list, bin, cliAt(cl, 1, "members", "list", "--json")...)
		if len(list.Members) != 3 || len(list.Pending) != 0 {
			t.Fatalf("members list --json: %+v", list)
		}
		peer := cliClosedAddr(t)
		cliOK(t, bin, cliAt(cl, 2, "members", "add", "--id", "4", "--peer-addr", peer, "--learner")...)
		cliWaitMembers(t, ctx, bin, cl, "1", "2", "3", "4 learner")
		if out := cliOK(t, bin, cliAt(cl, 1, "members", "list")...); !strings.Contains(out, "4   "+peer+"  learner\n") {
			t.Fatalf("members list:\n%s", out)
		}
		r := cliRun(t, bin, cliAt(cl, 1, "members", "transfer", "--id", "4")...)
		if r.code != 1 || !strings.Contains(r.stderr, "failed precondition") {
			t.Fatalf("transfer to a learner: %+v", r)
		}
		cliOK(t, bin, cliAt(cl, 3, "members", "remove", "--id", "4")...)
		cliWaitMembers(t, ctx, bin, cl, "1", "2", "3")
	})

	t.Run("transfer", func(t *testing.T) {
		var st statusJSON
		cliJSON(t, &st, bin, cliAt(cl, 1, "status", "--json")...)
		target := st.LeaderID%3 + 1
		out := cliOK(t, bin, cliAt(cl, st.LeaderID, "members", "transfer", "--id", strconv.FormatUint(target, 10))...)
		if want := "node " + strconv.FormatUint(target, 10) + " leads now\n"; out != want {
			t.Fatalf("transfer printed %q, want %q", out, want)
		}
		for _, id := range []uint64{1, 2, 3} {
			cliPoll(t, ctx, "node "+strconv.FormatUint(id, 10)+" to name the new leader", func() bool {
				var st statusJSON
				cliJSON(t, &st, bin, cliAt(cl, id, "status", "--json")...)
				return st.LeaderID == target
			})
		}
	})

	t.Run("bad-usage", func(t *testing.T) { cliBadUsage(t, bin, cl.Node(1).APIAddr) })

	// Last: it stops a node.
	t.Run("node-down", func(t *testing.T) {
		cl.Kill(3)
		for _, args := range [][]string{{"status"}, {"now"}, {"timestamp"}, {"members", "list"}} {
			r := cliRun(t, bin, cliAt(cl, 3, args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, "cannot reach "+cl.Node(3).APIAddr) ||
				!strings.Contains(r.stderr, "connection refused") {
				t.Errorf("%v at a node that is down: %+v", args, r)
			}
		}
	})
}

func cliParse(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

// cliWaitMembers waits until every node lists the members want, as
// "ID" for a voter and "ID learner" for a learner, and no change in flight.
func cliWaitMembers(t *testing.T, ctx context.Context, bin string, cl *proccluster.Cluster, want ...string) {
	t.Helper()
	for _, n := range cl.Nodes {
		cliPoll(t, ctx, "the configuration on node "+strconv.FormatUint(n.ID, 10), func() bool {
			var list membersListJSON
			cliJSON(t, &list, bin, cliAt(cl, n.ID, "members", "list", "--json")...)
			var got []string
			for _, m := range list.Members {
				s := strconv.FormatUint(m.ID, 10)
				if m.Learner {
					s += " learner"
				}
				got = append(got, s)
			}
			return slices.Equal(got, want) && len(list.Pending) == 0
		})
	}
}

// cliWatch starts `now --watch`, reads its first reading, interrupts it,
// and expects exit status 0.
func cliWatch(t *testing.T, bin string, args ...string) {
	cmd := exec.Command(bin, args...)
	cmd.Env = cliEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var r clientReadingJSON
	if err == nil {
		err = json.Unmarshal([]byte(line), &r)
	}
	cmd.Process.Signal(syscall.SIGINT)
	werr := cmd.Wait()
	if err != nil || r.Status != "SYNCHRONIZED" {
		t.Fatalf("now --watch printed %q: %v; stderr %s", line, err, errOut.String())
	}
	if werr != nil {
		t.Fatalf("now --watch after Ctrl-C: %v; stderr %s", werr, errOut.String())
	}
}

// cliBadUsage checks that each misuse exits 2 with a message naming the
// flag at fault, before any call: addr is a live node.
func cliBadUsage(t *testing.T, bin, addr string) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"members", "add", "--id", "0", "--peer-addr", "127.0.0.1:7400"}, "--id 0"},
		{[]string{"members", "add", "--peer-addr", "127.0.0.1:7400"}, "--id is required"},
		{[]string{"members", "add", "--id", "4"}, "--peer-addr is required"},
		{[]string{"members", "add", "--id", "4", "--peer-addr", "127.0.0.1"}, `--peer-addr "127.0.0.1"`},
		{[]string{"members", "remove", "--id", "0"}, "--id 0"},
		{[]string{"members", "transfer", "--id", "-1"}, "-id"},
		{[]string{"members", "transfer"}, "--id is required"},
		{[]string{"members", "frob"}, `unknown subcommand "frob"`},
		{[]string{"timestamp", "-n", "0"}, "-n/--count 0"},
		{[]string{"timestamp", "-n", "65537"}, "-n/--count 65537"},
		{[]string{"now", "--count", "0"}, "--count 0"},
		{[]string{"now", "--interval", "-1s", "--count", "2"}, "--interval -1s"},
		{[]string{"now", "--watch", "--count", "2"}, "--watch and --count"},
		{[]string{"status", "--addr", "localhost"}, `--addr "localhost"`},
		{[]string{"status", "--addr", "127.0.0.1:http"}, `--addr "127.0.0.1:http"`},
		{[]string{"status", "--timeout", "0s"}, "--timeout 0s"},
		{[]string{"status", "--bogus"}, "-bogus"},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// The connection flags go after the command's words, so that a
			// case's own --addr comes later and wins.
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

// TestCLIMutualTLS runs the client over mutual TLS against a one-node
// cluster made with clockd certs: the default client certificate beside
// the CA, --server-name, and the roles the certificates carry.
func TestCLIMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin, cl, _ := startSynchronized(t, 2*time.Minute, proccluster.Config{Dir: dir, Nodes: 1, TLS: true,
		Args: []string{"--tick-interval", "200ms"}})
	ca := filepath.Join(cl.TLSDir(), certs.CAFile)
	addr := cl.Node(1).APIAddr
	localhost := "localhost:" + cliPort(t, addr)
	hostCert := filepath.Join(cl.TLSDir(), "host-hv1.pem")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr, or stdout when code is 0
	}{
		{"admin by default", []string{"members", "list", "--tls-ca", ca}, 0, "voter"},
		{"server name", []string{"status", "--tls-ca", ca, "--server-name", "node-1"}, 0, "Role           : leader"},
		{"localhost", []string{"now", "--tls-ca", ca, "--addr", localhost}, 0, "SYNCHRONIZED"},
		{"wrong server name", []string{"status", "--tls-ca", ca, "--server-name", "node-2"}, 1, "TLS handshake with " + addr + " failed: tls: failed to verify certificate: x509: certificate is valid for node-1, localhost, not node-2"},
		{"host may read", []string{"timestamp", "--tls-ca", ca, "--tls-cert", hostCert}, 0, "physical="},
		{"host may not change", []string{"members", "remove", "--id", "1", "--tls-ca", ca, "--tls-cert", hostCert}, 1, "permission denied"},
		{"plaintext to TLS", []string{"status", "--insecure"}, 1, addr},
		{"no CA", []string{"status", "--tls-ca", filepath.Join(dir, "none.pem")}, 2, "--tls-ca"},
		{"key without cert name", []string{"status", "--tls-ca", ca, "--tls-cert", ca + ".crt"}, 2, "--tls-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !slices.Contains(args, "--addr") {
				args = append(args, "--addr", addr)
			}
			r := cliRun(t, bin, args...)
			got := r.stderr
			if tc.code == 0 {
				got = r.stdout
			}
			if r.code != tc.code || !strings.Contains(got, tc.want) {
				t.Fatalf("clockd %v: %+v; want exit %d with %q", args, r, tc.code, tc.want)
			}
		})
	}
}

func cliPort(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestClientTLSFiles checks which client certificate and key are used
// when the flags leave them out.
func TestClientTLSFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Init(dir, certs.Spec{Admin: true, Nodes: []certs.Node{{ID: 1}}}); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, certs.CAFile)
	// node.pem as deploy/systemd installs a node's certificate.
	for _, f := range []string{".pem", "-key.pem"} {
		b, err := os.ReadFile(filepath.Join(dir, "node-1"+f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "node"+f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	leafName := func(t *testing.T, certFile, keyFile string) string {
		cfg, err := clientTLS(ca, certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		leaf := cfg.Certificates[0].Leaf
		if len(leaf.DNSNames) > 0 {
			return leaf.DNSNames[0]
		}
		return leaf.URIs[0].String()
	}
	if got := leafName(t, "", ""); got != certs.URIAdmin {
		t.Errorf("default client certificate is %s, want the admin's", got)
	}
	if got := leafName(t, filepath.Join(dir, "node-1.pem"), ""); got != "node-1" {
		t.Errorf("--tls-cert node-1.pem gives %s", got)
	}
	os.Remove(filepath.Join(dir, "admin.pem"))
	if got := leafName(t, "", ""); got != "node-1" {
		t.Errorf("without admin.pem the client certificate is %s, want node.pem's", got)
	}
	os.Remove(filepath.Join(dir, "node.pem"))
	if _, err := clientTLS(ca, "", ""); err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("no certificate beside the CA: %v", err)
	}
	if _, err := clientTLS(ca, filepath.Join(dir, "node-1.pem"), filepath.Join(dir, "ca-key.pem")); err == nil {
		t.Error("a key that does not match the certificate was accepted")
	}
}

func TestClientCheckAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:7401": true, "localhost:1": true, "[::1]:7401": true, "hv1.example.com:65535": true,
		"": false, "127.0.0.1": false, ":7401": false, "127.0.0.1:0": false, "127.0.0.1:65536": false,
		"127.0.0.1:http": false, "dns:///127.0.0.1:7401": false, "[::1]": false,
	} {
		if err := clientCheckAddr(addr); (err == nil) != ok {
			t.Errorf("clientCheckAddr(%q) = %v, want ok %v", addr, err, ok)
		}
	}
}

// TestStatusOutput compares the text and JSON of status with
// testdata/status-*.golden (rewrite them with -update-cli-golden).
func TestStatusOutput(t *testing.T) {
	members := []*clockdv1.Member{{Id: 1}, {Id: 2, Addr: "10.0.0.2:7400"}, {Id: 14, Addr: "hv14.example.com:7400", Learner: true}}
	for _, tc := range []struct {
		name string
		st   *clockdv1.StatusResponse
	}{
		{"synchronized", &clockdv1.StatusResponse{
			NodeId: 2, LeaderId: 1, Ballot: &clockdv1.Ballot{Round: 7, Node: 1}, Role: clockdv1.Role_ROLE_FOLLOWER,
			Members: members, ConfigSlot: 12,
			Reference: &clockdv1.Reading{TimeUnixNano: 1_795_549_004_775_674_487, EarliestUnixNano: 1_795_549_004_725_430_901,
				LatestUnixNano: 1_795_549_004_825_918_073, Status: clockdv1.Status_STATUS_SYNCHRONIZED, Bounded: true},
			LocalOffsetNanos: -1_234_567, DriftPpb: 142_120, Falsetickers: []uint64{14},
			LastTickAgeNanos: 439_832_294, LastTickSeq: 4411, CommitSlot: 9001, AppliedSlot: 9000, Version: "v1.4.0",
			EventsLastGsn: 1_204_311, EventsSpooled: 0, EventsDropped: 12, EventsRefused: 3,
		}},
		{"initializing", &clockdv1.StatusResponse{
			NodeId: 1, LeaderId: 1, Ballot: &clockdv1.Ballot{Round: 1, Node: 1}, Role: clockdv1.Role_ROLE_LEADER,
			Members:          members[:1],
			Reference:        &clockdv1.Reading{TimeUnixNano: 1_795_549_004_000_000_000, Status: clockdv1.Status_STATUS_INITIALIZING},
			LocalOffsetNanos: 12_000, LastTickAgeNanos: -1, Version: "devel+1a2b3c4d5e6f",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var text, js bytes.Buffer
			statusPrint(&text, tc.st)
			if err := clientPrintJSON(&js, statusToJSON(tc.st), false); err != nil {
				t.Fatal(err)
			}
			cliGolden(t, "status-"+tc.name+".golden", text.String())
			cliGolden(t, "status-"+tc.name+".json.golden", js.String())
		})
	}
}

func cliGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *cliUpdateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestStatusOutput -update-cli-golden)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestStatusFormats(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{statusOffset(1_500), "+1.5µs (wall clock fast of the reference)"},
		{statusOffset(-2_000_000), "-2ms (wall clock slow of the reference)"},
		{statusOffset(0), "0s"},
		{statusDrift(-1_500), "-1.500 ppm (monotonic clock slow)"},
		{statusDrift(0), "+0.000 ppm"},
		{statusIDs(nil), "none"},
		{statusIDs([]uint64{3, 5}), "3, 5"},
		{timestampPhysical(tso.Compose(1_795_549_004_867, 3)), "2026-11-24T19:36:44.867Z"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestNowPrinterBackwards(t *testing.T) {
	var out, errOut bytes.Buffer
	p := &nowPrinter{out: &out, errOut: &errOut, lines: true}
	for _, ns := range []int64{1_000, 2_000, 1_500, 1_500, 3_000} {
		if err := p.print(vclock.Reading{Time: ns, Earliest: ns - 10, Latest: ns + 10, Status: vclock.StatusSynchronized}); err != nil {
			t.Fatal(err)
		}
	}
	if p.reads != 5 || p.back != 1 || strings.Count(out.String(), "\n") != 5 ||
		errOut.String() != "clockd now: reading 3 went back 500ns: 1970-01-01T00:00:00.000001500Z after 1970-01-01T00:00:00.000002000Z\n" {
		t.Fatalf("reads %d, back %d, stdout %q, stderr %q", p.reads, p.back, out.String(), errOut.String())
	}
}

// startSynchronized builds clockd into cfg.Dir, starts cfg's cluster of
// real processes there, and waits, within timeout, until every node reads
// SYNCHRONIZED. The cluster stops, and ctx ends, when the test does.
func startSynchronized(t *testing.T, timeout time.Duration, cfg proccluster.Config) (string, *proccluster.Cluster, context.Context) {
	t.Helper()
	bin, err := proccluster.Build("../..", cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Binary = bin
	cl, err := proccluster.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	if err := cl.WaitSynchronized(ctx); err != nil {
		t.Fatal(err)
	}
	return bin, cl, ctx
}

// TestCLISilentNode: against a port that accepts connections and never
// answers, a command fails once --timeout has passed, saying so.
func TestCLISilentNode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin, err := proccluster.Build("../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn // open and silent until the test ends
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	addr := l.Addr().String()
	for _, args := range [][]string{{"offsets", "export"}, {"status"}, {"now", "--watch"}} {
		r := cliRun(t, bin, append(args, "--insecure", "--addr", addr, "--timeout", "1s")...)
		if want := "no answer from " + addr + " within --timeout 1s"; r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("clockd %v against a silent node: exit %d, stderr %q; want exit 1 and %q", args, r.code, r.stderr, want)
		}
	}
}
