package shm

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clockd/clockd/vclock"
)

func create(t *testing.T) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clock")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, path
}

func open(t *testing.T, path string) *Reader {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// slewing is a synchronized segment anchored now, 5 ms behind its target.
func slewing() vclock.Segment {
	return vclock.Segment{Status: vclock.StatusSynchronized, MonoNs: vclock.MonoNow(),
		TimeNs: 1.7e18, TargetNs: 1.7e18 + 5e6, ErrNs: 50_000, SlewPPM: 500, DriftPPM: 15,
		HoldoverAtNs: math.MaxInt64, UnsyncAtNs: math.MaxInt64}
}

func TestPublishRoundTrip(t *testing.T) {
	w, path := create(t)
	w.SetMaxAge(0)
	r := open(t, path)
	if _, err := r.Now(); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("before Publish: %v, want ErrNotPublished", err)
	}
	seg := slewing()
	w.Publish(seg)
	c, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if c.Segment != seg || c.Stopped || c.MaxAgeNs != math.MaxInt64 {
		t.Fatalf("read %+v, published %+v with no max age", c, seg)
	}
	before := vclock.MonoNow()
	got, err := r.Now()
	after := vclock.MonoNow()
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := seg.At(before), seg.At(after)
	if got.Status != vclock.StatusSynchronized || got.Time < lo.Time || got.Time > hi.Time ||
		got.Earliest > got.Time || got.Latest < got.Time {
		t.Fatalf("Now = %+v, want a synchronized reading between %+v and %+v", got, lo, hi)
	}
	s, err := r.Segment()
	if err != nil {
		t.Fatal(err)
	}
	if s != seg {
		t.Fatalf("Segment = %+v, want %+v unchanged (no max age)", s, seg)
	}
}

// TestLayoutOffsets reads a published page with encoding/binary at the
// offsets doc.go documents.
func TestLayoutOffsets(t *testing.T) {
	w, path := create(t)
	w.SetMaxAge(3 * time.Second)
	seg := vclock.Segment{Status: vclock.StatusHoldover, MonoNs: 11, TimeNs: -12, TargetNs: 13,
		ErrNs: 14, SlewPPM: 15, DriftPPM: 16, HoldoverAtNs: 17, UnsyncAtNs: 18, FreqPPB: -19}
	w.Publish(seg)
	hb := w.cur.HeartbeatNs
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4096 {
		t.Fatalf("file is %d bytes, want 4096", len(b))
	}
	want := []struct {
		off  int
		name string
		v    int64
	}{
		{0, "magic", int64(binary.LittleEndian.Uint64([]byte("CLKDPAGE")))}, {8, "version", 2}, {16, "size", 4096},
		{24, "seq (Set, Publish, Close)", 6}, {32, "status", 3}, {40, "mono_ns", 11}, {48, "time_ns", -12},
		{56, "target_ns", 13}, {64, "err_ns", 14}, {72, "slew_ppm", 15}, {80, "drift_ppm", 16},
		{88, "holdover_at_ns", 17}, {96, "unsync_at_ns", 18}, {104, "heartbeat_ns", hb},
		{112, "max_age_ns", 3e9}, {120, "flags", 1}, {128, "freq_ppb", -19},
	}
	for _, f := range want {
		if got := int64(binary.LittleEndian.Uint64(b[f.off:])); got != f.v {
			t.Errorf("%s at byte %d = %d, want %d", f.name, f.off, got, f.v)
		}
	}
	for i, x := range b[136:] {
		if x != 0 {
			t.Fatalf("reserved byte %d = %#x, want 0", 136+i, x)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	header := func(edit func([]byte)) []byte {
		b := validHeader()
		edit(b)
		return b
	}
	for _, c := range []struct {
		name    string
		content []byte // nil: a directory
		want    error
		detail  string
	}{
		{"empty", []byte{}, ErrShort, "0 bytes, want at least 4096"},
		{"short", validHeader()[:100], ErrShort, "100 bytes"},
		{"wrong magic", header(func(b []byte) { copy(b, "NTPSHM\x00\x00") }), ErrNotPage, "magic 0x00004d485350544e"},
		{"wrong version", header(func(b []byte) { b[8] = 7 }), ErrVersion, "layout version 7, want 2"},
		{"wrong size word", header(func(b []byte) { b[17] = 0x20 }), ErrMalformed, "size word 8192"},
		{"directory", nil, ErrNotPage, "want a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			if c.content == nil {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, c.content, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err == nil {
				r.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.detail) {
				t.Fatalf("error %q, want %v naming %s and %q", err, c.want, path, c.detail)
			}
		})
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestCreateIgnoresUmaskAndLeavesNoTemporaryFile(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	_, path := create(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o644 {
		t.Fatalf("mode %v, want -rw-r--r--", fi.Mode())
	}
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the page", len(ents))
	}
	if _, err := Create(filepath.Join(path, "under-a-file")); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Create under a regular file: %v", err)
	}
}

func TestBusyWhenAWriterDiesMidWrite(t *testing.T) {
	w, path := create(t)
	w.Publish(slewing())
	r := open(t, path)
	w.p.store(wSeq, w.seq+1)
	if _, err := r.Now(); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), path) {
		t.Fatalf("odd sequence: %v, want ErrBusy naming the page", err)
	}
	w.p.store(wSeq, w.seq)
	if _, err := r.Now(); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedStatus(t *testing.T) {
	w, path := create(t)
	w.Publish(slewing())
	w.p.store(wData+dStatus, 9)
	if _, err := open(t, path).Now(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "status word 9") {
		t.Fatalf("status 9: %v, want ErrMalformed", err)
	}
}

