package vclock

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "replay one seed of TestReferenceSimulation")
	seedsFlag = flag.Int("seeds", 0, "run TestReferenceSimulation over seeds 1..N")
)

// simHost is a host in virtual time: its monotonic clock runs driftPPM
// fast from monoBase, and its wall clock is UTC plus offset.
type simHost struct {
	id       consensus.NodeID
	driftPPM int64
	monoBase int64
	offset   int64
	now      *int64 // true UTC, shared by every host
}

func (s *simHost) monoAt(utc int64) int64 { return s.monoBase + utc + utc/1_000_000*s.driftPPM }
func (s *simHost) Mono() int64            { return s.monoAt(*s.now) }
func (s *simHost) Wall() int64            { return *s.now + s.offset }

type memHWM struct {
	mu  sync.Mutex
	v   int64
	ok  bool
	err error
}

func (m *memHWM) Load() (int64, bool, error) { m.mu.Lock(); defer m.mu.Unlock(); return m.v, m.ok, nil }
func (m *memHWM) Store(v int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.v, m.ok = v, true
	return nil
}

func newSimHost(t *testing.T, c *simHost, errNs int64, hwm *memHWM) *Host {
	t.Helper()
	h, err := NewHost(HostConfig{ID: c.id, Clock: c, Source: WallSource{Clock: c, ErrNs: errNs}, HWM: hwm,
		Incarnation: uint64(c.id) + uint64(rand.Uint32())<<8})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// exchange runs one sample between leader and h in virtual time: the
// request takes d1 and the answer d2.
func exchange(leader *simHost, h *Host, c *simHost, d1, d2 int64, voter bool) Exchange {
	sent := leader.Mono()
	*c.now += d1
	s := h.Sample()
	*c.now += d2
	return Exchange{Host: c.id, SentNs: sent, RecvNs: leader.Mono(), Sample: s, Voter: voter}
}

// TestReferenceSimulation drives five hosts through two hours of ticks
// in virtual time, every fault drawn from one seed: wall clocks up to
// ±200 ms off, monotonic clocks up to ±100 ppm fast or slow, network
// jitter on every exchange, answers and ticks lost, leadership moving
// among all five, and one host's wall clock stepped an hour forward and,
// later, back. At every step it checks, on every host:
//
//   - a bounded reading contains the true time (the stepped host's too:
//     its output follows the committed reference, never its wall clock);
//   - readings never decrease, and between two readings the output runs
//     at 1±SlewPPM of the reference's timebase on the host, which is the
//     monotonic clock's corrected by at most DriftPPM;
//   - while the stepped host is wrong, every tick names it a falseticker;
//   - in steady state (after the first ten minutes, while every host is
//     SYNCHRONIZED and none is slewing after a jump of the reference), the
//     five hosts' readings at one instant lie within 500 µs of each other.
func TestReferenceSimulation(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8}
	switch {
	case *seedFlag != 0:
		seeds = []uint64{*seedFlag}
	case *seedsFlag > 0:
		seeds = seeds[:0]
		for i := range *seedsFlag {
			seeds = append(seeds, uint64(i+1))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			st, err := simulateReference(t, seed)
			if err != nil {
				t.Fatalf("seed %d: %v (replay: go test ./vclock -run TestReferenceSimulation -seed %d)", seed, err, seed)
			}
			t.Logf("seed %d: %d ticks (%d lost), %d readings checked, widest spread %v in %d steady-state ticks, "+
				"stepped host named falseticker in %d of %d ticks while wrong", seed, st.ticks, st.lost, st.readings,
				time.Duration(st.spread), st.steady, st.named, st.wrongTicks)
		})
	}
}

func trusted(s Status) bool { return s == StatusSynchronized || s == StatusHoldover }

type refSimStats struct {
	ticks, lost, readings int
	steady                int   // ticks in steady state
	spread                int64 // widest spread of simultaneous steady-state readings
	named, wrongTicks     int
}

