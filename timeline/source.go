package timeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clockd/clockd/ingest"
)

// LogEvent is one event of the cluster's ordered event log.
type LogEvent struct {
	GSN   uint64 // global sequence number: commit order, from 1
	Event ingest.Event
}

// EventSource reads the cluster's ordered event log.
//
// GSNs start at 1 and increase by one per event. Retention may have
// removed the oldest: a read from a GSN below the oldest kept starts at
// the oldest kept.
type EventSource interface {
	// Read returns up to max events with GSN >= fromGSN, in GSN order, and
	// the GSN to read from next. No events means the log holds none past
	// fromGSN yet.
	Read(ctx context.Context, fromGSN uint64, max int) (events []LogEvent, next uint64, err error)
	// Subscribe streams the events with GSN >= fromGSN as they commit,
	// in GSN order; fromGSN 0 means from the next event committed. The
	// error channel yields at most one error, after which the stream has
	// ended; both channels end when ctx is done.
	Subscribe(ctx context.Context, fromGSN uint64) (<-chan LogEvent, <-chan error)
}

// FromLog places a log event on the timeline: at the midpoint of its
// reference interval when the cluster stamped it, else at its LocalNs.
func FromLog(le LogEvent) Event {
	ev := Event{Event: le.Event, GSN: le.GSN}
	if ev.RefEarliest != 0 && ev.RefLatest != 0 {
		ev.TimeNs = ev.RefEarliest + (ev.RefLatest-ev.RefEarliest)/2
		ev.Corrected = true
	} else {
		ev.TimeNs = ev.LocalNs
	}
	return ev
}

// LogOptions configure Export and Tail.
type LogOptions struct {
	// From is the first GSN wanted. Tail: 0 starts at the next event
	// committed.
	From uint64
	// To is the last GSN Export writes; 0 means the end of the log as it
	// is when Export reaches it. Tail ignores it.
	To uint64
	// Batch is how many events Export asks for per Read; 0 picks 1000.
	Batch int
	// MaxRecorded bounds the Summary's lists; DefaultMaxRecorded if 0.
	MaxRecorded int
	// Retries is how many times in a row Tail re-subscribes after its
	// stream failed without delivering an event: it gives up when the
	// stream fails once more, Retries+1 failures in all. 0 picks 10.
	Retries int
	// Wait is how Tail waits before re-subscribing for the attempt-th
	// time in a row (from 1); it returns ctx's error if ctx ends first.
	// Nil waits 100 ms doubling up to 5 s.
	Wait func(ctx context.Context, attempt int) error
	// Idle, when set, is called by Tail whenever it has written every
	// event received so far, for the caller to flush its output.
	Idle func() error
	// Retrying, when set, is called by Tail when its stream fails and it
	// starts re-subscribing, before the first wait: once per run of
	// failures in a row, not per retry, so that a caller can tell its
	// user why nothing arrives (the retries can take half a minute).
	// err names the stream and its failure, as the error Tail returns
	// when it gives up does.
	Retrying func(err error)
}

// ErrLogEnded is wrapped by Export's error when the log ends before To.
var ErrLogEnded = errors.New("timeline: the event log ends before the requested GSN")

// logReader is the shared state of Export and Tail: the checker, the
// summary, and the GSN bookkeeping.
type logReader struct {
	emit    func(Event) error
	checker checker
	tally   tally
	sum     Summary
	// next is the GSN expected next; 0 before the first event.
	next uint64
}

// take emits le unless it was emitted before. A GSN beyond the one
// expected records a gap.
func (r *logReader) take(le LogEvent) error {
	if r.next != 0 && le.GSN < r.next {
		r.sum.Replayed++
		return nil
	}
	if r.next != 0 && le.GSN > r.next {
		r.sum.Gaps = append(r.sum.Gaps, Gap{From: r.next, To: le.GSN - 1})
	}
	ev := FromLog(le)
	if is := r.checker.check(&ev); is != "" {
		ev.Issue = is
		r.tally.addIssue(Inconsistency{Issue: is, Host: ev.Host, Source: ev.Source, Seq: ev.SourceSeq, GSN: ev.GSN})
	}
	if err := r.emit(ev); err != nil {
		return err
	}
	if r.sum.FirstGSN == 0 {
		r.sum.FirstGSN = le.GSN
	}
	r.sum.LastGSN = le.GSN
	r.sum.Events++
	r.next = le.GSN + 1
	return nil
}

// summary is the Summary so far, with the begins still open.
func (r *logReader) summary(max int) Summary {
	t := r.tally
	for _, u := range r.checker.unclosed("") {
		t.addIssue(u)
	}
	s := r.sum
	t.addTo(&s, max)
	return s
}

