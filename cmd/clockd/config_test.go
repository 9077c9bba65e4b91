package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clockd/clockd/internal/proccluster"
)

// TestRunRefusesBadConfiguration runs `clockd run` with bad configuration
// from each source, file, flag and variable: it exits 2 before starting,
// naming the key.
func TestRunRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin, err := proccluster.Build("../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"run", "--insecure", "--id", "1", "--members", "1=127.0.0.1:1", "--data-dir", filepath.Join(dir, "data"),
		"--ntp-listen", "", "--metrics-listen", "", "--shm-path", "", "--ingest-socket", ""}
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	unknown := write("unknown.yaml", "api_listen: 127.0.0.1:0\nntp_burts: 4\n")
	zero := write("zero.yaml", "api_rate_limit: 0\n")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown key in the file", nil, []string{"--config", unknown}, "field ntp_burts not found"},
		{"bad value in the file", nil, []string{"--config", zero}, "api_rate_limit: 0 must be positive"},
		{"bad flag value", nil, []string{"--ntp-burst", "0"}, "ntp_burst: 0 must be positive"},
		{"bad variable", []string{"CLOCKD_API_BURST=-3"}, nil, "api_burst: -3 must be positive"},
		{"flag over the file", nil, []string{"--config", zero, "--api-rate-limit", "5", "--ntp-rate-limit", "-1"},
			"ntp_rate_limit: -1 must be positive"},
	} {
		r := cliRunEnv(t, bin, tc.env, append(base, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tc.name, r.code, r.stderr, tc.want)
		}
		if tc.name == "flag over the file" && strings.Contains(r.stderr, "api_rate_limit") {
			t.Errorf("%s: the flag did not override the file: %q", tc.name, r.stderr)
		}
	}
	// Flags that do not parse and unknown commands are usage errors in
	// every command: exit 2, the reason on stderr, no help dumped.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--tick-interval", "5x"}, `clockd run: invalid value "5x" for flag -tick-interval`},
		{[]string{"dev", "--nodes", "abc"}, `clockd dev: invalid value "abc" for flag -nodes`},
		{[]string{"certs", "init", "--bogus"}, "clockd certs init: flag provided but not defined: -bogus"},
		{[]string{"--bogus"}, "clockd: flag provided but not defined: -bogus"},
		{[]string{"nosuchcmd"}, `clockd: unknown command "nosuchcmd": want one of run, dev, demo`},
		{[]string{"dev", "extra"}, `clockd dev: unexpected argument "extra"`},
		{[]string{"demo", "extra"}, `clockd demo: unexpected argument "extra"`},
	} {
		r := cliRun(t, bin, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("clockd %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}
