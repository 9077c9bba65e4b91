package sim

import (
	"container/heap"

	"github.com/clockd/clockd/consensus"
)

// flight is one message in the simulated network.
type flight struct {
	at   int64  // delivery time, virtual ms
	seq  uint64 // tie-break: send order, keeps runs deterministic
	msg  consensus.Message
	snap *snapshotImage // a snapshot transfer from msg.From to msg.To instead of a message
}

type flightQueue []flight

func (q flightQueue) Len() int { return len(q) }
func (q flightQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q flightQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *flightQueue) Push(x any)   { *q = append(*q, x.(flight)) }
func (q *flightQueue) Pop() any {
	old := *q
	f := old[len(old)-1]
	*q = old[:len(old)-1]
	return f
}

// network delays, drops, duplicates and reorders messages, and cuts links.
// Reordering comes from independent random delays.
type network struct {
	q   flightQueue
	seq uint64
	// cut[from][to] drops every message on that directed link.
	cut map[consensus.NodeID]map[consensus.NodeID]bool
}

func newNetwork() *network {
	return &network{cut: map[consensus.NodeID]map[consensus.NodeID]bool{}}
}

func (n *network) push(at int64, m consensus.Message, snap *snapshotImage) {
	n.seq++
	heap.Push(&n.q, flight{at: at, seq: n.seq, msg: m, snap: snap})
}

// next pops the first flight due at or before now.
func (n *network) next(now int64) (flight, bool) {
	if len(n.q) == 0 || n.q[0].at > now {
		return flight{}, false
	}
	return heap.Pop(&n.q).(flight), true
}

func (n *network) isCut(from, to consensus.NodeID) bool { return n.cut[from][to] }

func (n *network) setCut(from, to consensus.NodeID, v bool) {
	if n.cut[from] == nil {
		n.cut[from] = map[consensus.NodeID]bool{}
	}
	n.cut[from][to] = v
}

func (n *network) heal() { clear(n.cut) }
