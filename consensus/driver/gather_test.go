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

// startGatherSolo runs a single-member replica with the given
// GatherWindow, once it leads.
func startGatherSolo(t *testing.T, window time.Duration) *Replica {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paxos.db")
	store, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := snapshot.Open(path+"-snapshots", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Core: consensus.Config{ID: 1, Members: []consensus.NodeID{1}},
		TickInterval: time.Millisecond, GatherWindow: window, Logger: zaptest.NewLogger(t)}
	r, err := New(cfg, store, snaps, soloNet{}, &counter{})
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
		return r
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
