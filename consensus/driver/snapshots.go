package driver

import (
	"bytes"
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

// snapJob is a snapshot whose file is being written.
type snapJob struct {
	meta  snapshot.Meta
	start time.Time
	pause time.Duration // the driver goroutine's part: the capture
	done  chan error    // buffered; the write's outcome
}

// maybeSnapshot starts a snapshot once enough was applied since the last
// one (nextSnapshotAt) and none is being written. On the driver goroutine
// it only captures the state machine's state (Capturer); a goroutine of
// its own writes the file, and snapshotted compacts behind it once it is
// committed. So consensus pauses for the copy, not for the disk.
func (r *Replica) maybeSnapshot() error {
	if r.snapping != nil || r.sinceSnap.entries < r.snapAt.entries && r.sinceSnap.bytes < r.snapAt.bytes {
		return nil
	}
	start := time.Now()
	index := r.node.Status().Applied
	meta := snapshot.Meta{Index: index, Config: consensus.AppendConfigs(nil, r.node.Configs(index))}
	write, err := r.capture()
	if err != nil {
		return fmt.Errorf("state machine snapshot at slot %d: %w", index, err)
	}
	r.sinceSnap.entries, r.sinceSnap.bytes = 0, 0
	r.nextSnapshotAt()
	job := &snapJob{meta: meta, start: start, pause: time.Since(start), done: make(chan error, 1)}
	r.snapping = job
	go func() { job.done <- r.writeSnapshot(meta, write) }()
	return nil
}

// capture copies the state machine's state on the driver goroutine.
func (r *Replica) capture() (func(io.Writer) error, error) {
	if c, ok := r.sm.(Capturer); ok {
		return c.Capture()
	}
	var buf bytes.Buffer
	if err := r.sm.Snapshot(&buf); err != nil {
		return nil, err
	}
	return func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	}, nil
}

// writeSnapshot writes and commits one snapshot file; it runs off the
// driver goroutine.
func (r *Replica) writeSnapshot(meta snapshot.Meta, write func(io.Writer) error) error {
	w, err := r.snaps.Create(meta)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := write(w); err != nil {
		return fmt.Errorf("state machine snapshot at slot %d: %w", meta.Index, err)
	}
	return w.Commit()
}

// snapDone is the snapshot's outcome, or nil (never ready) when none is
// being written.
func (r *Replica) snapDone() <-chan error {
	if r.snapping == nil {
		return nil
	}
	return r.snapping.done
}

// awaitSnapshot waits for the snapshot being written, if any, and
// finishes it.
func (r *Replica) awaitSnapshot() error {
	if r.snapping == nil {
		return nil
	}
	return r.snapshotted(<-r.snapping.done)
}

// snapshotted finishes the snapshot being written, whose outcome is err:
// once its file is committed, the log behind it is compacted, keeping
// SnapshotTrailing slots (fewer if SnapshotTrailingBytes says so), in
// memory at once and in the store by the writer. A snapshot that failed
// stops the node.
func (r *Replica) snapshotted(err error) error {
	job := r.snapping
	r.snapping = nil
	if err != nil {
		r.log.Error("snapshot failed, stopping node", zap.Error(err))
		return fmt.Errorf("driver: snapshot: %w", err)
	}
	index := job.meta.Index
	upTo := min(index, max(index-min(index, r.cfg.SnapshotTrailing), r.trailingBound()))
	r.dropTrail(upTo)
	if err := r.node.Compact(index, upTo); err != nil {
		return err
	}
	// The writer compacts the store after the writes queued so far; the
	// snapshot that covers upTo is durable already.
	r.compacting++
	r.w.compact(upTo)
	r.log.Info("snapshot taken", zap.Uint64("slot", index), zap.Uint64("compacted-to", upTo),
		zap.Duration("pause", job.pause), zap.Duration("took", time.Since(job.start)))
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
