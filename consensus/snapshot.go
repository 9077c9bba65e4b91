package consensus

import (
	"cmp"
	"fmt"
	"slices"
)

// Snapshots: the state machine snapshots its state at some applied slot,
// the driver stores it durably, and the core drops log records behind it.
// A peer whose chosen prefix ends before the oldest record the leader
// still holds is named in Ready.Snapshots; the driver sends it the latest
// snapshot, and the peer's driver installs it with RestoreSnapshot.

// ConfigState is one configuration as a snapshot carries it.
type ConfigState struct {
	Slot       uint64 // the slot that chose it; 0 for the bootstrap
	Activation uint64 // first slot it governs
	Membership Membership
}

// State is a node's durable state, as a driver restores it on start.
type State struct {
	Hard    HardState
	Entries []Entry
	// SnapIndex is the last slot of the latest durable snapshot, 0 if
	// none; Configs are the configurations it recorded.
	SnapIndex uint64
	Configs   []ConfigState
}

// Configs returns the configurations that govern the slots after index,
// for the snapshot taken at index. index must be applied.
func (n *Node) Configs(index uint64) []ConfigState {
	var out []ConfigState
	for i, c := range n.confs {
		if i+1 < len(n.confs) && n.confs[i+1].activation <= index+1 {
			continue
		}
		if c.slot > index {
			break // chosen after the snapshot point
		}
		out = append(out, ConfigState{Slot: c.slot, Activation: c.activation, Membership: c.m})
	}
	return out
}

// Compact tells the node that a snapshot covering every slot up to
// snapIndex is durable, and drops log records at or below upTo
// (upTo <= snapIndex; the gap is the trailing window kept for peers that
// lag a little). The driver compacts storage the same way.
func (n *Node) Compact(snapIndex, upTo uint64) error {
	if snapIndex > n.applied || upTo > snapIndex {
		return fmt.Errorf("consensus: compact to %d with snapshot %d, applied %d", upTo, snapIndex, n.applied)
	}
	n.snapIndex = max(n.snapIndex, snapIndex)
	n.log.compact(upTo)
	n.dropOldConfs(upTo + 1)
	return nil
}

// dropOldConfs forgets configurations superseded before slot from.
func (n *Node) dropOldConfs(from uint64) {
	for len(n.confs) > 1 && n.confs[1].activation <= from {
		n.confs = n.confs[1:]
	}
}

// RestoreSnapshot installs a snapshot the driver has received, verified and
// restored into the state machine. It returns false, changing nothing, if
// the node already has every slot the snapshot covers.
func (n *Node) RestoreSnapshot(index uint64, configs []ConfigState) bool {
	if index <= n.hs.Commit || len(configs) == 0 {
		return false
	}
	if n.role != Follower {
		// A proposer behind a snapshot cannot know the values it skips.
		n.becomeFollower(0)
		n.resetElectionTimer()
	}
	n.log.compact(index)
	n.snapIndex = index
	n.hs.Commit, n.applied = index, index
	n.setConfigs(configs)
	n.advanceCommit()
	return true
}

func (n *Node) setConfigs(configs []ConfigState) {
	n.confVersion++
	n.confs = n.confs[:0]
	for _, c := range configs {
		n.confs = append(n.confs, conf{slot: c.Slot, activation: c.Activation, m: c.Membership})
	}
	slices.SortStableFunc(n.confs, func(a, b conf) int { return cmp.Compare(a.activation, b.activation) })
	n.confs[0].activation = min(n.confs[0].activation, 1)
}

// needSnapshot asks the driver to send peer p a snapshot, at most once per
// election timeout.
func (n *Node) needSnapshot(p NodeID) {
	if at, ok := n.snapAsked[p]; ok && n.ticks-at < n.cfg.ElectionTicks {
		return
	}
	n.snapAsked[p] = n.ticks
	n.snapshots = append(n.snapshots, p)
}
