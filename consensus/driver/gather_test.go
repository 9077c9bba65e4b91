package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/snapshot"
	"github.com/clockd/clockd/consensus/storage"
)

// counter is a StateMachine that counts the commands applied.
type counter struct{ n int }

func (c *counter) Apply(uint64, []byte) any { c.n++; return c.n }

func (c *counter) Snapshot(w io.Writer) error { _, err := fmt.Fprint(w, c.n); return err }

func (c *counter) Restore(r io.Reader) error { _, err := fmt.Fscan(r, &c.n); return err }

type soloNet struct{}

func (soloNet) Send([]consensus.Message) {}

func (soloNet) SendSnapshot(context.Context, consensus.NodeID, io.Reader, int64) error {
	return errors.New("no network")
}

// gate holds the next Save, once armed, until released.
type gate struct {
	*storage.Store
	armed   chan struct{} // a value arms the gate for one Save
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Save(hs consensus.HardState, changed bool, ents []consensus.Entry) error {
	select {
	case <-g.armed:
		g.entered <- struct{}{}
		<-g.release
	default:
	}
	return g.Store.Save(hs, changed, ents)
}

// startGatherSolo runs a single-member replica with the given
// GatherWindow, once it leads.
func startGatherSolo(t *testing.T, window time.Duration) *Replica {
	r, _ := startGatedSolo(t, window)
	return r
}

// startGatedSolo is startGatherSolo with a gate on the replica's store.
func startGatedSolo(t *testing.T, window time.Duration) (*Replica, *gate) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paxos.db")
	store, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{Store: store, armed: make(chan struct{}, 1), entered: make(chan struct{}), release: make(chan struct{})}
	snaps, err := snapshot.Open(path+"-snapshots", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Core: consensus.Config{ID: 1, Members: []consensus.NodeID{1}},
		TickInterval: time.Millisecond, GatherWindow: window, Logger: zaptest.NewLogger(t)}
	r, err := New(cfg, g, snaps, soloNet{}, &counter{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	t.Cleanup(func() { cancel(); <-r.Done(); store.Close() })
	for {
		pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := r.Propose(pctx, []byte("elected"))
		pcancel()
		var nl *consensus.NotLeaderError
		if errors.As(err, &nl) {
			<-time.After(time.Millisecond) // the election is a few ticks away
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return r, g
	}
}

// expectNext sets how many proposals the leader expects next, as a slot
// that resolved n of them would have.
func expectNext(t *testing.T, r *Replica, n int) {
	t.Helper()
	if err := r.call(context.Background(), func() error { r.expect = n; return nil }); err != nil {
		t.Fatal(err)
	}
}

// proposeAll proposes n commands from n goroutines at once and returns
// their slots.
func proposeAll(t *testing.T, r *Replica, n int) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	slots := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := r.Propose(ctx, fmt.Appendf(nil, "cmd-%d", i))
			slots[i], errs[i] = res.Slot, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return slots
}

// TestGatherFillsOneSlot: a leader that expects n proposals puts n that
// arrive one by one, however far apart within the window, into one slot,
// and then expects n again.
func TestGatherFillsOneSlot(t *testing.T) {
	r := startGatherSolo(t, time.Hour)
	const n = 40
	expectNext(t, r, n)
	for round := range 3 {
		slots := proposeAll(t, r, n)
		for i, s := range slots {
			if s != slots[0] {
				t.Fatalf("round %d: command %d in slot %d, command 0 in slot %d: want one slot", round, i, s, slots[0])
			}
		}
	}
}

// TestGatherMergesCallers: proposals held while a slot is in flight wait,
// once it is chosen, for the callers it answered, so that all of them
// share the next slot instead of taking one each.
func TestGatherMergesCallers(t *testing.T) {
	r, g := startGatedSolo(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g.armed <- struct{}{}
	first, err := r.Submit(ctx, []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered // the slot of "first" is in flight, and stays so
	const n = 30
	var held []*Pending
	for i := range n {
		p, err := r.Submit(ctx, fmt.Appendf(nil, "held-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, p)
	}
	for { // until the loop has taken all n, and held them
		var k int
		if err := r.call(ctx, func() error { k = len(r.held); return nil }); err != nil {
			t.Fatal(err)
		}
		if k == n {
			break
		}
	}
	close(g.release)
	res, err := first.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The caller of "first" comes back; the leader waited for it.
	again, err := r.Propose(ctx, []byte("again"))
	if err != nil {
		t.Fatalf("again: %v (the leader proposed the held ones and now waits for as many)", err)
	}
	if again.Slot <= res.Slot {
		t.Fatalf("again in slot %d, first in slot %d", again.Slot, res.Slot)
	}
	for i, p := range held {
		got, err := p.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Slot != again.Slot {
			t.Fatalf("held-%d in slot %d, again in slot %d: want one slot", i, got.Slot, again.Slot)
		}
	}
}

// TestGatherWindowEnds: a leader that expects more proposals than come
// proposes those that did once the window is over; one that expects one
// never waits (with an hour's window, these would not finish otherwise).
func TestGatherWindowEnds(t *testing.T) {
	short := startGatherSolo(t, 20*time.Millisecond)
	expectNext(t, short, 50)
	proposeAll(t, short, 10)

	long := startGatherSolo(t, time.Hour)
	for range 20 {
		proposeAll(t, long, 1)
	}
}
