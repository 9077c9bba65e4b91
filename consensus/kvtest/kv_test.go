package kvtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/consensus/kvtest"
	"github.com/clockd/clockd/internal/devcluster"
)

const (
	numClients = 6
	// opBudget is how long a client keeps retrying one operation before
	// it gives up on it.
	opBudget = 2 * time.Second
	// impatience is how long an impatient client waits for one attempt:
	// about an election timeout, so a write sent to a leader that is cut
	// off often ends in a deadline of unknown outcome.
	impatience = 250 * time.Millisecond
	// paceDelay spaces retries while no leader is known: about one tick.
	paceDelay = 20 * time.Millisecond
)

var keys = []string{"a", "b", "c", "d", "e"}

// TestLinearizableUnderFaults runs concurrent clients against a 3-node
// loopback cluster while a fault injector kills, restarts and partitions
// nodes, then checks the recorded history with porcupine. Set
// KVTEST_SEED to replay a fault schedule and client mix.
func TestLinearizableUnderFaults(t *testing.T) {
	tests := []struct {
		name     string
		lease    time.Duration // zero: every read takes a heartbeat round
		workload time.Duration
	}{
		{name: "read-index", workload: 8 * time.Second},
		{name: "lease-reads", lease: 150 * time.Millisecond, workload: 8 * time.Second},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed := testSeed(t) + uint64(i)
			t.Logf("seed %d (KVTEST_SEED=%d replays this run's choices)", seed, seed-uint64(i))
			r := startRun(t, seed, tt.lease)
			r.drive(tt.workload)
			r.checkConverged()
			r.checkLinearizable()
		})
	}
}

func testSeed(t *testing.T) uint64 {
	if s := os.Getenv("KVTEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("KVTEST_SEED=%q: %v", s, err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

// run is one test run: a cluster, its fault injector and the history the
// clients record.
type run struct {
	t      *testing.T
	seed   uint64
	c      *devcluster.Cluster
	faults *faults
	start  time.Time // zero of the history's clock

	mu      sync.Mutex
	history []porcupine.Operation

	nextProc atomic.Int64 // porcupine process ids
	restores atomic.Int64 // KV.Restore calls, on start or snapshot install
	stats    struct{ ok, unknown, resolved, dropped, retried atomic.Int64 }
	// errs counts failed attempts by cause.
	errs struct{ notLeader, outcomeUnknown, stopped, deadline, other atomic.Int64 }
}

func startRun(t *testing.T, seed uint64, lease time.Duration) *run {
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	r := &run{t: t, seed: seed, faults: newFaults(t, seed, log)}
	c, err := devcluster.Start(devcluster.Config{
		Nodes: 3, Dir: t.TempDir(), Logger: log,
		Core: consensus.Config{Lease: lease},
		// Snapshot often and keep a short log tail, so restarted nodes
		// also catch up by snapshot (KV.Restore) and not only by replay.
		Driver: driver.Config{SnapshotEntries: 100, SnapshotTrailing: 20},
		NewStateMachine: func(consensus.NodeID) driver.StateMachine {
			return &countingKV{KV: kvtest.New(), restores: &r.restores}
		},
		Filter: r.faults.allow,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	r.c, r.faults.c = c, c
	r.start = time.Now()
	return r
}

// countingKV counts snapshot restores, to show the run exercised them.
type countingKV struct {
	*kvtest.KV
	restores *atomic.Int64
}

func (c *countingKV) Restore(rd io.Reader) error {
	c.restores.Add(1)
	return c.KV.Restore(rd)
}

func kvOf(n *devcluster.Node) *kvtest.KV { return n.SM.(*countingKV).KV }

// now is the history's clock: monotonic nanoseconds since the run began.
func (r *run) now() int64 { return time.Since(r.start).Nanoseconds() }

// newProc returns a fresh porcupine process id. A client whose operation
// never returned continues as a new process, as in Jepsen: one process
// has at most one operation open.
func (r *run) newProc() int { return int(r.nextProc.Add(1)) - 1 }

// record adds op to the history and returns its index.
func (r *run) record(op porcupine.Operation) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.history = append(r.history, op)
	return len(r.history) - 1
}

// settle closes the unknown writes at indexes at time ret.
func (r *run) settle(indexes []int, ret int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, i := range indexes {
		r.history[i].Return = ret
	}
}

// drive runs the clients and the fault injector for the workload time,
// then heals everything and lets the clients finish their last operation.
func (r *run) drive(workload time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), workload)
	defer cancel()
	r.nextProc.Store(numClients)
	var wg sync.WaitGroup
	for i := range numClients {
		cl := &client{r: r, id: uint64(i + 1), proc: i, patient: i%2 == 0, seen: map[string]string{},
			rng: rand.New(rand.NewPCG(r.seed, uint64(i+1)))}
		wg.Go(func() { cl.loop(ctx) })
	}
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		r.faults.run(ctx)
	}()
	<-faultsDone
	r.faults.healAllOrFail()
	wg.Wait()
	r.finalReads()
	r.t.Logf("ops: %d ok (%d after an attempt of unknown outcome), %d unknown, %d dropped (reads that failed, writes refused every time), "+
		"%d retried attempts; failed attempts: %d not-leader, %d outcome-unknown, %d stopped, %d deadline, %d other; "+
		"%d snapshot restores; faults: %s",
		r.stats.ok.Load(), r.stats.resolved.Load(), r.stats.unknown.Load(), r.stats.dropped.Load(), r.stats.retried.Load(),
		r.errs.notLeader.Load(), r.errs.outcomeUnknown.Load(), r.errs.stopped.Load(), r.errs.deadline.Load(),
		r.errs.other.Load(), r.restores.Load(), r.faults)
	if ok := r.stats.ok.Load(); ok < 100 {
		r.t.Errorf("only %d operations succeeded, want at least 100: the run proves little", ok)
	}
	if err := r.faults.covered(); err != nil {
		r.t.Error(err)
	}
}

