package timeline

import (
	"fmt"
	"io"
	"testing"

	"github.com/clockd/clockd/ingest"
)

// benchEvent is a typical event of the bench-tracecat files.
func benchEvent() Event {
	e := ev("hv3", "hv3.jsonl", base+123456789, "log", "dirty pages copied",
		"level", "info", "component", "migrate", "vm", "vm-4242", "req", "9f0c1e2a3b", "seq", "17", "dur_us", "4242")
	return Event{Event: e, TimeNs: base + 120000000, Corrected: true}
}

func BenchmarkJSONLWriter(b *testing.B) {
	w := NewJSONLWriter(io.Discard)
	e := benchEvent()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.TimeNs += 1000
		e.LocalNs += 1000
		if err := w.Write(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSONString(b *testing.B) {
	s := "dirty pages copied from vm-4242 to hv7"
	buf := make([]byte, 0, 128)
	b.SetBytes(int64(len(s)))
	for i := 0; i < b.N; i++ {
		buf = appendJSONString(buf[:0], s)
	}
}

// BenchmarkMerge merges 8 inputs of sorted events with offsets, through
// the heap, writing nothing: the cost of the merge and correction alone.
func BenchmarkMerge(b *testing.B) {
	const perInput = 50000
	var samples []Sample
	inputs := make([][]ingest.Event, 8)
	for h := range inputs {
		host := fmt.Sprint("hv", h)
		for i := range perInput {
			e := benchEvent().Event
			e.Host, e.LocalNs, e.SourceSeq = host, base+int64(i)*2e6+int64(h)*1e5, uint64(i+1)
			inputs[h] = append(inputs[h], e)
		}
		for s := int64(-1); s < perInput*2e6/1e9+2; s++ {
			samples = append(samples, Sample{Host: host, RefNs: base + s*1e9, OffsetNs: int64(h) * 1e6 * s})
		}
	}
	offs, err := NewOffsets(samples)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ins []Input
		for h, evs := range inputs {
			ins = append(ins, Input{Name: fmt.Sprint(h), Parser: &sliceParser{evs: evs}})
		}
		if _, err := Merge(ins, MergeOptions{Offsets: offs}, func(Event) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*8*perInput), "ns/event")
}
