package devcluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
)

// counter counts applied commands and chains their bytes into a digest.
type counter struct {
	mu     sync.Mutex
	n      uint64
	digest uint64
}

func (c *counter) Apply(_ uint64, cmd []byte) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	for _, b := range cmd {
		c.digest = c.digest*31 + uint64(b)
	}
	return c.n
}

func (c *counter) Snapshot(w io.Writer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return binary.Write(w, binary.LittleEndian, [2]uint64{c.n, c.digest})
}

func (c *counter) Restore(r io.Reader) error {
	var v [2]uint64
	if err := binary.Read(r, binary.LittleEndian, &v); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.digest = v[0], v[1]
	return nil
}

func (c *counter) state() [2]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return [2]uint64{c.n, c.digest}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(10 * time.Millisecond)
	}
}

func propose(t *testing.T, c *Cluster, n int, tag string) {
	t.Helper()
	for i := 0; i < n; {
		l := c.Leader()
		if l == nil {
			<-time.After(10 * time.Millisecond)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := l.Replica.Propose(ctx, fmt.Appendf(nil, "%s-%d", tag, i))
		cancel()
		if err == nil {
			i++
		}
	}
}

// untilNoChangeInFlight retries a membership change while another one is
// in flight (the leader promotes learners on its own), as a client would.
func untilNoChangeInFlight(change func() error) error {
	for {
		err := change()
		if !errors.Is(err, consensus.ErrChangeInFlight) {
			return err
		}
		<-time.After(10 * time.Millisecond)
	}
}

func isVoter(m consensus.Membership, id consensus.NodeID) bool {
	for _, x := range m.Members {
		if x.ID == id {
			return !x.Learner
		}
	}
	return false
}

// TestMembershipJoinTransferRemove runs a real three-node cluster (gRPC on
// loopback, bolt files) through a join that knows one member's address, a
// leadership transfer to the new member, and the removal of that member
// while it leads; it checks every refusal on the way.
func TestMembershipJoinTransferRemove(t *testing.T) {
	c, err := Start(Config{Dir: t.TempDir(), Logger: zaptest.NewLogger(t),
		Driver:          driver.Config{SnapshotEntries: 20, SnapshotTrailing: 5},
		NewStateMachine: func(consensus.NodeID) driver.StateMachine { return &counter{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	propose(t, c, 100, "before")

	// Node 4 knows only node 2's address; it is compacted away from the
	// log it needs, so it catches up by snapshot, then is promoted.
	if err := c.Join(ctx, 4, 2); err != nil {
		t.Fatalf("join: %v", err)
	}
	eventually(t, "node 4 promoted to voter", func() bool {
		l := c.Leader()
		if l == nil {
			return false
		}
		cur, _, err := l.Replica.Members(ctx)
		return err == nil && isVoter(cur, 4)
	})

	l := c.Leader()
	refusals := []struct {
		name string
		err  error
		want error
	}{
		{"add an existing member", l.Replica.AddMember(ctx, consensus.Member{ID: 2}), consensus.ErrMemberExists},
		{"remove an unknown member", l.Replica.RemoveMember(ctx, 9), consensus.ErrUnknownMember},
		{"transfer to an unknown node", l.Replica.TransferLeader(ctx, 9), consensus.ErrUnknownMember},
	}
	for _, r := range refusals {
		if !errors.Is(r.err, r.want) {
			t.Errorf("%s: %v, want %v", r.name, r.err, r.want)
		}
	}
	if err := untilNoChangeInFlight(func() error {
		return l.Replica.AddMember(ctx, consensus.Member{ID: 5, Learner: true})
	}); err != nil {
		t.Fatalf("add learner 5: %v", err)
	}
	if err := l.Replica.TransferLeader(ctx, 5); !errors.Is(err, consensus.ErrNotVoter) {
		t.Errorf("transfer to a learner: %v, want ErrNotVoter", err)
	}
	if err := untilNoChangeInFlight(func() error { return l.Replica.RemoveMember(ctx, 5) }); err != nil {
		t.Fatalf("remove learner 5: %v", err)
	}

	if l.ID != 4 {
		if err := l.Replica.TransferLeader(ctx, 4); err != nil {
			t.Fatalf("transfer to 4: %v", err)
		}
		eventually(t, "node 4 to lead", func() bool { l := c.Leader(); return l != nil && l.ID == 4 })
	}

	// Remove the leader itself: it steps down once the change is chosen.
	err = untilNoChangeInFlight(func() error { return c.Node(4).Replica.RemoveMember(ctx, 4) })
	if err != nil && !errors.Is(err, driver.ErrOutcomeUnknown) {
		t.Fatalf("remove the leader: %v", err)
	}
	eventually(t, "a new leader among 1-3", func() bool { l := c.Leader(); return l != nil && l.ID != 4 })
	propose(t, c, 50, "after")

	want := c.Leader().SM.(*counter)
	eventually(t, "nodes 1-3 to apply the same sequence", func() bool {
		for _, id := range []consensus.NodeID{1, 2, 3} {
			if c.Node(id).SM.(*counter).state() != want.state() {
				return false
			}
		}
		return true
	})
	cur, _, err := c.Leader().Replica.Members(ctx)
	if err != nil || len(cur.Members) != 3 || isVoter(cur, 4) {
		t.Fatalf("final membership %+v, %v; want voters 1-3", cur, err)
	}
}