// finalReads reads every key once the cluster is healed and quiet, so a
// write lost at the end shows up in the history.
func (r *run) finalReads() {
	cl := &client{r: r, id: numClients + 1, proc: r.newProc(), patient: true, seen: map[string]string{},
		rng: rand.New(rand.NewPCG(r.seed, numClients+1))}
	for _, k := range keys {
		if !cl.do(opInput{Kind: kindGet, Key: k}, 10*time.Second) {
			r.t.Errorf("final read of %q failed on the healed cluster", k)
		}
	}
}

// checkConverged writes a marker through the leader, waits until every
// node has applied it, and compares the replicas' maps at one slot.
// Commands a client gave up on may still be chosen after the marker, so
// the replicas are compared once they all stand at the same slot, the
// furthest any of them has reached.
func (r *run) checkConverged() {
	cl := &client{r: r, id: numClients + 2, proc: r.newProc(), patient: true, seen: map[string]string{},
		rng: rand.New(rand.NewPCG(r.seed, numClients+2))}
	if !cl.do(opInput{Kind: kindPut, Key: "marker", Value: "end"}, 10*time.Second) {
		r.t.Fatal("marker write failed on the healed cluster")
	}
	target := cl.lastSlot
	deadline := time.After(10 * time.Second)
	for {
		var kvs []*kvtest.KV
		for _, id := range r.c.IDs() {
			n := r.c.Node(id)
			if n == nil {
				r.t.Fatalf("node %d is down after healing", id)
			}
			kvs = append(kvs, kvOf(n))
		}
		// Wait until every node has applied through target.
		for i, kv := range kvs {
			for {
				applied, changed := kv.Applied()
				if applied >= target {
					break
				}
				select {
				case <-changed:
				case <-deadline:
					r.t.Fatalf("node %d applied up to slot %d, want %d", r.c.IDs()[i], applied, target)
				}
			}
		}
		slots := make([]uint64, len(kvs))
		states := make([]map[string]string, len(kvs))
		same := true
		for i, kv := range kvs {
			slots[i], states[i] = kv.State()
			target = max(target, slots[i])
			same = same && slots[i] == slots[0]
		}
		if !same {
			continue // some went further meanwhile: catch the others up
		}
		for i := 1; i < len(kvs); i++ {
			if !maps.Equal(states[i], states[0]) {
				r.t.Errorf("at slot %d node %d state %v, node %d has %v",
					slots[0], r.c.IDs()[i], states[i], r.c.IDs()[0], states[0])
			}
		}
		return
	}
}

