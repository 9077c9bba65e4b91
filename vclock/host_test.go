package vclock

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
)

var seedFlag = flag.Uint64("seed", 0, "replay one seed of TestReferenceSimulation")

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

// TestReferenceSimulation drives five hosts through an hour of ticks in
// virtual time: clocks with offsets and drift, one host an hour wrong,
// random delays, ticks lost. Every reading on every host must contain the
// true time, never decrease, and converge close to the truth.
func TestReferenceSimulation(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			if err := simulateReference(t, seed); err != nil {
				t.Fatalf("seed %d: %v (replay: go test ./vclock -run TestReferenceSimulation -seed %d)", seed, err, seed)
			}
		})
	}
}

func simulateReference(t *testing.T, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const ms = int64(time.Millisecond)
	utc := int64(1_700_000_000) * int64(time.Second)
	const wallErr = 50 * ms
	var clocks []*simHost
	var hosts []*Host
	for i := range 5 {
		c := &simHost{id: consensus.NodeID(i + 1), driftPPM: rng.Int64N(201) - 100,
			monoBase: rng.Int64N(1e12), offset: rng.Int64N(2*wallErr) - wallErr, now: &utc}
		if i == 4 {
			c.offset = 3600 * 1000 * ms // a broken clock
		}
		clocks = append(clocks, c)
		hosts = append(hosts, newSimHost(t, c, wallErr, &memHWM{}))
	}
	last := make([]int64, len(hosts))
	check := func() error {
		for i, h := range hosts {
			r := h.Now()
			if r.Time < last[i] {
				return fmt.Errorf("host %d went back by %d ns", i+1, last[i]-r.Time)
			}
			last[i] = r.Time
			if r.Status != StatusInitializing && (r.Earliest > utc || r.Latest < utc) {
				return fmt.Errorf("host %d at %v: [%d, %d] around the truth misses it", i+1, r.Status,
					r.Earliest-utc, r.Latest-utc)
			}
		}
		return nil
	}
	for tick := 0; tick < 3600; tick++ {
		leader := clocks[tick/600%4] // leadership moves among the good hosts
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
			ex = append(ex, exchange(leader, h, clocks[i], rng.Int64N(2*ms), rng.Int64N(2*ms), true))
		}
		at := leader.Mono()
		prior, ok := hosts[leader.id-1].Prior(at)
		tk, _, err := BuildTick(TickInput{Leader: leader.id, AtNs: at, Exchanges: ex, Voters: 5, DriftPPM: 100,
			Prior: prior, HasPrior: ok})
		if err == nil && rng.IntN(20) != 0 {
			for _, h := range hosts {
				utc += rng.Int64N(ms)
				h.ApplyTick(tk)
				if err := check(); err != nil {
					return err
				}
			}
		}
		utc += int64(time.Second) - 5*ms
		if err := check(); err != nil {
			return err
		}
	}
	// The outputs have converged: each is within a millisecond of its
	// target, and the bound is no wider than the wall clocks' errors.
	for i, h := range hosts {
		r, seg := h.Now(), h.Segment()
		lag := seg.TargetNs + (clocks[i].Mono() - seg.MonoNs) - r.Time
		if r.Status == StatusInitializing || lag > ms || lag < -ms || r.Uncertainty() > 2*wallErr {
			return fmt.Errorf("after an hour host %d reads %v ±%v, %v behind its target", i+1, r.Status,
				time.Duration(r.Uncertainty()), time.Duration(lag))
		}
	}
	return nil
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
