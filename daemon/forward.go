package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering"
)

// callEventsPropose: an encoded event batch → its encoded result. A
// member that does not lead forwards its batches to the leader with it.
const callEventsPropose = "events.propose"

// maxForwardWait bounds how long the leader holds a forwarded batch back
// while the batch before it, forwarded too, has not arrived.
const maxForwardWait = 20 * time.Millisecond

// forwardOrder submits the batches other members forward in each
// origin's batch order. Calls may overtake one another on the way, and a
// batch submitted before its predecessor would be rejected and proposed
// again (go-back-N): correct, but wasted. Order here is only an
// optimisation; the state machine enforces it.
type forwardOrder struct {
	maxWait time.Duration // 0: maxForwardWait

	mu      sync.Mutex
	last    map[consensus.NodeID]batchPos // the last batch submitted, by origin
	changed chan struct{}                 // closed and replaced when last changes
}

type batchPos struct{ epoch, batch uint64 }

// after reports whether a comes after b in a pipeline's order.
func (a batchPos) after(b batchPos) bool {
	return a.epoch > b.epoch || a.epoch == b.epoch && a.batch > b.batch
}

// submit runs fn, which submits batch pos of origin, once the batch before
// it was submitted, or maxForwardWait has passed, or it can no longer come.
func (o *forwardOrder) submit(ctx context.Context, origin consensus.NodeID, pos batchPos,
	fn func() (*driver.Pending, error)) (*driver.Pending, error) {
	wait := o.maxWait
	if wait == 0 {
		wait = maxForwardWait
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	o.mu.Lock()
	for waiting := true; waiting; {
		last := o.last[origin]
		if pos.batch == 1 || !(batchPos{pos.epoch, pos.batch - 1}).after(last) {
			break
		}
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		changed := o.changed
		o.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			waiting = false
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		o.mu.Lock()
	}
	defer o.mu.Unlock()
	pend, err := fn()
	if err == nil && pos.after(o.last[origin]) {
		if o.last == nil {
			o.last = map[consensus.NodeID]batchPos{}
		}
		o.last[origin] = pos
		if o.changed != nil {
			close(o.changed)
			o.changed = nil
		}
	}
	return pend, err
}

// serveProposal is the leader's side of callEventsPropose. A member may
// only forward its own pipeline's batches.
func (p *eventPipeline) serveProposal(ctx context.Context, from consensus.NodeID, cmd []byte) ([]byte, error) {
	origin, epoch, batch, err := ordering.BatchPlace(cmd)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if origin != 0 && origin != from {
		return nil, status.Errorf(codes.PermissionDenied, "node %d forwards a batch of node %d", from, origin)
	}
	submit := func() (*driver.Pending, error) { return p.d.replica.Submit(ctx, cmd) }
	var pend *driver.Pending
	if origin == 0 {
		pend, err = submit()
	} else {
		pend, err = p.forward.submit(ctx, origin, batchPos{epoch, batch}, submit)
	}
	if err != nil {
		return nil, grpcError(err)
	}
	r, err := pend.Wait(ctx)
	o := resultOutcome(r.Value, err)
	if o.err != nil {
		return nil, grpcError(o.err)
	}
	return encodeEventsResult(o.res), nil
}

func encodeEventsResult(r ordering.EventsResult) []byte {
	b := uvarint(r.FirstGSN)
	b = append(b, uvarint(uint64(r.Accepted))...)
	b = append(b, uvarint(uint64(r.Duplicates))...)
	b = wire.AppendBool(b, r.Rejected)
	b = append(b, uvarint(r.Epoch)...)
	b = append(b, uvarint(r.Batch)...)
	b = append(b, uvarint(uint64(len(r.DuplicateAt)))...)
	for _, i := range r.DuplicateAt {
		b = append(b, uvarint(uint64(i))...)
	}
	return b
}

var errBadResult = errors.New("daemon: malformed events result")

func decodeEventsResult(b []byte) (ordering.EventsResult, error) {
	d := wire.NewDecoder(b, errBadResult)
	r := ordering.EventsResult{FirstGSN: d.Uvarint(), Accepted: int(d.Uvarint()), Duplicates: int(d.Uvarint()),
		Rejected: d.Bool(), Epoch: d.Uvarint(), Batch: d.Uvarint()}
	if n := d.Count(1); n > 0 {
		r.DuplicateAt = make([]int, n)
		for i := range r.DuplicateAt {
			r.DuplicateAt[i] = int(d.Uvarint())
		}
	}
	return r, d.Finish()
}
