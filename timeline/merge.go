package timeline

import (
	"errors"
	"fmt"
	"io"
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

// MergeEncoded is Merge for output that an Encoder renders: each input's
// goroutine renders its events, with an Encoder newEncoder made for it,
// as it places them, so that rendering runs in parallel; emit receives
// the renderings in the order Merge would emit the events. The slice
// emit gets is valid only until it returns.
func MergeEncoded(inputs []Input, opts MergeOptions, newEncoder func() Encoder, emit func(encoded []byte) error) (Summary, error) {
	return merge(inputs, opts, newEncoder, func(b *batch, i int) error { return emit(b.encoded(i)) })
}

// merge runs the feeds and the merger; emit takes event i of batch b.
func merge(inputs []Input, opts MergeOptions, newEncoder func() Encoder, emit func(b *batch, i int) error) (Summary, error) {
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
	err := m.run(emit)
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
	keys    []mergeKey
	tree    []int
	emitted int64
}

// mergeKey is an input's place in the tournament. Invariant: unless
// done, timeNs is the TimeNs of the input's head, which settles most
// matches without reading the events; done inputs lose every match.
type mergeKey struct {
	timeNs int64
	done   bool
}

func (m *merger) run(emit func(b *batch, i int) error) error {
	k := len(m.feeds)
	if k == 0 {
		return nil
	}
	m.keys = make([]mergeKey, k)
	for j := range m.feeds {
		if err := m.refresh(j); err != nil {
			return err
		}
	}
	m.tree = make([]int, k)
	m.tree[0] = m.play(1)
	for w := m.tree[0]; !m.keys[w].done; w = m.tree[0] {
		f := m.feeds[w]
		if err := emit(f.cur, f.pos); err != nil {
			return err
		}
		m.emitted++
		f.pos++
		if err := m.refresh(w); err != nil {
			return err
		}
		// Replay w's path to the root against the losers on it.
		for n := (w + k) / 2; n >= 1; n /= 2 {
			if l := m.tree[n]; m.beats(l, w) {
				m.tree[n], w = w, l
			}
		}
		m.tree[0] = w
	}
	return nil
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
	ok, err := f.advance()
	if err != nil {
		return err
	}
	if ok {
		m.keys[j].timeNs = f.cur.times[f.pos]
	} else {
		m.keys[j].done = true
	}
	return nil
}

// beats tells whether input a's next event goes before input b's.
func (m *merger) beats(a, b int) bool {
	ka, kb := &m.keys[a], &m.keys[b]
	if ka.timeNs != kb.timeNs || ka.done || kb.done {
		return !ka.done && (kb.done || ka.timeNs < kb.timeNs)
	}
	return before(m.feeds[a].head(), m.feeds[b].head())
}

// before is the merge order: TimeNs, then Host, Source, SourceSeq and
// input index. No two events of different inputs compare equal.
func before(a, b *Event) bool {
	if a.TimeNs != b.TimeNs {
		return a.TimeNs < b.TimeNs
	}
	if a.Host != b.Host {
		return a.Host < b.Host
	}
	if a.Source != b.Source {
		return a.Source < b.Source
	}
	if a.SourceSeq != b.SourceSeq {
		return a.SourceSeq < b.SourceSeq
	}
	return a.Input < b.Input
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
	return s
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
