package vmclock

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
)

// The simulated cluster. Every host's wall clock is within simWallErrNs
// of UTC, and its monotonic clock within simDriftPPM of UTC's rate: the
// bounds the hosts are configured with, so a bounded reference reading
// must contain the true time.
const (
	simMs        = int64(time.Millisecond)
	simSec       = int64(time.Second)
	simVoters    = 5
	simQuorum    = simVoters/2 + 1
	simWallErrNs = 200 * simMs
	simDriftPPM  = 100
	simTickNs    = simSec // the leader commits a tick this often
)

// simClock is one host's clocks in virtual time. The monotonic clock runs
// driftPPM fast (negative: slow) from monoBase; the wall clock reads UTC
// plus offsetNs, which a step may change, always within simWallErrNs.
type simClock struct {
	driftPPM, monoBase, offsetNs int64
	startNs                      int64  // UTC when the simulation began
	utc                          *int64 // true UTC, ns; shared by every host
}

func (c *simClock) Mono() int64 {
	e := *c.utc - c.startNs
	return c.monoBase + e + e*c.driftPPM/1_000_000
}

func (c *simClock) Wall() int64 { return *c.utc + c.offsetNs }

// simHWM is a host's high-water mark store; it survives the host's crashes.
type simHWM struct {
	ns int64
	ok bool
}

func (s *simHWM) Load() (int64, bool, error) { return s.ns, s.ok, nil }

func (s *simHWM) Store(ns int64) error {
	s.ns, s.ok = ns, true
	return nil
}

// simNode is one host. While it is down, host and machine are nil.
type simNode struct {
	id      consensus.NodeID
	clock   *simClock
	hwm     *simHWM
	host    *vclock.Host
	machine *ordering.Machine
	// applied counts the log entries machine has applied; kept counts the
	// entries on this host's disk, which a new incarnation replays.
	// Invariant: applied <= kept <= len(log).
	applied, kept int
	cut           bool  // partitioned away from the majority
	upAtNs        int64 // while down: the UTC at which the host restarts
	// lastRefNs is the greatest reference reading this host has served,
	// over all its incarnations.
	lastRefNs int64
}

// simStats counts what a run exercised.
type simStats struct {
	ticks, ticksMissed, crashes, partitions, wallSteps, cutProposals int
	migrations, races, ahead, stepped, readings                      int
	staleFreezes, staleRefused, retries, converged, convergeLong     int
}

func (s simStats) String() string {
	return fmt.Sprintf("%d migrations (%d resume races, one winner each; %d resumed ahead of the reference, "+
		"%d stepped by max lag), %d VM readings checked, %d/%d stale freezes refused, %d retries answered alike, "+
		"%d convergences checked (%d of them past 10 s), %d ticks (%d missed), %d crashes, "+
		"%d partitions (%d proposals from the cut side failed), %d wall steps",
		s.migrations, s.races, s.ahead, s.stepped, s.readings, s.staleRefused, s.staleFreezes, s.retries,
		s.converged, s.convergeLong, s.ticks, s.ticksMissed, s.crashes, s.partitions, s.cutProposals, s.wallSteps)
}

// simCluster is the hosts and their consensus, reduced to what the VM
// clocks see: one totally ordered log that every reachable host applies
// in order. A command commits only when its proposer is up, on the
// majority side, and a majority of the voters is up there with it.
type simCluster struct {
	rng     *rand.Rand
	utc     int64 // true UTC, ns
	startNs int64
	nodes   []*simNode
	log     [][]byte
	// first holds the first answer to each log entry: every host, and
	// every replay, must give the same.
	first  []any
	leader int
	healAt int64 // UTC at which the partition heals; 0: none
	// healed lists the hosts the last faults call reconnected.
	healed []int
	stats  simStats
}

