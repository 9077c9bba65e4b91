package runbook_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering/runbook"
)

// FuzzDecodeState: any bytes decode to a state or to an error, never a
// panic; a state that decodes encodes to bytes that decode again to a
// state encoding the same (the encoding is canonical: varints shortest,
// so it may be shorter than what was read, never longer).
func FuzzDecodeState(f *testing.F) {
	f.Add([]byte{0, 0, 0})
	f.Add(rawState(2, 2, sampleEntries()...))
	var s runbook.State
	g := &gen{books: map[string]runbook.Book{}}
	for seed := range uint64(4) {
		g.rng = newRand(seed)
		var last uint64
		for range 60 {
			last = max(last, s.Apply(g.command(&s, last)).Token)
		}
		f.Add(s.AppendState(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeState(b)
		if err != nil {
			return
		}
		again := s.AppendState(nil)
		if len(again) > len(b) || (len(again) == len(b) && !bytes.Equal(again, b)) {
			t.Fatalf("%x decoded, and re-encodes as %x", b, again)
		}
		if err := roundTrip(again); err != nil {
			t.Fatalf("%x decoded; re-encoded: %v", b, err)
		}
	})
}

// FuzzParse: Parse never panics, and the hosts it gives are node IDs,
// sorted without repeats.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/upgrade.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add("id: b\nsteps:\n  - id: s\n    hosts: [3, 1, 3]\n    timeout: 1h\n")
	f.Add("id: b\nsteps:\n  - id: s\n    hosts: all\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		b, err := runbook.Parse(strings.NewReader(in), "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, st := range b.Steps {
			if slices.Contains(st.Hosts, 0) || !slices.IsSorted(st.Hosts) || len(slices.Compact(slices.Clone(st.Hosts))) != len(st.Hosts) {
				t.Fatalf("step %q has hosts %v", st.ID, st.Hosts)
			}
		}
	})
}

// TestRandomCommands applies seeded random commands, sensible ones and
// bogus ones (unknown books, steps and hosts, stale and unknown tokens,
// other claims, oversized fields, invalid books), to three states: two
// built alike, and one decoded from its own encoding before every
// command. All three must answer alike and encode alike, every answer
// must pass checkAnswer, and the rules of the package doc must hold
// after every command (checkRules). A failure names its seed, and
// go test -run 'TestRandomCommands/seed=N' replays it.
func TestRandomCommands(t *testing.T) {
	var seen coverage
	for seed := range uint64(32) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { randomCommands(t, seed, 400, &seen) })
	}
	if err := seen.check(); err != nil {
		t.Fatalf("the commands drawn miss something: %v", err)
	}
}

func randomCommands(t *testing.T, seed uint64, n int, seen *coverage) {
	g := &gen{rng: newRand(seed), books: map[string]runbook.Book{}}
	var a, b, c runbook.State
	var last uint64
	before := a.AppendState(nil)
	for i := range n {
		cmd := g.command(&a, last)
		fail := func(format string, args ...any) {
			t.Helper()
			what := fmt.Sprintf("%T%+v", cmd, cmd)
			if len(what) > 300 {
				what = what[:300] + "..."
			}
			t.Fatalf("seed %d, command %d, %s: %s", seed, i, what, fmt.Sprintf(format, args...))
		}
		// c, like a, holds before: decoded from it, it must encode it again.
		var err error
		if c, err = decodeState(before); err != nil {
			fail("the state's own bytes do not decode: %v", err)
		}
		if again := c.AppendState(nil); !bytes.Equal(again, before) {
			fail("the state decoded re-encodes as\n%x, not\n%x", again, before)
		}
		ra, rb, rc := a.Apply(cmd), b.Apply(cmd), c.Apply(cmd)
		after := a.AppendState(nil)
		if ra != rb || ra != rc {
			fail("answers differ: %+v, %+v, and %+v from the decoded state", ra, rb, rc)
		}
		if !bytes.Equal(after, b.AppendState(nil)) || !bytes.Equal(after, c.AppendState(nil)) {
			fail("the states differ")
		}
		if err := checkAnswer(&a, cmd, ra, before, after, &last); err != nil {
			fail("%v", err)
		}
		if err := checkRules(&a, last); err != nil {
			fail("%v", err)
		}
		seen.add(cmd, ra, &a)
		before = after
	}
	if err := roundTrip(before); err != nil {
		t.Fatalf("seed %d, at the end: %v", seed, err)
	}
}