// Export emits the events from opts.From to opts.To in GSN order. A first
// event after From (retention removed the ones before) is a gap.
func Export(ctx context.Context, src EventSource, opts LogOptions, emit func(Event) error) (Summary, error) {
	opts = opts.withDefaults()
	if opts.To != 0 && opts.To < opts.From {
		return Summary{}, fmt.Errorf("timeline: export from GSN %d to %d: the end is before the start", opts.From, opts.To)
	}
	r := &logReader{emit: emit, tally: tally{max: opts.MaxRecorded}, next: max(opts.From, 1)}
	from := max(opts.From, 1)
	for opts.To == 0 || from <= opts.To {
		evs, next, err := src.Read(ctx, from, opts.Batch)
		if err != nil {
			return r.summary(opts.MaxRecorded), fmt.Errorf("read the event log from GSN %d: %w", from, err)
		}
		if len(evs) == 0 {
			if opts.To != 0 {
				return r.summary(opts.MaxRecorded), fmt.Errorf("%w: wanted up to GSN %d, the log has up to %d", ErrLogEnded, opts.To, from-1)
			}
			break
		}
		for _, le := range evs {
			if opts.To != 0 && le.GSN > opts.To {
				return r.summary(opts.MaxRecorded), nil
			}
			if err := r.take(le); err != nil {
				return r.summary(opts.MaxRecorded), err
			}
		}
		last := evs[len(evs)-1].GSN
		if next <= last || next < from {
			return r.summary(opts.MaxRecorded), fmt.Errorf("event log: read from GSN %d returned up to %d and next %d", from, last, next)
		}
		from = next
	}
	return r.summary(opts.MaxRecorded), nil
}

// Tail emits the events from opts.From on as they commit, until ctx ends
// (then it returns ctx's error) or the stream fails again after
// opts.Retries re-subscriptions in a row that delivered no event. After a
// failure it re-subscribes from the GSN after the last one emitted, so
// nothing is emitted twice; events the source sends again are counted
// as Replayed, missing ones as Gaps.
func Tail(ctx context.Context, src EventSource, opts LogOptions, emit func(Event) error) (Summary, error) {
	opts = opts.withDefaults()
	r := &logReader{emit: emit, tally: tally{max: opts.MaxRecorded}, next: opts.From}
	failures := 0
	for {
		got, err := r.stream(ctx, src, opts)
		if ctx.Err() != nil {
			return r.summary(opts.MaxRecorded), ctx.Err()
		}
		var emitErr emitError
		if errors.As(err, &emitErr) {
			return r.summary(opts.MaxRecorded), emitErr.error
		}
		if got {
			failures = 0
		}
		failures++
		if failures > opts.Retries {
			return r.summary(opts.MaxRecorded), giveUpError(r.next, opts.Retries, err)
		}
		if failures == 1 && opts.Retrying != nil {
			opts.Retrying(streamError(r.next, err))
		}
		if err := opts.Wait(ctx, failures); err != nil {
			return r.summary(opts.MaxRecorded), err
		}
	}
}

// giveUpError is Tail's error when the stream from GSN next (0: none
// received, none asked for) failed with err after retries re-subscriptions.
func giveUpError(next uint64, retries int, err error) error {
	noun := "retries"
	if retries == 1 {
		noun = "retry"
	}
	return fmt.Errorf("%w (gave up after %d %s in a row)", streamError(next, err), retries, noun)
}

// streamError is err, the failure of the stream from GSN next (0: none
// received, none asked for), naming the stream.
func streamError(next uint64, err error) error {
	from := "the start"
	if next != 0 {
		from = fmt.Sprint("GSN ", next)
	}
	return fmt.Errorf("event log stream from %s: %w", from, err)
}

// emitError marks an error of emit or Idle, which ends Tail at once.
type emitError struct{ error }

// stream runs one subscription until it fails; got tells whether it
// delivered an event.
func (r *logReader) stream(ctx context.Context, src EventSource, opts LogOptions) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, errs := src.Subscribe(ctx, r.next)
	for {
		select {
		case le, ok := <-events:
			if !ok {
				events = nil
				if errs == nil {
					return got, errors.New("stream ended")
				}
				continue
			}
			got = true
			if err := r.take(le); err != nil {
				return got, emitError{err}
			}
			if len(events) == 0 && opts.Idle != nil {
				if err := opts.Idle(); err != nil {
					return got, emitError{err}
				}
			}
		case err, ok := <-errs:
			if !ok || err == nil {
				errs = nil
				if events == nil {
					return got, errors.New("stream ended")
				}
				continue
			}
			return got, err
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

func (o LogOptions) withDefaults() LogOptions {
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.MaxRecorded <= 0 {
		o.MaxRecorded = DefaultMaxRecorded
	}
	if o.Retries <= 0 {
		o.Retries = 10
	}
	if o.Wait == nil {
		o.Wait = backoff
	}
	return o
}

// backoff waits 100 ms doubling per attempt, at most 5 s.
func backoff(ctx context.Context, attempt int) error {
	d := 100 * time.Millisecond << min(attempt-1, 6)
	d = min(d, 5*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
