// Package fake has in-memory backends for the API tests: a reference clock
// the test sets by hand, a timestamp counter, and an admin backend that
// records its calls.
package fake

import (
	"context"
	"fmt"
	"sync"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/vclock"
)

// Time is a server.TimeBackend whose reading the test sets.
type Time struct {
	// OnNow, when set before serving, runs after each Now with the
	// reading returned.
	OnNow func(vclock.Reading)
	// OnTimestamp, when set before serving, runs at the start of each
	// Timestamp call with the call's context, 1-based index and n; it may
	// block.
	OnTimestamp func(ctx context.Context, call int, n uint32)

	mu      sync.Mutex
	reading vclock.Reading
	next    uint64
	calls   []uint32
	subs    map[chan vclock.Reading]struct{}
}

// NewTime starts at r; the first timestamp is firstTS.
func NewTime(r vclock.Reading, firstTS uint64) *Time {
	return &Time{reading: r, next: firstTS, subs: make(map[chan vclock.Reading]struct{})}
}

// Set replaces the reading, and tells the watchers when the status
// changed. A watcher whose buffer is full misses the change.
func (f *Time) Set(r vclock.Reading) {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := r.Status != f.reading.Status
	f.reading = r
	if !changed {
		return
	}
	for ch := range f.subs {
		select {
		case ch <- r:
		default:
		}
	}
}

// Now is the reading last set.
func (f *Time) Now() vclock.Reading {
	f.mu.Lock()
	r := f.reading
	f.mu.Unlock()
	if f.OnNow != nil {
		f.OnNow(r)
	}
	return r
}

// Timestamp hands out the next n values of a counter.
func (f *Time) Timestamp(ctx context.Context, n uint32) (uint64, error) {
	f.mu.Lock()
	f.calls = append(f.calls, n)
	call := len(f.calls)
	f.mu.Unlock()
	if f.OnTimestamp != nil {
		f.OnTimestamp(ctx, call, n)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	first := f.next
	f.next += uint64(n)
	return first, nil
}

// Calls are the n of each Timestamp call so far, in order of arrival.
func (f *Time) Calls() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint32(nil), f.calls...)
}

// StatusChanges sends the current reading, then each status change, on a
// channel buffered for 16, closed once ctx ends.
func (f *Time) StatusChanges(ctx context.Context) <-chan vclock.Reading {
	ch := make(chan vclock.Reading, 16)
	f.mu.Lock()
	ch <- f.reading
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, open := f.subs[ch]; open {
			delete(f.subs, ch)
			close(ch)
		}
	}()
	return ch
}

// Watchers is the number of open StatusChanges subscriptions.
func (f *Time) Watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// EndWatches closes every subscription's channel now, as a backend that
// shuts down does.
func (f *Time) EndWatches() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		delete(f.subs, ch)
		close(ch)
	}
}

// Admin is a server.AdminBackend that records calls and answers with
// Err when it is set.
type Admin struct {
	mu       sync.Mutex
	status   *clockdv1.StatusResponse
	members  *clockdv1.MembersResponse
	err      error
	recorded []string
}

// NewAdmin answers Status and Members with the given messages.
func NewAdmin(status *clockdv1.StatusResponse, members *clockdv1.MembersResponse) *Admin {
	return &Admin{status: status, members: members}
}

// FailWith makes every later call return err (nil: succeed).
func (a *Admin) FailWith(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.err = err
}

// Recorded lists the changes asked for, as "add 4 h:1 learner=true",
// "remove 4" and "transfer 2".
func (a *Admin) Recorded() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.recorded...)
}

func (a *Admin) Status(context.Context) (*clockdv1.StatusResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.err
}

func (a *Admin) Members(context.Context) (*clockdv1.MembersResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.members, a.err
}

func (a *Admin) AddMember(_ context.Context, id uint64, addr string, learner bool) error {
	return a.record(fmt.Sprintf("add %d %s learner=%v", id, addr, learner))
}

func (a *Admin) RemoveMember(_ context.Context, id uint64) error {
	return a.record(fmt.Sprintf("remove %d", id))
}

func (a *Admin) TransferLeader(_ context.Context, id uint64) error {
	return a.record(fmt.Sprintf("transfer %d", id))
}

func (a *Admin) record(call string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.recorded = append(a.recorded, call)
	return nil
}