// gen draws commands: most act on a host's next run as its executor
// would, with claims and tokens sometimes out of date; the rest submit
// and cancel books, or are bogus.
type gen struct {
	rng   *rand.Rand
	books map[string]runbook.Book // every book drawn, by id
}

// newRand is the generator a seed names.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x72756e)) }

var simHosts = []consensus.NodeID{1, 2, 3, 4}

func (g *gen) command(s *runbook.State, last uint64) any {
	switch k := g.rng.IntN(20); {
	case k < 2:
		return runbook.Submit{Book: g.book(), AtNs: g.rng.Int64N(1000)}
	case k < 3:
		return runbook.Cancel{Book: g.bookID(s), Reason: g.text(runbook.MaxReasonLen)}
	case k < 6:
		return g.bogus(s, last)
	}
	h := simHosts[g.rng.IntN(len(simHosts))]
	w, ok := s.Next(h)
	if !ok {
		return runbook.Submit{Book: g.book()}
	}
	at := g.rng.Int64N(1e6)
	switch {
	case w.Run.State == runbook.Pending || g.rng.IntN(5) == 0:
		// A start, or (running) a retried one or a restarted host's.
		return runbook.Start{Book: w.Book, Step: w.Step.ID, Host: h, Claim: g.claim(), AtNs: at}
	case g.rng.IntN(5) == 0:
		return runbook.Abandon{Book: w.Book, Step: w.Step.ID, Host: h, Token: g.token(w.Run.Token), AtNs: at,
			Reason: g.text(runbook.MaxReasonLen + g.rng.IntN(2))}
	}
	return runbook.Finish{Book: w.Book, Step: w.Step.ID, Host: h, Token: g.token(w.Run.Token), Exit: g.exit(),
		AtNs: at, Digest: g.text(runbook.MaxDigestLen), Output: g.text(runbook.MaxOutputTail + g.rng.IntN(2))}
}

// bogus draws a command aimed anywhere: at any run in any state, or at
// books, steps and hosts that do not exist, with any token.
func (g *gen) bogus(s *runbook.State, last uint64) any {
	book, step, host := g.bookID(s), "s0", simHosts[g.rng.IntN(len(simHosts))]
	if e, ok := s.Entry(book); ok {
		step = e.Book.Steps[g.rng.IntN(len(e.Book.Steps))].ID
	}
	switch g.rng.IntN(4) {
	case 0:
		book = "nope"
	case 1:
		step = "nope"
	case 2:
		host = 9
	}
	token := g.rng.Uint64N(last + 2)
	switch g.rng.IntN(4) {
	case 0:
		return runbook.Start{Book: book, Step: step, Host: host, Claim: g.claim()}
	case 1:
		return runbook.Finish{Book: book, Step: step, Host: host, Token: token, Exit: g.exit(),
			Output: g.text(runbook.MaxOutputTail + 1)}
	case 2:
		return runbook.Abandon{Book: book, Step: step, Host: host, Token: token}
	}
	return runbook.Cancel{Book: book, Reason: g.text(runbook.MaxReasonLen + 1)}
}

