package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/ordering"
)

// The event pipeline against a model of the cluster: one state machine,
// and a network that reorders, drops, duplicates and delays proposals and
// loses answers, each drawn from a seed that a failure prints.

// fakeCluster applies the pipeline's proposals to one ordering.Machine,
// in an order and with outcomes drawn from rng.
type fakeCluster struct {
	m   *ordering.Machine
	rng *rand.Rand

	mu      sync.Mutex
	down    bool          // answer every try with an error, apply nothing
	stalled bool          // keep every try pending
	stallAt int           // stall once this many events are committed (0: never)
	held    chan struct{} // closed once a try is pending while stalled
	holding sync.Once
	pending []fakeTry             // sent, not yet decided
	ghosts  [][]byte              // answered as failed, may still be applied
	inject  [][]byte              // to apply before the next try: another proposer's
	kinds   map[ordering.Kind]int // the tries sent, by command kind
	kick    chan struct{}
}

type fakeTry struct {
	cmd  []byte
	done chan<- outcome
}

var errLost = errors.New("fake: answer lost")

func newFakeCluster(m *ordering.Machine, seed uint64) *fakeCluster {
	return &fakeCluster{m: m, rng: rand.New(rand.NewPCG(seed, 1)), kick: make(chan struct{}, 1),
		held: make(chan struct{})}
}

func (c *fakeCluster) send(_ context.Context, cmd []byte, done chan<- outcome) {
	c.mu.Lock()
	if c.kinds == nil {
		c.kinds = map[ordering.Kind]int{}
	}
	c.kinds[ordering.Kind(cmd[0])]++
	c.pending = append(c.pending, fakeTry{cmd: cmd, done: done})
	c.noteHeldLocked()
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// noteHeldLocked closes held once a try waits while stalled. c.mu is held.
func (c *fakeCluster) noteHeldLocked() {
	if c.stalled && len(c.pending) > 0 {
		c.holding.Do(func() { close(c.held) })
	}
}

func (c *fakeCluster) setDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run decides the tries sent until ctx ends. Only it applies commands, as
// the driver goroutine does.
func (c *fakeCluster) run(ctx context.Context) {
	for {
		c.mu.Lock()
		if c.stallAt > 0 && int(c.m.LastGSN()) >= c.stallAt {
			c.stalled = true
			c.noteHeldLocked()
		}
		if len(c.pending) == 0 || c.stalled {
			c.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-c.kick:
			}
			continue
		}
		injected := c.inject
		c.inject = nil
		// One of the first few sent: tries overtake one another.
		i := c.rng.IntN(min(len(c.pending), 4))
		t := c.pending[i]
		c.pending = slices.Delete(c.pending, i, i+1)
		down := c.down
		fate := c.rng.IntN(100)
		var ghost []byte
		if len(c.ghosts) > 0 && c.rng.IntN(10) == 0 {
			k := c.rng.IntN(len(c.ghosts))
			ghost = c.ghosts[k]
			c.ghosts = slices.Delete(c.ghosts, k, k+1)
		}
		if !down && fate >= 85 && fate < 92 {
			c.ghosts = append(c.ghosts, t.cmd)
		}
		c.mu.Unlock()
		for _, cmd := range injected {
			c.m.Apply(0, cmd)
		}
		if ghost != nil && !down {
			c.m.Apply(0, ghost) // a new leader re-proposes an old value
		}
		switch {
		case down:
			t.done <- outcome{err: &consensus.NotLeaderError{}}
		case fate < 75:
			t.done <- resultOutcome(c.m.Apply(0, t.cmd), nil)
		case fate < 80: // dropped before it got a slot
			t.done <- outcome{err: &consensus.NotLeaderError{}}
		case fate < 85: // applied, but the answer is lost
			c.m.Apply(0, t.cmd)
			t.done <- outcome{err: errLost}
		case fate < 92: // the answer is lost, and the value may come later
			t.done <- outcome{err: errLost}
		default: // later: back in line
			c.send(ctx, t.cmd, t.done)
		}
	}
}

// fakeClock moves on only when the pipeline waits on it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

type memEpochs struct {
	mu sync.Mutex
	v  int64
}

func (e *memEpochs) Load() (int64, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.v, e.v != 0, nil
}

func (e *memEpochs) Store(v int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.v = v
	return nil
}

// rig is a pipeline of node 1 on a fake cluster, and what it committed.
type rig struct {
	t       *testing.T
	m       *ordering.Machine
	d       *Daemon
	p       *eventPipeline
	cluster *fakeCluster
	spool   *spool
	epochs  *memEpochs

	mu        sync.Mutex
	committed []string // "source/seq", in GSN order
	changed   chan struct{}
}

