package main

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
)

// TestWireAppendMatchesProto checks that a refilled wireAppend is the
// encoding proto.Marshal gives the same request, across sequence numbers
// and times whose varints change length between and within fills (no
// time is 0, which proto would leave out).
func TestWireAppendMatchesProto(t *testing.T) {
	w := newWireAppend("paced-7", 300)
	seq := uint64(0)
	for _, now := range []int64{1, 100, 1 << 40, 1_764_000_000_000_000_000, -1000} {
		first := seq
		w.fill(&seq, now)
		if seq != first+300 {
			t.Fatalf("now %d: seq advanced to %d, want %d", now, seq, first+300)
		}
		want := &clockdv1.AppendRequest{}
		for i := range 300 {
			want.Events = append(want.Events, &clockdv1.Event{Host: "bench", Source: "paced-7",
				SourceSeq: first + uint64(i) + 1, LocalUnixNano: now + int64(i), Kind: "log",
				Name: logEventName(first + uint64(i) + 1)})
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w.buf, b) {
			t.Fatalf("now %d: wire encoding differs from proto.Marshal (%d bytes against %d)", now, len(w.buf), len(b))
		}
		var got clockdv1.AppendRequest
		if err := (wireCodec{}).Unmarshal(w.buf, &got); err != nil || !proto.Equal(&got, want) {
			t.Fatalf("now %d: decoded %v, want the request", now, err)
		}
	}
	seq = 1<<63 - 100 // sequence numbers whose varints reach ten bytes
	w.fill(&seq, 1)
	var got clockdv1.AppendRequest
	if err := proto.Unmarshal(w.buf, &got); err != nil || got.Events[299].SourceSeq != 1<<63+200 {
		t.Fatalf("large seq: %v, last seq %d", err, got.Events[len(got.Events)-1].SourceSeq)
	}
}

// TestLogEventsAbout100Bytes: the log part's events are the 100-byte
// events its target speaks of, on average, as Append carries them, and
// their names differ as real traces' do.
func TestLogEventsAbout100Bytes(t *testing.T) {
	const n = 10_000
	total := 0
	distinct := map[string]bool{}
	for seq := uint64(1); seq <= n; seq++ {
		e := &clockdv1.Event{Host: "bench", Source: "paced-17", SourceSeq: seq,
			LocalUnixNano: 1_764_000_000_000_000_000 + int64(seq), Kind: "log", Name: logEventName(seq)}
		total += proto.Size(e)
		distinct[e.Name] = true
	}
	if avg := float64(total) / n; avg < 95 || avg > 105 {
		t.Errorf("events average %.1f bytes, want 100 ± 5", avg)
	}
	if len(distinct) < n*9/10 {
		t.Errorf("%d distinct names in %d events, want most to differ", len(distinct), n)
	}
}