func newSimCluster(seed uint64) (*simCluster, error) {
	c := &simCluster{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), utc: 1_700_000_000 * simSec}
	c.startNs = c.utc
	for i := range simVoters {
		clk := &simClock{driftPPM: c.rng.Int64N(2*simDriftPPM+1) - simDriftPPM, monoBase: c.rng.Int64N(1e15),
			offsetNs: c.wallOffset(), startNs: c.utc, utc: &c.utc}
		c.nodes = append(c.nodes, &simNode{id: consensus.NodeID(i + 1), clock: clk, hwm: &simHWM{}})
		if err := c.boot(i); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *simCluster) wallOffset() int64 { return c.rng.Int64N(2*simWallErrNs+1) - simWallErrNs }

// boot starts a new incarnation of node i: a fresh Host over the same
// high-water mark store, and a fresh Machine that replays the host's log
// from the start, then whatever it missed if it can reach the majority.
func (c *simCluster) boot(i int) error {
	n := c.nodes[i]
	h, err := vclock.NewHost(vclock.HostConfig{ID: n.id, Clock: n.clock,
		Source:   vclock.WallSource{Clock: n.clock, ErrNs: simWallErrNs},
		DriftPPM: simDriftPPM, HWM: n.hwm, Incarnation: c.rng.Uint64() | 1})
	if err != nil {
		return fmt.Errorf("host %d: %w", n.id, err)
	}
	n.host, n.machine, n.applied = h, &ordering.Machine{OnTick: h.ApplyTick}, 0
	if err := c.replay(i, n.kept); err != nil {
		return err
	}
	if c.reachable(i) {
		return c.replay(i, len(c.log))
	}
	return nil
}

func (c *simCluster) crash(i int) {
	n := c.nodes[i]
	n.host, n.machine, n.applied = nil, nil, 0
	n.upAtNs = c.utc + 2*simSec + c.rng.Int64N(88*simSec)
	c.stats.crashes++
}

// replay applies log entries up to upTo on node i, checking each answer
// against the entry's first.
func (c *simCluster) replay(i, upTo int) error {
	n := c.nodes[i]
	for ; n.applied < upTo; n.applied++ {
		at := n.applied
		res := n.machine.Apply(uint64(at+1), c.log[at])
		if err, ok := res.(error); ok {
			return fmt.Errorf("host %d: entry %d does not apply: %w", n.id, at+1, err)
		}
		if c.first[at] == nil {
			c.first[at] = res
		} else if res != c.first[at] {
			return fmt.Errorf("host %d answered entry %d with %+v; the first answer was %+v", n.id, at+1, res, c.first[at])
		}
	}
	n.kept = max(n.kept, n.applied)
	return nil
}

func (c *simCluster) reachable(i int) bool { return c.nodes[i].host != nil && !c.nodes[i].cut }

func (c *simCluster) quorum() bool {
	k := 0
	for i := range c.nodes {
		if c.reachable(i) {
			k++
		}
	}
	return k >= simQuorum
}

// pick returns a random node that ok accepts, or false if none does.
func (c *simCluster) pick(ok func(int) bool) (int, bool) {
	for _, i := range c.rng.Perm(len(c.nodes)) {
		if ok(i) {
			return i, true
		}
	}
	return 0, false
}

// propose commits cmd from node from, and returns from's answer. The
// proposer applies it first; every other reachable host applies it a
// little later, in random order. committed is false when the proposer
// is down or cut off, or the majority side lacks a quorum.
func (c *simCluster) propose(from int, cmd []byte) (answer any, committed bool, err error) {
	if !c.reachable(from) || !c.quorum() {
		c.stats.cutProposals++
		return nil, false, nil
	}
	c.log, c.first = append(c.log, cmd), append(c.first, nil)
	if err := c.replay(from, len(c.log)); err != nil {
		return nil, false, err
	}
	for _, i := range c.rng.Perm(len(c.nodes)) {
		if i != from && c.reachable(i) {
			c.utc += c.rng.Int64N(300 * simMs / 1000)
			if err := c.replay(i, len(c.log)); err != nil {
				return nil, false, err
			}
		}
	}
	return c.first[len(c.log)-1], true, nil
}

