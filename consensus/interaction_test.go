package consensus

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestInteraction runs the protocol scenarios in testdata/*.txt. Each
// script drives a small in-memory cluster step by step and prints every
// message, so a reader can follow Paxos one message at a time.
//
// Commands:
//
//	cluster nodes=N              start N fresh nodes
//	campaign id=N                node N starts Phase 1 now
//	propose id=N data=X          propose command X at node N
//	deliver [cut=(A-B,...)]      deliver the messages now in flight, once;
//	                             messages on a cut link A->B are dropped
//	stabilize [cut=(A-B,...)]    deliver until no message is left
//	crash id=N                   stop node N; its durable state survives
//	restart id=N                 restart node N from its durable state
//	tick id=N [n=K]              tick node N K times
//	transfer id=N to=M           leader N hands its leadership to M
//	read id=N rid=R              ask node N for linearizable read R
//	status                       every node's role, ballot, commit and log
func TestInteraction(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		env := &interaction{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return env.run(t, d)
		})
	})
}

type memDisk struct {
	hs      HardState
	entries map[uint64]Entry
}

type interaction struct {
	ids      []NodeID
	nodes    map[NodeID]*Node // nil while crashed
	disks    map[NodeID]*memDisk
	inflight []Message
	out      strings.Builder
}

func (e *interaction) run(t *testing.T, d *datadriven.TestData) string {
	e.out.Reset()
	id := func() NodeID {
		var v int
		d.ScanArgs(t, "id", &v)
		return NodeID(v)
	}
	switch d.Cmd {
	case "cluster":
		var n int
		d.ScanArgs(t, "nodes", &n)
		e.start(t, n)
	case "campaign":
		node := e.nodes[id()]
		node.startCampaign(0)
		e.process(node)
	case "propose":
		var data string
		d.ScanArgs(t, "data", &data)
		node := e.nodes[id()]
		if err := node.Propose(Command{ID: 1, Data: []byte(data)}); err != nil {
			fmt.Fprintf(&e.out, "error: %v\n", err)
		}
		e.process(node)
	case "deliver":
		e.deliver(cuts(t, d))
	case "stabilize":
		cut := cuts(t, d)
		for len(e.inflight) > 0 {
			e.deliver(cut)
		}
	case "crash":
		n := id()
		e.nodes[n] = nil
		fmt.Fprintf(&e.out, "node %d crashed\n", n)
	case "restart":
		n := id()
		e.restart(t, n)
		fmt.Fprintf(&e.out, "node %d restarted: promised=%s commit=%d\n", n, e.disks[n].hs.Promised, e.disks[n].hs.Commit)
	case "tick":
		k := 1
		d.MaybeScanArgs(t, "n", &k)
		node := e.nodes[id()]
		for range k {
			node.Tick()
			e.process(node)
		}
	case "transfer":
		var to int
		d.ScanArgs(t, "to", &to)
		node := e.nodes[id()]
		if err := node.TransferLeader(NodeID(to)); err != nil {
			fmt.Fprintf(&e.out, "error: %v\n", err)
		}
		e.process(node)
	case "read":
		var rid int
		d.ScanArgs(t, "rid", &rid)
		node := e.nodes[id()]
		if err := node.ReadIndex(uint64(rid)); err != nil {
			fmt.Fprintf(&e.out, "error: %v\n", err)
		}
		e.process(node)
	case "status":
		e.status()
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	return e.out.String()
}

func cuts(t *testing.T, d *datadriven.TestData) map[[2]NodeID]bool {
	out := map[[2]NodeID]bool{}
	arg, ok := d.Arg("cut")
	if !ok {
		return out
	}
	for _, v := range arg.Vals {
		a, b, ok := strings.Cut(v, "-")
		x, err1 := strconv.Atoi(a)
		y, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil {
			d.Fatalf(t, "bad cut %q, want A-B", v)
		}
		out[[2]NodeID{NodeID(x), NodeID(y)}] = true
	}
	return out
}

func (e *interaction) start(t *testing.T, n int) {
	e.ids, e.inflight = nil, nil
	e.nodes, e.disks = map[NodeID]*Node{}, map[NodeID]*memDisk{}
	for i := 1; i <= n; i++ {
		e.ids = append(e.ids, NodeID(i))
	}
	for _, id := range e.ids {
		e.disks[id] = &memDisk{entries: map[uint64]Entry{}}
		e.restart(t, id)
	}
}

func (e *interaction) restart(t *testing.T, id NodeID) {
	disk := e.disks[id]
	var ents []Entry
	for _, en := range disk.entries {
		ents = append(ents, en)
	}
	// A large election timeout keeps timers out of the way unless a script ticks.
	cfg := Config{ID: id, Members: e.ids, ElectionTicks: 1000, HeartbeatTicks: 1,
		Rand: rand.New(rand.NewPCG(uint64(id), 0))}
	n, err := NewNode(cfg, State{Hard: disk.hs, Entries: ents})
	if err != nil {
		t.Fatal(err)
	}
	e.nodes[id] = n
	e.process(n)
}

// process runs one node's Ready loop: persist, send, apply, advance.
func (e *interaction) process(n *Node) {
	for n.HasReady() {
		rd := n.Ready()
		disk := e.disks[n.id]
		if rd.HardStateChanged {
			disk.hs.Promised = rd.HardState.Promised
		}
		disk.hs.Commit = rd.HardState.Commit
		for _, en := range rd.Entries {
			disk.entries[en.Slot] = en
		}
		e.inflight = append(e.inflight, rd.Eager...)
		e.inflight = append(e.inflight, rd.Messages...)
		for _, en := range rd.Committed {
			fmt.Fprintf(&e.out, "node %d applies slot %d: %s\n", n.id, en.Slot, valueString(en.Value))
		}
		for _, r := range rd.ReadStates {
			fmt.Fprintf(&e.out, "node %d releases read %d at index %d\n", n.id, r.ID, r.Index)
		}
		n.Advance(rd)
	}
}

func (e *interaction) deliver(cut map[[2]NodeID]bool) {
	batch := e.inflight
	e.inflight = nil
	for _, m := range batch {
		to := e.nodes[m.To]
		switch {
		case cut[[2]NodeID{m.From, m.To}]:
			fmt.Fprintf(&e.out, "%s  (dropped)\n", msgString(m))
		case to == nil:
			fmt.Fprintf(&e.out, "%s  (node down)\n", msgString(m))
		default:
			fmt.Fprintf(&e.out, "%s\n", msgString(m))
			if err := to.Step(m); err != nil {
				fmt.Fprintf(&e.out, "  error: %v\n", err)
			}
			e.process(to)
		}
	}
}

func (e *interaction) status() {
	for _, id := range e.ids {
		n := e.nodes[id]
		if n == nil {
			fmt.Fprintf(&e.out, "node %d: down\n", id)
			continue
		}
		fmt.Fprintf(&e.out, "node %d: %s promised=%s commit=%d log=[", id, n.role, n.hs.Promised, n.hs.Commit)
		var parts []string
		for s := uint64(1); s <= n.log.last(); s++ {
			en := n.log.get(s)
			mark := ""
			if en.Chosen {
				mark = "*"
			}
			parts = append(parts, fmt.Sprintf("%d:%s@%s%s", s, valueString(en.Value), en.Ballot, mark))
		}
		fmt.Fprintf(&e.out, "%s]\n", strings.Join(parts, " "))
	}
}

func msgString(m Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d->%d %s b=%s", m.From, m.To, m.Type, m.Ballot)
	switch m.Type {
	case MsgPrepare:
		fmt.Fprintf(&b, " from-slot=%d", m.Slot)
		if m.Force {
			b.WriteString(" force")
		}
	case MsgPromise:
		fmt.Fprintf(&b, " commit=%d", m.Commit)
	case MsgAccept, MsgAccepted:
		fmt.Fprintf(&b, " commit=%d", m.Commit)
	case MsgHeartbeat, MsgHeartbeatResp:
		fmt.Fprintf(&b, " commit=%d round=%d", m.Commit, m.Slot)
	case MsgPreCheckResp:
		fmt.Fprintf(&b, " reject=%t", m.Reject)
	}
	if len(m.Entries) > 0 {
		var parts []string
		for _, en := range m.Entries {
			switch {
			case m.Type == MsgAccepted:
				parts = append(parts, strconv.FormatUint(en.Slot, 10))
			case m.Type == MsgPromise:
				parts = append(parts, fmt.Sprintf("%d:%s@%s", en.Slot, valueString(en.Value), en.Ballot))
			default:
				parts = append(parts, fmt.Sprintf("%d:%s", en.Slot, valueString(en.Value)))
			}
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(parts, " "))
	}
	return b.String()
}

func valueString(v Value) string {
	if v.IsNoop() {
		return "noop"
	}
	var parts []string
	for _, c := range v.Cmds {
		parts = append(parts, string(c.Data))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
