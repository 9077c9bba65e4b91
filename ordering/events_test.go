package ordering

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/clockd/clockd/ingest"
)

func ev(host, source string, seq uint64) ingest.Event {
	return ingest.Event{Host: host, Source: source, SourceSeq: seq, Kind: ingest.KindLog, Name: "e"}
}

// TestEventsNumberedAndDeduplicated: GSNs follow commit order, and a
// retried batch (or its overlap with a later one) adds nothing twice.
func TestEventsNumberedAndDeduplicated(t *testing.T) {
	var m Machine
	var got []LogEvent
	m.OnEvents = func(es []LogEvent) { got = append(got, es...) }
	batches := [][]ingest.Event{
		{ev("a", "x", 1), ev("a", "x", 2), ev("b", "x", 1)},
		{ev("a", "x", 1), ev("a", "x", 2)}, // a retry
		{ev("a", "x", 2), ev("a", "x", 3), ev("a", "y", 1)},
	}
	want := []EventsResult{{FirstGSN: 1, Accepted: 3}, {Duplicates: 2}, {FirstGSN: 4, Accepted: 2, Duplicates: 1}}
	for i, b := range batches {
		if res := m.Apply(uint64(i+1), EncodeEvents(b)); res != want[i] {
			t.Fatalf("batch %d: %v, want %v", i, res, want[i])
		}
	}
	var order []string
	for i, e := range got {
		if e.GSN != uint64(i+1) {
			t.Fatalf("event %d has GSN %d", i, e.GSN)
		}
		order = append(order, e.Event.Host+e.Event.Source+string(rune('0'+e.Event.SourceSeq)))
	}
	if !reflect.DeepEqual(order, []string{"ax1", "ax2", "bx1", "ax3", "ay1"}) {
		t.Fatalf("committed %v", order)
	}
	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	var r Machine
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if r.LastGSN() != 5 || r.SourceSeq("a", "x") != 3 {
		t.Fatalf("restored GSN %d, a/x at %d", r.LastGSN(), r.SourceSeq("a", "x"))
	}
	if res := r.Apply(9, EncodeEvents([]ingest.Event{ev("a", "x", 3), ev("a", "x", 4)})).(EventsResult); res.FirstGSN != 6 || res.Duplicates != 1 {
		t.Fatalf("after restore: %v", res)
	}
}
