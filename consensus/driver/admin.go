package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
)

// readWait is one linearizable read in progress.
type readWait struct {
	index uint64 // set when the core releases the read
	done  chan error
}

// watcher completes when cond holds after some Ready, or fails when the
// node stops leading.
type watcher struct {
	cond func() bool
	done chan error
}

// Read is a linearizable read barrier: once it returns nil, the state
// machine's current state reflects every command acknowledged before Read
// was called. Only the leader serves reads; elsewhere it fails with
// *consensus.NotLeaderError naming the leader.
func (r *Replica) Read(ctx context.Context) error {
	w := &readWait{done: make(chan error, 1)}
	err := r.call(ctx, func() error {
		r.nextID++
		if err := r.node.ReadIndex(r.nextID); err != nil {
			return err
		}
		r.reads[r.nextID] = w
		return nil
	})
	if err != nil {
		return err
	}
	return r.await(ctx, w.done)
}

func (r *Replica) releaseReads(states []consensus.ReadState) {
	for _, rs := range states {
		if w, ok := r.reads[rs.ID]; ok {
			delete(r.reads, rs.ID)
			w.index = rs.Index
			r.released = append(r.released, w)
		}
	}
	r.serveReads(r.node.Status().Applied)
}

// serveReads completes released reads whose index is applied.
func (r *Replica) serveReads(applied uint64) {
	r.released = slices.DeleteFunc(r.released, func(w *readWait) bool {
		if w.index <= applied {
			w.done <- nil
			return true
		}
		return false
	})
}

func (r *Replica) failReads(err error) {
	for id, w := range r.reads {
		w.done <- err
		delete(r.reads, id)
	}
	for _, w := range r.released {
		w.done <- err
	}
	r.released = nil
	for _, w := range r.watchers {
		w.done <- ErrOutcomeUnknown
	}
	r.watchers = nil
}

func (r *Replica) checkWatchers() {
	r.watchers = slices.DeleteFunc(r.watchers, func(w *watcher) bool {
		if w.cond() {
			w.done <- nil
			return true
		}
		return false
	})
}

// WaitApplied returns once this replica has applied slot: a follower that
// forwarded a command to the leader calls it with the command's slot to
// read its own write.
func (r *Replica) WaitApplied(ctx context.Context, slot uint64) error {
	done := make(chan error, 1)
	err := r.call(ctx, func() error {
		if r.node.Status().Applied >= slot {
			done <- nil
			return nil
		}
		r.applyWaits = append(r.applyWaits, applyWait{slot: slot, done: done})
		return nil
	})
	if err != nil {
		return err
	}
	return r.await(ctx, done)
}

type applyWait struct {
	slot uint64
	done chan error // buffered
}

// releaseApplied completes the waits for slots up to applied.
func (r *Replica) releaseApplied(applied uint64) {
	r.applyWaits = slices.DeleteFunc(r.applyWaits, func(w applyWait) bool {
		if w.slot <= applied {
			w.done <- nil
			return true
		}
		return false
	})
}

// Members returns the configuration in force and, while a change is
// pending, the next one.
func (r *Replica) Members(ctx context.Context) (cur consensus.Membership, next *consensus.Membership, err error) {
	err = r.call(ctx, func() error {
		cur, next = r.node.Members()
		return nil
	})
	return cur, next, err
}

// AddMember adds m and waits until the new configuration is in force. A
// member added as a voter joins as a learner first and is promoted by the
// leader once it has caught up; AddMember returns once it is a learner.
func (r *Replica) AddMember(ctx context.Context, m consensus.Member) error {
	if !m.Learner {
		m.Learner, m.Promote = true, true
	}
	return r.changeMembers(ctx, func(cur consensus.Membership) (consensus.Membership, error) {
		if memberIndex(cur, m.ID) >= 0 {
			return cur, fmt.Errorf("%w: %d", consensus.ErrMemberExists, m.ID)
		}
		cur.Members = append(slices.Clone(cur.Members), m)
		return cur, nil
	})
}