func TestStaleHeartbeatReadsUnsynchronized(t *testing.T) {
	w, path := create(t)
	r := open(t, path)
	w.mono = func() int64 { return vclock.MonoNow() - int64(time.Hour) }
	w.SetMaxAge(time.Second)
	seg := slewing()
	w.Publish(seg)
	for name, read := range map[string]func() (vclock.Status, error){
		"Now":     func() (vclock.Status, error) { rd, err := r.Now(); return rd.Status, err },
		"Segment": func() (vclock.Status, error) { s, err := r.Segment(); return s.Status, err },
	} {
		if st, err := read(); err != nil || st != vclock.StatusUnsynchronized {
			t.Errorf("%s with an hour-old heartbeat and 1s max age: %v, %v; want UNSYNCHRONIZED", name, st, err)
		}
	}
	w.mono = vclock.MonoNow
	w.Touch()
	w.SetMaxAge(0)
	if rd, err := r.Now(); err != nil || rd.Status != vclock.StatusSynchronized {
		t.Fatalf("after Touch with no max age: %+v, %v", rd, err)
	}
}

func TestClosedWriterReadsUnsynchronized(t *testing.T) {
	w, path := create(t)
	w.SetMaxAge(0)
	w.Publish(slewing())
	r := open(t, path)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	for name, r := range map[string]*Reader{"mapped before Close": r, "opened after Close": open(t, path)} {
		c, err := r.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if rd := c.At(vclock.MonoNow()); !c.Stopped || rd.Status != vclock.StatusUnsynchronized || !rd.Bounded() {
			t.Errorf("%s: %+v reads %+v, want stopped, UNSYNCHRONIZED, still bounded", name, c, rd)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Now(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Now after Close: %v", err)
	}
}

// TestRestartedWriterNeedsANewOpen: a second Create replaces the file; a
// Reader keeps the page it mapped.
func TestRestartedWriterNeedsANewOpen(t *testing.T) {
	w1, path := create(t)
	w1.SetMaxAge(0)
	w1.Publish(slewing())
	old := open(t, path)
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	w2.SetMaxAge(0)
	seg := slewing()
	seg.ErrNs = 7
	w2.Publish(seg)
	if rd, err := old.Now(); err != nil || rd.Status != vclock.StatusUnsynchronized {
		t.Fatalf("old mapping: %+v, %v; want the stopped page", rd, err)
	}
	if s, err := open(t, path).Segment(); err != nil || s != seg {
		t.Fatalf("new Open: %+v, %v; want %+v", s, err, seg)
	}
}

// segmentFor derives every field from k, so a torn read breaks the relation.
func segmentFor(k int64) vclock.Segment {
	return vclock.Segment{Status: vclock.Status(1 + k%4), MonoNs: k, TimeNs: -k, TargetNs: 2 * k,
		ErrNs: 3 * k, SlewPPM: k ^ 0x5555, DriftPPM: 7 * k, HoldoverAtNs: k + 1, UnsyncAtNs: ^k, FreqPPB: k%1_000_000 - 500_000}
}

func TestConcurrentReadersNeverSeeATornSegment(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(t *testing.T) (*Writer, *Reader)
	}{
		{"mapped file", func(t *testing.T) (*Writer, *Reader) { w, path := create(t); return w, open(t, path) }},
		// In Go memory the race detector sees every access to the page.
		{"heap page", func(t *testing.T) (*Writer, *Reader) {
			p := heapPage()
			return newWriter("heap", p, nil, vclock.MonoNow), &Reader{path: "heap", p: p}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, r := c.make(t)
			const n = 20_000
			w.Publish(segmentFor(1))
			var wg sync.WaitGroup
			var reads, busy atomic.Int64
			wg.Go(func() {
				for k := int64(2); k <= n; k++ {
					w.Publish(segmentFor(k))
					if k%8 == 0 {
						w.Touch()
					}
				}
			})
			for range 2 {
				wg.Go(func() {
					for last := int64(1); last < n; {
						snap, err := r.Snapshot()
						if errors.Is(err, ErrBusy) {
							busy.Add(1)
							continue
						}
						s := snap.Segment
						if err != nil || s != segmentFor(s.MonoNs) || s.MonoNs < last {
							t.Errorf("read %+v, %v after k=%d; want segmentFor(%d)", s, err, last, s.MonoNs)
							return
						}
						reads.Add(1)
						last = s.MonoNs
					}
				})
			}
			wg.Wait()
			t.Logf("%d consistent reads, %d busy reads, over %d publishes", reads.Load(), busy.Load(), n)
		})
	}
}
