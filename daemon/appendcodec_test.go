package daemon

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
)

// flatEvents is what the daemon reads of a request, for comparing.
func flatEvents(r *clockdv1.AppendRequest) []string {
	var out []string
	for _, e := range r.Events {
		s := fmt.Sprintf("%q %q %d %d %d %d %q %q %d", e.Host, e.Source, e.SourceSeq, e.LocalUnixNano,
			e.RefEarliestUnixNano, e.RefLatestUnixNano, e.Kind, e.Name, e.DurNanos)
		for _, a := range e.Attrs {
			s += fmt.Sprintf(" %q=%q", a.Key, a.Value)
		}
		out = append(out, s)
	}
	return out
}

// FuzzAppendCodec: the Append decoder takes what proto.Unmarshal takes,
// refuses what it refuses, and reads the same events.
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
		var want, got clockdv1.AppendRequest
		werr := proto.Unmarshal(b, &want)
		gerr := decodeAppendRequest(b, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("proto.Unmarshal: %v; decodeAppendRequest: %v", werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(flatEvents(&got), flatEvents(&want)) {
			t.Fatalf("read %v, want %v", flatEvents(&got), flatEvents(&want))
		}
	})
}

// BenchmarkDecodeAppendRequest decodes an Append of 2,000 events shaped
// like the ordered-log bench's: about 100 bytes each.
func BenchmarkDecodeAppendRequest(b *testing.B) {
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
	var got clockdv1.AppendRequest
	for b.Loop() {
		if err := decodeAppendRequest(msg, &got); err != nil {
			b.Fatal(err)
		}
	}
}
