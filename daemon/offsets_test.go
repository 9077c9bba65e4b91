package daemon

import (
	"context"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/offsetlog"
	"github.com/clockd/clockd/ordering"
)

// offsetTicks is ticks first..last of three hosts, with 200-byte names
// so that an answer holds a bounded number of them.
func offsetTicks(first, last uint64) []offsetlog.Tick {
	var out []offsetlog.Tick
	for s := first; s <= last; s++ {
		t := offsetlog.Tick{Seq: s}
		for h := range 3 {
			t.Samples = append(t.Samples, offsetlog.Sample{Tick: s, Host: strings.Repeat(string(rune('a'+h)), 200),
				RefUnixNano: int64(s) * 1e9, OffsetNanos: int64(h) - 1, ErrNanos: int64(s)})
		}
		out = append(out, t)
	}
	return out
}

func openOffsetsForTest(t *testing.T) (*Daemon, *offsetlog.Log) {
	t.Helper()
	l, err := offsetlog.Open(offsetlog.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &Daemon{log: zap.NewNop(), metrics: newMetrics(), offsets: l}, l
}

// TestRecordOffsets: each tick's anchors are recorded under the tick's
// number, named by the host's name or, without one, by its node ID.
func TestRecordOffsets(t *testing.T) {
	d, l := openOffsetsForTest(t)
	d.recordOffsets(ordering.Tick{Seq: 7, Anchors: []ordering.Anchor{
		{Host: 1, Name: "hv1", RefNs: 5e9, WallOffsetNs: 12, ErrNs: 3},
		{Host: 2, RefNs: 5e9 - 10, WallOffsetNs: -4, ErrNs: 9},
	}})
	got, err := l.Read(1, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []offsetlog.Tick{{Seq: 7, Samples: []offsetlog.Sample{
		{Tick: 7, Host: "hv1", RefUnixNano: 5e9, OffsetNanos: 12, ErrNanos: 3},
		{Tick: 7, Host: PeerName(2), RefUnixNano: 5e9 - 10, OffsetNanos: -4, ErrNanos: 9},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("recorded %+v, want %+v", got, want)
	}
	if err, _ := d.storeErr.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// TestOffsetsRead: a member answers offsets.read from its history, whole
// ticks from the first asked, bounded; bad requests and answers are
// refused.
func TestOffsetsRead(t *testing.T) {
	d, l := openOffsetsForTest(t)
	all := offsetTicks(1, 3000)
	for _, tk := range all {
		if err := l.Record(tk); err != nil {
			t.Fatal(err)
		}
	}
	read := func(first, last uint64) []offsetlog.Tick {
		t.Helper()
		out, err := d.serveOffsetsRead(context.Background(), 2, binary.AppendUvarint(binary.AppendUvarint(nil, first), last))
		if err != nil {
			t.Fatal(err)
		}
		ticks, err := decodeOffsetsRead(out)
		if err != nil {
			t.Fatal(err)
		}
		return ticks
	}
	if got := read(100, 200); !reflect.DeepEqual(got, all[99:200]) {
		t.Fatalf("read 100..200: %d ticks", len(got))
	}
	// About 850 bytes a tick: one answer holds about 1.2 thousand.
	got := read(1, 3000)
	if n := len(got); n < 1000 || n > 2000 || !reflect.DeepEqual(got, all[:n]) {
		t.Fatalf("read 1..3000: %d ticks, want the first ~1200 as stored", n)
	}
	if got := read(4000, 5000); len(got) != 0 {
		t.Fatalf("read after the end: %d ticks", len(got))
	}
	for _, req := range [][]byte{nil, {0, 5}, {9, 3}, {1, 2, 3}} {
		if _, err := d.serveOffsetsRead(context.Background(), 2, req); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("request %v: %v, want InvalidArgument", req, err)
		}
	}
	out, _ := d.serveOffsetsRead(context.Background(), 2, []byte{1, 3})
	for _, bad := range [][]byte{out[:len(out)-1], append(out[:len(out):len(out)], 0), {5}} {
		if _, err := decodeOffsetsRead(bad); err == nil {
			t.Fatalf("answer %x decoded", bad)
		}
	}
}

// TestOffsetBackfill: a gap in the offset history, opened by a jump in
// tick numbers, wakes the backfiller and is filled from what the members
// answer (checkBackfill); the history then holds its ticks in order.
func TestOffsetBackfill(t *testing.T) {
	d, _ := openOffsetsForTest(t)
	dir := t.TempDir()
	d.offsets = nil
	d.cfg.DataDir = dir
	d.cfg.OffsetRetentionBytes = 1 << 30
	if err := d.openOffsets(); err != nil {
		t.Fatal(err)
	}
	defer d.offsets.Close()
	all := offsetTicks(1, 500)
	for _, tk := range append(all[:100:100], all[400:]...) { // a snapshot install skips 101..400
		if err := d.offsets.Record(tk); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-d.offsetFill.poke:
	default:
		t.Fatal("the jump did not wake the backfiller")
	}
	checkBackfill(t, d.offsetFill, all)
	var ticks []uint64
	if err := d.offsets.Each(func(s offsetlog.Sample) error {
		if n := len(ticks); n == 0 || ticks[n-1] != s.Tick {
			ticks = append(ticks, s.Tick)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 450 || ticks[99] != 100 || ticks[100] != 151 || ticks[449] != 500 {
		t.Fatalf("history holds %d ticks, want 1..100 and 151..500 in order", len(ticks))
	}
}
