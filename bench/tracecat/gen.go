package main

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"

	"github.com/clockd/clockd/timeline"
)

// Dataset is the generated input: per-host JSON-lines files and the
// offsets file that corrects them.
type Dataset struct {
	Files   []string // one per host, in host order
	Offsets string   // path of the offsets file
	Events  int64    // in all files
	Bytes   int64    // of all files
}

// The generated run starts at startNs (2023-11-14T22:13:20Z) on the
// reference clock; events are gapNs apart on average per host.
const (
	startNs = int64(1700000000) * 1e9
	gapNs   = 2_000_000
)

// hostOffset is host h's clock minus the reference at reference time
// refNs: a linear drift, different per host, of up to ±200 ms over the run.
func hostOffset(h int, refNs, spanNs int64) int64 {
	f := float64(refNs-startNs) / float64(spanNs)
	start := int64(h*37%11-5) * 20e6 // -100 ms .. +100 ms
	end := start + int64(h%3-1)*100e6
	return start + int64(f*float64(end-start))
}

// line fields drawn from small vocabularies, as real logs are.
var (
	levels     = []string{"info", "info", "info", "debug", "warn", "error"}
	components = []string{"vmm", "migrate", "disk", "net", "sched", "api"}
	messages   = []string{
		"vcpu exit handled", "dirty pages copied", "request served", "queue drained",
		"lease renewed", "snapshot written", "interrupt injected", "timer armed",
	}
)

// generate writes files × perFile events into dir. Every line starts with
// {"ts":N, N the host's local time in ns since the epoch: 19 digits until
// 2286, so a byte-wise comparison of lines (LC_ALL=C sort -m) orders them
// by time, and each file is sorted by it.
func generate(dir string, files, perFile int, seed int64) (*Dataset, error) {
	ds := &Dataset{Offsets: filepath.Join(dir, "offsets.jsonl")}
	spanNs := int64(perFile) * gapNs
	var samples []timeline.Sample
	for h := 0; h < files; h++ {
		host := fmt.Sprintf("hv%d", h+1)
		path := filepath.Join(dir, host+".jsonl")
		n, err := writeHostFile(path, host, h, perFile, spanNs, rand.New(rand.NewSource(seed+int64(h))))
		if err != nil {
			return nil, err
		}
		ds.Files = append(ds.Files, path)
		ds.Bytes += n
		ds.Events += int64(perFile)
		for ref := startNs - 1e9; ref <= startNs+spanNs+2e9; ref += 1e9 {
			samples = append(samples, timeline.Sample{Host: host, RefNs: ref, OffsetNs: hostOffset(h, ref, spanNs), ErrNs: 50_000})
		}
	}
	f, err := os.Create(ds.Offsets)
	if err != nil {
		return nil, err
	}
	if err := timeline.WriteOffsets(f, samples); err != nil {
		f.Close()
		return nil, err
	}
	return ds, f.Close()
}

// writeHostFile writes one host's events and returns the bytes written.
func writeHostFile(path, host string, h, n int, spanNs int64, rng *rand.Rand) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var written int64
	var b []byte
	ref := startNs
	lastLocal := int64(0)
	for i := 0; i < n; i++ {
		ref += 1 + rng.Int63n(2*gapNs)
		local := ref + hostOffset(h, ref, spanNs)
		if local <= lastLocal { // the drift is far slower than the gaps; this guards the file's order
			local = lastLocal + 1
		}
		lastLocal = local
		b = appendLine(b[:0], local, host, i, rng)
		k, err := w.Write(b)
		written += int64(k)
		if err != nil {
			f.Close()
			return written, err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return written, err
	}
	return written, f.Close()
}

// appendLine appends one event of about 150 bytes.
func appendLine(b []byte, localNs int64, host string, i int, rng *rand.Rand) []byte {
	b = append(b, `{"ts":`...)
	b = strconv.AppendInt(b, localNs, 10)
	b = append(b, `,"host":"`...)
	b = append(b, host...)
	b = append(b, `","level":"`...)
	b = append(b, levels[rng.Intn(len(levels))]...)
	b = append(b, `","component":"`...)
	b = append(b, components[rng.Intn(len(components))]...)
	b = append(b, `","msg":"`...)
	b = append(b, messages[rng.Intn(len(messages))]...)
	b = append(b, `","vm":"vm-`...)
	b = strconv.AppendInt(b, int64(1000+rng.Intn(9000)), 10)
	b = append(b, `","req":"`...)
	b = strconv.AppendUint(b, rng.Uint64()&0xffffffffff, 16)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"dur_us":`...)
	b = strconv.AppendInt(b, rng.Int63n(100000), 10)
	return append(b, "}\n"...)
}
