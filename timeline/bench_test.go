package timeline

import (
	"bytes"
	"fmt"
	"io"
	"strings"
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
// the tournament tree, writing nothing: the cost of the merge and
// correction alone.
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

// BenchmarkJSONLEncoder renders a bench-tracecat event, as MergeEncoded's
// inputs do.
func BenchmarkJSONLEncoder(b *testing.B) {
	var enc JSONLEncoder
	e := benchEvent()
	e.Source = "/tmp/bench-tracecat-1858809464/hv3.jsonl"
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.TimeNs += 1000
		e.LocalNs += 1000
		if len(buf) > 60<<10 {
			buf = buf[:0]
		}
		buf = enc.AppendEvent(buf, &e)
	}
}

// BenchmarkMergeJSONLines is the whole of tracecat merge --output jsonl
// on bench-tracecat-like files held in memory: 8 JSON-lines inputs
// parsed by ingest (lazily: ingest.LazyParser), corrected by drifting
// offsets, rendered on the inputs' goroutines and merged as slices of
// the renderings (MergeEncodedSlices). With -cpu 1 its ns/event is the CPU time per
// event.
func BenchmarkMergeJSONLines(b *testing.B) {
	const hosts, perHost = 8, 25000
	data := make([][]byte, hosts)
	var samples []Sample
	for h := range data {
		host := fmt.Sprint("hv", h+1)
		local := base
		for i := range perHost {
			local += 1 + int64(i*7919%4000000)
			data[h] = fmt.Appendf(data[h], `{"ts":%d,"host":"%s","level":"info","component":"vmm","msg":"dirty pages copied","vm":"vm-%d","req":"%x","seq":%d,"dur_us":%d}`+"\n",
				local, host, 1000+i%9000, uint64(i)*0x9e3779b97f4a7c15&0xffffffffff, i, i*31%100000)
		}
		for s := int64(-1); s < perHost*2e6/1e9+2; s++ {
			samples = append(samples, Sample{Host: host, RefNs: base + s*1e9, OffsetNs: int64(h-4)*20e6 + s*int64(h)*1e4})
		}
	}
	offs, err := NewOffsets(samples)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data[0]) * hosts))
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		var ins []Input
		for h, d := range data {
			name := fmt.Sprintf("/data/hv%d.jsonl", h+1)
			ins = append(ins, Input{Name: name, Parser: ingest.NewJSONLines(bytes.NewReader(d), ingest.Options{File: name}, ingest.DefaultJSONMapping())})
		}
		w := NewJSONLWriter(io.Discard)
		if _, err := MergeEncodedSlices(ins, MergeOptions{Offsets: offs}, func() Encoder { return NewJSONLEncoder() }, w.WriteEncodedSlices); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*hosts*perHost), "ns/event")
	if cpu0 >= 0 {
		b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*hosts*perHost), "cpu-ns/event")
	}
}

// BenchmarkJSONLEncoderFields renders a bench-tracecat line from its
// LineFields (AppendFields), as MergeEncoded's lazy inputs do: the
// counterpart of BenchmarkJSONLEncoder.
func BenchmarkJSONLEncoderFields(b *testing.B) {
	line := `{"ts":1700000000123456789,"host":"hv3","level":"info","component":"migrate","msg":"dirty pages copied","vm":"vm-4242","req":"9f0c1e2a3b","seq":17,"dur_us":4242}` + "\n"
	p := ingest.NewJSONLines(strings.NewReader(line), ingest.Options{File: "/tmp/bench-tracecat-1858809464/hv3.jsonl"}, ingest.DefaultJSONMapping()).(ingest.LazyParser)
	var e Event
	var f ingest.LineFields
	// f stays valid until the parser's next call, which never comes.
	if lazy, err := p.NextLazy(&e.Event, &f); err != nil || !lazy {
		b.Fatalf("the line was not read lazily: %v", err)
	}
	e.TimeNs, e.Corrected = e.LocalNs-120000000, true
	enc := NewJSONLEncoder()
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		e.TimeNs += 1000
		e.LocalNs += 1000
		if len(buf) > 60<<10 {
			buf = buf[:0]
		}
		buf = enc.AppendFields(buf, &e, &f)
	}
}
