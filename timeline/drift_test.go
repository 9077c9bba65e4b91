package timeline_test

import (
	"io"
	"testing"
	"time"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/timeline"
	"github.com/clockd/clockd/timeline/timelinetest"
)

// driftClocks drift apart by up to 190 ms over the run.
var driftClocks = []timelinetest.DriftClock{
	{Host: "hv1", StartOffsetNs: 120e6, EndOffsetNs: 150e6},
	{Host: "hv2", StartOffsetNs: -80e6, EndOffsetNs: -20e6},
	{Host: "hv3", StartOffsetNs: 5e6, EndOffsetNs: -40e6},
}

// TestMergeRecoversTrueOrderUnderDrift merges what three drifting hosts
// recorded, with the offsets sampled each second, and expects the true
// order exactly; without the offsets the order must come out wrong.
func TestMergeRecoversTrueOrderUnderDrift(t *testing.T) {
	seed := time.Now().UnixNano()
	sc := timelinetest.Drift(seed, driftClocks, 1700000000e9, 3000, 1e6)
	offs, err := timeline.NewOffsets(sc.Samples)
	if err != nil {
		t.Fatal(err)
	}
	run := func(offs *timeline.Offsets) []timeline.Event {
		var inputs []timeline.Input
		for _, c := range driftClocks {
			inputs = append(inputs, timeline.Input{Name: c.Host, Parser: &slice{evs: sc.PerHost[c.Host]}})
		}
		var out []timeline.Event
		sum, err := timeline.Merge(inputs, timeline.MergeOptions{Offsets: offs}, func(e timeline.Event) error {
			out = append(out, e)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if offs != nil && !sum.Clean() {
			t.Errorf("seed %d: summary not clean: %+v", seed, sum)
		}
		return out
	}
	out := run(offs)
	if len(out) != len(sc.Truth) {
		t.Fatalf("seed %d: %d events out of %d", seed, len(out), len(sc.Truth))
	}
	for i, e := range out {
		if e.Name != sc.Truth[i].Name {
			t.Fatalf("seed %d: position %d holds %s, the truth has %s", seed, i, e.Name, sc.Truth[i].Name)
		}
		if d := e.TimeNs - sc.Truth[i].LocalNs; d < -2 || d > 2 {
			t.Fatalf("seed %d: %s corrected to %d, true time %d", seed, e.Name, e.TimeNs, sc.Truth[i].LocalNs)
		}
	}
	wrong := 0
	for i, e := range run(nil) {
		if e.Name != sc.Truth[i].Name {
			wrong++
		}
	}
	if wrong == 0 {
		t.Errorf("seed %d: without offsets the order is still right: the scenario has no teeth", seed)
	}
	t.Logf("without offsets, %d of %d events are out of place", wrong, len(out))
}

// slice is a parser over events.
type slice struct {
	evs []ingest.Event
	i   int
}

func (s *slice) Next() (ingest.Event, error) {
	if s.i == len(s.evs) {
		return ingest.Event{}, io.EOF
	}
	s.i++
	return s.evs[s.i-1], nil
}
