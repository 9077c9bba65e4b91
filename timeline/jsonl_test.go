package timeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/clockd/clockd/ingest"
)

// referenceJSONL is JSONLWriter's line for ev, written plainly: every
// field in turn, times through time.Format and strings escaped byte by
// byte.
func referenceJSONL(ev Event) []byte {
	str := func(b []byte, s string) []byte {
		b = append(b, '"')
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				b = append(b, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				b = append(b, `\u202`...)
				b = append(b, hexDigits[r&0xf])
			case r < utf8.RuneSelf && !jsonPlain[r]:
				b = appendEscape(b, byte(r))
			default:
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
		return append(b, '"')
	}
	b := []byte(`{"ts":"` + FormatTime(ev.TimeNs))
	if !ev.Untimed {
		b = append(b, `","local":"`+FormatTime(ev.LocalNs)...)
	}
	b = append(b, `","corrected":`+strconv.FormatBool(ev.Corrected)+`,"host":`...)
	b = str(b, ev.Host)
	b = str(append(b, `,"source":`...), ev.Source)
	b = strconv.AppendUint(append(b, `,"seq":`...), ev.SourceSeq, 10)
	b = str(append(b, `,"kind":`...), ev.Kind)
	b = str(append(b, `,"msg":`...), ev.Name)
	if ev.DurNs != 0 || ev.Kind == "span" {
		b = strconv.AppendInt(append(b, `,"dur_ns":`...), ev.DurNs, 10)
	}
	if ev.GSN != 0 {
		b = strconv.AppendUint(append(b, `,"gsn":`...), ev.GSN, 10)
	}
	if ev.LateNs != 0 {
		b = strconv.AppendInt(append(b, `,"late_ns":`...), ev.LateNs, 10)
	}
	if ev.Issue != "" {
		b = str(append(b, `,"issue":`...), string(ev.Issue))
	}
	if ev.RefEarliest != 0 || ev.RefLatest != 0 {
		b = append(b, `,"ref_earliest":"`+FormatTime(ev.RefEarliest)+`","ref_latest":"`+FormatTime(ev.RefLatest)+`"`...)
	}
	if len(ev.Attrs) > 0 {
		b = append(b, `,"attrs":{`...)
		for i, a := range ev.Attrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = str(append(str(b, a.Key), ':'), a.Value)
		}
		b = append(b, '}')
	}
	return append(b, "}\n"...)
}

// TestJSONLEncoderMatchesReference renders random events, in runs that
// repeat and change the fields the encoder keeps, and compares each line
// with referenceJSONL.
func TestJSONLEncoderMatchesReference(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	pieces := []string{"a", "hv1", "é", "\"", "\\", "\n", "\x00", "\x7f", "\u2028", "\u2029", "日本", "\xff", "\xe2\x82", " ", "vm-4242", "long text with spaces"}
	text := func() string {
		var b []byte
		for j := rng.Intn(6); j > 0; j-- {
			b = append(b, pieces[rng.Intn(len(pieces))]...)
		}
		return string(b)
	}
	pick := func(common string) string {
		if rng.Intn(4) > 0 {
			return common
		}
		return text()
	}
	enc := NewJSONLEncoder()
	var w bytes.Buffer
	jw := NewJSONLWriter(&w)
	var want []byte
	ns := base
	for i := 0; i < 5000; i++ {
		ns += rng.Int63n(3e9) - 1e8
		e := Event{Event: ingest.Event{
			Host: pick("hv1"), Source: pick("/var/log/hv1.jsonl"), SourceSeq: rng.Uint64() >> uint(rng.Intn(64)),
			LocalNs: ns + rng.Int63n(1e9), Kind: pick(ingest.KindLog), Name: pick("request served"),
		}, TimeNs: ns, Corrected: rng.Intn(5) > 0}
		switch rng.Intn(10) {
		case 0:
			e.LocalNs, e.Untimed = 0, true
		case 1:
			e.LocalNs = 0 // the Unix epoch, a time like any other
		}
		if rng.Intn(10) == 0 {
			e.DurNs, e.GSN, e.LateNs, e.Issue = rng.Int63()-rng.Int63(), uint64(rng.Int63()), rng.Int63n(1e9), IssueNoOffsets
		}
		if rng.Intn(10) == 0 {
			e.RefEarliest, e.RefLatest = ns-rng.Int63n(1e6), ns+rng.Int63n(1e6)
		}
		keys := []string{"level", "component", "vm", "req"}
		for k := rng.Intn(6); k > 0; k-- {
			e.Attrs = append(e.Attrs, ingest.Attr{Key: pick(keys[len(e.Attrs)%len(keys)]), Value: pick("info")})
		}
		line := referenceJSONL(e)
		if got := enc.AppendEvent(nil, &e); !bytes.Equal(got, line) {
			t.Fatalf("seed %d, event %d:\n got %s\nwant %s", seed, i, got, line)
		}
		if err := jw.Write(e); err != nil {
			t.Fatal(err)
		}
		want = append(want, line...)
	}
	if err := jw.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), want) {
		t.Fatalf("seed %d: JSONLWriter's output differs from the reference", seed)
	}
}

