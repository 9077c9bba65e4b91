package timeline

import (
	"errors"
	"fmt"
	"io"

	"github.com/clockd/clockd/ingest"
)

// feed is one Merge input: a goroutine that reads its parser, places
// each event on the timeline (time, correction, lateness, issues) and
// hands batches to the merger. Everything a feed computes depends only on
// its own input, so the merge is deterministic however the goroutines
// are scheduled.
type feed struct {
	idx  int
	in   Input
	opts *MergeOptions
	// enc, when set, renders every event as it is placed.
	enc Encoder

	// full carries filled batches to the merger in input order; free
	// returns them. Both have room for every batch, so the merger never
	// blocks on free.
	full, free chan *batch

	// The merger's side.
	cur *batch // the batch being merged; nil before the first
	pos int    // index in cur.evs of the input's next event

	// The goroutine's side: read by the merger only after the goroutine
	// has stopped.
	sum     InputSummary
	tally   tally
	hosts   map[string]struct{}
	checker checker
	// started is set by the first event with a time (or when too many
	// events without one came first); hwmNs is the latest TimeNs so far
	// and prevNs the TimeNs of the previous event.
	started       bool
	hwmNs, prevNs int64
	// pending holds the events without a timestamp that start the input
	// until one with a timestamp gives them its time.
	pending []Event
	// correctors caches the offset lookup per host; lastHost/lastCorr
	// the one of the previous event.
	correctors map[string]*corrector
	lastHost   string
	lastCorr   *corrector
	seenHost   string // the host of the previous event, already in hosts
}

// batch is a run of consecutive events of one input. err or eof, when
// set, follow the events.
type batch struct {
	evs []Event
	// times[i] is evs[i].TimeNs, packed for the merger, which reads it
	// for every event.
	times []int64
	// With an Encoder, the renderings of evs, end to end: event i's is
	// text[ends[i-1]:ends[i]] (from 0 for the first).
	text []byte
	ends []int
	err  error
	eof  bool
}

// encodedBytes is the room a batch's text starts with per event.
const encodedBytes = 384

// reset empties b for refilling.
func (b *batch) reset() {
	b.evs, b.times, b.text, b.ends = b.evs[:0], b.times[:0], b.text[:0], b.ends[:0]
}

// seal prepares the events placed since the last call for the merger,
// while they are fresh in the cache: their times, and their renderings
// with enc unless nil. Events are final once placed.
func (b *batch) seal(enc Encoder) {
	for i := len(b.times); i < len(b.evs); i++ {
		ev := &b.evs[i]
		b.times = append(b.times, ev.TimeNs)
		if enc != nil {
			b.text = enc.AppendEvent(b.text, ev)
			b.ends = append(b.ends, len(b.text))
		}
	}
}

// encoded is the rendering of event i.
func (b *batch) encoded(i int) []byte {
	lo := 0
	if i > 0 {
		lo = b.ends[i-1]
	}
	return b.text[lo:b.ends[i]]
}

func newFeed(idx int, in Input, opts *MergeOptions, enc Encoder) *feed {
	f := &feed{
		idx: idx, in: in, opts: opts, enc: enc,
		full:  make(chan *batch, batchesPerInput),
		free:  make(chan *batch, batchesPerInput),
		hosts: make(map[string]struct{}),
		tally: tally{max: opts.MaxRecorded},
		sum:   InputSummary{Name: in.Name},
	}
	for range batchesPerInput {
		b := &batch{evs: make([]Event, 0, opts.BatchEvents), times: make([]int64, 0, opts.BatchEvents)}
		if enc != nil {
			b.text, b.ends = make([]byte, 0, opts.BatchEvents*encodedBytes), make([]int, 0, opts.BatchEvents)
		}
		f.free <- b
	}
	return f
}

// head is the input's next event; valid after advance returned true.
func (f *feed) head() *Event { return &f.cur.evs[f.pos] }

// advance makes head valid, waiting for the goroutine when needed. It
// returns false at the input's end, and the input's error after its last
// event.
func (f *feed) advance() (bool, error) {
	for f.cur == nil || f.pos >= len(f.cur.evs) {
		if f.cur != nil {
			if f.cur.err != nil {
				return false, f.cur.err
			}
			if f.cur.eof {
				return false, nil
			}
			f.free <- f.cur
		}
		f.cur, f.pos = <-f.full, 0
	}
	return true, nil
}

// run is the goroutine: it fills batches until the input ends, fails, or
// done is closed.
func (f *feed) run(done <-chan struct{}) {
	for {
		var b *batch
		select {
		case b = <-f.free:
		case <-done:
			return
		}
		b.reset()
		f.fill(b)
		select {
		case f.full <- b:
		case <-done:
			return
		}
		if b.eof || b.err != nil {
			return
		}
	}
}

func (f *feed) fill(b *batch) {
	for len(b.evs) < f.opts.BatchEvents {
		iev, err := f.in.Parser.Next()
		if errors.Is(err, io.EOF) {
			b.err = f.finish(b)
			b.eof = b.err == nil
			b.seal(f.enc)
			return
		}
		if err != nil {
			b.err = wrapInputErr(f.in.Name, err)
			return
		}
		n := len(b.evs)
		if err := f.place(b, &iev); err != nil {
			b.evs = b.evs[:n] // a strict inconsistency: the event is not emitted
			b.err = err
			return
		}
		b.seal(f.enc)
	}
}

