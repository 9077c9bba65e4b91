package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/eventlog"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/internal/spans"
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
		if got := consecutive(c.in, ordering.GSNOf, c.last); len(got) != c.want {
			t.Fatalf("consecutive(%v, %d) = %d events, want %d", c.in, c.last, len(got), c.want)
		}
	}
}

// TestBackfillerFill: a gap in the event store is filled from what the
// members answer (checkBackfill).
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
	b := newEventBackfiller(d)
	b.store = store
	checkBackfill(t, b, all)
	evs, _, err := store.Read(140, 1000)
	if err != nil || !reflect.DeepEqual(evs, all[150:]) {
		t.Fatalf("read from 140: %d events from %d, %v", len(evs), evs[0].GSN, err)
	}
}

// checkBackfill fills b's store, which holds all[:100] and all[400:] (a
// gap: 101..400), from members that hold 151 on and answer at most 60
// at once: a member that cannot be reached fails the fill, to be
// retried; then 151..400 are filled, and the run no member holds any
// more is counted, logged and not asked for again.
func checkBackfill[T any](t *testing.T, b *backfiller[T], all []T) {
	t.Helper()
	var asked []uint64
	down := true
	b.ask = func(_ context.Context, first, last uint64) ([]T, error) {
		asked = append(asked, first)
		if down {
			return nil, errors.New("node 2: unreachable")
		}
		from := max(first, 151)
		return all[from-1 : min(last, from+59)], nil
	}
	if err := b.fillAll(context.Background()); err == nil || len(b.store.Gaps()) != 1 {
		t.Fatalf("with a member down: %v, gaps %v", err, b.store.Gaps())
	}
	down, asked = false, nil
	if err := b.fillAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := b.store.Gaps(); !reflect.DeepEqual(got, []spans.Gap{{First: 101, Last: 150}}) {
		t.Fatalf("gaps %v, want 101..150 alone", got)
	}
	if want := []uint64{101, 151, 211, 271, 331, 391}; !reflect.DeepEqual(asked, want) {
		t.Fatalf("asked from %v, want %v", asked, want)
	}
	if got := counterValue(b.kind.filled); got != 250 {
		t.Fatalf("backfilled %v, want 250", got)
	}
	if got := counterValue(b.kind.lost); got != 50 {
		t.Fatalf("unrecoverable %v, want 50", got)
	}
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

// subscribeStream is the server side of a Subscribe call, in memory.
type subscribeStream struct {
	grpc.ServerStream
	ctx context.Context
	got chan *clockdv1.LogEvent
}

func (s *subscribeStream) Context() context.Context { return s.ctx }

func (s *subscribeStream) Send(e *clockdv1.LogEvent) error {
	s.got <- e
	return nil
}

// TestSubscribeAtGap: a subscriber that reaches a gap the backfiller is
// filling waits for the fill and gets every event in order; at a gap no
// member holds, or one not filled in time, it goes on past the jump.
func TestSubscribeAtGap(t *testing.T) {
	evs := func(from, to uint64) []ordering.LogEvent {
		var out []ordering.LogEvent
		for g := from; g <= to; g++ {
			out = append(out, ordering.LogEvent{GSN: g, Event: ingest.Event{Host: "h", Source: "s", SourceSeq: g,
				Kind: ingest.KindLog, Name: "e"}})
		}
		return out
	}
	setup := func(t *testing.T, lost ...eventlog.Gap) (*Daemon, func(n int) []uint64) {
		store, err := eventlog.Open(eventlog.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		if err := store.Append(evs(1, 100)); err != nil {
			t.Fatal(err)
		}
		if err := store.Append(evs(301, 400)); err != nil { // a gap: 101..300
			t.Fatal(err)
		}
		d := &Daemon{log: zap.NewNop(), metrics: newMetrics(), events: &eventPipeline{store: store}}
		d.backfill = newEventBackfiller(d)
		d.backfill.store = store
		d.backfill.lost = lost
		ctx, cancel := context.WithCancel(context.Background())
		st := &subscribeStream{ctx: ctx, got: make(chan *clockdv1.LogEvent, 1000)}
		done := make(chan error, 1)
		go func() { done <- (&orderingServer{d: d}).Subscribe(&clockdv1.SubscribeRequest{FromGsn: 1}, st) }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		recv := func(n int) []uint64 {
			var gsns []uint64
			for range n {
				gsns = append(gsns, (<-st.got).Gsn)
			}
			return gsns
		}
		return d, recv
	}
	seq := func(from, to uint64) []uint64 {
		var out []uint64
		for g := from; g <= to; g++ {
			out = append(out, g)
		}
		return out
	}

	t.Run("filled", func(t *testing.T) {
		d, recv := setup(t)
		if got := recv(100); !reflect.DeepEqual(got, seq(1, 100)) {
			t.Fatalf("first 100: %v", got)
		}
		if err := d.events.store.Fill(evs(101, 300)); err != nil {
			t.Fatal(err)
		}
		// Had it not waited, 301 would have followed 100 at once.
		if got := recv(1); got[0] != 101 {
			t.Fatalf("after 100 came %d, want 101", got[0])
		}
		if got := recv(299); !reflect.DeepEqual(got, seq(102, 400)) {
			t.Fatalf("after the fill: %v..., want 102..400", got[:5])
		}
	})
	t.Run("lost", func(t *testing.T) {
		_, recv := setup(t, eventlog.Gap{First: 101, Last: 300})
		if got := recv(200); !reflect.DeepEqual(got, append(seq(1, 100), seq(301, 400)...)) {
			t.Fatalf("past a lost gap: %v", got)
		}
	})
	t.Run("not in time", func(t *testing.T) {
		defer func(w time.Duration) { subscribeGapWait = w }(subscribeGapWait)
		subscribeGapWait = time.Millisecond
		_, recv := setup(t)
		if got := recv(200); !reflect.DeepEqual(got, append(seq(1, 100), seq(301, 400)...)) {
			t.Fatalf("past a gap not filled in time: %v", got)
		}
	})
}