// tick is one round of the leader's: sample every host it reaches, some
// answers lost, build the tick over its own Prior, and commit it (or
// lose it).
func (c *simCluster) tick() error {
	if !c.quorum() {
		c.stats.ticksMissed++
		return nil
	}
	if !c.reachable(c.leader) || c.rng.IntN(300) == 0 {
		c.leader, _ = c.pick(c.reachable)
	}
	l := c.nodes[c.leader]
	own := l.host.Sample()
	ex := []vclock.Exchange{{Host: l.id, SentNs: own.MonoNs, RecvNs: own.MonoNs, Sample: own, Voter: true}}
	for i, n := range c.nodes {
		if i == c.leader || !c.reachable(i) || c.rng.IntN(10) == 0 {
			continue
		}
		sent := l.clock.Mono()
		c.utc += c.rng.Int64N(3 * simMs)
		s := n.host.Sample()
		c.utc += c.rng.Int64N(3 * simMs)
		ex = append(ex, vclock.Exchange{Host: n.id, SentNs: sent, RecvNs: l.clock.Mono(), Sample: s, Voter: true})
	}
	at := l.clock.Mono()
	prior, ok := l.host.Prior(at)
	tk, _, err := vclock.BuildTick(vclock.TickInput{Leader: l.id, AtNs: at, Exchanges: ex, Voters: simVoters,
		DriftPPM: simDriftPPM, Prior: prior, HasPrior: ok})
	if err != nil || c.rng.IntN(20) == 0 {
		c.stats.ticksMissed++
		return nil
	}
	c.stats.ticks++
	_, _, err = c.propose(c.leader, ordering.EncodeTick(&tk))
	return err
}

// faults restarts the hosts due back, heals a partition that is due, and
// at random cuts one or two hosts off, crashes one, or steps a wall clock.
func (c *simCluster) faults() error {
	c.healed = c.healed[:0]
	for i, n := range c.nodes {
		if n.host == nil && n.upAtNs <= c.utc {
			if err := c.boot(i); err != nil {
				return err
			}
		}
	}
	if c.healAt != 0 && c.healAt <= c.utc {
		c.healAt = 0
		for i, n := range c.nodes {
			if n.cut {
				c.healed = append(c.healed, i)
			}
			n.cut = false
			if c.reachable(i) {
				if err := c.replay(i, len(c.log)); err != nil {
					return err
				}
			}
		}
	}
	if c.healAt == 0 && c.rng.IntN(200) == 0 {
		for _, i := range c.rng.Perm(len(c.nodes))[:1+c.rng.IntN(2)] {
			c.nodes[i].cut = true
		}
		c.healAt = c.utc + 5*simSec + c.rng.Int64N(115*simSec)
		c.stats.partitions++
	}
	down := 0
	for _, n := range c.nodes {
		if n.host == nil {
			down++
		}
	}
	if down < 2 && c.rng.IntN(1500) == 0 {
		if i, ok := c.pick(func(i int) bool { return c.nodes[i].host != nil }); ok {
			c.crash(i)
			if c.rng.IntN(2) == 0 {
				// A quick restart, as systemd makes: back within the high-water
				// mark's window, the new output starts ahead of the reference.
				c.utc += 10*simMs + c.rng.Int64N(300*simMs)
				if err := c.boot(i); err != nil {
					return err
				}
			}
		}
	}
	if c.rng.IntN(3000) == 0 {
		c.nodes[c.rng.IntN(len(c.nodes))].clock.offsetNs = c.wallOffset()
		c.stats.wallSteps++
	}
	return nil
}

// now reads node i's reference output and holds it to the host's own
// promises: it never goes back, not across restarts either, and a bounded
// reading contains the true time.
func (c *simCluster) now(i int) (vclock.Reading, error) {
	n := c.nodes[i]
	r := n.host.Now()
	if r.Time < n.lastRefNs {
		return r, fmt.Errorf("host %d's reference went back by %d ns", n.id, n.lastRefNs-r.Time)
	}
	n.lastRefNs = r.Time
	if r.Bounded() && (r.Earliest > c.utc || r.Latest < c.utc) {
		return r, fmt.Errorf("host %d's reference reads %v [%+d, %+d] ns around the true time, missing it",
			n.id, r.Status, r.Earliest-c.utc, r.Latest-c.utc)
	}
	return r, nil
}