func newRig(t *testing.T, seed uint64, dir string, epochs *memEpochs, m *ordering.Machine) *rig {
	t.Helper()
	return newRigConfig(t, seed, dir, epochs, m, Defaults())
}

// newRigConfig is newRig with the daemon's configuration cfg.
func newRigConfig(t *testing.T, seed uint64, dir string, epochs *memEpochs, m *ordering.Machine, cfg Config) *rig {
	t.Helper()
	sp, err := openSpool(filepath.Join(dir, "spool"), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	r := &rig{t: t, m: m, spool: sp, epochs: epochs, changed: make(chan struct{}, 1)}
	m.OnEvents = func(c ordering.Committed) {
		r.mu.Lock()
		for _, e := range c.Events() {
			r.committed = append(r.committed, fmt.Sprintf("%s/%d", e.Event.Source, e.Event.SourceSeq))
		}
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
	r.d = &Daemon{id: 1, cfg: cfg, log: zap.NewNop(), metrics: newMetrics(), machine: m}
	r.p, err = newEventPipeline(r.d, nil, sp, epochs)
	if err != nil {
		t.Fatal(err)
	}
	r.cluster = newFakeCluster(m, seed)
	r.p.send, r.p.clock = r.cluster.send, &fakeClock{now: time.Unix(1e9, 0)}
	m.OnBatch = r.p.noteBatch
	return r
}

// start runs the cluster and the pipeline until the returned stop.
func (r *rig) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.cluster.run(ctx) }()
	go func() { defer wg.Done(); r.p.run(ctx) }()
	return func() { cancel(); wg.Wait() }
}

// waitCommitted returns once n events are committed.
func (r *rig) waitCommitted(n int) {
	r.t.Helper()
	for {
		r.mu.Lock()
		got := len(r.committed)
		r.mu.Unlock()
		if got >= n {
			return
		}
		<-r.changed
	}
}

// appendAll appends, from one goroutine per source, batches of random
// sizes of each source's events numbered 1..perSource, and returns what
// the senders were told. Source "free" brings no sequence numbers.
func (r *rig) appendAll(rng *rand.Rand, sources []string, perSource int) []appendResult {
	return r.appendUntil(context.Background(), rng, sources, perSource)
}

