package timeline

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"

	"github.com/clockd/clockd/ingest"
)

// Input is one stream to merge.
type Input struct {
	// Name names the input in the Summary and in errors: a file name.
	Name string
	// Host is the host of the events that name none.
	Host string
	// Parser yields the events. Merge reads it from a goroutine of its
	// own, so its Options.OnError runs there.
	Parser ingest.Parser
	// Bad, when set, supplies the first malformed records for the
	// Summary; pass its Add as the parser's Options.OnError.
	Bad *BadRecords
}

// MergeOptions configure Merge.
type MergeOptions struct {
	// Offsets corrects each host's local times to reference time. Nil
	// leaves every TimeNs at LocalNs. When set, events of a host without
	// a history are inconsistent (IssueNoOffsets).
	Offsets *Offsets
	// Strict makes the first inconsistent event an error. Late events
	// are never errors. (A parser's own strictness is its Options.)
	Strict bool
	// MaxRecorded bounds the Summary's lists; DefaultMaxRecorded if 0.
	MaxRecorded int
	// BatchEvents is how many events an input's goroutine hands over at
	// once; 0 picks a default.
	BatchEvents int
}

// Defaults of MergeOptions.
const (
	defaultBatchEvents = 512
	// batchesPerInput bounds the events read ahead per input to
	// batchesPerInput*BatchEvents.
	batchesPerInput = 4
	// maxLeadingUntimed bounds the events without a timestamp held at the
	// start of an input while waiting for one with a timestamp.
	maxLeadingUntimed = 1 << 16
)

// ErrInconsistent is wrapped by the error of a strict Merge that met an
// inconsistent event.
var ErrInconsistent = errors.New("timeline: inconsistent event")

// Merge merges inputs into one timeline ordered by TimeNs and calls emit
// with each event, in that order, from the calling goroutine.
//
// Events are taken from each input strictly in input order, so per-input
// (and so per-source) order is kept. Among the inputs' next events the
// earliest TimeNs goes first; ties go by (Host, Source, SourceSeq, input
// index), so the output depends only on the inputs. An event earlier
// than one before it in its own input is late: it is emitted at its
// place in its input, marked (LateNs) and counted. Inconsistent events
// are emitted too, marked (Issue) and counted, unless opts.Strict.
//
// Merge stops at the first error: a parser's (in strict mode, its first
// malformed record), emit's, or a strict inconsistency. It returns after
// every input's goroutine has stopped, with the Summary so far.
func Merge(inputs []Input, opts MergeOptions, emit func(Event) error) (Summary, error) {
	return merge(inputs, opts, nil, func(b *batch, i int) error { return emit(b.evs[i]) })
}

// An Encoder renders events. Its output for an event must depend on that
// event alone, not on the events rendered before it.
type Encoder interface {
	// AppendEvent appends the rendering of ev to b.
	AppendEvent(b []byte, ev *Event) []byte
}

// A FieldsEncoder is an Encoder that also renders events whose Name and
// Attrs are still in the record they were read from. MergeEncoded uses
// it for the inputs whose parser is an ingest.LazyParser, so that their
// values are copied once, from the input to the rendering.
type FieldsEncoder interface {
	Encoder
	// AppendFields appends the rendering of ev with the Name and Attrs
	// f holds, exactly as AppendEvent would once f.Fill set them.
	AppendFields(b []byte, ev *Event, f *ingest.LineFields) []byte
}

// MergeEncoded is Merge for output that an Encoder renders: each input's
// goroutine renders its events, with an Encoder newEncoder made for it,
// as it places them, so that rendering runs in parallel; emit receives
// the renderings in the order Merge would emit the events. The slice
// emit gets is valid only until it returns.
func MergeEncoded(inputs []Input, opts MergeOptions, newEncoder func() Encoder, emit func(encoded []byte) error) (Summary, error) {
	return merge(inputs, opts, newEncoder, func(b *batch, i int) error { return emit(b.encoded(i)) })
}

// blockBytes is about how many bytes of renderings MergeEncodedSlices
// hands emit at a time: large enough for few calls and writes, small
// enough to stay in a core's cache.
const blockBytes = 256 << 10

// MergeEncodedSlices is MergeEncoded handing emit the renderings
// without copying them: slices of the inputs' renderings, in order,
// where a slice holds the renderings of consecutive events of one input
// that the merge takes one after the other. emit gets at most
// maxSlices slices (of about blockBytes in all) at a time, and also
// before any input's renderings are reused, so that a writer can pass
// them to a gathering write (writev). The slices are valid only until
// emit returns. As with MergeEncoded, the renderings of every event
// before an error are emitted.
func MergeEncodedSlices(inputs []Input, opts MergeOptions, newEncoder func() Encoder, emit func(slices [][]byte) error) (Summary, error) {
	return mergeWith(inputs, opts, newEncoder, func(m *merger) error { return m.runSlices(emit) })
}

