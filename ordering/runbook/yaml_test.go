package runbook_test

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering/runbook"
)

// TestParseExample reads testdata/upgrade.yaml, which uses every key but
// min_version (TestParseVersionGate).
func TestParseExample(t *testing.T) {
	f, err := os.Open("testdata/upgrade.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := runbook.Parse(f, "upgrade.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := runbook.Book{ID: "upgrade", Steps: []runbook.Step{
		{ID: "drain", Hosts: hosts(1), Argv: []string{"/usr/local/sbin/drain", "--wait"},
			Timeout: 5 * time.Minute, Retries: 1},
		{ID: "fetch", Argv: []string{"/usr/bin/apt-get", "download", "clockd"},
			Timeout: 90 * time.Second, Retries: 2, Idempotent: true},
		{ID: "ready", DependsOn: []string{"drain", "fetch"}, Timeout: runbook.DefaultTimeout},
		{ID: "install", Hosts: hosts(1, 2, 3), Argv: []string{"/usr/bin/dpkg", "-i", "clockd.deb"},
			DependsOn: []string{"ready"}, Timeout: runbook.DefaultTimeout},
		{ID: "restart", Hosts: hosts(2), Argv: []string{"systemctl", "restart", "libvirtd"},
			DependsOn: []string{"install"}, Timeout: 24 * time.Hour, Idempotent: true},
		{ID: "report", Hosts: hosts(3), Argv: []string{"/usr/local/bin/report", "--to", "ops@example.com"},
			Timeout: runbook.DefaultTimeout},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", got, want)
	}
	// "all" is resolved when the book is submitted: to the members,
	// sorted and without repeats. Steps that named hosts keep them.
	got.ResolveAll([]consensus.NodeID{3, 1, 2, 3})
	want.Steps[1].Hosts, want.Steps[2].Hosts = hosts(1, 2, 3), hosts(1, 2, 3)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("resolved\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	got.Steps[1].Hosts[0] = 9
	if got.Steps[2].Hosts[0] != 1 {
		t.Fatal("steps resolved to \"all\" share one slice of hosts")
	}
}

func TestResolveAllCopiesMembers(t *testing.T) {
	members := []consensus.NodeID{2, 1}
	b := runbook.Book{Steps: []runbook.Step{{ID: "a"}, {ID: "b", Hosts: hosts(7)}}}
	b.ResolveAll(members)
	if !reflect.DeepEqual(b.Steps[0].Hosts, hosts(1, 2)) || !reflect.DeepEqual(b.Steps[1].Hosts, hosts(7)) {
		t.Fatalf("resolved to %v and %v", b.Steps[0].Hosts, b.Steps[1].Hosts)
	}
	if members[0] != 2 {
		t.Fatal("ResolveAll sorted the caller's members")
	}
}

// TestParseHosts: a list of node IDs comes back sorted without repeats.
func TestParseHosts(t *testing.T) {
	for in, want := range map[string][]consensus.NodeID{
		`[1]`:                    hosts(1),
		`[3, 1, 2]`:              hosts(1, 2, 3),
		`["4", 2]`:               hosts(2, 4),
		"\n      - 5\n      - 1": hosts(1, 5),
		`[18446744073709551615]`: hosts(1<<64 - 1),
		`all`:                    nil,
		`"all"`:                  nil,
	} {
		b, err := runbook.Parse(strings.NewReader("id: b\nsteps:\n  - id: s\n    hosts: "+in+"\n"), "b.yaml")
		if err != nil || !reflect.DeepEqual(b.Steps[0].Hosts, want) {
			t.Errorf("hosts: %s parsed as %v, %v; want %v", in, b.Steps[0].Hosts, err, want)
		}
	}
}

// TestParseRefuses: each error names the file, the line where the
// parser knows it, and what is wrong.
func TestParseRefuses(t *testing.T) {
	const head = "id: b\nsteps:\n  - id: s\n" // the step's keys start on line 4
	cases := []struct {
		name, in string
		want     []string
	}{
		{"empty file", "", []string{"bad.yaml: empty run-book"}},
		{"only a comment", "# nothing yet\n", []string{"bad.yaml: empty run-book"}},
		{"an unknown key in a step", head + "    hosts: [1]\n    retry: 2\n",
			[]string{"bad.yaml: ", "line 5: field retry not found"}},
		{"an unknown key in the book", "id: b\nowner: ops\nsteps: []\n",
			[]string{"bad.yaml: ", "line 2: field owner not found"}},
		{"hosts some", head + "    hosts: some\n",
			[]string{`bad.yaml:4: step "s": hosts: "some": give a list of node IDs, or "all"`}},
		{"hosts [0]", head + "    hosts: [0]\n",
			[]string{`bad.yaml:4: step "s": hosts: "0" is not a node ID (a number from 1)`}},
		{"hosts [x]", head + "    hosts: [2, x]\n",
			[]string{`bad.yaml:4: step "s": hosts: "x" is not a node ID`}},
		{"hosts [-1]", head + "    hosts: [-1]\n",
			[]string{`bad.yaml:4: step "s": hosts: "-1" is not a node ID`}},
		{"hosts [all]", head + "    hosts: [all]\n",
			[]string{`bad.yaml:4: step "s": hosts: "all" is not a node ID`}},
		{"hosts {}", head + "    hosts: {}\n",
			[]string{`bad.yaml:4: step "s": hosts: "": give a list of node IDs, or "all"`}},
		{"hosts []", head + "    hosts: []\n",
			[]string{`bad.yaml:4: step "s": hosts: empty: give node IDs, or "all"`}},
		{"hosts missing", head + "    argv: [x]\n",
			[]string{`bad.yaml:3: step "s": hosts: missing: give node IDs, or "all"`}},
		{"a timeout without a unit", head + "    hosts: [1]\n    timeout: 90\n",
			[]string{`bad.yaml:5: step "s": timeout "90" is not a duration like 90s or 5m`}},
		{"a timeout in words", head + "    hosts: [1]\n    timeout: five minutes\n",
			[]string{`bad.yaml:5: step "s": timeout "five minutes" is not a duration`}},
		{"a timeout as a list", head + "    hosts: [1]\n    timeout: [5m]\n",
			[]string{`bad.yaml:5: step "s": timeout "" is not a duration`}},
		{"retries not a number", head + "    hosts: [1]\n    retries: many\n",
			[]string{"bad.yaml: ", "line 5: cannot unmarshal"}},
		{"steps not a list", "id: b\nsteps: drain\n", []string{"bad.yaml: ", "line 2: cannot unmarshal"}},
		{"not YAML", "id: [b\n", []string{"bad.yaml: ", "line 1"}},
		{"a host twice", head + "    hosts: [1, 2, 1]\n",
			[]string{`bad.yaml:4: step "s": hosts: node 1 is listed twice`}},
		{"an empty argv", head + "    hosts: [1]\n    argv: []\n",
			[]string{`bad.yaml:3: step "s": argv is empty: leave argv out for a barrier`}},
		{"two documents", head + "    hosts: [1]\n---\nid: c\n", []string{"bad.yaml:5: a second YAML document: a file holds one run-book"}},
		{"no Go type names", head + "    hosts: [1]\n    retry: 2\n", []string{"bad.yaml: line 5: field retry not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runbook.Parse(strings.NewReader(c.in), "bad.yaml")
			if err == nil {
				t.Fatal("parsed")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestParseLeavesValidationToValidate: Parse reads what the file says;
// what is wrong with the book itself is Validate's to say.
func TestParseLeavesValidationToValidate(t *testing.T) {
	in := "id: b\nsteps:\n  - id: s\n    hosts: [1]\n    timeout: -5m\n    retries: -1\n  - id: s\n    hosts: all\n"
	b, err := runbook.Parse(strings.NewReader(in), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if b.Steps[0].Timeout != -5*time.Minute || b.Steps[0].Retries != -1 {
		t.Fatalf("parsed %+v", b.Steps[0])
	}
	b.ResolveAll(hosts(1))
	if err := b.Validate(); err == nil || !strings.Contains(err.Error(), `step "s": timeout -5m0s outside`) {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParseVersionGate(t *testing.T) {
	in := "id: b\nsteps:\n  - id: upgraded\n    hosts: all\n    min_version: v1.4.0\n"
	got, err := runbook.Parse(strings.NewReader(in), "gate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := runbook.Book{ID: "b", Steps: []runbook.Step{{ID: "upgraded", MinVersion: "v1.4.0", Timeout: runbook.DefaultTimeout}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
}
