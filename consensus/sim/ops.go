package sim

import (
	"errors"
	"fmt"
	"slices"

	"github.com/clockd/clockd/consensus"
)

// snapshotImage is a simulated state-machine snapshot: the slots it covers
// and the configurations it records. Its content is checked by the
// checker (every covered slot was applied somewhere, in order).
type snapshotImage struct {
	index   uint64
	configs []consensus.ConfigState
}

// trailing is how many slots behind a snapshot a node keeps in its log.
const trailing = 5

// maybeSnapshot takes a snapshot at the node's applied slot every
// SnapshotEvery slots, and compacts its log and disk behind it.
func (s *sim) maybeSnapshot(sn *simNode) error {
	every := s.opts.SnapshotEvery
	if every == 0 || sn.node == nil {
		return nil
	}
	applied := sn.node.Status().Applied
	if applied < sn.disk.snap.index+every {
		return nil
	}
	// The log is compacted on disk: the writes in flight land first.
	if err := s.completeWrites(sn); err != nil {
		return err
	}
	upTo := applied - min(applied, trailing)
	sn.disk.snap = snapshotImage{index: applied, configs: sn.node.Configs(applied)}
	for slot := range sn.disk.entries {
		if slot <= upTo {
			delete(sn.disk.entries, slot)
		}
	}
	return sn.node.Compact(applied, upTo)
}

// sendSnapshot ships the node's latest snapshot to peer p.
func (s *sim) sendSnapshot(sn *simNode, p consensus.NodeID) {
	if sn.disk.snap.index == 0 {
		return
	}
	img := sn.disk.snap
	s.net.push(s.now+5+s.rng.Int64N(20), consensus.Message{From: sn.id, To: p}, &img)
}

// installSnapshot delivers a snapshot transfer.
func (s *sim) installSnapshot(from, to consensus.NodeID, img *snapshotImage) error {
	sn := s.nodes[to]
	if sn.node == nil || s.net.isCut(from, to) {
		return nil
	}
	// As the driver does: the writes in flight land before the log is
	// compacted under the snapshot.
	if err := s.completeWrites(sn); err != nil {
		return err
	}
	if !sn.node.RestoreSnapshot(img.index, img.configs) {
		return s.process(sn)
	}
	if err := s.check.installed(to, img.index); err != nil {
		return err
	}
	sn.disk.snap = *img
	for slot := range sn.disk.entries {
		if slot <= img.index {
			delete(sn.disk.entries, slot)
		}
	}
	return s.process(sn)
}

// maybeChangeMembers asks the leader, now and then, to add a learner that
// promotes itself, add or remove a voter, or replace one.
func (s *sim) maybeChangeMembers() error {
	if s.rng.Float64() >= s.opts.MemberRate {
		return nil
	}
	for _, id := range s.ids {
		sn := s.nodes[id]
		if sn.node == nil || sn.node.Status().Role != consensus.Leader {
			continue
		}
		cur, _ := sn.node.Members()
		next := s.changeMembers(cur)
		sn.node.SetClock(sn.clock(s.now))
		err := sn.node.ProposeMembership(next)
		switch {
		case err == nil:
			s.res.Changes++
		case errors.Is(err, consensus.ErrChangeInFlight), errors.Is(err, consensus.ErrLoseQuorum),
			errors.Is(err, consensus.ErrTransferring):
		default:
			return fmt.Errorf("membership change %v -> %v: %w", cur.Members, next.Members, err)
		}
		return s.process(sn)
	}
	return nil
}

func (s *sim) changeMembers(cur consensus.Membership) consensus.Membership {
	next := consensus.Membership{Members: slices.Clone(cur.Members)}
	var outside []consensus.NodeID
	for _, id := range s.ids {
		if !slices.ContainsFunc(cur.Members, func(m consensus.Member) bool { return m.ID == id }) {
			outside = append(outside, id)
		}
	}
	remove := func() {
		if len(next.Members) > 0 {
			i := s.rng.IntN(len(next.Members))
			next.Members = slices.Delete(next.Members, i, i+1)
		}
	}
	add := func(m consensus.Member) {
		if len(outside) > 0 {
			m.ID = outside[s.rng.IntN(len(outside))]
			next.Members = append(next.Members, m)
		}
	}
	switch s.rng.IntN(5) {
	case 0:
		add(consensus.Member{Learner: true, Promote: true})
	case 1:
		add(consensus.Member{})
	case 2:
		remove()
	case 3: // replace
		remove()
		add(consensus.Member{})
	case 4: // grow by two at once
		add(consensus.Member{})
		outside = slices.DeleteFunc(outside, func(id consensus.NodeID) bool {
			return slices.ContainsFunc(next.Members, func(m consensus.Member) bool { return m.ID == id })
		})
		add(consensus.Member{})
	}
	return next
}