// maxSlices bounds the slices of one call of MergeEncodedSlices' emit:
// the most a writev takes on Linux (IOV_MAX).
const maxSlices = 1024

// merge runs the feeds and the merger; emit takes event i of batch b.
func merge(inputs []Input, opts MergeOptions, newEncoder func() Encoder, emit func(b *batch, i int) error) (Summary, error) {
	return mergeWith(inputs, opts, newEncoder, func(m *merger) error { return m.run(emit) })
}

// mergeWith runs the feeds, and run over the merger.
func mergeWith(inputs []Input, opts MergeOptions, newEncoder func() Encoder, run func(*merger) error) (Summary, error) {
	if opts.MaxRecorded <= 0 {
		opts.MaxRecorded = DefaultMaxRecorded
	}
	if opts.BatchEvents <= 0 {
		opts.BatchEvents = defaultBatchEvents
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	feeds := make([]*feed, len(inputs))
	for i, in := range inputs {
		var enc Encoder
		if newEncoder != nil {
			enc = newEncoder()
		}
		feeds[i] = newFeed(i, in, &opts, enc)
		wg.Add(1)
		go func(f *feed) {
			defer wg.Done()
			f.run(done)
		}(feeds[i])
	}
	m := merger{feeds: feeds}
	err := run(&m)
	close(done)
	wg.Wait()
	return summarize(feeds, m.emitted, opts.MaxRecorded), err
}

// merger is the consuming side: a tournament tree of losers over the
// inputs, keyed by each input's next event, so that taking an event and
// replacing it costs one comparison per level.
type merger struct {
	feeds []*feed
	// keys[j] is input j's key. tree[n], for the internal nodes n = 1 to
	// len(feeds)-1 of a heap-ordered tree whose leaves n = len(feeds)+j
	// are the inputs, holds the input that lost the match played at n;
	// tree[0] holds the overall winner.
	keys []mergeKey
	tree []int
	// cursors[j] is the merger's place in input j.
	cursors []cursor
	emitted int64
	// release, when set, is called before a batch goes back to its
	// input (feed.advance).
	release func() error
}

// mergeKey is an input's place in the tournament. Invariant: unless
// done, timeNs is the TimeNs of the input's head, which settles most
// matches without reading the events; done inputs lose every match, and
// their timeNs is math.MaxInt64, so that comparing times alone settles
// most of their matches too.
type mergeKey struct {
	timeNs int64
	done   bool
}

func (m *merger) run(emit func(b *batch, i int) error) error {
	w, err := m.start()
	for ; err == nil && w >= 0; w, err = m.next(w) {
		c := &m.cursors[w]
		if err := emit(c.cur, c.pos); err != nil {
			return err
		}
	}
	return err
}

// runSlices is run for MergeEncodedSlices: it gathers slices of the
// renderings and passes them to emit when it holds maxSlices of them or
// blockBytes, before a batch is released, and at the end, or at a merge
// error, with what it holds.
func (m *merger) runSlices(emit func(slices [][]byte) error) error {
	slices := make([][]byte, 0, maxSlices)
	size := 0
	flush := func() error {
		if len(slices) == 0 {
			return nil
		}
		err := emit(slices)
		clear(slices) // no reference to a batch outlives its turn
		slices, size = slices[:0], 0
		return err
	}
	m.release = flush
	w, err := m.start()
	for ; err == nil && w >= 0; w, err = m.next(w) {
		c := &m.cursors[w]
		r := c.cur.encoded(c.pos)
		size += len(r)
		if n := len(slices); n > 0 && follows(slices[n-1], r) {
			slices[n-1] = slices[n-1][:len(slices[n-1])+len(r)]
		} else {
			slices = append(slices, r)
		}
		if len(slices) == maxSlices || size >= blockBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	// After a merge error too: what went before it is output. An error
	// of emit's in release is err already.
	if ferr := flush(); err == nil {
		err = ferr
	}
	return err
}

// follows tells whether b starts where a ends, in the same array.
func follows(a, b []byte) bool {
	return len(b) > 0 && cap(a) > len(a) && &a[:len(a)+1][len(a)] == &b[0]
}

// start reads every input's first event and plays the tournament; it
// returns the winner, or -1 when every input is done.
func (m *merger) start() (int, error) {
	k := len(m.feeds)
	if k == 0 {
		return -1, nil
	}
	m.keys, m.cursors = make([]mergeKey, k), make([]cursor, k)
	for j := range m.feeds {
		if err := m.refresh(j); err != nil {
			return -1, err
		}
	}
	m.tree = make([]int, k)
	m.tree[0] = m.play(1)
	return m.winner(), nil
}

// next takes the head of w, the winner, and returns the next winner, or
// -1 when every input is done.
func (m *merger) next(w int) (int, error) {
	m.emitted++
	c := &m.cursors[w]
	if c.pos++; c.pos < len(c.cur.times) {
		m.keys[w].timeNs = c.cur.times[c.pos] // refresh, within the batch
	} else if err := m.refresh(w); err != nil {
		return -1, err
	}
	// Replay w's path to the root against the losers on it. Which input
	// wins a match is as good as random, so unequal times, the common
	// case, pick the winner without a branch.
	tw := m.keys[w].timeNs
	for n := (w + len(m.feeds)) / 2; n >= 1; n /= 2 {
		l := m.tree[n]
		tl := m.keys[l].timeNs
		if tl == tw {
			if m.beats(l, w) {
				m.tree[n], w = w, l
			}
			continue
		}
		win, lose := w, l
		if tl < tw {
			win, lose, tw = l, w, tl
		}
		m.tree[n], w = lose, win
	}
	m.tree[0] = w
	return m.winner(), nil
}

// winner is the input whose head goes next, or -1 when all are done.
func (m *merger) winner() int {
	if w := m.tree[0]; !m.keys[w].done {
		return w
	}
	return -1
}

// play fills the subtree of node n with its losers and returns its
// winner.
func (m *merger) play(n int) int {
	k := len(m.feeds)
	if n >= k {
		return n - k
	}
	a, b := m.play(2*n), m.play(2*n+1)
	if m.beats(b, a) {
		a, b = b, a
	}
	m.tree[n] = b
	return a
}

// refresh makes input j's key that of its next event, reading the next
// batch when needed.
func (m *merger) refresh(j int) error {
	f := m.feeds[j]
	c := &m.cursors[j]
	ok, err := f.advance(c, m.release)
	if err != nil {
		return err
	}
	if ok {
		m.keys[j].timeNs = c.cur.times[c.pos]
	} else {
		m.keys[j] = mergeKey{timeNs: math.MaxInt64, done: true}
	}
	return nil
}

// beats tells whether input a's next event goes before input b's.
func (m *merger) beats(a, b int) bool {
	ka, kb := &m.keys[a], &m.keys[b]
	if ka.timeNs != kb.timeNs {
		return ka.timeNs < kb.timeNs // a done input's time is the latest
	}
	if ka.done || kb.done {
		return kb.done && !ka.done
	}
	return tieBefore(m.cursors[a].headTie(), m.cursors[b].headTie())
}

// before is the merge order: TimeNs, then Host, Source, SourceSeq and
// input index. No two events of different inputs compare equal.
func before(a, b *Event) bool {
	if a.TimeNs != b.TimeNs {
		return a.TimeNs < b.TimeNs
	}
	ta, tb := tieOf(a), tieOf(b)
	return tieBefore(&ta, &tb)
}

// tieBefore is before for events of equal TimeNs, by their tie keys.
func tieBefore(a, b *tieKey) bool {
	if a.host != b.host {
		return a.host < b.host
	}
	if a.source != b.source {
		return a.source < b.source
	}
	if a.seq != b.seq {
		return a.seq < b.seq
	}
	return a.input < b.input
}

// summarize builds the Summary from the stopped feeds.
func summarize(feeds []*feed, emitted int64, max int) Summary {
	s := Summary{Events: emitted}
	for _, f := range feeds {
		in := f.sum
		in.Hosts = sortedKeys(f.hosts)
		if c, ok := f.in.Parser.(interface{ Errors() int }); ok {
			in.BadRecords = int64(c.Errors())
		}
		if f.in.Bad != nil {
			var n int64
			in.Bad, n = f.in.Bad.First()
			in.BadRecords = max64(in.BadRecords, n)
		}
		in.Late = f.tally.late
		in.Inconsistent = f.tally.inconsistent
		s.Inputs = append(s.Inputs, in)
		f.tally.addTo(&s, max)
	}
	s.addOutside(feeds, max)
	return s
}

// addOutside adds the events the feeds corrected beyond their host's
// offset history, per host, keeping the first max hosts by name.
func (s *Summary) addOutside(feeds []*feed, max int) {
	byHost := make(map[string]*OutsideHistory)
	for _, f := range feeds {
		for host, c := range f.correctors {
			if c == nil || c.outside == 0 {
				continue
			}
			o := byHost[host]
			if o == nil {
				ss := c.h.samples
				o = &OutsideHistory{Host: host, FirstRefNs: ss[0].RefNs, LastRefNs: ss[len(ss)-1].RefNs}
				byHost[host] = o
			}
			o.Events += c.outside
			s.Outside += c.outside
		}
	}
	for _, o := range byHost {
		s.OutsideHosts = append(s.OutsideHosts, *o)
	}
	sort.Slice(s.OutsideHosts, func(i, j int) bool { return s.OutsideHosts[i].Host < s.OutsideHosts[j].Host })
	if len(s.OutsideHosts) > max {
		s.OutsideHosts = s.OutsideHosts[:max]
	}
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// wrapInputErr names the input in err, unless err already names its
// file and line.
func wrapInputErr(name string, err error) error {
	var le *ingest.LineError
	if errors.As(err, &le) || errors.Is(err, io.EOF) {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}
