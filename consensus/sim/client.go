package sim

import (
	"errors"
	"fmt"

	"github.com/clockd/clockd/consensus"
)

// client proposes its commands one at a time, like a real client: it
// follows leader hints, and retries a command it has not seen applied
// within its patience. Retries may put a command in the log twice; the
// client counts the first time it is applied.
type client struct {
	id          int
	total       int
	next        int // index of the command in progress; total when done
	target      consensus.NodeID
	submittedAt int64 // -1 while not submitted
	waitUntil   int64
	attempt     uint64
	maxSlot     uint64 // highest slot that applied one of our commands first
}

func newClient(id, total int) *client {
	return &client{id: id, total: total, submittedAt: -1}
}

func (c *client) done() bool { return c.next >= c.total }

func (c *client) data() []byte { return fmt.Appendf(nil, "c%d-%d", c.id, c.next) }

func (c *client) step(s *sim) error {
	if c.done() || s.now < c.waitUntil {
		return nil
	}
	if c.submittedAt >= 0 && s.now-c.submittedAt < s.opts.ClientPatience {
		return nil
	}
	c.submittedAt = -1
	if c.target == 0 {
		c.target = s.ids[s.rng.IntN(len(s.ids))]
	}
	sn := s.nodes[c.target]
	if sn.node == nil {
		c.target = 0
		c.waitUntil = s.now + 5
		return nil
	}
	c.attempt++
	sn.node.SetClock(sn.clock(s.now))
	if s.rng.Float64() < s.opts.ReadRate {
		return c.readAt(s, sn)
	}
	cmd := consensus.Command{ID: uint64(c.id)<<40 | c.attempt, Data: c.data()}
	err := sn.node.Propose(cmd)
	s.trace("client %d proposes %s at %d: %v", c.id, cmd.Data, c.target, err)
	var nl *consensus.NotLeaderError
	switch {
	case err == nil:
		c.submittedAt = s.now
		return s.process(sn)
	case errors.As(err, &nl):
		c.target = nl.Leader
		c.waitUntil = s.now + 5
	case errors.Is(err, consensus.ErrBusy), errors.Is(err, consensus.ErrTransferring):
		c.waitUntil = s.now + 5
	default:
		return fmt.Errorf("client %d: propose: %w", c.id, err)
	}
	return nil
}

// readAt issues a linearizable read; the checker verifies it when the
// node releases it.
func (c *client) readAt(s *sim, sn *simNode) error {
	id := uint64(c.id)<<40 | c.attempt
	var nl *consensus.NotLeaderError
	switch err := sn.node.ReadIndex(id); {
	case err == nil:
		s.check.issuedRead(id, s.now)
		return s.process(sn)
	case errors.As(err, &nl):
		c.target = nl.Leader
	case errors.Is(err, consensus.ErrTransferring):
	default:
		return fmt.Errorf("client %d: read: %w", c.id, err)
	}
	c.waitUntil = s.now + 5
	return nil
}

// applied is called for every entry any node applies.
func (c *client) applied(s *sim, e consensus.Entry) {
	if c.done() {
		return
	}
	want := c.data()
	for _, cmd := range e.Value.Cmds {
		if string(cmd.Data) == string(want) {
			c.next++
			c.submittedAt = -1
			c.maxSlot = max(c.maxSlot, e.Slot)
			s.check.ackedWrite(e.Slot, s.now)
			return
		}
	}
}
