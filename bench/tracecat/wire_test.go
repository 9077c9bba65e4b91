package main

import (
	"bytes"
	"strings"
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
	name := strings.Repeat("x", logEventNameSize)
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
				SourceSeq: first + uint64(i) + 1, LocalUnixNano: now + int64(i), Kind: "log", Name: name})
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
