package clockdv1_test

import (
	"math"
	"testing"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/vclock"
)

func TestStatusNumbersMatchVClock(t *testing.T) {
	for _, tc := range []struct {
		wire clockdv1.Status
		v    vclock.Status
	}{
		{clockdv1.Status_STATUS_INITIALIZING, vclock.StatusInitializing},
		{clockdv1.Status_STATUS_SYNCHRONIZED, vclock.StatusSynchronized},
		{clockdv1.Status_STATUS_HOLDOVER, vclock.StatusHoldover},
		{clockdv1.Status_STATUS_UNSYNCHRONIZED, vclock.StatusUnsynchronized},
	} {
		if int32(tc.wire) != int32(tc.v) {
			t.Errorf("%v = %d on the wire, %v = %d in vclock", tc.wire, tc.wire, tc.v, tc.v)
		}
	}
}

func TestReadingRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    vclock.Reading
	}{
		{"synchronized", vclock.Reading{Time: 1_700_000_000_000_000_000, Earliest: 1_699_999_999_999_000_000,
			Latest: 1_700_000_000_001_000_000, Status: vclock.StatusSynchronized}},
		{"holdover", vclock.Reading{Time: 5, Earliest: -5, Latest: 15, Status: vclock.StatusHoldover}},
		{"initializing", vclock.Reading{Time: 42, Earliest: math.MinInt64, Latest: math.MaxInt64,
			Status: vclock.StatusInitializing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := clockdv1.NewReading(tc.r)
			if w.GetBounded() != tc.r.Bounded() {
				t.Errorf("bounded = %v, want %v", w.GetBounded(), tc.r.Bounded())
			}
			if got := w.VClock(); got != tc.r {
				t.Errorf("round trip = %+v, want %+v", got, tc.r)
			}
		})
	}
}

func TestUnboundedReadingIgnoresFields(t *testing.T) {
	w := &clockdv1.Reading{TimeUnixNano: 7, EarliestUnixNano: 1, LatestUnixNano: 9,
		Status: clockdv1.Status_STATUS_INITIALIZING}
	got := w.VClock()
	want := vclock.Reading{Time: 7, Earliest: math.MinInt64, Latest: math.MaxInt64, Status: vclock.StatusInitializing}
	if got != want {
		t.Errorf("VClock = %+v, want %+v", got, want)
	}
	// Half a bound is no bound: the finite side is widened too.
	half := clockdv1.NewReading(vclock.Reading{Time: 42, Earliest: 0, Latest: math.MaxInt64,
		Status: vclock.StatusUnsynchronized})
	if got := half.VClock(); got.Earliest != math.MinInt64 || got.Bounded() {
		t.Errorf("half-bounded reading came back as %+v", got)
	}
	if (*clockdv1.Reading)(nil).VClock() != (vclock.Reading{}) {
		t.Error("nil reading is not the zero Reading")
	}
}
