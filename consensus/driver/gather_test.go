package driver_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clockd/clockd/consensus/driver"
)

// proposeAll proposes n commands from n goroutines at once and returns
// their slots.
func proposeAll(t *testing.T, r *driver.Replica, n int) []uint64 {
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
	r, _ := startGated(t, time.Hour)
	const n = 40
	if err := driver.ExpectNext(context.Background(), r, n); err != nil {
		t.Fatal(err)
	}
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
	r, g := startGated(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := submitHeld(t, ctx, r, g, "first") // its slot is in flight, and stays so
	const n = 30
	var held []*driver.Pending
	for i := range n {
		p, err := r.Submit(ctx, fmt.Appendf(nil, "held-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, p)
	}
	for { // until the loop has taken all n, and holds them
		k, err := driver.Held(ctx, r)
		if err != nil {
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
	short, _ := startGated(t, 20*time.Millisecond)
	if err := driver.ExpectNext(context.Background(), short, 50); err != nil {
		t.Fatal(err)
	}
	proposeAll(t, short, 10)

	long, _ := startGated(t, time.Hour)
	for range 20 {
		proposeAll(t, long, 1)
	}
}
