package transport

import (
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
)

// recvLoop delivers the frames of st, authenticated as p, until the stream
// fails. It never returns nil.
func (t *Transport) recvLoop(p *peer, st stream) error {
	for {
		var f frame
		if err := st.RecvMsg(&f); err != nil {
			if status.Code(err) == codes.ResourceExhausted {
				t.rejectFrame(p, "frame exceeds the gRPC limit", -1, err)
			}
			return err
		}
		t.deliverFrame(p, f.buf)
	}
}

func (t *Transport) deliverFrame(p *peer, buf []byte) {
	if len(buf) > t.cfg.MaxFrameBytes {
		t.rejectFrame(p, "frame exceeds MaxFrameBytes", len(buf), nil)
		return
	}
	err := walkFrame(buf, func(msg []byte) { t.deliver(p, msg) })
	if err != nil {
		t.rejectFrame(p, "malformed frame", len(buf), err)
	}
}

// deliver hands one encoded message to the handler if it is well formed and
// p may send it.
func (t *Transport) deliver(p *peer, buf []byte) {
	m, err := consensus.DecodeMessage(buf)
	switch {
	case err != nil:
		t.rejectMessage(p, "malformed message", &m, zap.Error(err), zap.Int("msg-bytes", len(buf)))
	case m.From != p.id:
		t.rejectMessage(p, "sender is not the authenticated peer", &m)
	case m.To != t.cfg.ID:
		t.rejectMessage(p, "message is not addressed to this node", &m)
	default:
		t.stats.received.Add(1)
		t.handler(m)
	}
}

// rejectFrame counts and logs a frame refused as a unit. size is -1 when
// gRPC refused the frame unread.
func (t *Transport) rejectFrame(p *peer, reason string, size int, err error) {
	t.stats.rejected.Add(1)
	t.log.Warn("inbound frame rejected", zap.Uint64("peer-id", uint64(p.id)),
		zap.String("reason", reason), zap.Int("frame-bytes", size), zap.Error(err))
}

func (t *Transport) rejectMessage(p *peer, reason string, m *consensus.Message, fields ...zap.Field) {
	t.stats.rejected.Add(1)
	t.log.Warn("inbound message rejected", append([]zap.Field{
		zap.Uint64("peer-id", uint64(p.id)), zap.String("reason", reason),
		zap.Stringer("msg-type", m.Type), zap.Uint64("msg-from", uint64(m.From)),
		zap.Uint64("msg-to", uint64(m.To)),
	}, fields...)...)
}
