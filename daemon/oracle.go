package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock/tso"
)

// oracle serves the timestamp oracle on the leader (package tso).
type oracle struct {
	d *Daemon

	mu     sync.Mutex
	alloc  tso.Allocator
	ballot consensus.Ballot // the ballot alloc was Reset under
	// raising is closed when the ceiling raise under way ends; nil when
	// none is.
	raising chan struct{}
}

// Timestamp serves n consecutive timestamps here or on the leader.
func (o *oracle) Timestamp(ctx context.Context, n uint32) (uint64, error) {
	out, err := o.d.onLeader(ctx, func() ([]byte, error) {
		first, err := o.serveLocal(ctx, n)
		if err != nil {
			return nil, err
		}
		return binary.AppendUvarint(nil, first), nil
	}, callTimestamp, binary.AppendUvarint(nil, uint64(n)))
	if err != nil {
		return 0, err
	}
	first, k := binary.Uvarint(out)
	if k <= 0 {
		return 0, errors.New("daemon: malformed timestamp answer")
	}
	return first, nil
}

// serveLocal serves on this node, which must lead and hold its lease.
func (o *oracle) serveLocal(ctx context.Context, n uint32) (uint64, error) {
	for attempt := 0; attempt < 8; attempt++ {
		st := o.d.replica.Status()
		if st.Role != consensus.Leader || !o.d.replica.LeaseValid() {
			o.mu.Lock()
			o.alloc.Stop()
			o.mu.Unlock()
			return 0, &consensus.NotLeaderError{Leader: leaderOther(st, o.d.id)}
		}
		o.mu.Lock()
		if !o.alloc.Ready() || o.ballot != st.Promised {
			o.mu.Unlock()
			if err := o.reset(ctx, st.Promised); err != nil {
				return 0, err
			}
			continue
		}
		nowMs := uint64(o.d.host.Now().Time / int64(time.Millisecond))
		first, err := o.alloc.Next(nowMs, n)
		low := o.alloc.CeilingMs() < nowMs+o.windowMs()/2 && o.raising == nil
		o.mu.Unlock()
		var need *tso.NeedCeiling
		switch {
		case errors.As(err, &need):
			if err := o.raise(ctx, need.AtLeastMs); err != nil {
				return 0, err
			}
			continue
		case err != nil:
			return 0, err
		case low:
			go o.raise(context.Background(), nowMs) // ahead of need, off the caller's path
		}
		return first, nil
	}
	return 0, fmt.Errorf("daemon: timestamp oracle could not serve (leadership or ceiling kept changing)")
}

// leaderOther is the leader to redirect to, or 0 when it is this node
// (which then lacks its lease) or unknown.
func leaderOther(st consensus.Status, self consensus.NodeID) consensus.NodeID {
	if st.Leader == self {
		return 0
	}
	return st.Leader
}

// reset commits a ceiling of this leader's own; the ceiling before it
// bounds everything earlier leaders served.
func (o *oracle) reset(ctx context.Context, ballot consensus.Ballot) error {
	nowMs := uint64(o.d.host.Now().Time / int64(time.Millisecond))
	res, err := o.d.replica.Propose(ctx, ordering.EncodeCeiling(ordering.Ceiling{Ms: nowMs + o.windowMs()}))
	if err != nil {
		return err
	}
	cr, ok := res.Value.(ordering.CeilingResult)
	if !ok {
		return fmt.Errorf("daemon: ceiling applied as %v", res.Value)
	}
	o.mu.Lock()
	o.alloc.Reset(cr.PrevMs, cr.Ms)
	o.ballot = ballot
	o.mu.Unlock()
	o.d.log.Info("timestamp oracle serving")
	return nil
}

// raise commits a ceiling a window above atLeastMs; concurrent callers
// share one proposal.
func (o *oracle) raise(ctx context.Context, atLeastMs uint64) error {
	o.mu.Lock()
	if ch := o.raising; ch != nil {
		o.mu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ch := make(chan struct{})
	o.raising = ch
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.raising = nil
		o.mu.Unlock()
		close(ch)
	}()
	res, err := o.d.replica.Propose(ctx, ordering.EncodeCeiling(ordering.Ceiling{Ms: atLeastMs + o.windowMs()}))
	if err != nil {
		return err
	}
	if cr, ok := res.Value.(ordering.CeilingResult); ok {
		o.mu.Lock()
		o.alloc.SetCeiling(cr.Ms)
		o.mu.Unlock()
	}
	return nil
}

func (o *oracle) windowMs() uint64 { return uint64(o.d.cfg.TSOWindow.Milliseconds()) }
