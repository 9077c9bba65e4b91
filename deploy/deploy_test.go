package deploy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	unitFile     = "systemd/clockd.service"
	sysusersFile = "systemd/clockd.sysusers"
	tmpfilesFile = "systemd/clockd.tmpfiles"
	configFile   = "systemd/clockd.yaml"

	installedBinary = "/usr/local/bin/clockd"
	// installedConfig is where README.md installs configFile.
	installedConfig = "/etc/clockd/clockd.yaml"
)

// exampleConfig is the documented configuration: every key, with the value
// the example gives it.
var exampleConfig = map[string]any{
	"id":                     1,
	"data_dir":               "/var/lib/clockd",
	"host_name":              "",
	"peer_listen":            "0.0.0.0:7400",
	"api_listen":             "0.0.0.0:7401",
	"ntp_listen":             "0.0.0.0:123",
	"metrics_listen":         "127.0.0.1:7402",
	"pprof":                  false,
	"api_rate_limit":         2000,
	"api_burst":              200,
	"ntp_rate_limit":         8,
	"ntp_burst":              16,
	"shm_path":               "/run/clockd/clock",
	"members":                []any{"1=192.0.2.11:7400", "2=192.0.2.12:7400", "3=192.0.2.13:7400"},
	"join":                   "",
	"peer_advertise":         "",
	"tls_ca":                 "/etc/clockd/tls/ca.pem",
	"tls_cert":               "/etc/clockd/tls/node.pem",
	"tls_key":                "/etc/clockd/tls/node-key.pem",
	"insecure":               false,
	"tick_interval":          "1s",
	"wall_error":             "50ms",
	"ntp_servers":            []any{},
	"max_drift_ppm":          100,
	"slew_ppm":               500,
	"holdover_after":         "3s",
	"unsync_after":           "15m",
	"hwm_window":             "1s",
	"tso_window":             "3s",
	"vm_max_slew_ppm":        500,
	"vm_max_lag":             "1s",
	"event_retention_bytes":  4294967296,
	"event_retention_age":    "0s",
	"spool_max_bytes":        1073741824,
	"event_compression":      "s2",
	"offset_retention_bytes": 1073741824,
	"offset_retention_age":   "0s",
	"ingest_files":           []any{},
	"ingest_socket":          "/run/clockd/ingest.sock",
	"log_format":             "auto",
	"log_level":              "info",
}

// tool finds a program the tests need; they install nothing.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not in PATH: these tests run systemd's own checkers (Debian package systemd); %v", name, err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(tool(t, name), args...).CombinedOutput()
	return string(out), err
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// unitWithBinary builds clockd and writes a copy of the unit whose
// ExecStart runs that build, since verify requires the binary to exist.
func unitWithBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "clockd")
	build := exec.Command(tool(t, "go"), "build", "-o", bin, "./cmd/clockd")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/clockd: %v\n%s", err, out)
	}
	unit := readFile(t, unitFile)
	from := "ExecStart=" + installedBinary + " "
	if strings.Count(unit, from) != 1 {
		t.Fatalf("%s has no single line starting %q", unitFile, from)
	}
	unit = strings.Replace(unit, from, "ExecStart="+bin+" ", 1)
	p := filepath.Join(dir, "clockd.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnit(t *testing.T) {
	unit := unitWithBinary(t)
	t.Run("verify", func(t *testing.T) {
		// verify exits 0 on unknown keys and bad values, with a warning:
		// any output fails.
		out, err := run(t, "systemd-analyze", "verify", unit)
		if err != nil || out != "" {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
	t.Run("security", func(t *testing.T) {
		// The threshold is in tenths: exposure 2.0 of 10, "OK".
		out, err := run(t, "systemd-analyze", "security", "--offline=true", "--threshold=20", "--no-pager", unit)
		if err != nil {
			t.Errorf("exposure above 2.0: %v\n%s", err, out)
		}
	})
}

// unitSettings reads a unit file as "Section.Key" to its values, in order.
func unitSettings(t *testing.T, name string) map[string][]string {
	t.Helper()
	settings := make(map[string][]string)
	section := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, name)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s: continuation lines are not parsed here: %q", name, line)
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a setting: %q", name, line)
		}
		settings[section+"."+key] = append(settings[section+"."+key], value)
	}
	return settings
}

func TestUnitSettings(t *testing.T) {
	got := unitSettings(t, unitFile)
	want := map[string]string{
		"Service.Type":                    "notify",
		"Service.NotifyAccess":            "main",
		"Service.ExecStart":               installedBinary + " run --config " + installedConfig,
		"Service.Restart":                 "on-failure",
		"Service.WatchdogSec":             "30s",
		"Service.User":                    "clockd",
		"Service.Group":                   "clockd",
		"Service.StateDirectory":          "clockd",
		"Service.RuntimeDirectory":        "clockd",
		"Service.RuntimeDirectoryMode":    "0755",
		"Service.AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"Service.CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.PrivateDevices":          "yes",
		"Service.ProtectKernelTunables":   "yes",
		"Service.ProtectKernelModules":    "yes",
		"Service.ProtectKernelLogs":       "yes",
		"Service.ProtectControlGroups":    "yes",
		"Service.ProtectClock":            "yes",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"Service.RestrictNamespaces":      "yes",
		"Service.LockPersonality":         "yes",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.SystemCallArchitectures": "native",
		"Service.SystemCallFilter":        "@system-service",
		"Install.WantedBy":                "multi-user.target",
	}
	for key, value := range want {
		if vals := got[key]; !slices.Contains(vals, value) {
			t.Errorf("%s = %q, want %q among them", key, vals, value)
		}
	}
	if vals := got["Service.LimitNOFILE"]; len(vals) != 1 {
		t.Errorf("LimitNOFILE = %q, want one value", vals)
	}
}

