package transport

import (
	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
)

// Send queues msgs for their destinations, m.To, and returns at once. It
// encodes each message before returning, so the caller may reuse msgs and
// everything they point to. A message is dropped, and counted in
// Stats.Dropped, when its destination is unknown, its sender is not this
// node, no stream to the destination is up, the destination's queue is
// full, or it cannot fit in a frame. Delivery is best effort: Paxos
// tolerates loss, duplication and reordering.
func (t *Transport) Send(msgs []consensus.Message) {
	for i := range msgs {
		t.send(&msgs[i])
	}
}

func (t *Transport) send(m *consensus.Message) {
	p := t.peer(m.To)
	switch {
	case p == nil:
		t.dropMessage("unknown destination", m)
		return
	case m.From != t.cfg.ID:
		t.dropMessage("sender is not this node", m)
		return
	case p.active.Load() == nil:
		t.stats.dropped.Add(1)
		return
	}
	buf := consensus.AppendMessage(make([]byte, 0, sizeHint(m)), m)
	if !fitsAlone(t.cfg.MaxFrameBytes, len(buf)) {
		t.dropMessage("message exceeds MaxFrameBytes", m, zap.Int("msg-bytes", len(buf)),
			zap.Int("max-frame-bytes", t.cfg.MaxFrameBytes))
		return
	}
	if p.queued.Add(int64(len(buf))) > int64(t.cfg.QueueBytes) {
		p.queued.Add(-int64(len(buf)))
		t.stats.dropped.Add(1)
		t.log.Debug("outbound queue full", zap.Uint64("peer-id", uint64(p.id)))
		return
	}
	select {
	case p.queue <- buf:
	default:
		p.queued.Add(-int64(len(buf)))
		t.stats.dropped.Add(1)
		t.log.Debug("outbound queue full", zap.Uint64("peer-id", uint64(p.id)))
	}
}

// sizeHint is at least the size of m's encoding, so encoding it never
// grows the buffer: the entries of an Accept can run to megabytes.
func sizeHint(m *consensus.Message) int {
	n := 64
	for i := range m.Entries {
		v := &m.Entries[i].Value
		n += 32 + v.Bytes() + 16*len(v.Cmds)
	}
	return n
}

func (t *Transport) dropMessage(reason string, m *consensus.Message, fields ...zap.Field) {
	t.stats.dropped.Add(1)
	t.log.Warn("outbound message dropped", append([]zap.Field{
		zap.String("reason", reason), zap.Stringer("msg-type", m.Type),
		zap.Uint64("msg-from", uint64(m.From)), zap.Uint64("msg-to", uint64(m.To)),
	}, fields...)...)
}
