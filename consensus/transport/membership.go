package transport

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
)

// peer returns the member id, or nil.
func (t *Transport) peer(id consensus.NodeID) *peer {
	return (*t.peers.Load())[id]
}

// AddPeer makes p a member, before or after Start. With a higher id than
// this node's, it is dialed at p.Addr, or once SetPeerAddr names an
// address; with a lower id, its streams are accepted from now on. AddPeer
// fails for an id that is already a member (SetPeerAddr moves one), for
// this node's id and after Close.
func (t *Transport) AddPeer(p Peer) error {
	if err := t.cfg.checkPeer(p); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == stateClosed {
		return ErrClosed
	}
	old := *t.peers.Load()
	if old[p.ID] != nil {
		return fmt.Errorf("%w: peer %d is already a member", ErrInvalidConfig, p.ID)
	}
	np := newPeer(t.ctx, p, t.cfg.QueueLen)
	peers := maps.Clone(old)
	peers[p.ID] = np
	t.peers.Store(&peers)
	if t.state == stateStarted {
		t.startDialer(np)
	}
	t.log.Info("peer added", zap.Uint64("peer-id", uint64(p.ID)), zap.String("peer-addr", p.Addr))
	return nil
}

// RemovePeer ends membership of id: it stops the dialer, ends the stream
// and drops the queued messages, and returns once none of them runs. From
// then on, messages to id are dropped as having an unknown destination,
// streams from id are refused, and the handler is not called with messages
// from id. An inbound snapshot from id fails at its next chunk.
//
// RemovePeer waits for the goroutine that calls the handler for id, so it
// must not be called from the handler.
func (t *Transport) RemovePeer(id consensus.NodeID) error {
	t.mu.Lock()
	old := *t.peers.Load()
	p := old[id]
	if p == nil {
		t.mu.Unlock()
		return fmt.Errorf("%w: %d", ErrUnknownPeer, id)
	}
	peers := maps.Clone(old)
	delete(peers, id)
	t.peers.Store(&peers)
	t.mu.Unlock()

	p.shutdown()
	t.dropQueued(p)
	t.closeCalls(id, false)
	t.log.Info("peer removed", zap.Uint64("peer-id", uint64(id)))
	return nil
}

// Peers returns the current members, by id. The caller owns the slice.
func (t *Transport) Peers() []Peer {
	peers := *t.peers.Load()
	out := make([]Peer, 0, len(peers))
	for _, p := range peers {
		out = append(out, p.info())
	}
	slices.SortFunc(out, func(a, b Peer) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// startDialer runs p's dialer if this node is the one to dial p: the
// lower id dials. The caller holds t.mu in stateStarted and p is in the
// peer map, so neither Close nor RemovePeer waits for p yet.
func (t *Transport) startDialer(p *peer) {
	if p.id < t.cfg.ID {
		return
	}
	t.wg.Add(1)
	p.wg.Add(1)
	go t.dialLoop(p)
}
