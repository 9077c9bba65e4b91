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
	// enc, when set, renders every event as it is placed. With lazy
	// and fenc set too, the input's parser leaves the text of the
	// events it reads fast in their record (fields), and fenc renders
	// them from there.
	enc    Encoder
	lazy   ingest.LazyParser
	fenc   FieldsEncoder
	fields ingest.LineFields

	// full carries filled batches to the merger in input order; free
	// returns them. Both have room for every batch, so the merger never
	// blocks on free. The merger's place in the input is its cursor.
	full, free chan *batch

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

// batch is a run of consecutive events of one input, sealed one by one
// (seal). err or eof, when set, follow the events.
type batch struct {
	// The pads keep the slice headers, which the feed's goroutine writes
	// for every event, off the cache lines of any other batch, which the
	// merger may be reading on another core.
	_ [64]byte
	// evs holds the events: all of them for Merge; with an Encoder only
	// those placed but not yet sealed, as the renderings stand for the
	// others, so that the events are made in memory that stays in the
	// cache.
	evs []Event
	// times[i] is event i's TimeNs and ties[i] what breaks a tie of it,
	// packed for the merger, which reads times for every event.
	times []int64
	ties  []tieKey
	// With an Encoder, the renderings of the events, end to end: event
	// i's is text[ends[i-1]:ends[i]] (from 0 for the first).
	text []byte
	ends []int
	err  error
	eof  bool
	_    [64]byte
}

// tieKey is what orders events of equal TimeNs (tieBefore).
type tieKey struct {
	host, source string
	seq          uint64
	input        int
}

// sealed is how many events b holds for the merger.
func (b *batch) sealed() int { return len(b.times) }

// encodedBytes is the room a batch's text starts with per event.
const encodedBytes = 384

// stagedEvents is the room of an encoding batch's evs.
const stagedEvents = 8

// reset empties b for refilling.
func (b *batch) reset() {
	b.evs, b.times, b.ties, b.text, b.ends = b.evs[:0], b.times[:0], b.ties[:0], b.text[:0], b.ends[:0]
}

// seal prepares the events placed since the last call for the merger,
// while they are fresh in the cache: their times and tie keys, and with
// enc their renderings, after which they are dropped from evs. Events
// are final once placed.
func (b *batch) seal(enc Encoder) {
	if enc == nil {
		for i := len(b.times); i < len(b.evs); i++ {
			b.add(&b.evs[i])
		}
		return
	}
	for i := range b.evs {
		ev := &b.evs[i]
		b.add(ev)
		b.text = enc.AppendEvent(b.text, ev)
		b.ends = append(b.ends, len(b.text))
	}
	b.evs = b.evs[:0]
}

// sealFields is seal with an Encoder for events of which the last is
// rendered from f (FieldsEncoder.AppendFields).
func (b *batch) sealFields(enc FieldsEncoder, f *ingest.LineFields) {
	last := len(b.evs) - 1
	for i := range b.evs {
		ev := &b.evs[i]
		b.add(ev)
		if i == last {
			b.text = enc.AppendFields(b.text, ev, f)
		} else {
			b.text = enc.AppendEvent(b.text, ev)
		}
		b.ends = append(b.ends, len(b.text))
	}
	b.evs = b.evs[:0]
}

// add adds ev's time and tie key.
func (b *batch) add(ev *Event) {
	b.times = append(b.times, ev.TimeNs)
	b.ties = append(b.ties, tieOf(ev))
}

func tieOf(ev *Event) tieKey {
	return tieKey{host: ev.Host, source: ev.Source, seq: ev.SourceSeq, input: ev.Input}
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
	if fenc, ok := enc.(FieldsEncoder); ok {
		if lazy, ok := in.Parser.(ingest.LazyParser); ok {
			f.lazy, f.fenc = lazy, fenc
		}
	}
	for range batchesPerInput {
		b := &batch{times: make([]int64, 0, opts.BatchEvents), ties: make([]tieKey, 0, opts.BatchEvents)}
		if enc != nil {
			b.text, b.ends = make([]byte, 0, opts.BatchEvents*encodedBytes), make([]int, 0, opts.BatchEvents)
			// Room for a few held events beyond the one placed: it also
			// keeps the staged event, written for every event, off the
			// cache lines of other feeds' objects.
			b.evs = make([]Event, 0, stagedEvents)
		} else {
			b.evs = make([]Event, 0, opts.BatchEvents)
		}
		f.free <- b
	}
	return f
}

// cursor is the merger's place in one input. It is kept apart from the
// feed, which the input's goroutine writes for every event, so that the
// two cores do not share its cache lines.
type cursor struct {
	cur *batch // the batch being merged; nil before the first
	pos int    // index in cur.times of the input's next event
}

// headTie is the tie key of the input's next event; valid after advance
// returned true.
func (c *cursor) headTie() *tieKey { return &c.cur.ties[c.pos] }

