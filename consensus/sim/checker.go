package sim

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/clockd/clockd/consensus"
)

// checker holds the ground truth of a run, computed from what the nodes
// say and do, independently of what any node believes, and checks the
// safety invariants at every step.
type checker struct {
	alpha uint64
	// confs are the configurations chosen so far, by activation slot: the
	// ground truth of which voters decide each slot.
	confs []simConf
	// accepted[slot][ballot] is the value hash and the acceptors that said
	// they accepted it.
	accepted map[uint64]map[consensus.Ballot]*acceptance
	// chosen[slot] is the hash of the value a true majority accepted.
	chosen map[uint64]uint64
	// applied[slot] is the value hash the first node to apply slot applied.
	applied map[uint64]uint64
	// nodeApplied[node] is the last slot the node applied since it started.
	nodeApplied map[consensus.NodeID]uint64
	// promised[node] is the highest ballot the node ever told anyone it
	// promised or accepted.
	promised map[consensus.NodeID]consensus.Ballot
	// acked[i] is the true time (ms) at which the i-th client command was
	// first applied anywhere, and ackedSlot[i] its slot, in time order.
	acked     []int64
	ackedSlot []uint64
	// reads[id] is the true time a read was issued.
	reads map[uint64]int64
	// Reads counts released reads.
	Reads int
}

type acceptance struct {
	hash uint64
	conf *consensus.Membership
	by   map[consensus.NodeID]bool
}

type simConf struct {
	activation uint64
	voters     []consensus.NodeID
	members    []consensus.NodeID
}

func newChecker(boot []consensus.NodeID, alpha uint64) *checker {
	return &checker{
		alpha:       alpha,
		confs:       []simConf{{activation: 1, voters: boot, members: boot}},
		accepted:    map[uint64]map[consensus.Ballot]*acceptance{},
		chosen:      map[uint64]uint64{},
		applied:     map[uint64]uint64{},
		nodeApplied: map[consensus.NodeID]uint64{},
		promised:    map[consensus.NodeID]consensus.Ballot{},
		reads:       map[uint64]int64{},
	}
}

func hashValue(v consensus.Value) uint64 {
	h := fnv.New64a()
	for _, c := range v.Cmds {
		fmt.Fprintf(h, "%d:%d:", c.ID, len(c.Data))
		h.Write(c.Data)
	}
	if v.Conf != nil {
		fmt.Fprintf(h, "conf:%v", v.Conf.Members)
	}
	return h.Sum64()
}

// proposed records the value a ballot proposes for a slot: one ballot
// never proposes two values for one slot.
func (c *checker) proposed(slot uint64, b consensus.Ballot, v consensus.Value) error {
	byBallot := c.accepted[slot]
	if byBallot == nil {
		byBallot = map[consensus.Ballot]*acceptance{}
		c.accepted[slot] = byBallot
	}
	h := hashValue(v)
	a := byBallot[b]
	if a == nil {
		byBallot[b] = &acceptance{hash: h, conf: v.Conf, by: map[consensus.NodeID]bool{}}
		return nil
	}
	if a.hash != h {
		return fmt.Errorf("ballot %s proposed two values for slot %d", b, slot)
	}
	return nil
}

// promise records that node told a proposer it promised b.
func (c *checker) promise(node consensus.NodeID, b consensus.Ballot) {
	if c.promised[node].Less(b) {
		c.promised[node] = b
	}
}

