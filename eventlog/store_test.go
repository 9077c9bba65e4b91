package eventlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/internal/segfile"
	"github.com/clockd/clockd/ordering"
)

func events(from, to uint64) []ordering.LogEvent {
	var out []ordering.LogEvent
	for g := from; g <= to; g++ {
		out = append(out, ordering.LogEvent{GSN: g, Event: ingest.Event{Host: "h", Source: "s", SourceSeq: g,
			LocalNs: int64(g), Kind: ingest.KindLog, Name: fmt.Sprintf("event %d", g),
			Attrs: []ingest.Attr{{Key: "k", Value: "v"}}}})
	}
	return out
}

func readAll(t *testing.T, s *Store, from uint64) []ordering.LogEvent {
	t.Helper()
	var out []ordering.LogEvent
	for {
		evs, next, err := s.Read(from, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		from = next
	}
}

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(events(1, 500)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(events(400, 600)); err != nil { // a replay overlaps
		t.Fatal(err)
	}
	got := readAll(t, s, 250)
	if len(got) != 351 || got[0].GSN != 250 || got[350].GSN != 600 || got[10].Event.Name != "event 260" {
		t.Fatalf("read %d events from 250: first %d", len(got), got[0].GSN)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 3 {
		t.Fatalf("%d segments of 4 KiB for 600 events", len(segs))
	}
	// A torn record at the tail is cut off on reopen.
	last := segs[len(segs)-1]
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{50, 1, 2, 3})
	f.Close()
	s, err = Open(Config{Dir: dir, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Last() != 600 || len(readAll(t, s, 1)) != 600 {
		t.Fatalf("after reopen: last %d", s.Last())
	}
	if err := s.Append(events(601, 601)); err != nil || s.Last() != 601 {
		t.Fatalf("append after reopen: %v, last %d", err, s.Last())
	}
}

func TestCorruptionBeforeTailRefused(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(Config{Dir: dir, SegmentBytes: 2 << 10})
	s.Append(events(1, 100))
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	b, _ := os.ReadFile(segs[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(segs[0], b, 0o600)
	if _, err := Open(Config{Dir: dir, SegmentBytes: 2 << 10}); err == nil {
		t.Fatal("a corrupt segment opened")
	}
}

func TestRetentionAndWait(t *testing.T) {
	s, _ := Open(Config{Dir: t.TempDir(), SegmentBytes: 2 << 10, MaxBytes: 8 << 10})
	defer s.Close()
	s.Append(events(1, 1000))
	if s.First() <= 1 {
		t.Fatalf("retention kept everything: first %d", s.First())
	}
	got := readAll(t, s, 1)
	if got[0].GSN != s.First() || got[len(got)-1].GSN != 1000 {
		t.Fatalf("read from a removed GSN started at %d, first kept %d", got[0].GSN, s.First())
	}
	done := make(chan error)
	go func() { done <- s.Wait(context.Background(), 1000) }()
	s.Append(events(1001, 1001))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAppendCommitted: events handed over as the state machine commits
// them, compressed or not, are stored as blocks and read back as Append's
// single events are;
// a replay adds nothing, a partial replay only the rest; a reopened store
// finds them all.
func TestAppendCommitted(t *testing.T) {
	var runs []ordering.Committed
	m := ordering.Machine{OnEvents: func(c ordering.Committed) { runs = append(runs, c) }}
	var want []ordering.LogEvent
	for n, r := range [][2]uint64{{1, 300}, {301, 420}, {421, 421}} {
		var evs []ingest.Event
		for _, e := range events(r[0], r[1]) {
			evs = append(evs, e.Event)
		}
		if n == 1 {
			evs = append(evs[:50:50], append([]ingest.Event{evs[10]}, evs[50:]...)...) // a duplicate inside
		}
		encode := ordering.EncodeEventsS2 // compressed blocks, partly replayed and with a duplicate
		if n == 2 {
			encode = ordering.EncodeEvents
		}
		m.Apply(uint64(n+1), encode(&ordering.Events{Origin: 1, Epoch: 1, Batch: uint64(n + 1), Events: evs}))
		want = append(want, events(r[0], r[1])...)
	}
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(want[:150]); err != nil { // the first run partly stored already
		t.Fatal(err)
	}
	for _, c := range append(runs, runs[1]) { // the last a replay
		if err := s.AppendCommitted(c); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store) {
		t.Helper()
		if got := readAll(t, s, 1); !reflect.DeepEqual(got, want) {
			t.Fatalf("read %d events back, want %d", len(got), len(want))
		}
		if got := readAll(t, s, 333); len(got) != 421-332 || got[0].GSN != 333 {
			t.Fatalf("read from 333: %d events, first %d", len(got), got[0].GSN)
		}
		if evs, next, err := s.Read(302, 5); err != nil || len(evs) != 5 || next != 307 {
			t.Fatalf("read 5 from 302: %d events, next %d, %v", len(evs), next, err)
		}
		if s.Last() != 421 {
			t.Fatalf("last %d", s.Last())
		}
	}
	check(s)
	s.Close()
	if s, err = Open(Config{Dir: dir, SegmentBytes: 4 << 10}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
}

// TestGapFill: an append past a gap opens a segment after it and says so;
// Fill puts the missing events in their place, which Read, a reopen and
// Gaps all see; fills that do not fit one gap exactly are refused.
func TestGapFill(t *testing.T) {
	dir := t.TempDir()
	var heard []Gap
	cfg := Config{Dir: dir, SegmentBytes: 1 << 20, OnGap: func(g Gap) { heard = append(heard, g) }}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(events(1, 100)); err != nil {
		t.Fatal(err)
	}
	c := committed(301, 400) // as after a snapshot installed
	if err := s.AppendCommitted(c); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(events(401, 450)); err != nil {
		t.Fatal(err)
	}
	want := []Gap{{First: 101, Last: 300}}
	if !reflect.DeepEqual(heard, want) || !reflect.DeepEqual(s.Gaps(), want) {
		t.Fatalf("heard %v, Gaps %v, want %v", heard, s.Gaps(), want)
	}
	if got := readAll(t, s, 50); len(got) != 51+150 || got[51].GSN != 301 {
		t.Fatalf("read %d events across the gap", len(got))
	}

	for _, bad := range [][]ordering.LogEvent{
		events(90, 120),  // overlaps events held
		events(290, 310), // overlaps the next segment
		events(451, 460), // after the last
		append(events(150, 160), events(170, 171)...), // not consecutive
	} {
		if err := s.Fill(bad); err == nil {
			t.Fatalf("Fill(%d..%d) accepted", bad[0].GSN, bad[len(bad)-1].GSN)
		}
	}
	// The gap's second half first, then its first half: two segments.
	if err := s.Fill(events(201, 300)); err != nil {
		t.Fatal(err)
	}
	if got := s.Gaps(); !reflect.DeepEqual(got, []Gap{{First: 101, Last: 200}}) {
		t.Fatalf("Gaps after a partial fill: %v", got)
	}
	if err := s.Fill(events(101, 200)); err != nil {
		t.Fatal(err)
	}
	if got := s.Gaps(); len(got) != 0 {
		t.Fatalf("Gaps after the fills: %v", got)
	}
	// Retention by age sees the filled events as old as those before them.
	if first, fill := s.segs[0].modTime, s.segs[1].modTime; !fill.Equal(first) {
		t.Fatalf("the fill's time is %v, the segment before it %v", fill, first)
	}
	check := func(s *Store) {
		t.Helper()
		got := readAll(t, s, 1)
		if !reflect.DeepEqual(got, events(1, 450)) {
			t.Fatalf("read %d events, want 1..450 in order", len(got))
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A fill interrupted before its rename is forgotten on open.
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000500.seg.fill"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(cfg); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
	if left, _ := filepath.Glob(filepath.Join(dir, "*"+segfile.FillSuffix)); len(left) != 0 {
		t.Fatalf("left after open: %v", left)
	}
	if got := s.Gaps(); len(got) != 0 {
		t.Fatalf("Gaps after reopen: %v", got)
	}
}

// committed returns the events from..to (from > 1) as the state machine
// hands them over.
func committed(from, to uint64) ordering.Committed {
	var runs []ordering.Committed
	m := ordering.Machine{OnEvents: func(c ordering.Committed) { runs = append(runs, c) }}
	for n, r := range [][2]uint64{{1, from - 1}, {from, to}} {
		var evs []ingest.Event
		for _, e := range events(r[0], r[1]) {
			evs = append(evs, e.Event)
		}
		m.Apply(uint64(n+1), ordering.EncodeEvents(&ordering.Events{Origin: 1, Epoch: 1, Batch: uint64(n + 1), Events: evs}))
	}
	return runs[1]
}