func simulateReference(t *testing.T, seed uint64) (refSimStats, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const (
		ms        = int64(time.Millisecond)
		us        = int64(time.Microsecond)
		wallErr   = 200 * ms // every host's configured wall-clock error bound
		hour      = 3600 * 1000 * ms
		ticks     = 7200 // two hours at one tick a second
		steady    = 600  // ticks before steady state
		stepAt    = 1800 // the stepped host jumps +1 h here…
		unstepAt  = 4200 // …and back here
		maxSpread = 500 * us
	)
	utc := int64(1_700_000_000) * int64(time.Second)
	var clocks []*simHost
	var hosts []*Host
	for i := range 5 {
		c := &simHost{id: consensus.NodeID(i + 1), driftPPM: rng.Int64N(201) - 100,
			monoBase: rng.Int64N(1e12), offset: rng.Int64N(2*wallErr+1) - wallErr, now: &utc}
		clocks = append(clocks, c)
		hosts = append(hosts, newSimHost(t, c, wallErr, &memHWM{}))
	}
	stepped := clocks[rng.IntN(5)]
	baseOffset := stepped.offset
	var st refSimStats
	type point struct {
		mono, time int64
		status     Status
	}
	last := make([]point, len(hosts))
	check := func() error {
		for i, h := range hosts {
			m := clocks[i].Mono()
			r := h.Now()
			st.readings++
			p := last[i]
			if r.Time < p.time {
				return fmt.Errorf("host %d went back by %d ns", i+1, p.time-r.Time)
			}
			if trusted(p.status) && trusted(r.Status) && m > p.mono {
				// 1±ρ of the reference's timebase, which runs at the
				// monotonic clock's rate corrected by at most DriftPPM;
				// give or take a nanosecond of rounding at each end. (An
				// output nothing trusted yet, INITIALIZING or
				// UNSYNCHRONIZED, joins the reference with a forward step.)
				d, dm := r.Time-p.time, m-p.mono
				rho, drift := hosts[i].cfg.SlewPPM, hosts[i].cfg.DriftPPM
				slack := dm*(rho+drift)/1_000_000 + dm*(rho*drift/1_000_000+1)/1_000_000 + 4
				if d < dm-slack || d > dm+slack {
					return fmt.Errorf("host %d ran %d ns in %d ns of its monotonic clock: outside (1±%d ppm)(1±%d ppm)",
						i+1, d, dm, rho, drift)
				}
			}
			last[i] = point{m, r.Time, r.Status}
			if r.Status != StatusInitializing && (r.Earliest > utc || r.Latest < utc) {
				return fmt.Errorf("host %d at %v: [%d, %d] around the truth misses it", i+1, r.Status,
					r.Earliest-utc, r.Latest-utc)
			}
		}
		return nil
	}
	// jitter is one way's network delay: a floor plus up to 100 µs.
	jitter := func() int64 { return 20*us + rng.Int64N(100*us) }
	for tick := range ticks {
		switch tick {
		case stepAt:
			stepped.offset = baseOffset + hour
		case unstepAt:
			stepped.offset = baseOffset
		}
		leader := clocks[tick/600%5] // leadership moves every ten minutes
		var ex []Exchange
		for i, h := range hosts {
			if clocks[i] == leader {
				s := h.Sample()
				ex = append(ex, Exchange{Host: clocks[i].id, SentNs: s.MonoNs, RecvNs: s.MonoNs, Sample: s, Voter: true})
				continue
			}
			if rng.IntN(10) == 0 {
				continue // this host's answer was lost
			}
			ex = append(ex, exchange(leader, h, clocks[i], jitter(), jitter(), true))
		}
		at := leader.Mono()
		prior, ok := hosts[leader.id-1].Prior(at)
		tk, _, err := BuildTick(TickInput{Leader: leader.id, AtNs: at, Exchanges: ex, Voters: 5, DriftPPM: 100,
			Prior: prior, HasPrior: ok, MaxStepNs: int64(time.Second) * RefSlewPPM / 1_000_000})
		st.ticks++
		if err != nil || rng.IntN(20) == 0 {
			st.lost++
		} else {
			if stepped.offset != baseOffset {
				for _, a := range tk.Anchors {
					if a.Host == stepped.id {
						st.wrongTicks++
						if !a.Falseticker {
							return st, fmt.Errorf("tick %d: host %d, an hour off, is not named a falseticker", tick, a.Host)
						}
						st.named++
					}
				}
			}
			for _, h := range hosts {
				utc += rng.Int64N(ms)
				h.ApplyTick(tk)
				if err := check(); err != nil {
					return st, fmt.Errorf("tick %d: %w", tick, err)
				}
			}
		}
		utc += int64(time.Second) - 5*ms
		if err := check(); err != nil {
			return st, fmt.Errorf("tick %d: %w", tick, err)
		}
		if tick < steady {
			continue
		}
		lo, hi, converged := int64(math.MaxInt64), int64(math.MinInt64), true
		for i, h := range hosts {
			r := h.Now()
			lo, hi = min(lo, r.Time), max(hi, r.Time)
			converged = converged && r.Status == StatusSynchronized && h.Segment().ConvergedAt() <= clocks[i].Mono()
		}
		if converged {
			st.steady++
			st.spread = max(st.spread, hi-lo)
			if hi-lo > maxSpread {
				return st, fmt.Errorf("tick %d: the hosts' readings at one instant span %v", tick, time.Duration(hi-lo))
			}
		}
	}
	if st.wrongTicks == 0 {
		return st, fmt.Errorf("no tick carried the stepped host while it was wrong")
	}
	// The outputs have converged: each is within a millisecond of its
	// target, and the bound is no wider than the wall clocks' errors.
	for i, h := range hosts {
		r, seg := h.Now(), h.Segment()
		lag := seg.TargetNs + (clocks[i].Mono() - seg.MonoNs) - r.Time
		if r.Status == StatusInitializing || lag > ms || lag < -ms || r.Uncertainty() > 2*wallErr {
			return st, fmt.Errorf("after two hours host %d reads %v ±%v, %v behind its target", i+1, r.Status,
				time.Duration(r.Uncertainty()), time.Duration(lag))
		}
	}
	return st, nil
}

