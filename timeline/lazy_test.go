package timeline

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/clockd/clockd/ingest"
)

// randomJSONLines is a JSON-lines input of a few layouts that repeat,
// with what makes events differ from the common case now and then:
// missing, null, string and fractional times, non-ASCII text (U+2028
// included), escapes, nested objects, flows without an id, spans,
// begins and ends, hosts without offsets, times that go back, blank and
// malformed lines.
func randomJSONLines(rng *rand.Rand, host string, n int) []byte {
	words := []string{"vcpu exit", "café", "line\u2028sep", "日本", "a<b>&c", "", "q\\\"uote", "tab\there", "x"}
	kinds := []string{"log", "span", "begin", "end", "flow-start", "flow-end", "instant", "weird", ""}
	var b bytes.Buffer
	ts := base
	for i := range n {
		ts += rng.Int63n(3e6) - 3e5
		word := words[rng.Intn(len(words))]
		tsText := fmt.Sprint(ts)
		switch rng.Intn(40) {
		case 0:
			tsText = "null"
		case 1:
			tsText = fmt.Sprintf("%q", time.Unix(0, ts).UTC().Format(time.RFC3339Nano))
		case 2:
			tsText = fmt.Sprintf("%d.%03d", ts/1e9, ts%1000)
		}
		h := host
		if rng.Intn(30) == 0 {
			h = "stray"
		}
		switch rng.Intn(14) {
		case 0:
			fmt.Fprintf(&b, `{"ts":%s,"host":"%s","kind":"%s","msg":"%s","flow_id":"%d"}`+"\n", tsText, h, kinds[rng.Intn(len(kinds))], word, i)
		case 1:
			fmt.Fprintf(&b, `{"ts":%s,"src":{"file":"a.go","line":%d},"msg":"%s","ok":true,"nil":null}`+"\n", tsText, i, word)
		case 2:
			fmt.Fprintf(&b, `{"time":%s,"hostname":"%s","kind":"%s","message":%d}`+"\n", tsText, h, kinds[rng.Intn(len(kinds))], i)
		case 12:
			// Attrs that follow each other as members, strings or not,
			// plain or not.
			fmt.Fprintf(&b, `{"ts":%s,"host":"%s","level":"%s","component":"%s","msg":"%s","vm":"vm-%d","req":%s,"seq":%d,"dur_us":%d}`+"\n",
				tsText, h, words[rng.Intn(len(words))], []string{"api", "vmm", word}[rng.Intn(3)], word, rng.Intn(9000),
				[]string{`"a1b2"`, `"` + word + `"`, "17", "null", "true"}[rng.Intn(5)], i, rng.Intn(1e5))
		case 13:
			// Members that do not follow as a writer writes them: a
			// space, a nested object.
			fmt.Fprintf(&b, `{"ts":%s,"a":"x", "b":"%s","src":{"file":"f.go","line":"%d"},"c":"y","msg":"%s"}`+"\n", tsText, word, i, word)
		case 3:
			b.WriteString([]string{"\n", "not json\n", `{"ts":1,"msg":}` + "\n", `{"msg":"no time"}` + "\n", `{"ts":` + tsText + `,"a":[1,2]}` + "\n"}[rng.Intn(5)])
		default:
			fmt.Fprintf(&b, `{"ts":%s,"host":"%s","level":"info","msg":"%s","vm":"vm-%d","seq":%d,"dur_us":%d}`+"\n",
				tsText, h, word, rng.Intn(9000), i, rng.Intn(1e5))
		}
	}
	return b.Bytes()
}

// checkLazyMatchesMerge merges JSON-lines inputs through MergeEncoded
// and MergeEncodedSlices, which read them lazily, and through Merge and
// JSONLWriter, and fails
// on any difference in the output, the error, or the summary of a merge
// without error.
func checkLazyMatchesMerge(t *testing.T, data [][]byte, opts MergeOptions) {
	t.Helper()
	mk := func() []Input {
		var ins []Input
		for i, d := range data {
			name := fmt.Sprintf("hv%d.jsonl", i)
			p := ingest.NewJSONLines(bytes.NewReader(d), ingest.Options{File: name, Host: fmt.Sprint("hv", i), Strict: opts.Strict}, ingest.DefaultJSONMapping())
			if _, ok := p.(ingest.LazyParser); !ok {
				t.Fatal("the JSON-lines parser is not an ingest.LazyParser")
			}
			ins = append(ins, Input{Name: name, Host: fmt.Sprint("hv", i), Parser: p})
		}
		return ins
	}
	var want bytes.Buffer
	w := NewJSONLWriter(&want)
	wantSum, wantErr := Merge(mk(), opts, w.Write)
	w.Close()
	newEnc := func() Encoder { return NewJSONLEncoder() }
	for _, run := range []struct {
		name  string
		merge func(emit func([]byte) error) (Summary, error)
	}{
		{"MergeEncoded", func(emit func([]byte) error) (Summary, error) { return MergeEncoded(mk(), opts, newEnc, emit) }},
		{"MergeEncodedSlices", func(emit func([]byte) error) (Summary, error) {
			return MergeEncodedSlices(mk(), opts, newEnc, func(slices [][]byte) error {
				if len(slices) == 0 || len(slices) > maxSlices {
					t.Fatalf("MergeEncodedSlices: %d slices in one call", len(slices))
				}
				for _, s := range slices {
					emit(s)
				}
				return nil
			})
		}},
	} {
		var got bytes.Buffer
		sum, err := run.merge(func(b []byte) error {
			got.Write(b)
			return nil
		})
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("%s: error %v, Merge's %v", run.name, err, wantErr)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%s wrote\n%s\nMerge and JSONLWriter\n%s", run.name, got.Bytes(), want.Bytes())
		}
		if err != nil {
			continue // how far each input was read is up to the scheduler
		}
		var a, b bytes.Buffer
		sum.WriteText(&a)
		wantSum.WriteText(&b)
		if a.String() != b.String() {
			t.Fatalf("%s: summary\n%s\nwant\n%s", run.name, a.String(), b.String())
		}
	}
}

