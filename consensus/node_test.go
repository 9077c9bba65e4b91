package consensus

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestFollowerRefusesProposal checks the documented choice: a follower
// refuses a proposal and names the leader; it never forwards it.
func TestFollowerRefusesProposal(t *testing.T) {
	e, _ := leaderOf3(t)
	err := e.nodes[2].Propose(Command{ID: 7, Data: []byte("x")})
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.Leader != 1 {
		t.Fatalf("follower propose: %v, want NotLeaderError naming leader 1", err)
	}
	if e.nodes[2].HasReady() {
		t.Fatal("a refused proposal produced work")
	}
	if err := e.nodes[1].Propose(Command{ID: 8, Data: make([]byte, 1<<20)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized command: %v, want ErrTooLarge", err)
	}
	if err := e.nodes[1].Propose(); !errors.Is(err, ErrProposalEmpty) {
		t.Fatalf("empty proposal: %v, want ErrProposalEmpty", err)
	}
}

// TestStepRejectsOutOfProtocol feeds malformed and out-of-protocol messages
// and checks each is refused with an error and changes nothing.
func TestStepRejectsOutOfProtocol(t *testing.T) {
	cases := []struct {
		name string
		msg  Message
	}{
		{"no sender", Message{Type: MsgHeartbeat, From: 0, To: 1, Ballot: Ballot{1, 0}}},
		{"from itself", Message{Type: MsgHeartbeat, From: 1, To: 1, Ballot: Ballot{1, 1}}},
		{"wrong recipient", Message{Type: MsgHeartbeat, From: 2, To: 3, Ballot: Ballot{1, 2}}},
		{"invalid type", Message{Type: MsgInvalid, From: 2, To: 1}},
		{"type out of range", Message{Type: 200, From: 2, To: 1}},
		{"prepare with another's ballot", Message{Type: MsgPrepare, From: 2, To: 1, Ballot: Ballot{5, 3}, Slot: 1}},
		{"accept with round 0", Message{Type: MsgAccept, From: 2, To: 1, Ballot: Ballot{0, 2}}},
		{"accept of slot 0", Message{Type: MsgAccept, From: 2, To: 1, Ballot: Ballot{1, 2},
			Entries: []Entry{{Slot: 0}}}},
		{"learn not chosen", Message{Type: MsgLearn, From: 2, To: 1, Entries: []Entry{{Slot: 1}}}},
		{"promise entry outside range", Message{Type: MsgPromise, From: 2, To: 1, Ballot: Ballot{1, 1},
			Slot: 5, Last: 9, Entries: []Entry{{Slot: 2}}}},
		{"promise range reversed", Message{Type: MsgPromise, From: 2, To: 1, Ballot: Ballot{1, 1}, Slot: 5, Last: 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := NewNode(Config{ID: 1, Members: []NodeID{1, 2, 3}, Rand: rand.New(rand.NewPCG(1, 1))}, State{})
			if err != nil {
				t.Fatal(err)
			}
			before := n.Status()
			if err := n.Step(c.msg); err == nil {
				t.Fatalf("accepted %+v", c.msg)
			}
			if n.Status() != before || n.HasReady() {
				t.Fatalf("a refused message changed the node: %+v -> %+v", before, n.Status())
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		name string
		cfg  Config
	}{
		{"zero id", Config{ID: 0, Members: []NodeID{1}, Rand: r}},
		{"id not a member", Config{ID: 4, Members: []NodeID{1, 2}, Rand: r}},
		{"duplicate member", Config{ID: 1, Members: []NodeID{1, 2, 2}, Rand: r}},
		{"member zero", Config{ID: 1, Members: []NodeID{1, 0}, Rand: r}},
		{"no rand", Config{ID: 1, Members: []NodeID{1}}},
		{"heartbeat not below election", Config{ID: 1, Members: []NodeID{1}, Rand: r, ElectionTicks: 3, HeartbeatTicks: 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewNode(c.cfg, State{}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
