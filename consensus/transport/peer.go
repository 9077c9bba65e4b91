package transport

import (
	"context"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
)

// stream is what a session needs of grpc.ClientStream and grpc.ServerStream.
type stream interface {
	Context() context.Context
	SendMsg(m any) error
	RecvMsg(m any) error
}

// peer is the transport's state for one other member, from New or AddPeer
// until Close or RemovePeer. A member removed and added again is a new peer.
type peer struct {
	id    consensus.NodeID
	name  string
	queue chan []byte // encoded outbound messages, bounded by Config.QueueLen
	// queued is the bytes in queue, bounded by Config.QueueBytes, so a
	// stalled peer holds a bounded amount of the sender's memory.
	queued atomic.Int64

	// active is the session that carries outbound messages, nil while no
	// stream is up. Send drops messages for a peer whose active is nil.
	active atomic.Pointer[session]

	// ctx ends the peer's dialer and streams; it is canceled by RemovePeer
	// and, through the transport's context, by Close.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the goroutines that work for this peer: its dialer, and
	// the handler and receiver of each stream it dialed to us.
	wg sync.WaitGroup

	mu         sync.Mutex
	addr       string
	addrChange chan struct{} // closed and replaced when addr changes
	removed    bool          // set by shutdown; no goroutine joins wg after it
}

func newPeer(parent context.Context, p Peer, queueLen int) *peer {
	ctx, cancel := context.WithCancel(parent)
	return &peer{
		id:         p.ID,
		name:       p.Name,
		queue:      make(chan []byte, queueLen),
		ctx:        ctx,
		cancel:     cancel,
		addr:       p.Addr,
		addrChange: make(chan struct{}),
	}
}

// enter counts one more goroutine working for p, unless p was removed.
// The caller calls p.wg.Done when that goroutine is done.
func (p *peer) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return false
	}
	p.wg.Add(1)
	return true
}

// shutdown ends everything that works for p and waits for it.
func (p *peer) shutdown() {
	p.mu.Lock()
	p.removed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

// info is p as the Peers method reports it.
func (p *peer) info() Peer {
	addr, _ := p.address()
	return Peer{ID: p.id, Addr: addr, Name: p.name}
}

// address returns the current address and a channel closed when it changes.
func (p *peer) address() (string, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr, p.addrChange
}

func (p *peer) setAddress(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if addr == p.addr {
		return
	}
	p.addr = addr
	close(p.addrChange)
	p.addrChange = make(chan struct{})
}

// session is one established stream to a peer, seen from this node. Its
// writer goroutine is the only caller of stream.SendMsg.
type session struct {
	peer   *peer
	stream stream
	// ready is closed once the stream may carry messages: at once for a
	// dialed stream, after the response header for an accepted one. The
	// writer waits for it, so the acceptor can make a session active
	// before its header tells the dialer that the stream is up.
	ready    chan struct{}
	stop     chan struct{} // closed to make the writer return
	stopOnce sync.Once
	done     chan struct{} // closed when the writer has returned
	replaced atomic.Bool   // a newer session took over the peer
}

func (s *session) halt() { s.stopOnce.Do(func() { close(s.stop) }) }

// open lets the writer start sending.
func (s *session) open() { close(s.ready) }

// attach makes st the peer's outbound stream, replacing any older one, and
// starts its writer, which sends nothing before open.
func (t *Transport) attach(p *peer, st stream) *session {
	s := &session{peer: p, stream: st, ready: make(chan struct{}), stop: make(chan struct{}),
		done: make(chan struct{})}
	if old := p.active.Swap(s); old != nil {
		old.replaced.Store(true)
		old.halt()
	}
	go t.writeLoop(s)
	t.log.Info("peer stream up", zap.Uint64("peer-id", uint64(p.id)))
	return s
}

// detach stops s and waits for its writer. The owner of the stream calls
// it, with the error that ended the stream, before giving the stream up:
// after detach returns nothing sends on it.
func (t *Transport) detach(s *session, cause error) {
	s.peer.active.CompareAndSwap(s, nil)
	s.halt()
	<-s.done
	if !s.replaced.Load() {
		t.dropQueued(s.peer)
		t.log.Info("peer stream down", zap.Uint64("peer-id", uint64(s.peer.id)), zap.Error(cause))
	}
}

// dropQueued discards messages that waited for a stream that is now gone:
// they are stale by the time another stream comes up.
func (t *Transport) dropQueued(p *peer) {
	for {
		select {
		case msg := <-p.queue:
			p.queued.Add(-int64(len(msg)))
			t.stats.dropped.Add(1)
		default:
			return
		}
	}
}

func (t *Transport) writeLoop(s *session) {
	defer close(s.done)
	select {
	case <-s.stop:
		return
	case <-s.ready:
	}
	b := newFrameBuilder(t.cfg.MaxFrameBytes)
	for {
		select {
		case <-s.stop:
			return
		case msg := <-s.peer.queue:
			b.reserve(len(msg) + int(s.peer.queued.Add(-int64(len(msg)))))
			b.add(msg)
		}
		if !t.packAndSend(s, b) {
			s.peer.active.CompareAndSwap(s, nil)
			return
		}
	}
}

// packAndSend adds whatever is queued to b, sending each frame as it fills,
// and then sends the last one. It reports whether the stream still works.
func (t *Transport) packAndSend(s *session, b *frameBuilder) bool {
	for {
		select {
		case msg := <-s.peer.queue:
			left := s.peer.queued.Add(-int64(len(msg)))
			if !b.fits(len(msg)) && !t.sendFrame(s, b) {
				return false
			}
			b.reserve(len(msg) + int(left))
			b.add(msg)
		default:
			return t.sendFrame(s, b)
		}
	}
}

func (t *Transport) sendFrame(s *session, b *frameBuilder) bool {
	f, n := b.take()
	if err := s.stream.SendMsg(f); err != nil {
		t.stats.dropped.Add(uint64(n))
		t.log.Debug("peer frame not sent", zap.Uint64("peer-id", uint64(s.peer.id)),
			zap.Int("messages", n), zap.Error(err))
		return false
	}
	t.stats.sent.Add(uint64(n))
	t.stats.frames.Add(1)
	return true
}
