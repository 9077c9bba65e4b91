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
		feeds[i] = newFeed(i, in, &opts)
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

// merger is the consuming side: a binary min-heap of the inputs that
// have an event ready, keyed by that event.
type merger struct {
	feeds   []*feed
	heap    []*feed
	emitted int64
}

func (m *merger) run(emit func(Event) error) error {
	for _, f := range m.feeds {
		ok, err := f.advance()
		if err != nil {
			return err
		}
		if ok {
			m.heap = append(m.heap, f)
		}
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	for len(m.heap) > 0 {
		f := m.heap[0]
		if err := emit(f.cur.evs[f.pos]); err != nil {
			return err
		}
		m.emitted++
		f.pos++
		ok, err := f.advance()
		if err != nil {
			return err
		}
		if !ok {
			last := len(m.heap) - 1
			m.heap[0] = m.heap[last]
			m.heap = m.heap[:last]
		}
		m.down(0)
	}
	return nil
}

// down restores the heap property below i.
func (m *merger) down(i int) {
	h := m.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && before(h[r].head(), h[l].head()) {
			c = r
		}
		if !before(h[c].head(), h[i].head()) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
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
