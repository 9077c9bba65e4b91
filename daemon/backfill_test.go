package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/eventlog"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/ordering"
)

// TestEventsRead: a member answers events.read from its store, from the
// first GSN asked to the last, at most readAnswerBytes at once; the
// answer decodes to the stored events; bad requests and answers are
// refused.
func TestEventsRead(t *testing.T) {
	store, err := eventlog.Open(eventlog.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var stored []ordering.LogEvent
	for g := uint64(1); g <= 3000; g++ {
		stored = append(stored, ordering.LogEvent{GSN: g, Event: ingest.Event{Host: "h", Source: "s", SourceSeq: g,
			LocalNs: int64(g), Kind: ingest.KindLog, Name: "e", Attrs: []ingest.Attr{{Key: "pad", Value: strings.Repeat("x", 1000)}}}})
	}
	if err := store.Append(stored); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{events: &eventPipeline{store: store}}
	read := func(first, last uint64) []ordering.LogEvent {
		t.Helper()
		out, err := d.serveEventsRead(context.Background(), 2, binary.AppendUvarint(binary.AppendUvarint(nil, first), last))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := decodeEventsRead(out)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	if got := read(100, 200); !reflect.DeepEqual(got, stored[99:200]) {
		t.Fatalf("read 100..200: %d events", len(got))
	}
	// 1 KiB events: one answer holds about a thousand.
	got := read(1, 3000)
	if n := len(got); n < 900 || n > 1100 || !reflect.DeepEqual(got, stored[:n]) {
		t.Fatalf("read 1..3000: %d events, want the first ~1000 as stored", n)
	}
	if got := read(2990, 5000); !reflect.DeepEqual(got, stored[2989:]) {
		t.Fatalf("read past the end: %d events", len(got))
	}
	if got := read(4000, 5000); len(got) != 0 {
		t.Fatalf("read after the end: %d events", len(got))
	}

	for _, req := range [][]byte{nil, {0, 5}, {9, 3}, {1, 2, 3}} {
		_, err := d.serveEventsRead(context.Background(), 2, req)
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("request %v: %v, want InvalidArgument", req, err)
		}
	}
	out, _ := d.serveEventsRead(context.Background(), 2, []byte{1, 10})
	for _, bad := range [][]byte{out[:len(out)-1], append(out[:len(out):len(out)], 0), {5}} {
		if _, err := decodeEventsRead(bad); err == nil {
			t.Fatalf("answer %x decoded", bad)
		}
	}
}

// TestConsecutive: only the leading run of consecutive GSNs up to last
// is taken from an answer.
func TestConsecutive(t *testing.T) {
	evs := func(gsns ...uint64) []ordering.LogEvent {
		var out []ordering.LogEvent
		for _, g := range gsns {
			out = append(out, ordering.LogEvent{GSN: g})
		}
		return out
	}
	for _, c := range []struct {
		in   []ordering.LogEvent
		last uint64
		want int
	}{
		{evs(5, 6, 7), 10, 3},
		{evs(5, 6, 8), 10, 2},
		{evs(5, 6, 7), 6, 2},
		{evs(11), 10, 0},
		{nil, 10, 0},
	} {
		if got := consecutive(c.in, c.last); len(got) != c.want {
			t.Fatalf("consecutive(%v, %d) = %d events, want %d", c.in, c.last, len(got), c.want)
		}
	}
}

// TestBackfillerFill: a gap is filled from what the members answer; the
// part no member holds any more is counted, logged and not asked for
// again; a member that cannot be reached fails the fill, to be retried.
func TestBackfillerFill(t *testing.T) {
	store, err := eventlog.Open(eventlog.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	all := make([]ordering.LogEvent, 0, 500)
	for g := uint64(1); g <= 500; g++ {
		all = append(all, ordering.LogEvent{GSN: g, Event: ingest.Event{Host: "h", Source: "s", SourceSeq: g,
			Kind: ingest.KindLog, Name: "e"}})
	}
	if err := store.Append(all[:100]); err != nil {
		t.Fatal(err)
	}
	if err := store.Append(all[400:]); err != nil { // a gap: 101..400
		t.Fatal(err)
	}
	d := &Daemon{log: zap.NewNop(), metrics: newMetrics()}
	b := newBackfiller(d)
	b.store = store
	// The members hold 151 on, and answer at most 60 events at once.
	var asked []uint64
	down := true
	b.ask = func(_ context.Context, first, last uint64) ([]ordering.LogEvent, error) {
		asked = append(asked, first)
		if down {
			return nil, errors.New("node 2: unreachable")
		}
		from := max(first, 151)
		return all[from-1 : min(last, from+59)], nil
	}
	if err := b.fillAll(context.Background()); err == nil || len(store.Gaps()) != 1 {
		t.Fatalf("with a member down: %v, gaps %v", err, store.Gaps())
	}
	down = false
	asked = nil
	if err := b.fillAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := store.Gaps(); !reflect.DeepEqual(got, []eventlog.Gap{{First: 101, Last: 150}}) {
		t.Fatalf("gaps %v, want 101..150 alone", got)
	}
	if want := []uint64{101, 151, 211, 271, 331, 391}; !reflect.DeepEqual(asked, want) {
		t.Fatalf("asked from %v, want %v", asked, want)
	}
	if got := counterValue(d.metrics.eventsBackfilled); got != 250 {
		t.Fatalf("backfilled %v, want 250", got)
	}
	if got := counterValue(d.metrics.eventsUnrecoverable); got != 50 {
		t.Fatalf("unrecoverable %v, want 50", got)
	}
	evs, _, err := store.Read(140, 1000)
	if err != nil || !reflect.DeepEqual(evs, all[150:]) {
		t.Fatalf("read from 140: %d events from %d, %v", len(evs), evs[0].GSN, err)
	}
	// The lost run is not asked for again.
	asked = nil
	if err := b.fillAll(context.Background()); err != nil || len(asked) != 0 {
		t.Fatalf("again: asked %v, %v", asked, err)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}
