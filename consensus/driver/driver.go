package driver

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
)

// StateMachine is the replicated application. Apply is called from the
// driver goroutine, once per chosen command, in slot order; its result is
// handed to the proposer. It must be deterministic.
type StateMachine interface {
	Apply(slot uint64, cmd []byte) any
}

// Storage is the durable acceptor state; consensus/storage implements it.
// Save must not return before the data is on stable storage.
type Storage interface {
	Load() (consensus.HardState, []consensus.Entry, error)
	Save(hs consensus.HardState, hsChanged bool, ents []consensus.Entry) error
}

// Transport delivers messages to peers, best effort; consensus/transport
// implements it. Send must not block.
type Transport interface {
	Send(msgs []consensus.Message)
}

// Config configures a Replica.
type Config struct {
	// Core is the protocol configuration. Rand may be left nil: the driver
	// seeds one from crypto/rand.
	Core consensus.Config
	// TickInterval is the wall-clock length of one protocol tick. Default 50ms.
	TickInterval time.Duration
	// InboxLen bounds the peer messages waiting for the driver; beyond it
	// messages are dropped (the protocol retransmits). Default 4096.
	InboxLen int
	Logger   *zap.Logger
}

// Errors returned by Propose besides *consensus.NotLeaderError.
var (
	// ErrOutcomeUnknown: the command got a slot, then this node lost the
	// leadership before learning whether it was chosen. It may still be
	// applied; a retry may apply it twice.
	ErrOutcomeUnknown = errors.New("driver: leadership lost, outcome unknown")
	// ErrStopped: the replica is not running.
	ErrStopped = errors.New("driver: replica stopped")
)

// Result is the outcome of a successful Propose.
type Result struct {
	Slot  uint64
	Value any // what StateMachine.Apply returned
}

type proposal struct {
	cmd   consensus.Command
	reply chan reply // buffered: the driver never blocks on it
}

type reply struct {
	res Result
	err error
}

// Replica runs one consensus node: a single goroutine owns the protocol
// core, and for every Ready it persists, then sends, then applies.
type Replica struct {
	cfg   Config
	log   *zap.Logger
	store Storage
	sm    StateMachine
	tr    Transport

	inbox     chan consensus.Message
	proposals chan proposal
	done      chan struct{}
	stopErr   error // set before done is closed

	mu     sync.Mutex
	status consensus.Status

	// Owned by the Run goroutine.
	node    *consensus.Node
	nextID  uint64
	waiters map[uint64]chan reply
	role    consensus.Role
}

// New restores a replica from storage. Call Run to start it.
func New(cfg Config, store Storage, tr Transport, sm StateMachine) (*Replica, error) {
	if cfg.Logger == nil {
		return nil, fmt.Errorf("driver: config: Logger is required")
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 50 * time.Millisecond
	}
	if cfg.InboxLen <= 0 {
		cfg.InboxLen = 4096
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("driver: seed: %w", err)
	}
	if cfg.Core.Rand == nil {
		cfg.Core.Rand = rand.New(rand.NewChaCha8(seed))
	}
	hs, ents, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("driver: load state: %w", err)
	}
	node, err := consensus.NewNode(cfg.Core, consensus.State{Hard: hs, Entries: ents})
	if err != nil {
		return nil, err
	}
	r := &Replica{
		cfg: cfg, log: cfg.Logger.With(zap.Uint64("node", uint64(cfg.Core.ID))),
		store: store, sm: sm, tr: tr, node: node,
		inbox:     make(chan consensus.Message, cfg.InboxLen),
		proposals: make(chan proposal, 1024),
		done:      make(chan struct{}),
		// Command IDs start at a random point so a restarted node never
		// mistakes an old log entry for one of its new proposals.
		nextID:  binary.LittleEndian.Uint64(seed[:8]),
		waiters: map[uint64]chan reply{},
	}
	r.status = node.Status()
	r.log.Info("replica restored", zap.Uint64("commit", hs.Commit), zap.Int("entries", len(ents)),
		zap.Stringer("promised", hs.Promised))
	return r, nil
}

// Step hands a peer message to the replica. It never blocks: when the
// inbox is full the message is dropped, as the network might have done.
func (r *Replica) Step(m consensus.Message) {
	select {
	case r.inbox <- m:
	default:
	}
}

