package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/transport"
)

// The peer calls members make of each other (transport.Call).
const (
	callSample    = "clock.sample"     // → vclock.Sample
	callTimestamp = "tso.timestamp"    // uvarint n → uvarint first
	callAdd       = "admin.add-member" // id, addr, learner
	callRemove    = "admin.remove-member"
	callTransfer  = "admin.transfer-leader"
)

// link adapts the transport to the driver: TLS peers are named node-ID.
type link struct{ tr *transport.Transport }

func (l link) Send(msgs []consensus.Message) { l.tr.Send(msgs) }

func (l link) SendSnapshot(ctx context.Context, to consensus.NodeID, r io.Reader, size int64) error {
	return l.tr.SendSnapshot(ctx, to, r, size)
}

// EnsurePeer learns a member the log names.
func (l link) EnsurePeer(id consensus.NodeID, addr string) {
	if l.tr.AddPeer(transport.Peer{ID: id, Addr: addr, Name: PeerName(id)}) != nil {
		l.tr.SetPeerAddr(id, addr)
	}
}

func (d *Daemon) handlers() map[string]transport.Handler {
	return map[string]transport.Handler{
		callEventsPropose: func(ctx context.Context, from consensus.NodeID, req []byte) ([]byte, error) {
			return d.events.serveProposal(ctx, from, req)
		},
		callVMPropose: func(ctx context.Context, from consensus.NodeID, req []byte) ([]byte, error) {
			return d.vms.serveProposal(ctx, from, req)
		},
		callReadIndex: func(ctx context.Context, _ consensus.NodeID, _ []byte) ([]byte, error) {
			out, err := d.readIndexLocal(ctx)
			return out, grpcError(err)
		},
		callRunbookPropose: func(ctx context.Context, from consensus.NodeID, req []byte) ([]byte, error) {
			return d.runbooks.serveProposal(ctx, from, req)
		},
		callEventsRead:  d.serveEventsRead,
		callOffsetsRead: d.serveOffsetsRead,
		callSample: func(context.Context, consensus.NodeID, []byte) ([]byte, error) {
			return appendSample(d.host.Sample()), nil
		},
		callTimestamp: func(ctx context.Context, _ consensus.NodeID, req []byte) ([]byte, error) {
			n, k := binary.Uvarint(req)
			if k <= 0 || n == 0 || n > 1<<18 {
				return nil, status.Errorf(codes.InvalidArgument, "timestamp count %d", n)
			}
			first, err := d.oracle.serveLocal(ctx, uint32(n))
			if err != nil {
				return nil, grpcError(err)
			}
			return binary.AppendUvarint(nil, first), nil
		},
		callAdd: func(ctx context.Context, _ consensus.NodeID, req []byte) ([]byte, error) {
			m, err := decodeMember(req)
			if err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			return nil, grpcError(d.replica.AddMember(ctx, m))
		},
		callRemove: func(ctx context.Context, _ consensus.NodeID, req []byte) ([]byte, error) {
			id, k := binary.Uvarint(req)
			if k <= 0 {
				return nil, status.Error(codes.InvalidArgument, "malformed member id")
			}
			return nil, grpcError(d.replica.RemoveMember(ctx, consensus.NodeID(id)))
		},
		callTransfer: func(ctx context.Context, _ consensus.NodeID, req []byte) ([]byte, error) {
			id, k := binary.Uvarint(req)
			if k <= 0 {
				return nil, status.Error(codes.InvalidArgument, "malformed member id")
			}
			return nil, grpcError(d.replica.TransferLeader(ctx, consensus.NodeID(id)))
		},
	}
}

// onLeader runs local when this node leads, and otherwise makes call on
// the leader: clients may talk to any member.
func (d *Daemon) onLeader(ctx context.Context, local func() ([]byte, error), call string, req []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		out, err := local()
		var nl *consensus.NotLeaderError
		if !errors.As(err, &nl) {
			return out, err
		}
		if nl.Leader != 0 && nl.Leader != d.id {
			out, err = d.tr.Call(ctx, nl.Leader, call, req)
			if status.Code(err) != codes.Aborted {
				return out, err
			}
		}
		// No leader yet, or it just changed: wait a little and retry.
		if attempt == 20 {
			return nil, status.Errorf(codes.Unavailable, "no leader: %v", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// callReadIndex: nothing → the leader's applied slot (uvarint) once a
// read barrier (driver.Replica.Read) has passed on it.
const callReadIndex = "read.index"

// readBarrier returns once this node has applied every command
// acknowledged before the call, wherever it was proposed: the leader
// passes a read barrier and names its applied slot, which this node
// then waits to apply.
func (d *Daemon) readBarrier(ctx context.Context) error {
	out, err := d.onLeader(ctx, func() ([]byte, error) { return d.readIndexLocal(ctx) }, callReadIndex, nil)
	if err != nil {
		return grpcError(err)
	}
	slot, k := binary.Uvarint(out)
	if k <= 0 {
		return status.Error(codes.Internal, "read index without a slot")
	}
	return grpcError(d.replica.WaitApplied(ctx, slot))
}

func (d *Daemon) readIndexLocal(ctx context.Context) ([]byte, error) {
	if err := d.replica.Read(ctx); err != nil {
		return nil, err
	}
	return binary.AppendUvarint(nil, d.replica.Status().Applied), nil
}

func encodeMember(m consensus.Member) []byte {
	b := binary.AppendUvarint(nil, uint64(m.ID))
	b = binary.AppendUvarint(b, uint64(len(m.Addr)))
	b = append(b, m.Addr...)
	if m.Promote {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeMember(b []byte) (consensus.Member, error) {
	id, k := binary.Uvarint(b)
	if k <= 0 {
		return consensus.Member{}, errors.New("malformed member")
	}
	b = b[k:]
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) != n+1 {
		return consensus.Member{}, errors.New("malformed member")
	}
	addr := string(b[k : k+int(n)])
	// Members travel as learners; the flag says whether to promote.
	return consensus.Member{ID: consensus.NodeID(id), Addr: addr, Learner: true, Promote: b[len(b)-1] == 1}, nil
}

// grpcError gives errors a status a caller can act on. Not being the
// leader is Aborted, which onLeader retries.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var nl *consensus.NotLeaderError
	switch {
	case errors.As(err, &nl):
		return status.Errorf(codes.Aborted, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, consensus.ErrMemberExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, consensus.ErrChangeInFlight), errors.Is(err, consensus.ErrBusy):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, consensus.ErrUnknownMember):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, consensus.ErrLoseQuorum), errors.Is(err, consensus.ErrNotVoter),
		errors.Is(err, consensus.ErrTransferring):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Internal, fmt.Sprint(err))
}

func uvarint(v uint64) []byte { return binary.AppendUvarint(nil, v) }