// book draws a book id from a few; half the time an id drawn before
// comes back as the same book (a retry), else as a new one.
func (g *gen) book() runbook.Book {
	id := fmt.Sprintf("b%d", g.rng.IntN(10))
	if b, ok := g.books[id]; ok && g.rng.IntN(2) == 0 {
		return b
	}
	b := runbook.Book{ID: id}
	for i := range 1 + g.rng.IntN(5) {
		st := runbook.Step{ID: fmt.Sprintf("s%d", i), Timeout: time.Second}
		for _, h := range simHosts {
			if g.rng.IntN(2) == 0 {
				st.Hosts = append(st.Hosts, h)
			}
		}
		if len(st.Hosts) == 0 {
			st.Hosts = hosts(simHosts[g.rng.IntN(len(simHosts))])
		}
		if g.rng.IntN(4) > 0 {
			st.Argv = []string{"run", st.ID}
			st.Retries = g.rng.IntN(3)
			st.Idempotent = g.rng.IntN(2) == 0
		}
		for j := range i {
			if g.rng.IntN(3) == 0 {
				st.DependsOn = append(st.DependsOn, fmt.Sprintf("s%d", j))
			}
		}
		b.Steps = append(b.Steps, st)
	}
	if g.rng.IntN(20) == 0 {
		b.Steps[0].Hosts = nil // Validate refuses it
	}
	if _, ok := g.books[id]; !ok {
		g.books[id] = b
	}
	return b
}

// bookID draws a kept book's id, or now and then one never submitted.
func (g *gen) bookID(s *runbook.State) string {
	es := s.Entries()
	if len(es) == 0 || g.rng.IntN(10) == 0 {
		return fmt.Sprintf("b%d", g.rng.IntN(12))
	}
	return es[g.rng.IntN(len(es))].Book.ID
}

// claim draws from few claims, so that retries happen.
func (g *gen) claim() uint64 { return 1 + g.rng.Uint64N(3) }

// token is mostly the run's latest, else one near it.
func (g *gen) token(latest uint64) uint64 {
	switch g.rng.IntN(8) {
	case 0:
		return latest - 1
	case 1:
		return latest + 1
	case 2:
		return 0
	}
	return latest
}

func (g *gen) exit() int { return []int{0, 0, 0, 1, 2, -1}[g.rng.IntN(6)] }

// text is empty, short, or now and then max bytes long.
func (g *gen) text(max int) string {
	switch g.rng.IntN(8) {
	case 0, 1, 2:
		return ""
	case 7:
		return strings.Repeat("z", max)
	}
	return "x"
}

// checkRules checks, naively, what the package doc promises of any
// state: tokens are unique and none above the last granted; a run that
// was ever started had its step's dependencies done; failures stay
// within the retries; a cancelled book has nothing pending; every step
// that depends, directly or not, on a step that failed or ended unknown
// is skipped on every host; at most KeptFinished finished books are kept;
// and for each host, the runs before its first unfinished one have all
// ended, no later one runs, and Next names that first one.
func checkRules(s *runbook.State, last uint64) error {
	es := s.Entries()
	tokens := map[uint64]bool{}
	for ei := range es {
		e := &es[ei]
		dead := map[string]bool{} // steps that can no longer succeed
		for i, st := range e.Book.Steps {
			blocked := false
			for _, dep := range st.DependsOn {
				blocked = blocked || dead[dep]
			}
			for _, r := range e.Runs[i] {
				where := fmt.Sprintf("%s/%s@%d", e.Book.ID, st.ID, r.Host)
				switch {
				case r.Token > last || (r.Token != 0 && tokens[r.Token]):
					return fmt.Errorf("%s: token %d repeats or is above %d", where, r.Token, last)
				case (r.Token != 0) != (r.Attempts > 0):
					return fmt.Errorf("%s: token %d after %d attempts", where, r.Token, r.Attempts)
				case r.Attempts > 0 && !depsDone(e, i):
					return fmt.Errorf("%s: started before its dependencies were done", where)
				case r.Failures > r.Attempts || r.Failures > st.Retries+1:
					return fmt.Errorf("%s: %d failures in %d attempts, %d retries", where, r.Failures, r.Attempts, st.Retries)
				case r.State == runbook.Failed && !e.Cancelled && r.Failures != st.Retries+1:
					return fmt.Errorf("%s: failed after %d failures, %d retries", where, r.Failures, st.Retries)
				case e.Cancelled && r.State == runbook.Pending:
					return fmt.Errorf("%s: pending in a cancelled book", where)
				case blocked && r.State != runbook.Skipped:
					return fmt.Errorf("%s: %s, yet a step it depends on cannot succeed", where, r.State)
				}
				tokens[r.Token] = true
				if blocked || r.State == runbook.Failed || r.State == runbook.Unknown {
					dead[st.ID] = true
				}
			}
		}
	}
	if n := countFinished(es); n > runbook.KeptFinished {
		return fmt.Errorf("%d finished books kept", n)
	}
	for _, h := range append(simHosts, 9) {
		if err := checkHostOrder(s, es, h); err != nil {
			return err
		}
	}
	return nil
}