// advance moves c, f's cursor, to a next event, waiting for f's
// goroutine when needed. It returns false at the input's end, and the
// input's error after its last event. release, when set, is called
// before a batch merged to its end goes back to f's goroutine, which
// refills it; its error is advance's.
func (f *feed) advance(c *cursor, release func() error) (bool, error) {
	for c.cur == nil || c.pos >= c.cur.sealed() {
		if c.cur != nil {
			if c.cur.err != nil {
				return false, c.cur.err
			}
			if c.cur.eof {
				return false, nil
			}
			if release != nil {
				if err := release(); err != nil {
					return false, err
				}
			}
			f.free <- c.cur
		}
		c.cur, c.pos = <-f.full, 0
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
	if f.lazy != nil {
		f.fillLazy(b)
		return
	}
	for b.sealed() < f.opts.BatchEvents {
		iev, err := f.in.Parser.Next()
		if err != nil {
			f.end(b, err)
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

// end ends b at the parser's error err: the input's end (io.EOF), or a
// failure.
func (f *feed) end(b *batch, err error) {
	if errors.Is(err, io.EOF) {
		b.err = f.finish(b)
		b.eof = b.err == nil
		b.seal(f.enc)
		return
	}
	b.err = wrapInputErr(f.in.Name, err)
}

// fillLazy is fill through the parser's NextLazy. An event whose Name
// and Attrs are left in its record is rendered from there as soon as it
// is placed, before the next read; one that could be held (in pending)
// or whose checks read its Attrs is filled first.
func (f *feed) fillLazy(b *batch) {
	for b.sealed() < f.opts.BatchEvents {
		// The parser reads into the batch's next event, which place
		// then finishes where it is. NextLazy sets the whole of ev.Event.
		n := len(b.evs)
		if n < cap(b.evs) {
			b.evs = b.evs[:n+1]
		} else {
			b.evs = append(b.evs, Event{})
		}
		ev := &b.evs[n]
		ev.TimeNs, ev.Corrected, ev.GSN, ev.LateNs, ev.Issue, ev.Input = 0, false, 0, 0, "", f.idx
		iev := &ev.Event
		lazy, err := f.lazy.NextLazy(iev, &f.fields)
		if err != nil {
			b.evs = b.evs[:n]
			f.end(b, err)
			return
		}
		if lazy && !f.placesWithoutAttrs(iev) {
			f.fields.Fill(iev)
			lazy = false
		}
		if err := f.placeLast(b); err != nil {
			b.evs = b.evs[:n] // a strict inconsistency: the event is not emitted
			b.err = err
			return
		}
		if lazy {
			// placeLast left the event last, after any held before it.
			b.sealFields(f.fenc, &f.fields)
		} else {
			b.seal(f.enc)
		}
	}
}

// placesWithoutAttrs tells whether place appends iev to the batch at
// once, without reading its Attrs: it has a time, or the input has
// started, and its kind is checked without them.
func (f *feed) placesWithoutAttrs(iev *ingest.Event) bool {
	timed := !iev.Untimed || iev.RefEarliest != 0 && iev.RefLatest != 0
	switch iev.Kind {
	case ingest.KindFlowStart, ingest.KindFlowEnd:
		return false
	}
	return timed || f.started
}

// place appends iev to b as a timeline Event, or holds it in pending.
func (f *feed) place(b *batch, iev *ingest.Event) error {
	b.evs = append(b.evs, Event{Event: *iev, Input: f.idx})
	return f.placeLast(b)
}

// placeLast is place for the event just appended to b.
func (f *feed) placeLast(b *batch) error {
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
	case ev.Untimed:
		return false, IssueNoTimestamp
	case f.opts.Offsets != nil:
		c := f.corrector(ev.Host)
		if c == nil {
			ev.TimeNs = ev.LocalNs
			return true, IssueNoOffsets
		}
		off := c.offset(ev.LocalNs)
		ev.TimeNs = ev.LocalNs - off
		if off > 0 && ev.TimeNs > ev.LocalNs || off < 0 && ev.TimeNs < ev.LocalNs { // wrapped around
			ev.TimeNs = ev.LocalNs
			if c.h.outside(ev.LocalNs) {
				c.outside-- // not corrected: reported as an overflow instead
			}
			return true, IssueCorrectionOverflow
		}
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
		return fmt.Errorf("%s: host %s source %s seq %d: %w: %s", f.in.Name, TextWord(ev.Host), TextWord(ev.Source), ev.SourceSeq, ErrInconsistent, is)
	}
	return nil
}

// finish ends the input: the held events, then the begins left open.
func (f *feed) finish(b *batch) error {
	f.flushPending(b, 0)
	for _, u := range f.checker.unclosed(f.in.Name) {
		f.tally.addIssue(u)
		if f.opts.Strict {
			return fmt.Errorf("%s: host %s source %s: %w: %d %s", f.in.Name, TextWord(u.Host), TextWord(u.Source), ErrInconsistent, u.Count, u.Issue)
		}
	}
	return nil
}