func TestDigits8(t *testing.T) {
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	check := func(n uint32) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], digits8(n))
		if want := fmt.Sprintf("%08d", n); string(b[:]) != want {
			t.Fatalf("digits8(%d) = %q, want %q", n, b, want)
		}
	}
	for _, n := range []uint32{0, 1, 9, 10, 99, 100, 9999, 10000, 10001, 99999999, 12345678, 90000009} {
		check(n)
	}
	for range 100000 {
		check(uint32(rng.Intn(1e8)))
	}
}

// TestAppendUint checks appendUint against strconv around its powers
// of ten and at random.
func TestAppendUint(t *testing.T) {
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	check := func(v uint64) {
		if got, want := string(appendUint([]byte("seq:"), v)), "seq:"+strconv.FormatUint(v, 10); got != want {
			t.Fatalf("appendUint(%d) = %q, want %q", v, got, want)
		}
	}
	for p := uint64(1); p <= 1e10; p *= 10 {
		check(p - 1)
		check(p)
		check(p + 1)
	}
	check(1<<64 - 1)
	for range 100000 {
		check(uint64(rng.Int63n(2e8)))
	}
}

// TestMergeEncodedMatchesMerge checks that rendering on the inputs'
// goroutines writes what JSONLWriter writes behind Merge, event by
// event (MergeEncoded) and in slices (MergeEncodedSlices): on threeHosts
// and on random inputs with ties, late and untimed events, and in small
// batches.
func TestMergeEncodedMatchesMerge(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	check := func(name string, mk func() ([]Input, MergeOptions)) {
		inputs, opts := mk()
		var want bytes.Buffer
		w := NewJSONLWriter(&want)
		wantSum, err := Merge(inputs, opts, w.Write)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		inputs, opts = mk()
		var got bytes.Buffer
		encoders := 0
		newEncoder := func() Encoder { encoders++; return NewJSONLEncoder() }
		sum, err := MergeEncoded(inputs, opts, newEncoder, func(line []byte) error {
			got.Write(line)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if encoders != len(inputs) {
			t.Errorf("%s: %d encoders for %d inputs", name, encoders, len(inputs))
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("seed %d: %s: MergeEncoded wrote\n%s\nMerge and JSONLWriter\n%s", seed, name, got.Bytes(), want.Bytes())
		}
		inputs, opts = mk()
		var slices bytes.Buffer
		if _, err := MergeEncodedSlices(inputs, opts, newEncoder, func(ss [][]byte) error {
			for _, s := range ss {
				slices.Write(s)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(slices.Bytes(), want.Bytes()) {
			t.Fatalf("seed %d: %s: MergeEncodedSlices wrote\n%s\nMerge and JSONLWriter\n%s", seed, name, slices.Bytes(), want.Bytes())
		}
		var a, b bytes.Buffer
		sum.WriteText(&a)
		wantSum.WriteText(&b)
		if a.String() != b.String() {
			t.Errorf("%s: summary\n%s\nwant\n%s", name, a.String(), b.String())
		}
	}
	check("three hosts", threeHosts)
	for trial := range 20 {
		inputs := make([][]ingest.Event, 1+rng.Intn(9))
		for i := range inputs {
			ts := base
			for range rng.Intn(300) {
				ts += rng.Int63n(2e6) - 2e5
				e := ev(fmt.Sprint("hv", rng.Intn(3)), "app", ts, ingest.KindLog, "m", "k", fmt.Sprint(rng.Intn(9)))
				if rng.Intn(50) == 0 {
					e.LocalNs, e.Untimed = 0, true
				}
				inputs[i] = append(inputs[i], e)
			}
		}
		batch := 1 + rng.Intn(64)
		check(fmt.Sprint("trial ", trial), func() ([]Input, MergeOptions) {
			var ins []Input
			for i, evs := range inputs {
				ins = append(ins, input(fmt.Sprint("in", i), append([]ingest.Event(nil), evs...)...))
			}
			return ins, MergeOptions{BatchEvents: batch}
		})
	}
}

func TestMergeEncodedEmitErrorStops(t *testing.T) {
	inputs, opts := threeHosts()
	n := 0
	_, err := MergeEncoded(inputs, opts, func() Encoder { return NewJSONLEncoder() }, func([]byte) error {
		if n++; n == 3 {
			return errTest
		}
		return nil
	})
	if err != errTest || n != 3 {
		t.Fatalf("MergeEncoded returned %v after %d lines, want the emit error after 3", err, n)
	}
	inputs, opts = threeHosts()
	n = 0
	_, err = MergeEncodedSlices(inputs, opts, func() Encoder { return NewJSONLEncoder() }, func([][]byte) error {
		n++
		return errTest
	})
	if err != errTest || n != 1 {
		t.Fatalf("MergeEncodedSlices returned %v after %d calls, want the emit error after 1", err, n)
	}
}

// TestMergeEncodedSlicesToFile writes MergeEncodedSlices' slices with
// WriteEncodedSlices to a file, which gathers them into few writes where
// the system can, and to a buffer, which copies them, and checks both
// against Merge and JSONLWriter. Batches of a few events make slices be
// emitted before their batches are reused.
func TestMergeEncodedSlicesToFile(t *testing.T) {
	seed := time.Now().UnixNano()
	mk := func() []Input {
		rng := rand.New(rand.NewSource(seed))
		var ins []Input
		for h := range 4 {
			var evs []ingest.Event
			ts := base
			for range 3000 {
				ts += rng.Int63n(1000)
				evs = append(evs, ev(fmt.Sprint("hv", h), "app", ts, ingest.KindLog, strings.Repeat("x", rng.Intn(700))))
			}
			ins = append(ins, input(fmt.Sprint("in", h), evs...))
		}
		return ins
	}
	newEnc := func() Encoder { return NewJSONLEncoder() }
	for _, batch := range []int{3, 0} {
		opts := MergeOptions{BatchEvents: batch}
		var want bytes.Buffer
		ww := NewJSONLWriter(&want)
		if _, err := Merge(mk(), opts, ww.Write); err != nil {
			t.Fatal(err)
		}
		ww.Close()

		f, err := os.Create(filepath.Join(t.TempDir(), "out.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var buf bytes.Buffer
		for _, out := range []struct {
			name string
			w    io.Writer
			read func() ([]byte, error)
		}{
			{"file", f, func() ([]byte, error) { return os.ReadFile(f.Name()) }},
			{"buffer", &buf, func() ([]byte, error) { return buf.Bytes(), nil }},
		} {
			w := NewJSONLWriter(out.w)
			if _, err := MergeEncodedSlices(mk(), opts, newEnc, w.WriteEncodedSlices); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := out.read()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("seed %d batch %d: the %s differs from Merge's output (%d bytes, want %d)", seed, batch, out.name, len(got), want.Len())
			}
		}
	}
}

// TestGatherWriterPartialWrites checks that a gathering write to a pipe
// whose reader takes a little at a time writes everything, in order.
func TestGatherWriterPartialWrites(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	gw := newGatherWriter(w)
	if gw == nil {
		w.Close()
		t.Skip("no gathering writes on this system")
	}
	var slices [][]byte
	var want []byte
	for i := range 3000 { // more than maxIovecs, and more than a pipe holds
		s := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%300)
		slices = append(slices, s, nil)
		want = append(want, s...)
	}
	done := make(chan []byte)
	go func() {
		var got []byte
		buf := make([]byte, 777)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				done <- got
				return
			}
		}
	}()
	if err := gw.writeSlices(slices); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := <-done; !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d (or they differ)", len(got), len(want))
	}
}

// TestMergeEncodedSlicesSplitsWhole checks that MergeEncodedSlices
// hands emit whole lines, about blockBytes at a time while no batch is
// released (a batch larger than the input).
func TestMergeEncodedSlicesSplitsWhole(t *testing.T) {
	var evs []ingest.Event
	for i := range 3000 {
		evs = append(evs, ev("hv1", "app", base+int64(i), ingest.KindLog, strings.Repeat("x", i%500)))
	}
	var sizes []int
	var all bytes.Buffer
	opts := MergeOptions{BatchEvents: 2 * len(evs)}
	_, err := MergeEncodedSlices([]Input{input("in", evs...)}, opts, func() Encoder { return NewJSONLEncoder() }, func(slices [][]byte) error {
		size := 0
		for _, s := range slices {
			if len(s) == 0 || s[len(s)-1] != '\n' {
				t.Fatalf("call %d: a slice of %d bytes does not end a line", len(sizes), len(s))
			}
			size += len(s)
			all.Write(s)
		}
		sizes = append(sizes, size)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(all.Bytes(), []byte("\n")); n != len(evs) {
		t.Fatalf("%d lines, want %d", n, len(evs))
	}
	for i, size := range sizes[:len(sizes)-1] {
		if size < blockBytes || size > blockBytes+encodedBytes+500 {
			t.Errorf("call %d: %d bytes, want about %d", i, size, blockBytes)
		}
	}
}

// TestAppendBytes checks appendBytes against append for every length
// around its 32-byte block, with and without room past v and in b.
func TestAppendBytes(t *testing.T) {
	src := []byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789")
	for n := 0; n <= 36; n++ {
		for _, vcap := range []int{n, 16, 32, len(src) - 3} {
			if vcap < n {
				continue
			}
			v := src[3 : 3+n : 3+vcap]
			for _, room := range []int{0, 15, 16, 31, 32, 64} {
				b := append(make([]byte, 0, 5+room), "head:"...)
				got := appendBytes(b, v)
				if want := "head:" + string(v); string(got) != want {
					t.Fatalf("len %d, cap %d, room %d: %q, want %q", n, vcap, room, got, want)
				}
			}
		}
	}
}

// TestTextAppendTo checks text.appendTo against append for every
// length around its block of textBytes, with more and less room in b
// than the block, and after a text is set again shorter or longer.
func TestTextAppendTo(t *testing.T) {
	src := make([]byte, 2*textBytes+8)
	for i := range src {
		src[i] = byte('a' + i%26)
	}
	var tx text
	for _, n := range []int{0, 1, 31, 32, 33, 63, 64, 65, 2 * textBytes, 5, 70, 40} {
		tx.set(src[:n])
		for _, room := range []int{0, 1, n, textBytes - 1, textBytes, textBytes + 8} {
			b := append(make([]byte, 0, 5+room), "head:"...)
			got := tx.appendTo(b)
			if want := "head:" + string(src[:n]); string(got) != want {
				t.Fatalf("len %d, room %d: %q, want %q", n, room, got, want)
			}
		}
	}
}
