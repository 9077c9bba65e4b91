package daemon

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/ingest"
)

// flatRequest is what the daemon reads of a request's events, for
// comparing with flatEvents: the reference interval is not read.
func flatRequest(r *clockdv1.AppendRequest) []string {
	var evs []ingest.Event
	for _, e := range r.Events {
		ev := ingest.Event{Host: e.Host, Source: e.Source, SourceSeq: e.SourceSeq, LocalNs: e.LocalUnixNano,
			Kind: e.Kind, Name: e.Name, DurNs: e.DurNanos}
		for _, a := range e.Attrs {
			ev.Attrs = append(ev.Attrs, ingest.Attr{Key: a.Key, Value: a.Value})
		}
		evs = append(evs, ev)
	}
	return flatEvents(evs)
}

// flatEvents is each event's fields that the daemon reads, as text.
func flatEvents(evs []ingest.Event) []string {
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("%q %q %d %d %q %q %d", e.Host, e.Source, e.SourceSeq, e.LocalNs,
			e.Kind, e.Name, e.DurNs)
		for _, a := range e.Attrs {
			s += fmt.Sprintf(" %q=%q", a.Key, a.Value)
		}
		out = append(out, s)
	}
	return out
}

// FuzzAppendCodec: the Append decoder takes what proto.Unmarshal takes,
// refuses what it refuses, and reads the same events, but for the
// reference interval, which it does not read.
func FuzzAppendCodec(f *testing.F) {
	req := &clockdv1.AppendRequest{Events: []*clockdv1.Event{
		{Host: "h", Source: "s", SourceSeq: 7, LocalUnixNano: -3, Kind: "log", Name: "x", DurNanos: 9,
			Attrs: []*clockdv1.Attr{{Key: "k", Value: "v"}, {Value: "w"}}},
		{Source: "é", SourceSeq: 1 << 60, RefEarliestUnixNano: 1, RefLatestUnixNano: -1},
		{},
	}}
	b, err := proto.Marshal(req)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Add(append(b, 0x0a, 0x02, 0x0a, 0xff)) // an event whose host is not UTF-8
	f.Add(append(b, 0x10, 0x01))             // an unknown field
	f.Fuzz(func(t *testing.T, b []byte) {
		var want clockdv1.AppendRequest
		var got appendMessage
		werr := proto.Unmarshal(b, &want)
		gerr := decodeAppendMessage(b, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("proto.Unmarshal: %v; decodeAppendMessage: %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if !reflect.DeepEqual(flatEvents(got.events), flatRequest(&want)) {
			t.Fatalf("read %v, want %v", flatEvents(got.events), flatRequest(&want))
		}
		// The events share one array of attrs: none may reach another's.
		for i, e := range got.events {
			if cap(e.Attrs) != len(e.Attrs) {
				t.Fatalf("event %d: attrs cap %d, len %d", i, cap(e.Attrs), len(e.Attrs))
			}
		}
	})
}

// BenchmarkDecodeAppendMessage decodes and checks an Append of 2,000
// events shaped like the ordered-log bench's: about 100 bytes each.
func BenchmarkDecodeAppendMessage(b *testing.B) {
	req := &clockdv1.AppendRequest{}
	name := strings.Repeat("x", 60)
	for i := range 2000 {
		req.Events = append(req.Events, &clockdv1.Event{Host: "bench", Source: "bench-3", SourceSeq: uint64(i + 1),
			LocalUnixNano: 1_700_000_000_000_000_000 + int64(i), Kind: "log", Name: name})
	}
	msg, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var got appendMessage
	for b.Loop() {
		if err := decodeAppendMessage(msg, &got); err != nil {
			b.Fatal(err)
		}
		if err := checkAppend(got.events, map[string]uint64{}); err != nil {
			b.Fatal(err)
		}
	}
}
