package runbook

import (
	"fmt"
	"slices"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/buildinfo"
)

// Limits on one run-book, checked by Validate. They keep a book, and the
// state that tracks it, small enough for one log command and a snapshot.
const (
	MaxSteps      = 256
	MaxStepHosts  = 64   // hosts of one step
	MaxRuns       = 1024 // hosts summed over a book's steps
	MaxIDLen      = 128
	MaxArgvBytes  = 16 << 10  // one step's argv, summed
	MaxBookBytes  = 128 << 10 // the book as the log carries it
	MaxRetries    = 100
	MaxTimeout    = 24 * time.Hour
	MaxReasonLen  = 1024
	MaxDigestLen  = 64
	MaxOutputTail = 1 << 10 // the end of a step's output a host commits
	// DefaultTimeout is a step's timeout when the book gives none.
	DefaultTimeout = 10 * time.Minute
	// KeptFinished is how many finished books the state keeps; the
	// oldest finished go first when a new book is submitted. With the
	// limits above a book's state stays under about 1.2 MiB.
	KeptFinished = 100
)

// Book is a run-book: steps, each run on some hosts, in an order the
// cluster agrees on.
type Book struct {
	ID    string
	Steps []Step
}

// Step is one step of a book.
type Step struct {
	ID string
	// Hosts run the step, each once; sorted, no repeats.
	Hosts []consensus.NodeID
	// Argv is the command each host runs, without a shell. Empty makes
	// the step a barrier: each host reaches it once its own earlier steps
	// and the step's dependencies are done, and nothing runs.
	Argv []string
	// DependsOn names earlier steps of the same book that must be done on
	// every one of their hosts before this step starts anywhere.
	DependsOn  []string
	Timeout    time.Duration
	Retries    int // further attempts after a failed one
	Idempotent bool
	// MinVersion makes a barrier a version gate: a host reaches it only
	// while running clockd MinVersion or later (a semantic version, as
	// v1.4.0), so the steps after it wait until every host it names has
	// been upgraded.
	MinVersion string
}

// Barrier reports whether the step runs nothing.
func (s *Step) Barrier() bool { return len(s.Argv) == 0 }

// Validate checks a book and names the first thing wrong with it: ids
// present, unique and short, every dependency an earlier step of the
// book (so the steps' order is an order their dependencies allow), hosts
// present and sorted without repeats, and the limits above.
func (b *Book) Validate() error {
	if err := checkID("book id", b.ID); err != nil {
		return err
	}
	if len(b.Steps) == 0 {
		return fmt.Errorf("run-book %q: no steps", b.ID)
	}
	if len(b.Steps) > MaxSteps {
		return fmt.Errorf("run-book %q: %d steps, at most %d", b.ID, len(b.Steps), MaxSteps)
	}
	seen := make(map[string]bool, len(b.Steps))
	runs := 0
	for i := range b.Steps {
		s := &b.Steps[i]
		if err := checkID(fmt.Sprintf("run-book %q: step %d: id", b.ID, i+1), s.ID); err != nil {
			return err
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("run-book %q: step %q: %s", b.ID, s.ID, fmt.Sprintf(format, args...))
		}
		if seen[s.ID] {
			return bad("id used twice")
		}
		for _, dep := range s.DependsOn {
			if !seen[dep] {
				if dep == s.ID {
					return bad("depends on itself")
				}
				if slices.ContainsFunc(b.Steps, func(o Step) bool { return o.ID == dep }) {
					return bad("depends on %q, which comes after it (list steps in an order their dependencies allow)", dep)
				}
				return bad("depends on %q, which is not a step of the book", dep)
			}
		}
		seen[s.ID] = true
		if len(s.Hosts) == 0 {
			return bad("no hosts")
		}
		if len(s.Hosts) > MaxStepHosts {
			return bad("%d hosts, at most %d", len(s.Hosts), MaxStepHosts)
		}
		runs += len(s.Hosts)
		for j, h := range s.Hosts {
			if h == 0 {
				return bad("host 0 is not a node ID")
			}
			if j > 0 && h <= s.Hosts[j-1] {
				return bad("hosts must be sorted without repeats, got %v", s.Hosts)
			}
		}
		n := 0
		for _, a := range s.Argv {
			n += len(a)
		}
		if n > MaxArgvBytes {
			return bad("argv of %d bytes, at most %d", n, MaxArgvBytes)
		}
		if len(s.Argv) > 0 && s.Argv[0] == "" {
			return bad("argv[0] is empty")
		}
		if s.Timeout <= 0 || s.Timeout > MaxTimeout {
			return bad("timeout %v outside (0, %v]", s.Timeout, MaxTimeout)
		}
		if s.Retries < 0 || s.Retries > MaxRetries {
			return bad("retries %d outside [0, %d]", s.Retries, MaxRetries)
		}
		if s.Barrier() && (s.Retries != 0 || s.Idempotent) {
			return bad("a barrier (no argv) takes no retries and no idempotent")
		}
		if s.MinVersion != "" && (!s.Barrier() || !buildinfo.Valid(s.MinVersion)) {
			return bad("min_version %q: a version gate is a barrier (no argv) with a semantic version, as v1.4.0", s.MinVersion)
		}
	}
	if runs > MaxRuns {
		return fmt.Errorf("run-book %q: %d runs (hosts summed over steps), at most %d", b.ID, runs, MaxRuns)
	}
	if n := len(appendBook(nil, b)); n > MaxBookBytes {
		return fmt.Errorf("run-book %q: %d bytes encoded, at most %d", b.ID, n, MaxBookBytes)
	}
	return nil
}

// CheckID tells whether id may name a run-book: 1 to MaxIDLen bytes of
// letters, digits and - _ . :, as Validate requires of a book's id. A
// reader of books checks with it what it is asked for, so a malformed id
// is refused as such rather than not found.
func CheckID(id string) error { return checkID("id", id) }

func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s is empty", what)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%s %.20q... is %d bytes, at most %d", what, id, len(id), MaxIDLen)
	}
	for _, r := range id {
		ok := r == '-' || r == '_' || r == '.' || r == ':' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("%s %q: only letters, digits and - _ . : are allowed", what, id)
		}
	}
	return nil
}

// step returns the step called id and its index, or -1.
func (b *Book) step(id string) (*Step, int) {
	for i := range b.Steps {
		if b.Steps[i].ID == id {
			return &b.Steps[i], i
		}
	}
	return nil, -1
}

// equal reports whether two books are the same submission.
func (b *Book) equal(o *Book) bool {
	return b.ID == o.ID && slices.EqualFunc(b.Steps, o.Steps, func(x, y Step) bool {
		return x.ID == y.ID && slices.Equal(x.Hosts, y.Hosts) && slices.Equal(x.Argv, y.Argv) &&
			slices.Equal(x.DependsOn, y.DependsOn) && x.Timeout == y.Timeout &&
			x.Retries == y.Retries && x.Idempotent == y.Idempotent && x.MinVersion == y.MinVersion
	})
}