// Propose submits cmd and waits until it is chosen and applied locally.
// On a follower it fails at once with *consensus.NotLeaderError naming the
// leader; proposals are never forwarded.
func (r *Replica) Propose(ctx context.Context, cmd []byte) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	p := proposal{cmd: consensus.Command{Data: cmd}, reply: make(chan reply, 1)}
	select {
	case r.proposals <- p:
	case <-r.done:
		return Result{}, ErrStopped
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case rep := <-p.reply:
		return rep.res, rep.err
	case <-r.done:
		return Result{}, ErrStopped
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Status returns the state as of the last processed Ready.
func (r *Replica) Status() consensus.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Done is closed when Run has returned.
func (r *Replica) Done() <-chan struct{} { return r.done }

// Err returns why Run stopped; valid once Done is closed.
func (r *Replica) Err() error {
	<-r.done
	return r.stopErr
}

// Run drives the node until ctx is cancelled or storage fails. A storage
// failure stops the node (fail-stop): it never goes on as if unsynced data
// were safe.
func (r *Replica) Run(ctx context.Context) error {
	err := r.loop(ctx)
	r.failWaiters(ErrStopped)
	r.stopErr = err
	close(r.done)
	return err
}

func (r *Replica) loop(ctx context.Context) error {
	ticker := time.NewTicker(r.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			r.log.Info("replica stopping")
			return nil
		case <-ticker.C:
			r.node.Tick()
		case m := <-r.inbox:
			r.step(m)
			r.drainInbox()
		case p := <-r.proposals:
			r.propose(p)
			r.drainProposals()
		}
		if err := r.handleReady(); err != nil {
			return err
		}
	}
}

// drainInbox steps every message already waiting, so one Ready (one fsync)
// covers them all.
func (r *Replica) drainInbox() {
	for range cap(r.inbox) {
		select {
		case m := <-r.inbox:
			r.step(m)
		default:
			return
		}
	}
}

func (r *Replica) drainProposals() {
	for range cap(r.proposals) {
		select {
		case p := <-r.proposals:
			r.propose(p)
		default:
			return
		}
	}
}

func (r *Replica) step(m consensus.Message) {
	if err := r.node.Step(m); err != nil {
		r.log.Warn("peer message rejected", zap.Uint64("from", uint64(m.From)),
			zap.Stringer("type", m.Type), zap.Error(err))
	}
}

func (r *Replica) propose(p proposal) {
	r.nextID++
	p.cmd.ID = r.nextID
	if err := r.node.Propose(p.cmd); err != nil {
		p.reply <- reply{err: err}
		return
	}
	r.waiters[p.cmd.ID] = p.reply
}

func (r *Replica) handleReady() error {
	for r.node.HasReady() {
		rd := r.node.Ready()
		if rd.MustSync() {
			if err := r.store.Save(rd.HardState, rd.HardStateChanged, rd.Entries); err != nil {
				r.log.Error("storage write failed, stopping node", zap.Error(err))
				return fmt.Errorf("driver: storage: %w", err)
			}
		}
		if len(rd.Messages) > 0 {
			r.tr.Send(rd.Messages)
		}
		r.apply(rd.Committed)
		for _, c := range rd.Dropped {
			r.resolve(c.ID, reply{err: &consensus.NotLeaderError{Leader: rd.Leader}})
		}
		if r.role == consensus.Leader && rd.Role != consensus.Leader {
			r.failWaiters(ErrOutcomeUnknown)
		}
		if r.role != rd.Role {
			r.log.Info("role changed", zap.Stringer("role", rd.Role), zap.Uint64("leader", uint64(rd.Leader)))
		}
		r.role = rd.Role
		r.node.Advance(rd)
	}
	st := r.node.Status()
	r.mu.Lock()
	r.status = st
	r.mu.Unlock()
	return nil
}

func (r *Replica) apply(ents []consensus.Entry) {
	for _, e := range ents {
		for _, c := range e.Value.Cmds {
			v := r.sm.Apply(e.Slot, c.Data)
			r.resolve(c.ID, reply{res: Result{Slot: e.Slot, Value: v}})
		}
	}
}

func (r *Replica) resolve(id uint64, rep reply) {
	if w, ok := r.waiters[id]; ok {
		w <- rep
		delete(r.waiters, id)
	}
}

func (r *Replica) failWaiters(err error) {
	for id, w := range r.waiters {
		w <- reply{err: err}
		delete(r.waiters, id)
	}
}
