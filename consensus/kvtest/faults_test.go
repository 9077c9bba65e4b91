package kvtest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/devcluster"
)

// Fault steps come every faultEveryMs plus up to faultJitterMs; a fault
// lasts faultMinMs plus up to faultJitterMs unless a heal-all ends it
// first.
const (
	faultEveryMs  = 500
	faultMinMs    = 300
	faultJitterMs = 700
)

// faults kills, restarts and isolates nodes on a schedule drawn from one
// seed. At most one node is faulty at a time, except that one step in
// five may take a second node out, so the cluster also spends short
// spells without a majority.
//
// Only the run goroutine touches the fields below cut; cut is read by
// every transport through allow.
type faults struct {
	t   *testing.T
	log *zap.Logger
	rng *rand.Rand
	c   *devcluster.Cluster
	cut atomic.Uint64 // bit id set: node id is cut off from every other node

	down     map[consensus.NodeID]time.Time // stopped nodes and when to restart them
	isolated map[consensus.NodeID]time.Time // cut nodes and when to reconnect them
	steps    int
	n        struct{ kills, restarts, isolations, reconnects, healAlls int }
}

func newFaults(t *testing.T, seed uint64, log *zap.Logger) *faults {
	return &faults{t: t, log: log, rng: rand.New(rand.NewPCG(seed, 0)),
		down: map[consensus.NodeID]time.Time{}, isolated: map[consensus.NodeID]time.Time{}}
}

// allow is the cluster's Filter: it drops every message to or from a cut
// node.
func (f *faults) allow(from, to consensus.NodeID) bool {
	m := f.cut.Load()
	return from == to || m&(1<<from|1<<to) == 0
}

func (f *faults) String() string {
	return fmt.Sprintf("%d steps, %d kills, %d restarts, %d isolations, %d reconnects, %d heal-alls",
		f.steps, f.n.kills, f.n.restarts, f.n.isolations, f.n.reconnects, f.n.healAlls)
}

// covered reports an error unless every kind of fault happened.
func (f *faults) covered() error {
	if f.n.kills == 0 || f.n.restarts == 0 || f.n.isolations == 0 || f.n.reconnects == 0 || f.n.healAlls == 0 {
		return fmt.Errorf("fault schedule left a kind of fault out: %s", f)
	}
	return nil
}

// run injects faults until ctx is done. It leaves faults in place: call
// healAll afterwards.
func (f *faults) run(ctx context.Context) {
	for {
		wait := time.Duration(faultEveryMs+f.rng.IntN(faultJitterMs)) * time.Millisecond
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		now := time.Now()
		f.expire(now)
		f.step(now)
	}
}

// step injects one fault. The first three steps are a kill, a heal-all and
// an isolation, so every kind happens in every run; the rest are random.
func (f *faults) step(now time.Time) {
	kind := f.rng.IntN(10)
	switch f.steps {
	case 0:
		kind = 0
	case 1:
		kind = 9
	case 2:
		kind = 4
	}
	f.steps++
	switch {
	case kind < 4:
		if v, ok := f.victim(); ok {
			f.kill(v, now.Add(f.duration()))
		}
	case kind < 8:
		if v, ok := f.victim(); ok {
			f.isolate(v, now.Add(f.duration()))
		}
	default:
		f.healAll()
	}
}

func (f *faults) duration() time.Duration {
	return time.Duration(faultMinMs+f.rng.IntN(faultJitterMs)) * time.Millisecond
}

// victim picks a healthy node, the leader half of the time, if the fault
// budget allows one more faulty node.
func (f *faults) victim() (consensus.NodeID, bool) {
	budget := 1
	if f.rng.IntN(5) == 0 {
		budget = 2
	}
	if len(f.down)+len(f.isolated) >= budget {
		return 0, false
	}
	var healthy []consensus.NodeID
	for _, id := range f.c.IDs() {
		if _, d := f.down[id]; !d {
			if _, i := f.isolated[id]; !i {
				healthy = append(healthy, id)
			}
		}
	}
	if l := f.c.Leader(); l != nil && f.rng.IntN(2) == 0 {
		if _, d := f.down[l.ID]; !d {
			if _, i := f.isolated[l.ID]; !i {
				return l.ID, true
			}
		}
	}
	return healthy[f.rng.IntN(len(healthy))], true
}

func (f *faults) kill(id consensus.NodeID, until time.Time) {
	f.log.Info("fault: kill", zap.Uint64("node", uint64(id)))
	f.c.Stop(id)
	f.down[id] = until
	f.n.kills++
}

func (f *faults) isolate(id consensus.NodeID, until time.Time) {
	f.log.Info("fault: isolate", zap.Uint64("node", uint64(id)))
	f.isolated[id] = until
	f.cut.Or(1 << id)
	f.n.isolations++
}

// expire ends the faults whose time is up.
func (f *faults) expire(now time.Time) {
	for id, until := range f.down {
		if now.After(until) {
			f.restart(id)
		}
	}
	for id, until := range f.isolated {
		if now.After(until) {
			f.reconnect(id)
		}
	}
}

func (f *faults) restart(id consensus.NodeID) {
	if err := f.c.Restart(id); err != nil {
		// Left down; the next step tries again.
		f.log.Warn("fault: restart failed", zap.Uint64("node", uint64(id)), zap.Error(err))
		return
	}
	delete(f.down, id)
	f.n.restarts++
}

func (f *faults) reconnect(id consensus.NodeID) {
	f.cut.And(^uint64(1 << id))
	delete(f.isolated, id)
	f.n.reconnects++
}

// healAll restarts every stopped node and reconnects every cut one.
func (f *faults) healAll() {
	for id := range f.isolated {
		f.reconnect(id)
	}
	for id := range f.down {
		f.restart(id)
	}
	f.n.healAlls++
}

// healAllOrFail heals everything, retrying restarts that fail.
func (f *faults) healAllOrFail() {
	for range 10 {
		f.healAll()
		if len(f.down) == 0 {
			return
		}
		<-time.After(100 * time.Millisecond) // a port may still be held by the killed node
	}
	f.t.Fatalf("nodes still down after healing: %v", f.down)
}
