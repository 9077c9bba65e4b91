package timeline

import (
	"errors"
	"io"
	"testing"

	"go.uber.org/goleak"

	"github.com/clockd/clockd/ingest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sliceParser yields its events, then err (io.EOF when nil), and counts
// bad records as a real parser would.
type sliceParser struct {
	evs  []ingest.Event
	err  error
	bad  int
	next int
}

func (p *sliceParser) Next() (ingest.Event, error) {
	if p.next < len(p.evs) {
		p.next++
		return p.evs[p.next-1], nil
	}
	if p.err != nil {
		return ingest.Event{}, p.err
	}
	return ingest.Event{}, io.EOF
}

func (p *sliceParser) Errors() int { return p.bad }

// ev builds an event of host and source at local time ns; seq is set by
// input.
func ev(host, source string, ns int64, kind, name string, attrs ...string) ingest.Event {
	e := ingest.Event{Host: host, Source: source, LocalNs: ns, Kind: kind, Name: name}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.Attrs = append(e.Attrs, ingest.Attr{Key: attrs[i], Value: attrs[i+1]})
	}
	return e
}

// untimed builds an event of host and source that carries no time.
func untimed(host, source, kind, name string, attrs ...string) ingest.Event {
	e := ev(host, source, 0, kind, name, attrs...)
	e.Untimed = true
	return e
}

// input numbers evs per source from 1 and wraps them as an Input.
func input(name string, evs ...ingest.Event) Input {
	seqs := map[string]uint64{}
	for i := range evs {
		seqs[evs[i].Source]++
		evs[i].SourceSeq = seqs[evs[i].Source]
	}
	return Input{Name: name, Parser: &sliceParser{evs: evs}}
}

// mergeAll merges inputs and returns the events.
func mergeAll(t *testing.T, inputs []Input, opts MergeOptions) ([]Event, Summary) {
	t.Helper()
	var out []Event
	sum, err := Merge(inputs, opts, func(e Event) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if sum.Events != int64(len(out)) {
		t.Fatalf("Summary.Events %d, emitted %d", sum.Events, len(out))
	}
	return out, sum
}

var errTest = errors.New("test error")