// depsDone reports whether step i's dependencies succeeded on all their
// hosts.
func depsDone(e *runbook.Entry, i int) bool {
	for _, dep := range e.Book.Steps[i].DependsOn {
		for j, st := range e.Book.Steps {
			for _, r := range e.Runs[j] {
				if st.ID == dep && r.State != runbook.Succeeded {
					return false
				}
			}
		}
	}
	return true
}

func checkHostOrder(s *runbook.State, es []runbook.Entry, h consensus.NodeID) error {
	var want *runbook.Work
	for ei := range es {
		e := &es[ei]
		for i, st := range e.Book.Steps {
			for _, r := range e.Runs[i] {
				switch {
				case r.Host != h || r.State.Terminal():
				case want == nil:
					want = &runbook.Work{Book: e.Book.ID, Step: st, Run: r, Ready: depsDone(e, i), Cancelled: e.Cancelled}
				case r.State == runbook.Running:
					return fmt.Errorf("host %d runs %s/%s while %s/%s has not ended", h, e.Book.ID, st.ID,
						want.Book, want.Step.ID)
				}
			}
		}
	}
	got, ok := s.Next(h)
	switch {
	case want == nil && !ok:
		return nil
	case want == nil || !ok:
		return fmt.Errorf("host %d: Next gives %+v, %v, want %+v", h, got, ok, want)
	}
	if got.Book != want.Book || got.Step.ID != want.Step.ID || got.Run != want.Run || got.Ready != want.Ready ||
		got.Cancelled != want.Cancelled {
		return fmt.Errorf("host %d: Next gives %+v, want %+v", h, got, *want)
	}
	return nil
}

// coverage counts what the random commands reached, so that a generator
// that only ever draws refusals cannot pass for a test.
type coverage struct {
	applied, refused map[string]int
	states           map[runbook.RunState]int
}

func (c *coverage) add(cmd any, res runbook.Result, s *runbook.State) {
	if c.applied == nil {
		c.applied, c.refused, c.states = map[string]int{}, map[string]int{}, map[runbook.RunState]int{}
	}
	kind := fmt.Sprintf("%T", cmd)
	if res.Code == 0 {
		c.applied[kind]++
	} else {
		c.refused[kind+" "+codeName(res.Code)]++
	}
	for _, e := range s.Entries() {
		for _, runs := range e.Runs {
			for _, r := range runs {
				c.states[r.State]++
			}
		}
	}
}

func (c *coverage) check() error {
	for _, kind := range []string{"Submit", "Start", "Finish", "Abandon", "Cancel"} {
		if c.applied["runbook."+kind] == 0 {
			return fmt.Errorf("no %s applied (%v)", kind, c.applied)
		}
	}
	for _, r := range []string{"Submit invalid-argument", "Submit already-exists", "Start not-found",
		"Start failed-precondition", "Finish not-found", "Finish failed-precondition", "Finish invalid-argument",
		"Abandon failed-precondition", "Cancel failed-precondition", "Cancel invalid-argument"} {
		if c.refused["runbook."+r] == 0 {
			return fmt.Errorf("no %s refused (%v)", r, c.refused)
		}
	}
	for st := runbook.Pending; st <= runbook.Skipped; st++ {
		if c.states[st] == 0 {
			return fmt.Errorf("no run ever %s", st)
		}
	}
	return nil
}