// appendUntil is appendAll until ctx ends: then each source stops, and
// what it was told of a batch unanswered is not counted.
func (r *rig) appendUntil(ctx context.Context, rng *rand.Rand, sources []string, perSource int) []appendResult {
	var mu sync.Mutex
	var out []appendResult
	var wg sync.WaitGroup
	for _, src := range sources {
		sizes := []int{}
		for n := 0; n < perSource; {
			k := min(perSource-n, 1+rng.IntN(60))
			sizes = append(sizes, k)
			n += k
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := uint64(0)
			for _, k := range sizes {
				evs := make([]ingest.Event, k)
				for i := range evs {
					seq++
					evs[i] = ingest.Event{Host: "h", Source: src, SourceSeq: seq, Kind: "log", Name: "e"}
					if src == "free" {
						evs[i].SourceSeq = 0
					}
				}
				if ctx.Err() != nil {
					return
				}
				w := &waiter{left: k, done: make(chan appendResult, 1)}
				if err := r.p.add(ctx, evs, w); err != nil {
					return
				}
				var res appendResult
				select {
				case res = <-w.done:
				case <-ctx.Done():
					return
				}
				if got := res.accepted + res.duplicates + res.spooled; got != k {
					r.t.Errorf("a batch of %d answered for %d: %+v", k, got, res)
				}
				mu.Lock()
				out = append(out, res)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// checkLog: every source's events 1..perSource committed once each, in
// order.
func (r *rig) checkLog(seed uint64, sources []string, perSource int) {
	r.t.Helper()
	want := map[string]int{}
	for _, src := range sources {
		want[src] = perSource
	}
	r.checkCounts(seed, want)
}

// checkCounts: each source's events 1..want[source] committed once each,
// in order, and nothing else.
func (r *rig) checkCounts(seed uint64, want map[string]int) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	next := map[string]int{}
	for _, e := range r.committed {
		var src string
		var seq int
		if _, err := fmt.Sscanf(e, "%s", &src); err != nil {
			r.t.Fatalf("seed %d: event %q", seed, e)
		}
		i := len(e) - 1
		for e[i] != '/' {
			i--
		}
		src = e[:i]
		fmt.Sscanf(e[i+1:], "%d", &seq)
		if seq != next[src]+1 {
			r.t.Fatalf("seed %d: source %s: seq %d after %d", seed, src, seq, next[src])
		}
		next[src] = seq
	}
	total := 0
	for src, n := range want {
		if next[src] != n {
			r.t.Fatalf("seed %d: source %s has %d of %d events committed", seed, src, next[src], n)
		}
		total += n
	}
	if len(r.committed) != total {
		r.t.Fatalf("seed %d: %d events committed, want %d", seed, len(r.committed), total)
	}
}

// TestPipelineExactlyOnceInOrder: whatever the network does to the
// proposals, every event commits exactly once and each source keeps its
// order, and each sender hears about each of its events, as accepted,
// also when the try that committed it lost its answer. Odd seeds run
// with event_compression none, even ones with the default, s2.
func TestPipelineExactlyOnceInOrder(t *testing.T) {
	sources := []string{"a", "b", "c", "free"}
	const perSource = 400
	for seed := range uint64(20) {
		cfg, kind := Defaults(), ordering.KindEventBatchS2
		if seed%2 == 1 {
			cfg.EventCompression, kind = "none", ordering.KindEventBatch
		}
		r := newRigConfig(t, seed, t.TempDir(), &memEpochs{}, &ordering.Machine{}, cfg)
		stop := r.start()
		answers := r.appendAll(rand.New(rand.NewPCG(seed, 2)), sources, perSource)
		r.waitCommitted(len(sources) * perSource) // spooled events come later
		stop()
		r.checkLog(seed, sources, perSource)
		accepted, spooled := 0, 0
		for _, a := range answers {
			accepted += a.accepted
			spooled += a.spooled
		}
		if accepted != len(sources)*perSource-spooled {
			t.Fatalf("seed %d: %d events acknowledged as accepted, want %d (and %d spooled)", seed, accepted,
				len(sources)*perSource-spooled, spooled)
		}
		r.cluster.mu.Lock()
		if len(r.cluster.kinds) != 1 || r.cluster.kinds[kind] == 0 {
			t.Fatalf("seed %d, event_compression %s: proposed %v, want only %v", seed, cfg.EventCompression,
				r.cluster.kinds, kind)
		}
		r.cluster.mu.Unlock()
	}
}

// TestPipelineSpoolsWhileDown: while no try succeeds, the pipeline gives
// its batches to the spool once they have waited spillAfter, and answers
// their senders; back up, it commits everything once, in order.
func TestPipelineSpoolsWhileDown(t *testing.T) {
	sources := []string{"a", "b", "free"}
	const perSource = 150
	r := newRig(t, 7, t.TempDir(), &memEpochs{}, &ordering.Machine{})
	r.cluster.setDown(true)
	stop := r.start()
	answers := r.appendAll(rand.New(rand.NewPCG(7, 2)), sources, perSource)
	spooled := 0
	for _, a := range answers {
		spooled += a.spooled
	}
	if spooled != len(sources)*perSource || r.spool.Len() != spooled {
		t.Fatalf("%d events answered as spooled, %d in the spool; want %d", spooled, r.spool.Len(),
			len(sources)*perSource)
	}
	r.cluster.setDown(false)
	r.waitCommitted(len(sources) * perSource)
	stop()
	r.checkLog(7, sources, perSource)
	// What the spool still holds (batches whose answer had not come at
	// the stop) is committed: the next start proposes it in vain.
	left, _, err := r.spool.Read(r.spool.Head(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if e.SourceSeq > r.m.SourceSeq(e.Host, e.Source) {
			t.Fatalf("spooled event %s/%d is not committed", e.Source, e.SourceSeq)
		}
	}
}

// TestPipelineRestart: a pipeline stops with batches in flight whose
// copies may still commit; the next run starts a new epoch from the
// spool, and neither the late copies nor the replay commit anything
// twice or out of order.
func TestPipelineRestart(t *testing.T) {
	const half = 150
	for seed := range uint64(10) {
		dir, epochs, m := t.TempDir(), &memEpochs{}, &ordering.Machine{}
		first := newRig(t, seed, dir, epochs, m)
		// Stop while batches are in flight: the network holds them once
		// 100 events are committed.
		first.cluster.stallAt = 100
		stop := first.start()
		ctx, cancel := context.WithCancel(context.Background())
		appended := make(chan struct{})
		go func() {
			defer close(appended)
			first.appendUntil(ctx, rand.New(rand.NewPCG(seed, 3)), []string{"a", "b", "free"}, half)
		}()
		<-first.cluster.held
		cancel()
		<-appended
		stop() // what is not known committed goes to the spool
		epoch1 := epochs.v
		first.cluster.mu.Lock()
		late := slices.Clone(first.cluster.ghosts)
		for _, t := range first.cluster.pending {
			late = append(late, t.cmd)
		}
		first.cluster.mu.Unlock()
		first.spool.Close()

		// The next run numbers "free" after what the spool holds, and
		// sends the events of a, b and free again from the spool.
		second := newRig(t, seed+100, dir, epochs, m)
		if second.spool.Len() == 0 {
			t.Fatalf("seed %d: nothing spooled at the stop", seed)
		}
		second.committed = first.committed
		for _, cmd := range late[:len(late)/2] {
			m.Apply(0, cmd) // before the new epoch: may commit, in order
		}
		want := map[string]int{}
		for _, src := range []string{"a", "b", "free"} {
			want[src] = int(max(m.SourceSeq("h", src), second.spool.seqs["h\x00"+src]))
		}
		stop = second.start()
		second.appendAll(rand.New(rand.NewPCG(seed, 4)), []string{"c", "free"}, half)
		want["c"], want["free"] = half, want["free"]+half
		total := 0
		for _, n := range want {
			total += n
		}
		second.waitCommitted(total)
		for _, cmd := range late[len(late)/2:] {
			second.cluster.send(context.Background(), cmd, make(chan outcome, 1)) // after it: rejected
		}
		stop()
		if epochs.v <= epoch1 {
			t.Fatalf("seed %d: epoch %d after %d", seed, epochs.v, epoch1)
		}
		second.checkCounts(seed, want)
	}
}

// TestSpoolEmptiedThenRefilled: once the last spooled batch is
// committed and popped, the spool is truncated, and events spooled after
// that are read from its new start, not from where the old ones ended.
// (add spools while the spool holds events; TestPipelineRestart met the
// case when such a push came right after the pop that emptied it.)
func TestSpoolEmptiedThenRefilled(t *testing.T) {
	r := newRig(t, 1, t.TempDir(), &memEpochs{}, &ordering.Machine{})
	evs := func(from, n int) []ingest.Event {
		out := make([]ingest.Event, n)
		for i := range out {
			out[i] = ingest.Event{Host: "h", Source: "s", SourceSeq: uint64(from + i), Kind: "log", Name: "e"}
		}
		return out
	}
	if _, err := r.spool.Push(evs(1, 50)); err != nil {
		t.Fatal(err)
	}
	f := r.p.cut()
	if f == nil || len(f.events) != 50 {
		t.Fatalf("cut the spooled batch: %+v", f)
	}
	r.p.finish(f) // committed: popped, and the spool emptied
	if r.spool.Len() != 0 {
		t.Fatalf("spool holds %d events after its only batch was popped", r.spool.Len())
	}
	if _, err := r.spool.Push(evs(51, 10)); err != nil {
		t.Fatal(err)
	}
	g := r.p.cut()
	if g == nil || len(g.events) != 10 || g.events[0].SourceSeq != 51 {
		t.Fatalf("after a refill, cut %+v, want events 51..60", g)
	}
	if n := counterValue(r.d.metrics.eventsDropped); n != 0 {
		t.Fatalf("%v events dropped", n)
	}
}

// TestPipelineConflict: when the state shows this node's pipeline at an
// epoch it did not take (its data directory was lost, say), the pipeline
// moves above it instead of taking its batches for committed.
func TestPipelineConflict(t *testing.T) {
	for seed := range uint64(10) {
		m := &ordering.Machine{}
		r := newRig(t, seed, t.TempDir(), &memEpochs{}, m)
		// Another run of node 1 gets far ahead (batches 1 and 2 of a
		// later epoch) at the seed*7th try, with batches of this run in
		// flight, some committed and some whose answers were lost.
		orig, sends := r.p.send, 0
		r.p.send = func(ctx context.Context, cmd []byte, done chan<- outcome) {
			if sends++; sends == int(seed)*7+1 {
				r.cluster.mu.Lock()
				for n := uint64(1); n <= 2; n++ {
					r.cluster.inject = append(r.cluster.inject,
						ordering.EncodeEvents(&ordering.Events{Origin: 1, Epoch: 1 << 40, Batch: n}))
				}
				r.cluster.mu.Unlock()
			}
			orig(ctx, cmd, done)
		}
		stop := r.start()
		r.appendAll(rand.New(rand.NewPCG(seed, 5)), []string{"a", "b"}, 200)
		r.waitCommitted(400)
		stop()
		r.checkLog(seed, []string{"a", "b"}, 200)
		if e, _ := m.Pipeline(1); sends > int(seed)*7 && e <= 1<<40 {
			t.Fatalf("seed %d: pipeline at epoch %d", seed, e)
		}
	}
}

// TestForwardOrder: batches forwarded by one origin reach consensus in
// batch order whatever order the calls arrive in; a batch whose
// predecessor never comes goes on after the wait; a new epoch starts at
// once.
func TestForwardOrder(t *testing.T) {
	o := forwardOrder{maxWait: time.Hour}
	var mu sync.Mutex
	var order []batchPos
	submit := func(pos batchPos) {
		_, err := o.submit(context.Background(), 2, pos, func() (*driver.Pending, error) {
			mu.Lock()
			order = append(order, pos)
			mu.Unlock()
			return nil, nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	var wg sync.WaitGroup
	for n := uint64(8); n >= 1; n-- { // the calls arrive last first
		wg.Add(1)
		go func() { defer wg.Done(); submit(batchPos{epoch: 3, batch: n}) }()
	}
	wg.Wait()
	submit(batchPos{epoch: 4, batch: 1})
	for i, pos := range order {
		want := batchPos{epoch: 3, batch: uint64(i + 1)}
		if i == 8 {
			want = batchPos{epoch: 4, batch: 1}
		}
		if pos != want {
			t.Fatalf("submitted %v", order)
		}
	}
	o.maxWait = time.Millisecond
	submit(batchPos{epoch: 4, batch: 3}) // batch 2 never comes
	if got := order[len(order)-1]; got != (batchPos{epoch: 4, batch: 3}) {
		t.Fatalf("last submitted %v", got)
	}
}

func TestEventsResultCodec(t *testing.T) {
	for _, r := range []ordering.EventsResult{
		{},
		{FirstGSN: 1 << 40, Accepted: 3, Duplicates: 2, DuplicateAt: []int{0, 4}, Epoch: 9, Batch: 1 << 33},
		{Rejected: true, Epoch: 7, Batch: 2},
	} {
		got, err := decodeEventsResult(encodeEventsResult(r))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("%+v came back as %+v, %v", r, got, err)
		}
	}
	if _, err := decodeEventsResult([]byte{1, 2}); err == nil {
		t.Fatal("a truncated result decoded")
	}
}

// gateClock's After tells asked when called and fires only when the test
// sends on fire.
type gateClock struct {
	asked chan struct{}
	fire  chan time.Time
}

func (c gateClock) Now() time.Time { return time.Unix(1e9, 0) }

func (c gateClock) After(time.Duration) <-chan time.Time {
	c.asked <- struct{}{}
	return c.fire
}

// TestAppliedResultWaits: a batch the leader says is committed, by a try
// whose answer was lost, is answered with what this host's state machine
// heard when it applied it, also when it applies it later; a batch it has
// not applied within appliedWait gets no result.
func TestAppliedResultWaits(t *testing.T) {
	clock := gateClock{asked: make(chan struct{}, 1), fire: make(chan time.Time, 1)}
	p := &eventPipeline{d: &Daemon{id: 2}, clock: clock}
	f := &flight{epoch: 3, batch: 7}
	want := ordering.EventsResult{FirstGSN: 40, Accepted: 5, Epoch: 3, Batch: 7}
	got := make(chan ordering.EventsResult)
	go func() {
		res, ok := p.appliedResult(f)
		if !ok {
			res = ordering.EventsResult{}
		}
		got <- res
	}()
	<-clock.asked                                             // waiting: nothing applied yet
	p.noteBatch(1, 3, 7, ordering.EventsResult{FirstGSN: 1})  // another host's
	p.noteBatch(2, 3, 6, ordering.EventsResult{FirstGSN: 30}) // another batch
	p.noteBatch(2, 3, 7, want)
	if res := <-got; !reflect.DeepEqual(res, want) {
		t.Fatalf("got %+v, want %+v", res, want)
	}
	go func() {
		_, ok := p.appliedResult(&flight{epoch: 3, batch: 8})
		got <- ordering.EventsResult{Accepted: map[bool]int{true: 1}[ok]}
	}()
	<-clock.asked
	clock.fire <- time.Time{}
	if res := <-got; res.Accepted != 0 {
		t.Fatal("a batch never applied got a result")
	}
	// The record stays bounded.
	for b := uint64(1); b <= 10*appliedKeep; b++ {
		p.noteBatch(2, 4, b, ordering.EventsResult{})
	}
	if n := len(p.applied); n > 2*appliedKeep+1 {
		t.Fatalf("%d results kept", n)
	}
}
