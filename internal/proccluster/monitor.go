package proccluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/clockd/clockd/vclock"
)

// Monitor reads every node's clock in a loop, as a client would, and
// records violations: a reading lower than the one before from the same
// process, or a SYNCHRONIZED reading whose interval misses this machine's
// clock (the true time when the nodes' wall clocks are this machine's,
// give or take their configured skews, and a majority is not skewed).
type Monitor struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	last       map[uint64]vclock.Reading
	reads      int
	violations []string
}

// Monitor starts reading every node; Stop ends it.
func (c *Cluster) Monitor(ctx context.Context) *Monitor {
	ctx, cancel := context.WithCancel(ctx)
	m := &Monitor{cancel: cancel, last: map[uint64]vclock.Reading{}}
	for _, n := range c.Nodes {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.watch(ctx, c, n.ID)
		}()
	}
	return m
}

func (m *Monitor) watch(ctx context.Context, c *Cluster, id uint64) {
	for ctx.Err() == nil {
		cl, err := c.Dial(ctx, id)
		if err != nil {
			continue
		}
		for ctx.Err() == nil {
			before := time.Now().UnixNano()
			r, err := cl.Now(ctx)
			after := time.Now().UnixNano()
			if err != nil {
				break // the node is down; dial again
			}
			m.record(id, r, before, after)
		}
		cl.Close()
	}
}

func (m *Monitor) record(id uint64, r vclock.Reading, before, after int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, seen := m.last[id]
	m.last[id] = r
	m.reads++
	if seen && r.Time < prev.Time {
		m.violations = append(m.violations, fmt.Sprintf("node %d went back by %v", id, time.Duration(prev.Time-r.Time)))
	}
	if r.Status == vclock.StatusSynchronized && (r.Earliest > after || r.Latest < before) {
		m.violations = append(m.violations, fmt.Sprintf("node %d reads [%v, %v] around the true time", id,
			time.Duration(r.Earliest-after), time.Duration(r.Latest-before)))
	}
}

// Last is node id's latest reading.
func (m *Monitor) Last(id uint64) vclock.Reading {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[id]
}

// Forget drops node id's latest reading once its process was killed: its
// next process is a new reader of the clock (the high-water mark, not the
// monitor, carries monotonicity across the restart, and is checked by
// comparing with Last taken before Forget).
func (m *Monitor) Forget(id uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.last, id)
}

// Reads is how many readings were checked.
func (m *Monitor) Reads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

// Stop ends the reads and returns the violations.
func (m *Monitor) Stop() []string {
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.violations
}