// client issues one operation at a time, like a real client: it follows
// leader hints and retries an operation until it succeeds or its budget
// runs out. Retries of a write reuse its (client, seq) id, so KV applies
// it at most once. An impatient client waits at most impatience for one
// attempt and gives a write up as soon as one attempt's outcome is
// unknown, so the history holds writes of unknown outcome.
type client struct {
	r       *run
	id      uint64 // KV session
	proc    int    // porcupine process; replaced after an unknown outcome
	patient bool   // retry a write of unknown outcome within its budget
	seq     uint64
	rng     *rand.Rand
	target  consensus.NodeID
	// seen is the last value observed per key, so CAS sometimes succeeds.
	seen     map[string]string
	lastSlot uint64
	// unsettled indexes this client's writes of unknown outcome that
	// are still pending in the history.
	unsettled []int
}

func (cl *client) loop(ctx context.Context) {
	for ctx.Err() == nil {
		cl.do(cl.pick(), opBudget)
	}
}

func (cl *client) pick() opInput {
	k := keys[cl.rng.IntN(len(keys))]
	v := fmt.Sprintf("%d.%d ", cl.id, cl.seq+1)
	switch p := cl.rng.IntN(100); {
	case p < 40:
		return opInput{Kind: kindGet, Key: k}
	case p < 60:
		return opInput{Kind: kindPut, Key: k, Value: v}
	case p < 85:
		return opInput{Kind: kindAppend, Key: k, Value: v}
	default:
		return opInput{Kind: kindCAS, Key: k, Old: cl.seen[k], Value: v}
	}
}

// outcome classifies one attempt.
type outcome int

const (
	done       outcome = iota // took effect, output known
	notApplied                // certainly had no effect; retry
	maybe                     // may have taken effect; retry the same id
)

// do runs one operation with retries for up to budget and records it. It
// reports whether the operation's outcome is known to be success.
func (cl *client) do(in opInput, budget time.Duration) bool {
	deadline := time.Now().Add(budget)
	if in.Kind != kindGet {
		cl.seq++
	}
	var call int64
	mayHaveApplied := false // by an earlier attempt
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if attempt > 0 {
			cl.r.stats.retried.Add(1)
		}
		if !mayHaveApplied {
			call = cl.r.now()
		}
		out, res := cl.attempt(in, deadline)
		switch res {
		case done:
			ret := cl.r.now()
			cl.r.record(porcupine.Operation{ClientId: cl.proc, Input: in, Call: call, Output: out, Return: ret})
			cl.r.stats.ok.Add(1)
			if in.Kind != kindGet {
				cl.r.settle(cl.unsettled, ret)
				cl.unsettled = nil
			}
			if mayHaveApplied {
				cl.r.stats.resolved.Add(1)
			}
			return true
		case maybe:
			mayHaveApplied = in.Kind != kindGet
		}
		if mayHaveApplied && !cl.patient {
			break
		}
	}
	if !mayHaveApplied {
		cl.r.stats.dropped.Add(1)
		return false
	}
	// The write may take effect at any time from its call on, or never,
	// and the model accepts any output for it. It stays pending until
	// this client's next successful write returns (settle): once a later
	// seq applied, KV ignores every copy of this one. Without such a
	// write it stays pending to the end of the history (Return -1 until
	// checkLinearizable sets it).
	i := cl.r.record(porcupine.Operation{ClientId: cl.proc, Input: in, Call: call,
		Output: opOutput{Unknown: true}, Return: -1})
	cl.unsettled = append(cl.unsettled, i)
	cl.r.stats.unknown.Add(1)
	cl.proc = cl.r.newProc() // this process never returned
	return false
}

