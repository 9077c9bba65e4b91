package consensus

import (
	"errors"
	"testing"
)

// leaderOf3 returns an interaction cluster of three with node 1 leading.
func leaderOf3(t *testing.T) (*interaction, *Node) {
	e := &interaction{}
	e.start(t, 3)
	e.nodes[1].startCampaign(0)
	e.process(e.nodes[1])
	for len(e.inflight) > 0 {
		e.deliver(nil)
	}
	return e, e.nodes[1]
}

func members(ids ...NodeID) Membership {
	var m Membership
	for _, id := range ids {
		m.Members = append(m.Members, Member{ID: id})
	}
	return m
}

func TestMembershipRefusals(t *testing.T) {
	cases := []struct {
		name string
		next Membership
		want error
	}{
		{"remove a majority at once", members(1), ErrLoseQuorum},
		{"replace a majority at once", members(1, 4, 5), ErrLoseQuorum},
		{"no voters", Membership{Members: []Member{{ID: 1, Learner: true}}}, ErrLoseQuorum},
		{"duplicate id", members(1, 2, 3, 3), ErrMemberExists},
		{"id zero", members(1, 2, 3, 0), ErrBadMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, l := leaderOf3(t)
			if err := l.ProposeMembership(c.next); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	t.Run("second change while one is in flight", func(t *testing.T) {
		_, l := leaderOf3(t)
		if err := l.ProposeMembership(members(1, 2, 3, 4)); err != nil {
			t.Fatal(err)
		}
		l.Ready() // the change takes a slot
		if err := l.ProposeMembership(members(1, 2, 3, 5)); !errors.Is(err, ErrChangeInFlight) {
			t.Fatalf("got %v, want ErrChangeInFlight", err)
		}
	})
	t.Run("follower", func(t *testing.T) {
		e, _ := leaderOf3(t)
		var nl *NotLeaderError
		if err := e.nodes[2].ProposeMembership(members(1, 2)); !errors.As(err, &nl) || nl.Leader != 1 {
			t.Fatalf("got %v, want NotLeaderError naming 1", err)
		}
	})
}

func TestTransferRefusals(t *testing.T) {
	e, l := leaderOf3(t)
	if err := l.TransferLeader(9); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("transfer to unknown: %v", err)
	}
	var nl *NotLeaderError
	if err := e.nodes[2].TransferLeader(3); !errors.As(err, &nl) {
		t.Fatalf("transfer on a follower: %v", err)
	}
}

// TestMembershipActivation follows a change through the log: it takes
// effect alpha slots after the slot that chose it, and the leader pads up
// to there at once.
func TestMembershipActivation(t *testing.T) {
	e, l := leaderOf3(t)
	if err := l.ProposeMembership(Membership{Members: []Member{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4, Learner: true}}}); err != nil {
		t.Fatal(err)
	}
	e.process(l)
	for len(e.inflight) > 0 {
		e.deliver(nil)
	}
	cur, next := l.Members()
	if next != nil || len(cur.Members) != 4 || !cur.Members[3].Learner {
		t.Fatalf("after the change: current %+v, next %+v", cur, next)
	}
	if got, want := l.Status().Commit, uint64(l.cfg.MaxInflightSlots); got < want { // slot 1 + alpha is the first governed
		t.Fatalf("commit %d: the leader did not pad up to the activation slot %d", got, want)
	}
}