// TestMergeEncodedLazyMatchesMerge checks the inputs MergeEncoded reads
// lazily (ingest.LazyParser, rendered by AppendFields) against Merge and
// JSONLWriter, which see whole events.
func TestMergeEncodedLazyMatchesMerge(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	for trial := range 30 {
		data := make([][]byte, 1+rng.Intn(5))
		var samples []Sample
		for i := range data {
			data[i] = randomJSONLines(rng, fmt.Sprint("hv", i), rng.Intn(400))
			if i > 0 { // hv0 has no offsets
				samples = append(samples, Sample{Host: fmt.Sprint("hv", i), RefNs: base, OffsetNs: int64(i) * 1e6},
					Sample{Host: fmt.Sprint("hv", i), RefNs: base + 1e9, OffsetNs: -int64(i) * 1e6})
			}
		}
		offs, err := NewOffsets(samples)
		if err != nil {
			t.Fatal(err)
		}
		opts := MergeOptions{BatchEvents: 1 + rng.Intn(64), Strict: rng.Intn(4) == 0}
		if rng.Intn(3) > 0 {
			opts.Offsets = offs
		}
		t.Run(fmt.Sprint("seed ", seed, " trial ", trial), func(t *testing.T) { checkLazyMatchesMerge(t, data, opts) })
	}
}

// FuzzMergeEncodedLazy checks MergeEncoded's lazy inputs against Merge
// on any input, split at NUL bytes into up to four files.
func FuzzMergeEncodedLazy(f *testing.F) {
	rng := rand.New(rand.NewSource(1))
	f.Add(bytes.Join([][]byte{randomJSONLines(rng, "hv0", 30), randomJSONLines(rng, "hv1", 30)}, []byte{0}))
	f.Add([]byte(`{"msg":"untimed"}` + "\n" + `{"ts":5,"msg":"x","k":"v"}` + "\n\x00" + `{"ts":4,"kind":"flow-end","msg":"y"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		parts := bytes.SplitN(in, []byte{0}, 4)
		offs, err := NewOffsets([]Sample{{Host: "hv1", OffsetNs: 7}, {Host: "h", RefNs: 10, OffsetNs: -3}})
		if err != nil {
			t.Fatal(err)
		}
		for _, strict := range []bool{false, true} {
			checkLazyMatchesMerge(t, parts, MergeOptions{Offsets: offs, BatchEvents: 3, Strict: strict})
		}
	})
}

// TestAppendFieldsMatchesAppendEvent renders every event of random
// JSON lines both ways, with one encoder each, so that their kept texts
// (head, kind, keys) change as they would in a merge.
func TestAppendFieldsMatchesAppendEvent(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	data := randomJSONLines(rng, "hv1", 3000)
	p := ingest.NewJSONLines(bytes.NewReader(data), ingest.Options{File: "f"}, ingest.DefaultJSONMapping()).(ingest.LazyParser)
	lazyEnc, wholeEnc := NewJSONLEncoder(), NewJSONLEncoder()
	lazies := 0
	for {
		var iev ingest.Event
		var f ingest.LineFields
		lazy, err := p.NextLazy(&iev, &f)
		if err != nil {
			break
		}
		ev := Event{Event: iev, TimeNs: iev.LocalNs - 5, Corrected: rng.Intn(2) == 0, LateNs: int64(rng.Intn(2))}
		var got []byte
		if lazy {
			lazies++
			got = lazyEnc.AppendFields(nil, &ev, &f)
			f.Fill(&ev.Event)
		} else {
			got = lazyEnc.AppendEvent(nil, &ev)
		}
		if want := wholeEnc.AppendEvent(nil, &ev); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: AppendFields\n%s\nAppendEvent\n%s", seed, got, want)
		}
	}
	if lazies < 1000 || !strings.Contains(string(data), "\u2028") {
		t.Fatalf("seed %d: %d lazy events: the input does not exercise AppendFields", seed, lazies)
	}
}