// accept records that node accepted slot at ballot b, and checks that it
// never accepts below a ballot it promised, and that at most one value is
// ever chosen per slot.
func (c *checker) accept(node consensus.NodeID, slot uint64, b consensus.Ballot) error {
	if b.Less(c.promised[node]) {
		return fmt.Errorf("node %d accepted slot %d at ballot %s below its promise %s",
			node, slot, b, c.promised[node])
	}
	c.promise(node, b)
	a := c.accepted[slot][b]
	if a == nil {
		return fmt.Errorf("node %d accepted slot %d at ballot %s that nobody proposed", node, slot, b)
	}
	a.by[node] = true
	voters := c.confAt(slot).voters
	yes := 0
	for _, v := range voters {
		if a.by[v] {
			yes++
		}
	}
	if yes < len(voters)/2+1 {
		return nil
	}
	if prev, ok := c.chosen[slot]; ok && prev != a.hash {
		return fmt.Errorf("slot %d: two different values chosen (second at ballot %s)", slot, b)
	}
	if _, ok := c.chosen[slot]; !ok && a.conf != nil {
		var vs, ms []consensus.NodeID
		for _, m := range a.conf.Members {
			ms = append(ms, m.ID)
			if !m.Learner {
				vs = append(vs, m.ID)
			}
		}
		c.confs = append(c.confs, simConf{activation: slot + c.alpha, voters: vs, members: ms})
		slices.SortStableFunc(c.confs, func(x, y simConf) int { return cmp.Compare(x.activation, y.activation) })
	}
	c.chosen[slot] = a.hash
	return nil
}

func (c *checker) confAt(slot uint64) simConf {
	for i := len(c.confs) - 1; i > 0; i-- {
		if c.confs[i].activation <= slot {
			return c.confs[i]
		}
	}
	return c.confs[0]
}

// apply checks that node applies slots in order, only chosen values, and
// the same value as every other node.
func (c *checker) apply(node consensus.NodeID, e consensus.Entry) error {
	if want := c.nodeApplied[node] + 1; e.Slot != want {
		return fmt.Errorf("node %d applied slot %d, expected %d", node, e.Slot, want)
	}
	c.nodeApplied[node] = e.Slot
	h := hashValue(e.Value)
	ch, ok := c.chosen[e.Slot]
	if !ok {
		return fmt.Errorf("node %d applied slot %d before any value was chosen there", node, e.Slot)
	}
	if ch != h {
		return fmt.Errorf("node %d applied slot %d with a value that was not chosen", node, e.Slot)
	}
	if prev, ok := c.applied[e.Slot]; ok && prev != h {
		return fmt.Errorf("node %d applied slot %d differently from another node", node, e.Slot)
	}
	c.applied[e.Slot] = h
	return nil
}

// restarted forgets what a node applied: it replays from its snapshot.
func (c *checker) restarted(node consensus.NodeID, snapIndex uint64) {
	c.nodeApplied[node] = snapIndex
}

// installed records that node restored a snapshot of every slot up to
// index, taken by a node that had applied them.
func (c *checker) installed(node consensus.NodeID, index uint64) error {
	for s := uint64(1); s <= index; s++ {
		if _, ok := c.applied[s]; !ok {
			return fmt.Errorf("node %d installed a snapshot to slot %d, but slot %d was never applied", node, index, s)
		}
	}
	c.nodeApplied[node] = index
	return nil
}

// lastMembers lists the members, learners included, of the newest chosen
// configuration.
func (c *checker) lastMembers() []consensus.NodeID { return c.confs[len(c.confs)-1].members }

// ackedWrite records that a client saw its command applied at slot at
// true time now.
func (c *checker) ackedWrite(slot uint64, now int64) {
	c.acked = append(c.acked, now)
	c.ackedSlot = append(c.ackedSlot, slot)
}

// issuedRead records that read id was issued at true time now.
func (c *checker) issuedRead(id uint64, now int64) { c.reads[id] = now }

// read checks that a released read reflects every write acknowledged
// before the read was issued: its index must cover their slots.
func (c *checker) read(r consensus.ReadState, now int64) error {
	issued, ok := c.reads[r.ID]
	if !ok {
		return fmt.Errorf("read %d released but never issued", r.ID)
	}
	delete(c.reads, r.ID)
	c.Reads++
	for i, at := range c.acked {
		if at >= issued {
			break
		}
		if c.ackedSlot[i] > r.Index {
			return fmt.Errorf("stale read %d: index %d, but slot %d was acknowledged before the read was issued",
				r.ID, r.Index, c.ackedSlot[i])
		}
	}
	return nil
}
