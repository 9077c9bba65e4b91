package certs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// run runs clockd certs with args, as the daemon's CLI mounts it.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{Name: "clockd", Commands: []*cli.Command{Command()}, Writer: &out, ErrWriter: &errOut}
	err := app.Run(append([]string{"clockd", "certs"}, args...))
	return out.String() + errOut.String(), err
}

func TestCommandWritesAndPrints(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	out, err := run(t, "init", "--dir", dir, "--nodes", "1,2", "--hosts", "hv1", "--vms", "7,8", "--admin",
		"--node-dns", "1=hv1.example.com", "--node-ip", "1=192.0.2.1", "--node-ip", "2=2001:db8::2", "--days", "30")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for _, want := range []string{
		"created CA " + filepath.Join(dir, CAFile),
		"wrote node-1: " + filepath.Join(dir, "node-1.pem"),
		"DNS:node-1 DNS:localhost DNS:hv1.example.com IP:127.0.0.1 IP:::1 IP:192.0.2.1 URI:clockd:peer URI:clockd:host",
		"IP:2001:db8::2",
		"wrote host-hv1:", "wrote vm-7:", "wrote vm-8:", "wrote admin:", "URI:clockd:vm:8",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cert := readCert(t, filepath.Join(dir, "node-1.pem"))
	if got, want := cert.NotAfter.Sub(cert.NotBefore), 30*day+Backdate; got != want {
		t.Errorf("--days 30: certificate spans %v, want %v", got, want)
	}

	out, err = run(t, "init", "--dir", dir, "--nodes", "3")
	if err != nil || !strings.Contains(out, "reused CA") {
		t.Errorf("second init: err %v, output:\n%s", err, out)
	}
}

func TestCommandEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CLOCKD_CERTS_DIR", dir)
	t.Setenv("CLOCKD_CERTS_NODES", "4, 5")
	t.Setenv("CLOCKD_CERTS_NODE_DNS", "5=b.example")
	t.Setenv("CLOCKD_CERTS_JSON", "true")
	out, err := run(t, "init")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	var files Files
	if err := json.Unmarshal([]byte(out), &files); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, out)
	}
	if len(files.Leaves) != 2 || files.Leaves[0].Name != "node-4" || !slices.Contains(files.Leaves[1].DNSNames, "b.example") {
		t.Errorf("leaves %+v, want node-4 and node-5 with b.example", files.Leaves)
	}
	if files.Dir != dir || files.CAReused {
		t.Errorf("dir %q, CA reused %v", files.Dir, files.CAReused)
	}
}

func TestCommandErrors(t *testing.T) {
	taken := t.TempDir()
	if _, err := run(t, "init", "--dir", taken, "--nodes", "1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "1,x"}, `--nodes "x": not a node id`},
		{[]string{"--nodes", "0"}, `--nodes "0"`},
		{[]string{"--nodes", "1,,2"}, `--nodes ""`},
		{[]string{"--nodes", "2,2"}, "--nodes: 2 is listed twice"},
		{[]string{"--nodes", "1", "--node-dns", "2=a.example"}, `--node-dns "2=a.example": node 2 is not in --nodes`},
		{[]string{"--nodes", "1", "--node-dns", "1"}, `--node-dns "1": want ID=VALUE`},
		{[]string{"--nodes", "1", "--node-dns", "1=*.example"}, `--node-dns "1=*.example"`},
		{[]string{"--nodes", "1", "--node-ip", "1=300.1.1.1"}, `--node-ip "1=300.1.1.1"`},
		{[]string{"--nodes", "1", "--node-ip", "x=10.0.0.1"}, `--node-ip "x=10.0.0.1": want ID=VALUE`},
		{[]string{"--hosts", "a_b"}, `--hosts "a_b"`},
		{[]string{"--vms", "../x"}, `--vms "../x"`},
		{[]string{"--admin", "--days", "0"}, "--days 0: want 1 to"},
		{[]string{"--admin", "--ca-days", "-1"}, "--ca-days -1"},
		{[]string{"--admin", "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			out, err := run(t, append([]string{"init", "--dir", dir}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q\n%s", err, tc.want, out)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused command wrote %d files", len(entries))
			}
		})
	}
	t.Run("no dir", func(t *testing.T) {
		if _, err := run(t, "init", "--admin"); err == nil || !strings.Contains(err.Error(), `"dir"`) {
			t.Errorf("err %v, want one naming the dir flag", err)
		}
	})
	t.Run("existing file", func(t *testing.T) {
		_, err := run(t, "init", "--dir", taken, "--nodes", "1")
		if err == nil || !strings.Contains(err.Error(), filepath.Join(taken, "node-1.pem")) || !strings.Contains(err.Error(), "--force") {
			t.Errorf("err %v, want one naming node-1.pem and --force", err)
		}
	})
}

func TestCommandHelp(t *testing.T) {
	out, err := run(t, "init", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range initCommand().Flags {
		name := flag.Names()[0]
		env := "CLOCKD_CERTS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if !strings.Contains(out, "--"+name) || !strings.Contains(out, "$"+env) {
			t.Errorf("help lacks --%s or $%s:\n%s", name, env, out)
		}
	}
}