// RemoveMember removes member id and waits until the change is in force.
// Removing the leader works: it steps down once the change is chosen, and
// the call then fails with ErrOutcomeUnknown; check Members.
func (r *Replica) RemoveMember(ctx context.Context, id consensus.NodeID) error {
	return r.changeMembers(ctx, func(cur consensus.Membership) (consensus.Membership, error) {
		i := memberIndex(cur, id)
		if i < 0 {
			return cur, fmt.Errorf("%w: %d", consensus.ErrUnknownMember, id)
		}
		cur.Members = slices.Delete(slices.Clone(cur.Members), i, i+1)
		return cur, nil
	})
}

func (r *Replica) changeMembers(ctx context.Context, edit func(consensus.Membership) (consensus.Membership, error)) error {
	w := &watcher{done: make(chan error, 1)}
	err := r.call(ctx, func() error {
		cur, next := r.node.Members()
		if next != nil {
			// A change that is wrong whatever happens (an existing member,
			// an unknown one) is refused as such, even while another is in
			// flight; the latest configuration decides.
			if _, err := edit(*next); err != nil {
				return err
			}
			return consensus.ErrChangeInFlight
		}
		want, err := edit(cur)
		if err != nil {
			return err
		}
		if err := r.node.ProposeMembership(want); err != nil {
			return err
		}
		key := membershipKey(want)
		w.cond = func() bool { c, n := r.node.Members(); return n == nil && membershipKey(c) == key }
		r.watchers = append(r.watchers, w)
		r.log.Info("membership change proposed", zap.String("members", key))
		return nil
	})
	if err != nil {
		return err
	}
	return r.await(ctx, w.done)
}

// TransferLeader hands the leadership to id and waits until this node has
// stepped down. It fails at once for an unknown member or a learner.
func (r *Replica) TransferLeader(ctx context.Context, id consensus.NodeID) error {
	w := &watcher{done: make(chan error, 1)}
	err := r.call(ctx, func() error {
		if err := r.node.TransferLeader(id); err != nil {
			return err
		}
		if id == r.cfg.Core.ID {
			w.done <- nil
			return nil
		}
		w.cond = func() bool { return false } // completes when leadership is lost
		r.watchers = append(r.watchers, w)
		return nil
	})
	if err != nil {
		return err
	}
	if err := r.await(ctx, w.done); !errors.Is(err, ErrOutcomeUnknown) {
		return err
	}
	return nil // stepped down, as asked
}

// await waits for the driver goroutine's answer on done.
func (r *Replica) await(ctx context.Context, done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Join answers a node that asks to join: the leader adds it as a learner
// that will be promoted once caught up; another member names the leader.
func (r *Replica) Join(ctx context.Context, m consensus.Member) (consensus.Membership, error) {
	err := r.AddMember(ctx, m)
	if errors.Is(err, consensus.ErrMemberExists) {
		err = nil // a retried join
	}
	if err != nil {
		return consensus.Membership{}, err
	}
	cur, _, err := r.Members(ctx)
	return cur, err
}

// syncPeers tells the transport about members it does not know yet, so
// members added through the log can be reached.
func (r *Replica) syncPeers() {
	ps, ok := r.tr.(PeerSet)
	if !ok || r.node.ConfigVersion() == r.peersVer {
		return
	}
	r.peersVer = r.node.ConfigVersion()
	cur, next := r.node.Members()
	all := slices.Clone(cur.Members)
	if next != nil {
		all = append(all, next.Members...)
	}
	for _, m := range all { // EnsurePeer is idempotent
		if m.ID != r.cfg.Core.ID && m.Addr != "" {
			ps.EnsurePeer(m.ID, m.Addr)
		}
	}
}

// PeerSet is implemented by transports whose peers can change at run time.
type PeerSet interface {
	EnsurePeer(id consensus.NodeID, addr string)
}

func memberIndex(m consensus.Membership, id consensus.NodeID) int {
	return slices.IndexFunc(m.Members, func(x consensus.Member) bool { return x.ID == id })
}

func membershipKey(m consensus.Membership) string {
	ms := slices.Clone(m.Members)
	slices.SortFunc(ms, func(a, b consensus.Member) int { return int(a.ID) - int(b.ID) })
	var b strings.Builder
	for _, x := range ms {
		fmt.Fprintf(&b, "%d@%s/%t/%t;", x.ID, x.Addr, x.Learner, x.Promote)
	}
	return b.String()
}
