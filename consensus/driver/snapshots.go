package driver

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/snapshot"
)

// install hands a received, verified snapshot to the driver goroutine.
type install struct {
	meta snapshot.Meta
	done chan error
}

// keepSnapshots is how many snapshot files stay on disk.
const keepSnapshots = 2

// maybeSnapshot takes a snapshot once enough was applied since the last
// one (nextSnapshotAt), then has the log behind it compacted, keeping
// SnapshotTrailing slots (fewer if SnapshotTrailingBytes says so): in
// memory at once, in the store by the writer. It runs on the driver
// goroutine, so consensus pauses while the state machine writes its state.
func (r *Replica) maybeSnapshot() error {
	if r.sinceSnap.entries < r.snapAt.entries && r.sinceSnap.bytes < r.snapAt.bytes {
		return nil
	}
	start := time.Now()
	index := r.node.Status().Applied
	meta := snapshot.Meta{Index: index, Config: consensus.AppendConfigs(nil, r.node.Configs(index))}
	w, err := r.snaps.Create(meta)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := r.sm.Snapshot(w); err != nil {
		return fmt.Errorf("state machine snapshot at slot %d: %w", index, err)
	}
	if err := w.Commit(); err != nil {
		return err
	}
	r.sinceSnap.entries, r.sinceSnap.bytes = 0, 0
	r.nextSnapshotAt()
	upTo := max(index-min(index, r.cfg.SnapshotTrailing), r.trailingBound())
	r.dropTrail(upTo)
	if err := r.node.Compact(index, upTo); err != nil {
		return err
	}
	// The writer compacts the store after the writes queued so far; the
	// snapshot that covers upTo is durable already.
	r.compacting++
	r.w.compact(upTo)
	r.log.Info("snapshot taken", zap.Uint64("slot", index), zap.Uint64("compacted-to", upTo),
		zap.Duration("took", time.Since(start)))
	return r.snaps.Prune(keepSnapshots)
}

// nextSnapshotAt sets the thresholds of the next snapshot:
// SnapshotEntries and SnapshotBytes, each raised by the same random 0 to
// 50%. Members apply the same log, so with the bare thresholds they would
// all pause for a snapshot at the same slot, and a leader waiting for
// either follower would wait for both; apart, the other member's
// acceptance makes the quorum. Below two entries or bytes the raise
// rounds to nothing.
func (r *Replica) nextSnapshotAt() {
	f := rand.Float64() / 2
	r.snapAt.entries = r.cfg.SnapshotEntries + int(f*float64(r.cfg.SnapshotEntries))
	r.snapAt.bytes = r.cfg.SnapshotBytes + int(f*float64(r.cfg.SnapshotBytes))
}

// slotBytes is an applied slot and the command bytes applied through it.
type slotBytes struct {
	slot    uint64
	through int64
}

// trailingBound is the lowest slot the log may be compacted to so that
// the slots after it hold at most SnapshotTrailingBytes; 0 when unset.
func (r *Replica) trailingBound() uint64 {
	limit := int64(r.cfg.SnapshotTrailingBytes)
	if limit <= 0 {
		return 0
	}
	i := 0
	for i < len(r.trail) && r.applied-r.trail[i].through > limit {
		i++
	}
	if i == len(r.trail) {
		return 0
	}
	return r.trail[i].slot
}

// dropTrail forgets the slots at or below upTo.
func (r *Replica) dropTrail(upTo uint64) {
	i := 0
	for i < len(r.trail) && r.trail[i].slot <= upTo {
		i++
	}
	r.trail = append(r.trail[:0], r.trail[i:]...)
}

// sendSnapshot streams the latest snapshot to a peer that lags behind the
// compacted log, one transfer per peer at a time.
func (r *Replica) sendSnapshot(p consensus.NodeID) {
	if r.sending[p] {
		return
	}
	meta, ok, err := r.snaps.Latest()
	if err != nil || !ok {
		r.log.Warn("no snapshot to send", zap.Uint64("peer", uint64(p)), zap.Error(err))
		return
	}
	rc, size, err := r.snaps.OpenFile(meta.Index)
	if err != nil {
		r.log.Warn("open snapshot to send", zap.Uint64("peer", uint64(p)), zap.Error(err))
		return
	}
	r.sending[p] = true
	go func() {
		defer rc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		err := r.tr.SendSnapshot(ctx, p, rc, size)
		r.log.Info("snapshot sent", zap.Uint64("peer", uint64(p)), zap.Uint64("slot", meta.Index),
			zap.Int64("bytes", size), zap.Error(err))
		select {
		case r.ops <- func() { delete(r.sending, p) }:
		case <-r.done:
		}
	}()
}

// ReceiveSnapshot stores a snapshot file a peer streams to this node,
// verifies it, and installs it. It is the transport's OnSnapshot.
func (r *Replica) ReceiveSnapshot(from consensus.NodeID, rd io.Reader) error {
	meta, err := r.snaps.Import(rd)
	if err != nil {
		return err
	}
	in := install{meta: meta, done: make(chan error, 1)}
	select {
	case r.installs <- in:
	case <-r.done:
		return ErrStopped
	}
	select {
	case err := <-in.done:
		return err
	case <-r.done:
		return ErrStopped
	}
}

// install restores a received snapshot into the state machine and the
// core, unless the node already has every slot it covers.
func (r *Replica) install(meta snapshot.Meta) error {
	if meta.Index <= r.node.Status().Commit {
		return nil
	}
	if err := r.flushWrites(); err != nil {
		return err
	}
	configs, err := r.restoreSnapshot(meta)
	if err != nil {
		return err
	}
	if !r.node.RestoreSnapshot(meta.Index, configs) {
		return nil
	}
	r.sinceSnap.entries, r.sinceSnap.bytes = 0, 0
	r.nextSnapshotAt()
	r.dropTrail(meta.Index)
	if err := r.store.Compact(meta.Index); err != nil {
		return err
	}
	r.log.Info("snapshot installed", zap.Uint64("slot", meta.Index))
	r.releaseApplied(meta.Index)
	return r.snaps.Prune(keepSnapshots)
}

// restoreSnapshot loads snapshot meta.Index into the state machine and
// returns the configurations it records.
func (r *Replica) restoreSnapshot(meta snapshot.Meta) ([]consensus.ConfigState, error) {
	configs, err := consensus.DecodeConfigs(meta.Config)
	if err != nil {
		return nil, fmt.Errorf("driver: snapshot %d configurations: %w", meta.Index, err)
	}
	_, rc, _, err := r.snaps.Open(meta.Index)
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	defer rc.Close()
	if err := r.sm.Restore(rc); err != nil {
		return nil, fmt.Errorf("driver: restore snapshot %d: %w", meta.Index, err)
	}
	return configs, nil
}
