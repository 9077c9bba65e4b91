package devcluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
)

// BenchmarkPropose256 measures commits per second of 64-byte commands from
// 256 concurrent in-process clients on a three-node loopback cluster with
// fsync on. b.N is the total number of commands.
func BenchmarkPropose256(b *testing.B) {
	l := benchCluster(b)
	cmd := make([]byte, 64)
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if _, err := l.Replica.Propose(context.Background(), cmd); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkPropose1 measures the commit latency of one client proposing
// 64-byte commands one after another.
func BenchmarkPropose1(b *testing.B) {
	l := benchCluster(b)
	cmd := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		if _, err := l.Replica.Propose(context.Background(), cmd); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCluster starts a three-node cluster for a benchmark and returns its
// leader; the cluster closes when the benchmark ends.
func benchCluster(b *testing.B) *Node {
	c, err := Start(Config{Dir: b.TempDir(),
		NewStateMachine: func(consensus.NodeID) driver.StateMachine { return &counter{} }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	for c.Leader() == nil {
		<-time.After(10 * time.Millisecond)
	}
	return c.Leader()
}
