package offsetlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/clockd/clockd/internal/segfile"
)

// tick is tick seq with a sample of hosts hv1 and hv2.
func tick(seq uint64) Tick {
	ref := int64(seq) * 1e9
	return Tick{Seq: seq, Samples: []Sample{
		{Host: "hv1", RefUnixNano: ref, OffsetNanos: int64(seq), ErrNanos: 10},
		{Host: "hv2", RefUnixNano: ref - 1000, OffsetNanos: -int64(seq), ErrNanos: 20},
	}}
}

func ticks(first, last uint64) []Tick {
	var out []Tick
	for s := first; s <= last; s++ {
		out = append(out, tick(s))
	}
	return out
}

func open(t *testing.T, cfg Config) *Log {
	t.Helper()
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func record(t *testing.T, l *Log, ts ...Tick) {
	t.Helper()
	for _, tk := range ts {
		if err := l.Record(tk); err != nil {
			t.Fatalf("record tick %d: %v", tk.Seq, err)
		}
	}
}

// seqs returns the tick of every sample, in the order Each gives them.
func seqs(t *testing.T, l *Log) []uint64 {
	t.Helper()
	var out []uint64
	if err := l.Each(func(s Sample) error {
		if want := tick(s.Tick).Samples[len(out)%2]; s != (Sample{Tick: s.Tick, Host: want.Host,
			RefUnixNano: want.RefUnixNano, OffsetNanos: want.OffsetNanos, ErrNanos: want.ErrNanos}) {
			return fmt.Errorf("sample %d is %+v, want %+v", len(out), s, want)
		}
		out = append(out, s.Tick)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantSeqs is two samples for each tick of each run first..last.
func wantSeqs(runs ...[2]uint64) []uint64 {
	var out []uint64
	for _, r := range runs {
		for s := r[0]; s <= r[1]; s++ {
			out = append(out, s, s)
		}
	}
	return out
}

func TestRecordReopenReplay(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: 1000}
	l := open(t, cfg)
	record(t, l, ticks(1, 40)...)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if len(names) < 4 {
		t.Fatalf("%d segments of 1000 bytes for 80 lines, want several: %v", len(names), names)
	}
	l = open(t, cfg)
	if got := l.Last(); got != 40 {
		t.Fatalf("Last after reopen = %d, want 40", got)
	}
	record(t, l, ticks(30, 45)...) // 30..40 replayed after a restart
	if got, want := seqs(t, l), wantSeqs([2]uint64{1, 45}); !slices.Equal(got, want) {
		t.Fatalf("history holds ticks %v, want %v", got, want)
	}
	if g := l.Gaps(); len(g) != 0 {
		t.Fatalf("gaps %v, want none", g)
	}
	if err := l.Record(Tick{}); err == nil {
		t.Fatal("tick 0 recorded")
	}
}

func TestGapFill(t *testing.T) {
	dir := t.TempDir()
	var heard []Gap
	cfg := Config{Dir: dir, OnGap: func(g Gap) { heard = append(heard, g) }}
	l := open(t, cfg)
	record(t, l, ticks(1, 10)...)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, fmt.Sprintf("%020d.jsonl", 1)), old, old); err != nil {
		t.Fatal(err)
	}
	l.segs[0].modTime = old
	record(t, l, ticks(20, 25)...) // a snapshot installed: 11..19 skipped
	want := []Gap{{First: 11, Last: 19}}
	if !slices.Equal(heard, want) || !slices.Equal(l.Gaps(), want) {
		t.Fatalf("OnGap heard %v and Gaps is %v, want %v", heard, l.Gaps(), want)
	}
	got, err := l.Read(8, 21, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if gotSeqs := tickSeqs(got); !slices.Equal(gotSeqs, []uint64{8, 9, 10, 20, 21}) {
		t.Fatalf("Read(8, 21) = ticks %v, want 8 9 10 20 21", gotSeqs)
	}
	for _, bad := range [][]Tick{
		ticks(5, 7),   // held already
		ticks(15, 21), // runs into held ticks
		ticks(26, 27), // after the last: not a gap
		{tick(12), tick(14)},
	} {
		if err := l.Fill(bad); err == nil {
			t.Fatalf("fill of ticks %v accepted", tickSeqs(bad))
		}
	}
	if err := l.Fill(ticks(15, 19)); err != nil {
		t.Fatal(err)
	}
	if g := l.Gaps(); !slices.Equal(g, []Gap{{First: 11, Last: 14}}) {
		t.Fatalf("gaps after the first fill %v, want 11..14", g)
	}
	if err := l.Fill(ticks(11, 14)); err != nil {
		t.Fatal(err)
	}
	if g := l.Gaps(); len(g) != 0 {
		t.Fatalf("gaps after both fills %v, want none", g)
	}
	st, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%020d.jsonl", 11)))
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(old) {
		t.Fatalf("the fill's time is %v, want that of the segment before the gap, %v", st.ModTime(), old)
	}
	// A crash: a fill half written and a line half written.
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.jsonl", 30)+segfile.FillSuffix), []byte(`{"tick":3`), 0o600); err != nil {
		t.Fatal(err)
	}
	record(t, l, tick(26))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tail := filepath.Join(dir, fmt.Sprintf("%020d.jsonl", 20))
	f, err := os.OpenFile(tail, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"tick":27,"host":"hv1","ref_unix`)
	f.Close()
	l = open(t, cfg)
	if fills, _ := filepath.Glob(filepath.Join(dir, "*"+segfile.FillSuffix)); len(fills) != 0 {
		t.Fatalf("Open left %v", fills)
	}
	record(t, l, tick(27))
	if got, want := seqs(t, l), wantSeqs([2]uint64{1, 27}); !slices.Equal(got, want) {
		t.Fatalf("history holds ticks %v, want %v", got, want)
	}
}

func tickSeqs(ts []Tick) []uint64 {
	var out []uint64
	for _, t := range ts {
		out = append(out, t.Seq)
	}
	return out
}

func TestReadBound(t *testing.T) {
	l := open(t, Config{Dir: t.TempDir()})
	record(t, l, ticks(1, 100)...)
	got, err := l.Read(10, 90, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) > 10 || got[0].Seq != 10 {
		t.Fatalf("Read(10, 90) within 1000 bytes gave ticks %v", tickSeqs(got))
	}
	for i, tk := range got {
		if tk.Seq != 10+uint64(i) || len(tk.Samples) != 2 {
			t.Fatalf("tick %d of the answer is %d with %d samples, want %d with 2", i, tk.Seq, len(tk.Samples), 10+i)
		}
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	l := open(t, Config{Dir: dir, SegmentBytes: 1000, MaxBytes: 3000})
	record(t, l, ticks(1, 100)...)
	names, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var size int64
	for _, n := range names {
		st, _ := os.Stat(n)
		size += st.Size()
	}
	if size > 3000+1000 {
		t.Fatalf("%d bytes kept in %d segments, want about 3000 at most", size, len(names))
	}
	got := seqs(t, l)
	if got[len(got)-1] != 100 || got[0] <= 1 {
		t.Fatalf("history holds ticks %d..%d, want the oldest gone and 100 kept", got[0], got[len(got)-1])
	}

	dir = t.TempDir()
	l = open(t, Config{Dir: dir, SegmentBytes: 1000, MaxAge: time.Hour})
	record(t, l, ticks(1, 10)...)
	old := time.Now().Add(-2 * time.Hour)
	first := filepath.Join(dir, fmt.Sprintf("%020d.jsonl", 1))
	os.Chtimes(first, old, old)
	l.segs[0].modTime = old
	record(t, l, ticks(11, 30)...)
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment older than MaxAge kept: %v", err)
	}
}

func TestLegacy(t *testing.T) {
	dir := t.TempDir()
	legacy := filepath.Join(dir, "offsets.jsonl")
	lines := `{"host":"hv1","ref_unix_nano":1000000000,"offset_nanos":1,"err_nanos":10}` + "\n" +
		`{"host":"hv1","ref_unix_nano":2000000000,"offset_nanos":2,"err_nanos":10}` + "\n" +
		`{"host":"hv1","ref_unix_na` // torn by a crash of clockd before
	if err := os.WriteFile(legacy, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dir: filepath.Join(dir, "offsets"), Legacy: legacy}
	l := open(t, cfg)
	record(t, l, ticks(1, 3)...) // 1 and 2 replayed: the legacy file has them
	var refs []int64
	var tks []uint64
	if err := l.Each(func(s Sample) error {
		refs, tks = append(refs, s.RefUnixNano), append(tks, s.Tick)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []int64{1e9, 2e9, 3e9, 3e9 - 1000}; !slices.Equal(refs, want) || !slices.Equal(tks, []uint64{0, 0, 3, 3}) {
		t.Fatalf("history refs %v ticks %v, want refs %v ticks 0 0 3 3", refs, tks, want)
	}
	if g := l.Gaps(); len(g) != 0 {
		t.Fatalf("gaps %v, want none", g)
	}
	l.Close()
	l = open(t, Config{Dir: cfg.Dir, Legacy: legacy, MaxBytes: 1})
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("legacy file kept beyond MaxBytes: %v", err)
	}
}

func TestCorruptSegment(t *testing.T) {
	dir := t.TempDir()
	l := open(t, Config{Dir: dir, SegmentBytes: 300})
	record(t, l, ticks(1, 10)...)
	l.Close()
	first := filepath.Join(dir, fmt.Sprintf("%020d.jsonl", 1))
	f, _ := os.OpenFile(first, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"tick":`)
	f.Close()
	if _, err := Open(Config{Dir: dir}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a torn segment before the tail: %v, want ErrCorrupt", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.jsonl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir}); err == nil {
		t.Fatal("Open accepted a segment named x.jsonl")
	}
}
