// Package timelinetest provides an in-memory cluster event log that
// implements timeline.EventSource, with injectable faults, for tests of
// the log readers and of tracecat's tail and export.
package timelinetest

import (
	"context"
	"errors"
	"sync"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/timeline"
)

// ErrInjected is the error of an injected stream failure.
var ErrInjected = errors.New("timelinetest: injected stream failure")

// Log is an append-only event log. GSNs are assigned from 1 on Append.
// The zero value is an empty log; it is safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	events []timeline.LogEvent // events[i].GSN == oldest+i
	oldest uint64              // GSN of events[0]; retention moves it
	next   uint64              // GSN the next Append gets
	grew   chan struct{}       // closed and replaced on every Append

	// Faults, read at each Subscribe.

	// FailAfter > 0 makes each subscription fail with ErrInjected after
	// delivering that many events.
	FailAfter int
	// Replay makes each subscription start that many events before the
	// GSN asked for, as a server that resends from a checkpoint would.
	Replay uint64
	// Subscriptions counts the Subscribe calls.
	Subscriptions int
	// Reads counts the Read calls.
	Reads int
}

// Append adds events with the next GSNs and wakes the subscriptions.
func (l *Log) Append(evs ...ingest.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	for _, e := range evs {
		l.events = append(l.events, timeline.LogEvent{GSN: l.next, Event: e})
		l.next++
	}
	close(l.grew)
	l.grew = make(chan struct{})
}

// Compact drops the events before GSN keep, as retention would.
func (l *Log) Compact(keep uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	for len(l.events) > 0 && l.events[0].GSN < keep {
		l.events = l.events[1:]
	}
	l.oldest = keep
}

func (l *Log) init() {
	if l.next == 0 {
		l.next, l.oldest = 1, 1
		l.grew = make(chan struct{})
	}
}

// Read implements timeline.EventSource.
func (l *Log) Read(ctx context.Context, fromGSN uint64, limit int) ([]timeline.LogEvent, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	l.Reads++
	if err := ctx.Err(); err != nil {
		return nil, fromGSN, err
	}
	from := max(fromGSN, l.oldest)
	i := int(from - l.oldest)
	if i >= len(l.events) {
		return nil, fromGSN, nil
	}
	out := append([]timeline.LogEvent(nil), l.events[i:min(i+limit, len(l.events))]...)
	return out, out[len(out)-1].GSN + 1, nil
}

// Subscribe implements timeline.EventSource.
func (l *Log) Subscribe(ctx context.Context, fromGSN uint64) (<-chan timeline.LogEvent, <-chan error) {
	l.mu.Lock()
	l.init()
	l.Subscriptions++
	failAfter, replay := l.FailAfter, l.Replay
	if fromGSN == 0 {
		fromGSN = l.next
	}
	l.mu.Unlock()
	if fromGSN > replay {
		fromGSN -= replay
	} else {
		fromGSN = 1
	}
	events := make(chan timeline.LogEvent, 16)
	errs := make(chan error, 1)
	go func() {
		defer close(events)
		sent := 0
		for gsn := fromGSN; ; {
			le, ok, grew := l.at(gsn)
			if !ok {
				select {
				case <-grew:
					continue
				case <-ctx.Done():
					return
				}
			}
			if failAfter > 0 && sent == failAfter {
				errs <- ErrInjected
				return
			}
			select {
			case events <- le:
				sent++
				gsn = le.GSN + 1
			case <-ctx.Done():
				return
			}
		}
	}()
	return events, errs
}

// at returns the first event at or after gsn, or a channel closed when
// the log grows.
func (l *Log) at(gsn uint64) (timeline.LogEvent, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := max(gsn, l.oldest)
	if i := int(from - l.oldest); i < len(l.events) {
		return l.events[i], true, nil
	}
	return timeline.LogEvent{}, false, l.grew
}
