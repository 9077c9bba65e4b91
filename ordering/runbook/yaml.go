package runbook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/yamlerr"
)

// The file format, in YAML (unknown keys are refused):
//
//	id: upgrade-2026-12          # the book's id, unique in the cluster
//	steps:
//	  - id: drain                # unique in the book
//	    hosts: [1]               # node IDs, or "all": every voting member
//	    argv: [/usr/local/sbin/drain, --wait]
//	    timeout: 5m              # default 10m, at most 24h
//	    retries: 2               # further attempts after a failure; default 0
//	    idempotent: true         # may run again after its host restarts mid-step
//	  - id: drained
//	    hosts: all               # no argv: a barrier every host must reach
//	    depends_on: [drain]      # earlier steps that must succeed on all their hosts
//	  - id: upgraded
//	    hosts: all
//	    min_version: v1.4.0      # a version gate: a barrier reached on clockd v1.4.0 or later
type fileBook struct {
	ID    string     `yaml:"id"`
	Steps []fileStep `yaml:"steps"`
}

type fileStep struct {
	ID         yaml.Node `yaml:"id"` // a node, for the step's line
	Hosts      yaml.Node `yaml:"hosts"`
	Argv       []string  `yaml:"argv"`
	DependsOn  []string  `yaml:"depends_on"`
	Timeout    yaml.Node `yaml:"timeout"`
	Retries    int       `yaml:"retries"`
	Idempotent bool      `yaml:"idempotent"`
	MinVersion string    `yaml:"min_version"`
}

// Parse reads a run-book file; name labels its errors. A step whose
// hosts are "all" comes back with no Hosts: ResolveAll fills them in when
// the book is submitted. The book is not validated (Validate, after
// ResolveAll).
func Parse(r io.Reader, name string) (Book, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Book{}, fmt.Errorf("%s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f fileBook
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return Book{}, fmt.Errorf("%s: empty run-book", name)
		}
		return Book{}, fmt.Errorf("%s: %w", name, yamlerr.Clean(err))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return Book{}, fmt.Errorf("%s:%d: a second YAML document: a file holds one run-book", name, max(next.Line, 1))
	}
	b := Book{ID: f.ID, Steps: make([]Step, len(f.Steps))}
	for i, fs := range f.Steps {
		s := Step{ID: fs.ID.Value, Argv: fs.Argv, DependsOn: fs.DependsOn, Retries: fs.Retries,
			Idempotent: fs.Idempotent, MinVersion: fs.MinVersion, Timeout: DefaultTimeout}
		where := func(line int) string {
			if line == 0 { // the key is missing: name the step's line
				line = fs.ID.Line
			}
			return fmt.Sprintf("%s:%d: step %q", name, line, fs.ID.Value)
		}
		if fs.ID.Kind != 0 && fs.ID.Kind != yaml.ScalarNode {
			return Book{}, fmt.Errorf("%s: id is not a string", where(fs.ID.Line))
		}
		if fs.Timeout.Kind != 0 {
			d, err := time.ParseDuration(fs.Timeout.Value)
			if fs.Timeout.Kind != yaml.ScalarNode || err != nil {
				return Book{}, fmt.Errorf("%s: timeout %q is not a duration like 90s or 5m", where(fs.Timeout.Line), fs.Timeout.Value)
			}
			s.Timeout = d
		}
		if fs.Argv != nil && len(fs.Argv) == 0 {
			return Book{}, fmt.Errorf("%s: argv is empty: leave argv out for a barrier", where(fs.ID.Line))
		}
		s.Hosts, err = parseHosts(&fs.Hosts)
		if err != nil {
			return Book{}, fmt.Errorf("%s: hosts: %w", where(fs.Hosts.Line), err)
		}
		b.Steps[i] = s
	}
	return b, nil
}

func parseHosts(n *yaml.Node) ([]consensus.NodeID, error) {
	switch {
	case n.Kind == 0:
		return nil, errors.New(`missing: give node IDs, or "all"`)
	case n.Kind == yaml.ScalarNode && n.Value == "all":
		return nil, nil
	case n.Kind != yaml.SequenceNode:
		return nil, fmt.Errorf(`%q: give a list of node IDs, or "all"`, n.Value)
	case len(n.Content) == 0:
		return nil, errors.New(`empty: give node IDs, or "all"`)
	}
	hosts := make([]consensus.NodeID, 0, len(n.Content))
	for _, c := range n.Content {
		id, err := strconv.ParseUint(c.Value, 10, 64)
		if c.Kind != yaml.ScalarNode || err != nil || id == 0 {
			return nil, fmt.Errorf("%q is not a node ID (a number from 1)", c.Value)
		}
		hosts = append(hosts, consensus.NodeID(id))
	}
	slices.Sort(hosts)
	for i := 1; i < len(hosts); i++ {
		if hosts[i] == hosts[i-1] {
			return nil, fmt.Errorf("node %d is listed twice", hosts[i])
		}
	}
	return hosts, nil
}

// ResolveAll gives every step without hosts the members given.
func (b *Book) ResolveAll(members []consensus.NodeID) {
	all := slices.Clone(members)
	slices.Sort(all)
	all = slices.Compact(all)
	for i := range b.Steps {
		if len(b.Steps[i].Hosts) == 0 {
			b.Steps[i].Hosts = slices.Clone(all)
		}
	}
}