func TestHostLifecycle(t *testing.T) {
	utc := int64(1_700_000_000) * int64(time.Second)
	c := &simHost{id: 1, monoBase: 5e9, now: &utc}
	store := &memHWM{}
	h := newSimHost(t, c, 1000, store)
	if r := h.Now(); r.Status != StatusInitializing || r.Bounded() {
		t.Fatalf("fresh host reads %+v, want INITIALIZING and unbounded", r)
	}
	anchor := func(offset int64) ordering.Tick {
		return ordering.Tick{Seq: 1, Anchors: []ordering.Anchor{{Host: 1, Incarnation: h.Incarnation(),
			MonoNs: c.Mono(), RefNs: utc + offset, ErrNs: 1000}}}
	}
	h.ApplyTick(ordering.Tick{Anchors: []ordering.Anchor{{Host: 1, Incarnation: h.Incarnation() + 1}}})
	if h.Now().Status != StatusInitializing {
		t.Fatal("another incarnation's anchor synchronized the host")
	}
	h.ApplyTick(anchor(0))
	r := h.Now()
	if r.Status != StatusSynchronized || r.Time != utc || r.Uncertainty() != 1000 {
		t.Fatalf("after the first tick: %+v, want SYNCHRONIZED at the truth ±1µs", r)
	}
	utc += int64(3 * time.Second)
	if got := h.Now(); got.Status != StatusHoldover || got.Uncertainty() <= r.Uncertainty() {
		t.Fatalf("3s without ticks: %+v, want HOLDOVER with a wider bound", got)
	}
	utc += int64(15 * time.Minute)
	if got := h.Now(); got.Status != StatusUnsynchronized {
		t.Fatalf("15m without ticks: %v, want UNSYNCHRONIZED", got.Status)
	}

	// A restart: the new process starts at or above everything read.
	before := h.Now()
	h2 := newSimHost(t, c, 1000, store)
	if r := h2.Now(); r.Time < before.Time || r.Status != StatusInitializing {
		t.Fatalf("restarted host reads %+v, below %d", r, before.Time)
	}
	// The reference is now 10 ms behind what the old process read: the
	// new one must slew down, never step back.
	tk := ordering.Tick{Anchors: []ordering.Anchor{{Host: 1, Incarnation: h2.Incarnation(),
		MonoNs: c.Mono(), RefNs: before.Time - 10_000_000, ErrNs: 1000}}}
	h2.ApplyTick(tk)
	prev := h2.Now()
	for range 50 {
		utc += int64(time.Second)
		h2.ApplyTick(ordering.Tick{Anchors: []ordering.Anchor{{Host: 1, Incarnation: h2.Incarnation(),
			MonoNs: c.Mono(), RefNs: utc - (prev.Time - tk.Anchors[0].RefNs) + 0, ErrNs: 1000}}})
		r := h2.Now()
		if r.Time < prev.Time {
			t.Fatalf("went back from %d to %d", prev.Time, r.Time)
		}
		prev = r
	}

	store.err = errors.New("disk gone")
	utc += int64(2 * time.Second)
	h2.Now()
	if h2.Err() == nil {
		t.Fatal("a failing high-water mark store went unreported")
	}
}

func TestStatusChanges(t *testing.T) {
	utc := int64(1_700_000_000) * int64(time.Second)
	c := &simHost{id: 1, now: &utc}
	h := newSimHost(t, c, 1000, &memHWM{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.StatusChanges(ctx)
	if r := <-ch; r.Status != StatusInitializing {
		t.Fatalf("first: %v", r.Status)
	}
	h.ApplyTick(ordering.Tick{Anchors: []ordering.Anchor{{Host: 1, Incarnation: h.Incarnation(), MonoNs: c.Mono(), RefNs: utc}}})
	if r := <-ch; r.Status != StatusSynchronized {
		t.Fatalf("second: %v", r.Status)
	}
}
