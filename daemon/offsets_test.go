package daemon

import (
	"path/filepath"
	"testing"

	"github.com/clockd/clockd/ordering"
)

// TestOffsetLogSkipsReplayedTicks: a restart replays the ticks after the
// last snapshot; the history holds each tick once.
func TestOffsetLogSkipsReplayedTicks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offsets.jsonl")
	tick := func(ref int64) ordering.Tick {
		return ordering.Tick{Anchors: []ordering.Anchor{
			{Host: 1, Name: "hv1", RefNs: ref, WallOffsetNs: 5},
			{Host: 2, Name: "hv2", RefNs: ref - 1000, WallOffsetNs: -7},
		}}
	}
	o, err := openOffsetLog(path)
	if err != nil {
		t.Fatal(err)
	}
	o.record(tick(1e9))
	o.record(tick(2e9))
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o, err = openOffsetLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.record(tick(1e9)) // replayed
	o.record(tick(2e9)) // replayed
	o.record(tick(3e9))
	var refs []int64
	if err := o.each(func(s OffsetSample) error { refs = append(refs, s.RefUnixNano); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []int64{1e9, 1e9 - 1000, 2e9, 2e9 - 1000, 3e9, 3e9 - 1000}
	if len(refs) != len(want) {
		t.Fatalf("history %v, want %v", refs, want)
	}
	for i := range want {
		if refs[i] != want[i] {
			t.Fatalf("history %v, want %v", refs, want)
		}
	}
}