// place appends iev to b as a timeline Event, or holds it in pending.
func (f *feed) place(b *batch, iev *ingest.Event) error {
	b.evs = append(b.evs, Event{Event: *iev, Input: f.idx})
	last := len(b.evs) - 1
	ev := &b.evs[last]
	if ev.Host == "" {
		ev.Host = f.in.Host
	}
	if !same(ev.Host, f.seenHost) || len(f.hosts) == 0 {
		f.hosts[ev.Host] = struct{}{}
		f.seenHost = ev.Host
	}
	timed, timeIssue := f.setTime(ev)
	kindIssue := f.checker.check(ev)
	for _, is := range [2]Issue{timeIssue, kindIssue} {
		if is == "" {
			continue
		}
		if ev.Issue == "" {
			ev.Issue = is
		}
		if err := f.report(ev, is); err != nil {
			return err
		}
	}
	switch {
	case timed:
		if len(f.pending) > 0 {
			held := *ev
			b.evs = b.evs[:last]
			f.flushPending(b, held.TimeNs)
			b.evs = append(b.evs, held)
			ev = &b.evs[len(b.evs)-1]
		}
		if f.started && ev.TimeNs < f.hwmNs {
			ev.LateNs = f.hwmNs - ev.TimeNs
			f.tally.addLate(LateEvent{Input: f.in.Name, Host: ev.Host, Source: ev.Source, Seq: ev.SourceSeq,
				TimeNs: ev.TimeNs, LateNs: ev.LateNs})
		} else {
			f.hwmNs = ev.TimeNs
		}
		f.started = true
	case !f.started:
		f.pending = append(f.pending, *ev)
		b.evs = b.evs[:last]
		if len(f.pending) >= maxLeadingUntimed {
			f.flushPending(b, 0)
			f.started = true
		}
		return nil
	default:
		ev.TimeNs = f.prevNs
	}
	f.count(ev)
	return nil
}

// setTime sets ev's TimeNs and Corrected; false when ev has no time.
func (f *feed) setTime(ev *Event) (timed bool, issue Issue) {
	switch {
	case ev.RefEarliest != 0 && ev.RefLatest != 0:
		ev.TimeNs = ev.RefEarliest + (ev.RefLatest-ev.RefEarliest)/2
		ev.Corrected = true
	case ev.LocalNs == 0:
		return false, IssueNoTimestamp
	case f.opts.Offsets != nil:
		c := f.corrector(ev.Host)
		if c == nil {
			ev.TimeNs = ev.LocalNs
			return true, IssueNoOffsets
		}
		ev.TimeNs = ev.LocalNs - c.offset(ev.LocalNs)
		ev.Corrected = true
	default:
		ev.TimeNs = ev.LocalNs
	}
	return true, ""
}

// corrector is host's offset lookup; nil when host has no history.
func (f *feed) corrector(host string) *corrector {
	if f.lastCorr != nil && same(host, f.lastHost) {
		return f.lastCorr
	}
	c, seen := f.correctors[host]
	if !seen {
		if h := f.opts.Offsets.hosts[host]; h != nil {
			c = &corrector{h: h}
		}
		if f.correctors == nil {
			f.correctors = make(map[string]*corrector)
		}
		f.correctors[host] = c
	}
	f.lastHost, f.lastCorr = host, c
	return c
}

// flushPending gives the held events timeNs and appends them to b.
func (f *feed) flushPending(b *batch, timeNs int64) {
	for i := range f.pending {
		ev := &f.pending[i]
		ev.TimeNs = timeNs
		b.evs = append(b.evs, *ev)
		f.count(ev)
	}
	f.pending = f.pending[:0]
}

// count adds ev, placed, to the input's summary.
func (f *feed) count(ev *Event) {
	if f.sum.Events == 0 || ev.TimeNs < f.sum.FirstNs {
		f.sum.FirstNs = ev.TimeNs
	}
	if f.sum.Events == 0 || ev.TimeNs > f.sum.LastNs {
		f.sum.LastNs = ev.TimeNs
	}
	f.sum.Events++
	f.prevNs = ev.TimeNs
}

// report records one issue of ev; in strict mode it is the error.
func (f *feed) report(ev *Event, is Issue) error {
	f.tally.addIssue(Inconsistency{Issue: is, Input: f.in.Name, Host: ev.Host, Source: ev.Source, Seq: ev.SourceSeq})
	if f.opts.Strict {
		return fmt.Errorf("%s: host %s source %s seq %d: %w: %s", f.in.Name, ev.Host, ev.Source, ev.SourceSeq, ErrInconsistent, is)
	}
	return nil
}

// finish ends the input: the held events, then the begins left open.
func (f *feed) finish(b *batch) error {
	f.flushPending(b, 0)
	for _, u := range f.checker.unclosed(f.in.Name) {
		f.tally.addIssue(u)
		if f.opts.Strict {
			return fmt.Errorf("%s: host %s source %s: %w: %d %s", f.in.Name, u.Host, u.Source, ErrInconsistent, u.Count, u.Issue)
		}
	}
	return nil
}
