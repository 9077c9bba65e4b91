package vclock

import (
	"reflect"
	"testing"

	"github.com/clockd/clockd/consensus"
)

func TestSampleCodec(t *testing.T) {
	s := Sample{Incarnation: 42, MonoNs: 123, WallNs: -7, ErrNs: 50_000_000, Name: "hv1"}
	got, err := DecodeSample(AppendSample(nil, s))
	if err != nil || got != s {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, b := range [][]byte{nil, {9}, AppendSample(nil, s)[:3], append(AppendSample(nil, s), 0)} {
		if _, err := DecodeSample(b); err == nil {
			t.Errorf("decoded %x", b)
		}
	}
}

// TestBuildTickOutvotesBrokenClock: two good hosts and one an hour ahead.
// The tick follows the good ones, names the bad one, and still anchors it.
func TestBuildTickOutvotesBrokenClock(t *testing.T) {
	const truth = int64(1_700_000_000_000_000_000)
	const ms = int64(1_000_000)
	ex := []Exchange{
		{Host: 1, SentNs: 1000 * ms, RecvNs: 1000 * ms, Voter: true,
			Sample: Sample{Incarnation: 1, MonoNs: 1000 * ms, WallNs: truth + 2*ms, ErrNs: 10 * ms}},
		// Host 2 read its clock 1 ms into a 2 ms round trip, 5 ms before AtNs.
		{Host: 2, SentNs: 994 * ms, RecvNs: 996 * ms, Voter: true,
			Sample: Sample{Incarnation: 2, MonoNs: 77 * ms, WallNs: truth - 5*ms - 1*ms, ErrNs: 10 * ms}},
		{Host: 3, SentNs: 994 * ms, RecvNs: 996 * ms, Voter: true,
			Sample: Sample{Incarnation: 3, MonoNs: 5 * ms, WallNs: truth + 3600_000*ms, ErrNs: 10 * ms}},
	}
	tick, agr, err := BuildTick(TickInput{Leader: 1, AtNs: 1000 * ms, Exchanges: ex, Voters: 3, DriftPPM: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(agr.Falsetickers, []consensus.NodeID{3}) || tick.Support != 2 {
		t.Fatalf("agreement %+v support %d", agr, tick.Support)
	}
	if agr.Lo > truth || agr.Hi < truth {
		t.Fatalf("agreed [%d,%d] misses the truth %d", agr.Lo-truth, agr.Hi-truth, 0)
	}
	for _, a := range tick.Anchors {
		// The truth at the host's sample: the leader's is at AtNs, the
		// others' at their midpoint 5 ms earlier.
		want := truth
		if a.Host != 1 {
			want = truth - 5*ms
		}
		if a.RefNs-a.ErrNs > want || a.RefNs+a.ErrNs < want {
			t.Errorf("host %d anchor %+v does not cover the truth (off by %d)", a.Host, a, a.RefNs-want)
		}
		if a.Falseticker != (a.Host == 3) {
			t.Errorf("host %d falseticker %v", a.Host, a.Falseticker)
		}
	}
	if a, _ := tick.AnchorOf(3); a.WallOffsetNs < 3599_000*ms {
		t.Errorf("host 3's wall offset %d, want about an hour", a.WallOffsetNs)
	}
	if _, _, err := BuildTick(TickInput{Leader: 1, AtNs: 1000 * ms, Exchanges: ex[2:], Voters: 3}); err == nil {
		t.Fatal("one voter of three made a tick")
	}
}