// sysusersName is the user clockd.sysusers makes.
func sysusersName(t *testing.T) string {
	t.Helper()
	for line := range strings.Lines(readFile(t, sysusersFile)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "u" {
			return f[1]
		}
	}
	t.Fatalf("%s makes no user", sysusersFile)
	return ""
}

// TestSysusersAndTmpfiles applies both files to a scratch root, which the
// tools read and write in place of /.
func TestSysusersAndTmpfiles(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs := func(name string) string {
		p, err := filepath.Abs(name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	out, err := run(t, "systemd-sysusers", "--root="+root, abs(sysusersFile))
	if err != nil || strings.Contains(out, "ignoring") || strings.Contains(out, "Failed") {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd := readFile(t, filepath.Join(root, "etc/passwd"))
	if !strings.Contains(passwd, "clockd:x:") || !strings.Contains(passwd, ":/var/lib/clockd:") {
		t.Fatalf("passwd lacks user clockd with home /var/lib/clockd:\n%s", passwd)
	}
	if os.Geteuid() != 0 {
		t.Skip("systemd-tmpfiles needs root to give /etc/clockd/tls to group clockd")
	}
	out, err = run(t, "systemd-tmpfiles", "--root="+root, "--create", abs(tmpfilesFile))
	if err != nil || out != "" {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	tests := []struct {
		dir   string
		mode  os.FileMode
		group string
	}{
		{"etc/clockd", 0o755, "root"},
		{"etc/clockd/tls", 0o750, "clockd"},
	}
	for _, tc := range tests {
		fi, err := os.Stat(filepath.Join(root, tc.dir))
		if err != nil {
			t.Fatal(err)
		}
		gid := gidOf(t, fi)
		if fi.Mode().Perm() != tc.mode || groupName(t, root, gid) != tc.group {
			t.Errorf("/%s: mode %o, group %d (%s); want %o, %s", tc.dir, fi.Mode().Perm(), gid, groupName(t, root, gid), tc.mode, tc.group)
		}
	}
}

func gidOf(t *testing.T, fi os.FileInfo) uint32 {
	t.Helper()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("no owner information for %s", fi.Name())
	}
	return st.Gid
}

// groupName looks gid up in root's /etc/group; root's group is 0 wherever
// the file lacks it.
func groupName(t *testing.T, root string, gid uint32) string {
	t.Helper()
	if gid == 0 {
		return "root"
	}
	for line := range strings.Lines(readFile(t, filepath.Join(root, "etc/group"))) {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) >= 3 && f[2] == strconv.FormatUint(uint64(gid), 10) {
			return f[0]
		}
	}
	return ""
}

func loadConfig(t *testing.T) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, configFile)), &cfg); err != nil {
		t.Fatalf("%s: %v", configFile, err)
	}
	return cfg
}

func TestExampleConfig(t *testing.T) {
	cfg := loadConfig(t)
	for key := range cfg {
		if _, ok := exampleConfig[key]; !ok {
			t.Errorf("undocumented key %q", key)
		}
	}
	for key, want := range exampleConfig {
		got, ok := cfg[key]
		switch {
		case !ok:
			t.Errorf("missing key %q", key)
		case !reflect.DeepEqual(got, want):
			t.Errorf("%s: %#v, want %#v", key, got, want)
		}
	}
	ids := map[string]bool{}
	for _, m := range exampleConfig["members"].([]any) {
		id, addr, ok := strings.Cut(m.(string), "=")
		if _, err := strconv.ParseUint(id, 10, 64); !ok || err != nil || ids[id] {
			t.Errorf("member %q: want a new ID=HOST:PORT", m)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			t.Errorf("member %q: %v", m, err)
		}
		ids[id] = true
	}
	if !ids[fmt.Sprint(exampleConfig["id"])] {
		t.Errorf("members %v lack this node's id", exampleConfig["members"])
	}
}

// TestFilesAgree checks that the paths and names the unit, the sysusers and
// tmpfiles entries and the example config share are the same.
func TestFilesAgree(t *testing.T) {
	unit := unitSettings(t, unitFile)
	cfg := loadConfig(t)
	tmpfiles := readFile(t, tmpfilesFile)
	one := func(key string) string {
		if vals := unit[key]; len(vals) == 1 {
			return vals[0]
		}
		t.Fatalf("%s: %q, want one value", key, unit[key])
		return ""
	}
	if got, want := cfg["data_dir"], "/var/lib/"+one("Service.StateDirectory"); got != want {
		t.Errorf("data_dir %v, but StateDirectory makes %s", got, want)
	}
	if got, want := path.Dir(cfg["shm_path"].(string)), "/run/"+one("Service.RuntimeDirectory"); got != want {
		t.Errorf("shm_path is in %s, but RuntimeDirectory makes %s", got, want)
	}
	for _, key := range []string{"tls_ca", "tls_cert", "tls_key"} {
		dir := path.Dir(cfg[key].(string))
		if !strings.Contains(tmpfiles, "d "+dir+" ") {
			t.Errorf("%s is in %s, which %s does not make", key, dir, tmpfilesFile)
		}
	}
	if !strings.HasSuffix(one("Service.ExecStart"), "--config "+installedConfig) || !strings.Contains(tmpfiles, "d "+path.Dir(installedConfig)+" ") {
		t.Errorf("ExecStart %q or %s disagree with the config's place %s", one("Service.ExecStart"), tmpfilesFile, installedConfig)
	}
	user := sysusersName(t)
	if one("Service.User") != user || one("Service.Group") != user || !strings.Contains(tmpfiles, " root "+user+" ") {
		t.Errorf("User %s, Group %s, tmpfiles group: want %s from %s", one("Service.User"), one("Service.Group"), user, sysusersFile)
	}
}
