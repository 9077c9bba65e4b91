package ordering

import (
	"bytes"

	"errors"
	"github.com/clockd/clockd/ingest"
	"reflect"
	"testing"
)

func sampleTick() Tick {
	return Tick{Leader: 2, Support: 2, Voters: 3, Anchors: []Anchor{
		{Host: 1, Incarnation: 7, MonoNs: 100, RefNs: 1_700_000_000_000_000_000, ErrNs: 5000, WallOffsetNs: -3, Name: "hv1"},
		{Host: 3, Incarnation: 9, MonoNs: -5, RefNs: 1, ErrNs: 0, WallOffsetNs: 1 << 40, Falseticker: true},
	}}
}

func TestApplyNumbersTicksAndKeepsMaxCeiling(t *testing.T) {
	var m Machine
	var seen []uint64
	m.OnTick = func(t Tick) { seen = append(seen, t.Seq) }
	tick := sampleTick()
	for want := uint64(1); want <= 3; want++ {
		if got := m.Apply(want, EncodeTick(&tick)); got != (TickResult{Seq: want}) {
			t.Fatalf("tick %d: Apply = %v", want, got)
		}
	}
	if !reflect.DeepEqual(seen, []uint64{1, 2, 3}) {
		t.Fatalf("OnTick saw %v", seen)
	}
	for _, c := range []struct{ in, prev, now uint64 }{{50, 0, 50}, {40, 50, 50}, {70, 50, 70}} {
		if got := m.Apply(9, EncodeCeiling(Ceiling{Ms: c.in})); got != (CeilingResult{PrevMs: c.prev, Ms: c.now}) {
			t.Fatalf("ceiling %d: Apply = %v, want prev %d now %d", c.in, got, c.prev, c.now)
		}
	}
	last, ok := m.LastTick()
	if !ok || last.Seq != 3 || !reflect.DeepEqual(last.Falsetickers(), tick.Falsetickers()) {
		t.Fatalf("LastTick = %+v %v", last, ok)
	}
	if err, _ := m.Apply(10, []byte{byte(KindTick), 1, 0xff}).(error); !errors.Is(err, ErrCodec) {
		t.Fatalf("garbage applied as %v, want ErrCodec", err)
	}
	if l, _ := m.LastTick(); l.Seq != 3 {
		t.Fatal("a malformed command changed the state")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	var a Machine
	tick := sampleTick()
	a.Apply(1, EncodeTick(&tick))
	a.Apply(2, EncodeCeiling(Ceiling{Ms: 12345}))
	var buf bytes.Buffer
	if err := a.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	var b Machine
	if err := b.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	la, _ := a.LastTick()
	lb, ok := b.LastTick()
	if !ok || !reflect.DeepEqual(la, lb) || b.CeilingMs() != 12345 {
		t.Fatalf("restored %+v ceiling %d, want %+v ceiling 12345", lb, b.CeilingMs(), la)
	}
	if err := b.Restore(bytes.NewReader(buf.Bytes()[:buf.Len()-1])); err == nil {
		t.Fatal("a truncated snapshot restored")
	}
}

func FuzzDecode(f *testing.F) {
	tick := sampleTick()
	f.Add(EncodeTick(&tick))
	f.Add(EncodeCeiling(Ceiling{Ms: 3}))
	f.Add(EncodeVMFreeze(VMFreeze{VM: "a", Owner: 1, Generation: 2, TimeNs: -4, RequestID: "r"}))
	f.Add(EncodeVMResume(VMResume{VM: "a", Host: 1, Generation: 2, RefNs: 9, Policy: VMPolicy{500, 1e9}}))
	f.Add(EncodeVMRelease(VMRelease{VM: "a"}))
	evs := []ingest.Event{{Host: "h", Source: "s", SourceSeq: 1, Kind: "log", Name: "x",
		Attrs: []ingest.Attr{{Key: "k", Value: "v"}}}}
	f.Add(EncodeEvents(&Events{Events: evs}))
	f.Add(EncodeEvents(&Events{Origin: 3, Epoch: 9, Batch: 2, Events: evs}))
	f.Add(EncodeEventsS2(&Events{Origin: 3, Epoch: 9, Batch: 2, Events: evs}))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, v, err := Decode(b)
		if err != nil {
			return
		}
		var again []byte
		switch k {
		case KindTick:
			tk := v.(Tick)
			again = EncodeTick(&tk)
		case KindCeiling:
			again = EncodeCeiling(v.(Ceiling))
		case KindVMFreeze:
			again = EncodeVMFreeze(v.(VMFreeze))
		case KindVMResume:
			again = EncodeVMResume(v.(VMResume))
		case KindVMRelease:
			again = EncodeVMRelease(v.(VMRelease))
		case KindEvents, KindEventBatch:
			b := v.(Events)
			again = EncodeEvents(&b)
		case KindEventBatchS2:
			b := v.(Events)
			again = EncodeEventsS2(&b)
		case KindRunbookSubmit, KindRunbookStart, KindRunbookFinish, KindRunbookAbandon, KindRunbookCancel:
			again = EncodeRunbook(v)
		}
		_, v2, err := Decode(again)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("re-encoding %x: %v, %+v != %+v", b, err, v2, v)
		}
	})
}