// attempt sends in once, to the node the client believes leads.
func (cl *client) attempt(in opInput, deadline time.Time) (opOutput, outcome) {
	n := cl.node()
	if n == nil {
		pace(deadline)
		return opOutput{}, notApplied
	}
	if !cl.patient {
		deadline = minTime(deadline, time.Now().Add(impatience))
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var out opOutput
	var err error
	if in.Kind == kindGet {
		if err = n.Replica.Read(ctx); err == nil {
			out.Value = kvOf(n).Get(in.Key)
			cl.seen[in.Key] = out.Value
		}
	} else {
		out, err = cl.write(ctx, n, in)
	}
	if err == nil {
		return out, done
	}
	return opOutput{}, cl.failed(n.ID, err, deadline)
}

func (cl *client) write(ctx context.Context, n *devcluster.Node, in opInput) (opOutput, error) {
	ops := map[string]kvtest.Op{kindPut: kvtest.OpPut, kindAppend: kvtest.OpAppend, kindCAS: kvtest.OpCAS}
	cmd := kvtest.Command{Op: ops[in.Kind], Client: cl.id, Seq: cl.seq, Key: in.Key, Value: in.Value, Old: in.Old}
	res, err := n.Replica.Propose(ctx, cmd.Encode())
	if err != nil {
		return opOutput{}, err
	}
	v, ok := res.Value.(kvtest.Result)
	if !ok {
		// ErrStale or ErrMalformed for the client's own latest
		// operation: the log or the state machine is broken.
		cl.r.t.Errorf("client %d seq %d %s: apply returned %v", cl.id, cl.seq, in, res.Value)
		return opOutput{}, fmt.Errorf("bad apply result %v", res.Value)
	}
	cl.lastSlot = res.Slot
	cl.seen[in.Key] = v.Prev
	if v.OK {
		cl.seen[in.Key] = in.Value
		if in.Kind == kindAppend {
			cl.seen[in.Key] = v.Prev + in.Value
		}
	}
	return opOutput{Value: v.Prev, OK: v.OK}, nil
}

// failed classifies a failed attempt and picks the next target.
func (cl *client) failed(asked consensus.NodeID, err error, deadline time.Time) outcome {
	cl.r.countErr(err)
	var nl *consensus.NotLeaderError
	switch {
	case errors.As(err, &nl):
		// Refused before it got a slot, or dropped from the leader's
		// queue unslotted: it was not and will not be chosen.
		cl.target = nl.Leader
		if nl.Leader == 0 || nl.Leader == asked {
			cl.target = 0
			pace(deadline)
		}
		return notApplied
	case errors.Is(err, consensus.ErrBusy), errors.Is(err, consensus.ErrTransferring):
		pace(deadline)
		return notApplied
	default:
		// ErrOutcomeUnknown, ErrStopped, a deadline after submission:
		// the command may be in the log.
		cl.target = 0
		pace(deadline)
		return maybe
	}
}

func (r *run) countErr(err error) {
	var nl *consensus.NotLeaderError
	switch {
	case errors.As(err, &nl):
		r.errs.notLeader.Add(1)
	case errors.Is(err, driver.ErrOutcomeUnknown):
		r.errs.outcomeUnknown.Add(1)
	case errors.Is(err, driver.ErrStopped):
		r.errs.stopped.Add(1)
	case errors.Is(err, context.DeadlineExceeded):
		r.errs.deadline.Add(1)
	default:
		r.errs.other.Add(1)
	}
}

// node returns the node to ask: the last known leader, else whichever
// node believes it leads, else a random running node, which will name the
// leader.
func (cl *client) node() *devcluster.Node {
	if cl.target != 0 {
		if n := cl.r.c.Node(cl.target); n != nil {
			return n
		}
	}
	if n := cl.r.c.Leader(); n != nil {
		cl.target = n.ID
		return n
	}
	ids := cl.r.c.IDs()
	cl.target = ids[cl.rng.IntN(len(ids))]
	return cl.r.c.Node(cl.target)
}

// pace spaces out retries while the cluster elects a leader. The driver
// offers no leadership notification, so this is the one place a client
// waits on the clock.
func pace(deadline time.Time) {
	d := min(paceDelay, time.Until(deadline))
	if d > 0 {
		<-time.After(d)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
