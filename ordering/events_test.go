package ordering

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ingest"
)

func ev(host, source string, seq uint64) ingest.Event {
	return ingest.Event{Host: host, Source: source, SourceSeq: seq, Kind: ingest.KindLog, Name: "e"}
}

func decodeCommitted(t *testing.T, c Committed) []LogEvent {
	t.Helper()
	es := c.Events()
	if len(es) != c.Len {
		t.Fatalf("%d events in a run of %d", len(es), c.Len)
	}
	return es
}

func applyEvents(t *testing.T, m *Machine, b Events) EventsResult {
	t.Helper()
	res, ok := m.Apply(1, EncodeEvents(&b)).(EventsResult)
	if !ok {
		t.Fatalf("Apply returned %v", m.Apply(1, EncodeEvents(&b)))
	}
	return res
}

// TestEventsNumberedAndDeduplicated: GSNs follow commit order, and a
// retried batch (or its overlap with a later one) adds nothing twice.
func TestEventsNumberedAndDeduplicated(t *testing.T) {
	var m Machine
	var got []LogEvent
	m.OnEvents = func(c Committed) { got = append(got, decodeCommitted(t, c)...) }
	batches := [][]ingest.Event{
		{ev("a", "x", 1), ev("a", "x", 2), ev("b", "x", 1)},
		{ev("a", "x", 1), ev("a", "x", 2)}, // a retry
		{ev("a", "x", 2), ev("a", "x", 3), ev("a", "y", 1)},
		{ev("a", "y", 2), ev("a", "x", 3), ev("a", "y", 2), ev("a", "x", 4)}, // sources interleaved
	}
	want := []EventsResult{{FirstGSN: 1, Accepted: 3}, {Duplicates: 2, DuplicateAt: []int{0, 1}},
		{FirstGSN: 4, Accepted: 2, Duplicates: 1, DuplicateAt: []int{0}},
		{FirstGSN: 6, Accepted: 2, Duplicates: 2, DuplicateAt: []int{1, 2}}}
	for i, b := range batches {
		if res := applyEvents(t, &m, Events{Events: b}); !reflect.DeepEqual(res, want[i]) {
			t.Fatalf("batch %d: %+v, want %+v", i, res, want[i])
		}
	}
	var order []string
	for i, e := range got {
		if e.GSN != uint64(i+1) {
			t.Fatalf("event %d has GSN %d", i, e.GSN)
		}
		order = append(order, e.Event.Host+e.Event.Source+string(rune('0'+e.Event.SourceSeq)))
	}
	if !reflect.DeepEqual(order, []string{"ax1", "ax2", "bx1", "ax3", "ay1", "ay2", "ax4"}) {
		t.Fatalf("committed %v", order)
	}
	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	var r Machine
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if r.LastGSN() != 7 || r.SourceSeq("a", "x") != 4 || r.SourceSeq("a", "y") != 2 {
		t.Fatalf("restored GSN %d, a/x at %d, a/y at %d", r.LastGSN(), r.SourceSeq("a", "x"), r.SourceSeq("a", "y"))
	}
	res := applyEvents(t, &r, Events{Events: []ingest.Event{ev("a", "x", 4), ev("a", "x", 5)}})
	if res.FirstGSN != 8 || res.Duplicates != 1 {
		t.Fatalf("after restore: %v", res)
	}
}

// TestPipelineOrder walks one origin's batches through every case of
// the apply rule: only the next batch of the epoch, or batch 1 of a
// larger epoch, is applied; anything else is rejected whole and changes
// nothing.
func TestPipelineOrder(t *testing.T) {
	var m Machine
	var committed []uint64
	m.OnEvents = func(c Committed) {
		for _, e := range decodeCommitted(t, c) {
			committed = append(committed, e.Event.SourceSeq)
		}
	}
	const origin = consensus.NodeID(2)
	batch := func(epoch, n uint64) Events {
		// Batch n of any epoch carries events 2n-1 and 2n of one source.
		return Events{Origin: origin, Epoch: epoch, Batch: n,
			Events: []ingest.Event{ev("h", "s", 2*n-1), ev("h", "s", 2*n)}}
	}
	steps := []struct {
		name         string
		b            Events
		rejected     bool
		epoch, batch uint64 // the position afterwards
	}{
		{"batch 2 before batch 1", batch(5, 2), true, 0, 0},
		{"batch 1 opens epoch 5", batch(5, 1), false, 5, 1},
		{"batch 3 overtook batch 2", batch(5, 3), true, 5, 1},
		{"batch 2", batch(5, 2), false, 5, 2},
		{"a late copy of batch 1", batch(5, 1), true, 5, 2},
		{"a late copy of batch 2", batch(5, 2), true, 5, 2},
		{"an older epoch", batch(4, 3), true, 5, 2},
		{"a newer epoch must start at 1", batch(6, 2), true, 5, 2},
		{"batch 3", batch(5, 3), false, 5, 3},
		{"epoch 9 resends batch 3's events", Events{Origin: origin, Epoch: 9, Batch: 1,
			Events: []ingest.Event{ev("h", "s", 5), ev("h", "s", 6), ev("h", "s", 7)}}, false, 9, 1},
		{"epoch 5 is over", batch(5, 4), true, 9, 1},
	}
	for _, s := range steps {
		gsn := m.LastGSN()
		res := applyEvents(t, &m, s.b)
		if res.Rejected != s.rejected || res.Epoch != s.epoch || res.Batch != s.batch {
			t.Fatalf("%s: %+v, want rejected %v at %d/%d", s.name, res, s.rejected, s.epoch, s.batch)
		}
		if e, n := m.Pipeline(origin); e != s.epoch || n != s.batch {
			t.Fatalf("%s: pipeline at %d/%d", s.name, e, n)
		}
		if s.rejected && (m.LastGSN() != gsn || res.Accepted+res.Duplicates != 0) {
			t.Fatalf("%s: a rejected batch changed the log: %+v", s.name, res)
		}
	}
	if want := []uint64{1, 2, 3, 4, 5, 6, 7}; !slices.Equal(committed, want) {
		t.Fatalf("committed %v, want %v", committed, want)
	}
	// Another origin's pipeline is independent.
	if res := applyEvents(t, &m, Events{Origin: 3, Epoch: 1, Batch: 1, Events: []ingest.Event{ev("g", "s", 1)}}); res.Rejected {
		t.Fatalf("origin 3: %+v", res)
	}
}

// TestPipelineCopiesInAnyOrder: whatever order copies of one epoch's
// batches are applied in (retries, overtaken forwards, re-proposals by a
// new leader), the batches applied are 1, 2, … in order, each once, and
// so every event commits once and in its source's order.
func TestPipelineCopiesInAnyOrder(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var m Machine
		var got []uint64
		m.OnEvents = func(c Committed) {
			for _, e := range decodeCommitted(t, c) {
				got = append(got, e.Event.SourceSeq)
			}
		}
		const n = 12
		var copies []uint64
		for b := uint64(1); b <= n; b++ {
			for range 1 + rng.IntN(3) {
				copies = append(copies, b)
			}
		}
		rng.Shuffle(len(copies), func(i, j int) { copies[i], copies[j] = copies[j], copies[i] })
		var applied []uint64
		for _, b := range copies {
			res := applyEvents(t, &m, Events{Origin: 1, Epoch: 3, Batch: b,
				Events: []ingest.Event{ev("h", "s", 2*b-1), ev("h", "s", 2*b)}})
			if !res.Rejected {
				applied = append(applied, b)
			}
		}
		for i, b := range applied {
			if b != uint64(i+1) {
				t.Fatalf("seed %d: applied batches %v", seed, applied)
			}
		}
		for i, s := range got {
			if s != uint64(i+1) {
				t.Fatalf("seed %d: committed %v", seed, got)
			}
		}
	}
}

// TestSnapshotVersion3: a snapshot from before the pipelines (version 3,
// testdata/snapshot-v3.bin) restores, with every pipeline at its start.
func TestSnapshotVersion3(t *testing.T) {
	raw, err := os.ReadFile("testdata/snapshot-v3.bin")
	if err != nil {
		t.Fatal(err)
	}
	if raw[0] != 3 {
		t.Fatalf("testdata holds version %d", raw[0])
	}
	var m Machine
	if err := m.Restore(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if m.LastGSN() != 3 || m.SourceSeq("a", "x") != 2 || m.SourceSeq("b", "y") != 7 || m.CeilingMs() != 12345 {
		t.Fatalf("restored GSN %d, a/x %d, b/y %d, ceiling %d", m.LastGSN(), m.SourceSeq("a", "x"),
			m.SourceSeq("b", "y"), m.CeilingMs())
	}
	if vm, ok := m.VM("vm1"); !ok || vm.Generation != 1 {
		t.Fatalf("restored VM %+v %v", vm, ok)
	}
	if e, b := m.Pipeline(1); e != 0 || b != 0 {
		t.Fatalf("pipeline at %d/%d", e, b)
	}
}

// TestSnapshotKeepsPipelines: positions round-trip, and a batch rejected
// before the snapshot is rejected after it.
func TestSnapshotKeepsPipelines(t *testing.T) {
	var m Machine
	for _, b := range []Events{{Origin: 2, Epoch: 7, Batch: 1}, {Origin: 2, Epoch: 7, Batch: 2}, {Origin: 1, Epoch: 3, Batch: 1}} {
		b.Events = []ingest.Event{ev("h", "s", b.Epoch*10+b.Batch)}
		if res := applyEvents(t, &m, b); res.Rejected {
			t.Fatalf("%+v rejected", b)
		}
	}
	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	m.Snapshot(&again)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("the same state wrote different snapshots")
	}
	var r Machine
	if err := r.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[consensus.NodeID][2]uint64{1: {3, 1}, 2: {7, 2}, 3: {0, 0}} {
		if e, b := r.Pipeline(id); e != want[0] || b != want[1] {
			t.Fatalf("origin %d at %d/%d, want %v", id, e, b, want)
		}
	}
	if res := applyEvents(t, &r, Events{Origin: 2, Epoch: 7, Batch: 2, Events: []ingest.Event{ev("h", "t", 1)}}); !res.Rejected {
		t.Fatalf("a copy of batch 2 after restore: %+v", res)
	}
}

// naive is the apply rule written plainly, on decoded events: what the
// Machine's scan of the encoded events must agree with.
type naive struct {
	gsn     uint64
	sources map[string]uint64
	pipes   map[consensus.NodeID][2]uint64
}

func (n *naive) apply(b Events) (EventsResult, []LogEvent) {
	var res EventsResult
	if b.Origin != 0 {
		p := n.pipes[b.Origin]
		if !(b.Epoch == p[0] && b.Batch == p[1]+1) && !(b.Epoch > p[0] && b.Batch == 1) {
			return EventsResult{Rejected: true, Epoch: p[0], Batch: p[1]}, nil
		}
		n.pipes[b.Origin] = [2]uint64{b.Epoch, b.Batch}
		res.Epoch, res.Batch = b.Epoch, b.Batch
	}
	var out []LogEvent
	for i, e := range b.Events {
		k := e.Host + "\x00" + e.Source
		if e.SourceSeq <= n.sources[k] {
			res.Duplicates++
			res.DuplicateAt = append(res.DuplicateAt, i)
			continue
		}
		n.sources[k] = e.SourceSeq
		n.gsn++
		if res.FirstGSN == 0 {
			res.FirstGSN = n.gsn
		}
		out = append(out, LogEvent{GSN: n.gsn, Event: e})
	}
	res.Accepted = len(out)
	return res, out
}

// FuzzApplyEvents: Apply takes an event batch exactly when Decode does,
// and then commits what the plain rule commits, in the same order.
func FuzzApplyEvents(f *testing.F) {
	evs := []ingest.Event{ev("h", "s", 3), ev("h", "s", 2), ev("h", "t", 1), ev("g", "s", 9),
		{Host: "h", Source: "s", SourceSeq: 4, Kind: "span", Name: "n", DurNs: -5, LocalNs: 7,
			Attrs: []ingest.Attr{{Key: "k", Value: "v"}, {Key: "", Value: "w"}}}}
	f.Add(EncodeEvents(&Events{Events: evs}))
	f.Add(EncodeEvents(&Events{Origin: 2, Epoch: 4, Batch: 8, Events: evs}))
	f.Add(EncodeEvents(&Events{Origin: 2, Epoch: 5, Batch: 1, Events: evs[:2]}))
	f.Add(EncodeEvents(&Events{Origin: 1, Epoch: 1, Batch: 1}))
	f.Add(EncodeEventsS2(&Events{Origin: 2, Epoch: 4, Batch: 8, Events: evs}))
	f.Add(EncodeEventsS2(&Events{Origin: 2, Epoch: 5, Batch: 1, Events: evs[:2]}))
	f.Fuzz(func(t *testing.T, cmd []byte) {
		if len(cmd) == 0 || !Kind(cmd[0]).IsEvents() {
			return
		}
		var m Machine
		ref := naive{sources: map[string]uint64{}, pipes: map[consensus.NodeID][2]uint64{}}
		// The same state on both: h/s at 2, node 2 at batch 7 of epoch 4.
		seed := Events{Origin: 2, Epoch: 4, Batch: 7, Events: []ingest.Event{ev("h", "s", 2)}}
		m.Apply(1, EncodeEvents(&Events{Origin: 2, Epoch: 4, Batch: 1, Events: seed.Events}))
		for n := uint64(2); n <= 7; n++ {
			m.Apply(1, EncodeEvents(&Events{Origin: 2, Epoch: 4, Batch: n}))
		}
		ref.sources["h\x00s"], ref.pipes[2], ref.gsn = 2, [2]uint64{4, 7}, 1
		var got []LogEvent
		m.OnEvents = func(c Committed) { got = append(got, decodeCommitted(t, c)...) }
		_, v, derr := Decode(cmd)
		res := m.Apply(2, cmd)
		if derr != nil {
			if err, ok := res.(error); !ok || !errors.Is(err, ErrCodec) {
				t.Fatalf("Decode fails (%v) but Apply returned %v", derr, res)
			}
			if m.LastGSN() != 1 || got != nil {
				t.Fatal("a malformed command changed the state")
			}
			return
		}
		want, wantEvents := ref.apply(v.(Events))
		if !reflect.DeepEqual(res, want) {
			t.Fatalf("Apply = %+v, want %+v", res, want)
		}
		if len(got) != len(wantEvents) || (len(got) > 0 && !reflect.DeepEqual(got, wantEvents)) {
			t.Fatalf("committed %+v, want %+v", got, wantEvents)
		}
	})
}

// TestBatchEncodingRoundTrip: events encoded in a sequenced batch, each
// against the one before, decode to themselves, and what Apply hands the
// event store is each event's encoding alone.
func TestBatchEncodingRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	num := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return rng.Int64()
		case 1:
			return -rng.Int64()
		case 2:
			return int64(rng.IntN(3)) - 1
		}
		return 1_700_000_000_000_000_000 + rng.Int64N(1e9)
	}
	for round := range 200 {
		evs := make([]ingest.Event, rng.IntN(40))
		for i := range evs {
			e := &evs[i]
			e.Host, e.Source, e.Kind = pick("", "h1", "h2"), pick("s", "t", "ü"), pick("log", "span", "")
			e.SourceSeq = uint64(num())
			e.LocalNs, e.RefEarliest, e.RefLatest, e.DurNs = num(), num(), num(), num()
			if rng.IntN(2) == 0 && i > 0 {
				e.RefEarliest, e.RefLatest = evs[i-1].RefEarliest, evs[i-1].RefLatest
			}
			e.Name = pick("", "a", "a longer name")
			for range rng.IntN(3) {
				e.Attrs = append(e.Attrs, ingest.Attr{Key: pick("k", ""), Value: pick("v", "w", "")})
			}
		}
		b := Events{Origin: 4, Epoch: 2, Batch: uint64(round + 1), Events: evs}
		for _, enc := range []struct {
			kind   Kind
			encode func(*Events) []byte
		}{{KindEventBatch, EncodeEvents}, {KindEventBatchS2, EncodeEventsS2}} {
			cmd := enc.encode(&b)
			if k, v, err := Decode(cmd); err != nil || k != enc.kind || !reflect.DeepEqual(v, b) {
				t.Fatalf("round %d, %v: decoded %v %+v, %v", round, enc.kind, k, v, err)
			}
			_, body, err := decodeEventsPlace(enc.kind, cmd[2:])
			if err != nil {
				t.Fatal(err)
			}
			heads, err := scanEvents(enc.kind, body, nil)
			if err != nil || len(heads) != len(evs) {
				t.Fatalf("round %d, %v: scanned %d events, %v", round, enc.kind, len(heads), err)
			}
			var got [][]byte
			c := Committed{First: 1, Len: len(evs), kind: enc.kind, body: body}
			c.Each(func(_ uint64, e []byte) { got = append(got, append([]byte(nil), e...)) })
			for i := range evs {
				if want := AppendEvent(nil, &evs[i]); !bytes.Equal(got[i], want) {
					t.Fatalf("round %d, %v, event %d: %x, want %x", round, enc.kind, i, got[i], want)
				}
			}
		}
	}
}

// TestCompressedBatches: a batch compressed (KindEventBatchS2) applies
// exactly as the same batch plain, on a machine that has seen either
// kind, and takes fewer bytes when its events repeat themselves; an
// unsequenced batch is never compressed.
func TestCompressedBatches(t *testing.T) {
	batch := func(n uint64, from uint64) Events {
		b := Events{Origin: 3, Epoch: 1, Batch: n}
		for i := range uint64(50) {
			b.Events = append(b.Events, ingest.Event{Host: "h", Source: "vmm", SourceSeq: from + i, Kind: "log",
				Name: fmt.Sprintf("virtio_net rx queue %d: %d descriptors", i%4, i), LocalNs: int64(from+i) * 1000})
		}
		return b
	}
	plainCmd, s2Cmd := EncodeEvents(&Events{Origin: 3, Epoch: 1, Batch: 1, Events: batch(1, 1).Events}),
		EncodeEventsS2(&Events{Origin: 3, Epoch: 1, Batch: 1, Events: batch(1, 1).Events})
	if Kind(s2Cmd[0]) != KindEventBatchS2 || len(s2Cmd) >= len(plainCmd) {
		t.Fatalf("compressed: kind %v, %d bytes against %d plain", Kind(s2Cmd[0]), len(s2Cmd), len(plainCmd))
	}
	if k := Kind(EncodeEventsS2(&Events{Events: batch(1, 1).Events})[0]); k != KindEvents {
		t.Fatalf("an unsequenced batch was encoded as %v", k)
	}
	// Batches 1..4 (with overlapping sequence numbers: duplicates),
	// alternately compressed, and the same batches all plain.
	var mixed, plain Machine
	var mixedEvents, plainEvents []LogEvent
	mixed.OnEvents = func(c Committed) { mixedEvents = append(mixedEvents, decodeCommitted(t, c)...) }
	plain.OnEvents = func(c Committed) { plainEvents = append(plainEvents, decodeCommitted(t, c)...) }
	for n := uint64(1); n <= 4; n++ {
		b := batch(n, n*30)
		encode := EncodeEvents
		if n%2 == 1 {
			encode = EncodeEventsS2
		}
		got, want := mixed.Apply(n, encode(&b)), plain.Apply(n, EncodeEvents(&b))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("batch %d: %v compressed, %v plain", n, got, want)
		}
		if again := mixed.Apply(n, EncodeEventsS2(&b)); !again.(EventsResult).Rejected {
			t.Fatalf("batch %d again, compressed: %v, want rejected", n, again)
		}
	}
	if !reflect.DeepEqual(mixedEvents, plainEvents) || len(plainEvents) != 50+3*30 {
		t.Fatalf("committed %d events, plain %d", len(mixedEvents), len(plainEvents))
	}
}

// TestCompressedBatchDamaged: a compressed batch whose events do not
// decompress, or would decompress to more than maxDecodedBytes, is a
// malformed command: it changes nothing.
func TestCompressedBatchDamaged(t *testing.T) {
	cmd := EncodeEventsS2(&Events{Origin: 1, Epoch: 1, Batch: 1, Events: []ingest.Event{ev("h", "s", 1), ev("h", "s", 2)}})
	const head = 5 // kind, version, and the place: three one-byte uvarints
	huge := append(cmd[:head:head], binary.AppendUvarint(nil, maxDecodedBytes+1)...)
	huge = append(huge, 0)
	for name, bad := range map[string][]byte{
		"truncated": cmd[:len(cmd)-1],
		"bit flip":  append(append([]byte(nil), cmd[:len(cmd)-1]...), cmd[len(cmd)-1]^0xff),
		"too large": huge,
	} {
		var m Machine
		m.OnEvents = func(Committed) { t.Fatalf("%s: events committed", name) }
		res := m.Apply(1, bad)
		if err, ok := res.(error); !ok || !errors.Is(err, ErrCodec) {
			t.Fatalf("%s: Apply = %v, want ErrCodec", name, res)
		}
		if _, _, err := Decode(bad); !errors.Is(err, ErrCodec) {
			t.Fatalf("%s: Decode = %v, want ErrCodec", name, err)
		}
		if m.LastGSN() != 0 {
			t.Fatalf("%s: the state changed", name)
		}
	}
}

// TestBlockRoundTrip: a committed run kept as a block reads back as the
// same events, the duplicates left out; a damaged block is refused.
func TestBlockRoundTrip(t *testing.T) {
	var runs []Committed
	m := Machine{OnEvents: func(c Committed) { runs = append(runs, c) }}
	applyEvents(t, &m, Events{Origin: 1, Epoch: 1, Batch: 1, Events: []ingest.Event{ev("h", "s", 1), ev("h", "s", 2)}})
	applyEvents(t, &m, Events{Events: []ingest.Event{ev("h", "s", 2), ev("h", "t", 1), ev("h", "s", 1), ev("h", "s", 3)}})
	applyEvents(t, &m, Events{Origin: 1, Epoch: 1, Batch: 2, Events: []ingest.Event{ev("h", "s", 3), ev("g", "s", 1)}})
	m.Apply(1, EncodeEventsS2(&Events{Origin: 1, Epoch: 1, Batch: 3,
		Events: []ingest.Event{ev("h", "s", 3), ev("g", "s", 2), ev("h", "s", 4)}}))
	if len(runs) != 4 || !slices.Equal(runs[1].dups, []int{0, 2}) || runs[3].kind != KindEventBatchS2 ||
		!slices.Equal(runs[3].dups, []int{0}) {
		t.Fatalf("runs %+v", runs)
	}
	for _, c := range runs {
		block := append(c.AppendBlockHead(nil), c.BlockBody()...)
		got, err := ParseBlock(block)
		if err != nil || !reflect.DeepEqual(got.Events(), c.Events()) {
			t.Fatalf("block of %d..: %+v, %v", c.First, got.Events(), err)
		}
		if first, n, err := BlockSpan(block); err != nil || first != c.First || n != c.Len {
			t.Fatalf("span %d %d %v", first, n, err)
		}
		for cut := range len(block) {
			if _, err := ParseBlock(block[:cut]); err == nil {
				t.Fatalf("block of %d.. cut at %d parsed", c.First, cut)
			}
		}
	}
}

// FuzzParseBlock: ParseBlock refuses what it cannot read whole; what it
// takes reads back in full.
func FuzzParseBlock(f *testing.F) {
	m := Machine{OnEvents: func(c Committed) {
		f.Add(append(c.AppendBlockHead(nil), c.BlockBody()...))
	}}
	m.Apply(1, EncodeEvents(&Events{Origin: 1, Epoch: 1, Batch: 1, Events: []ingest.Event{ev("h", "s", 1), ev("h", "t", 2)}}))
	m.Apply(1, EncodeEvents(&Events{Events: []ingest.Event{ev("h", "s", 1), ev("h", "s", 2)}}))
	m.Apply(1, EncodeEventsS2(&Events{Origin: 1, Epoch: 1, Batch: 2, Events: []ingest.Event{ev("h", "s", 3), ev("h", "t", 1)}}))
	f.Fuzz(func(t *testing.T, block []byte) {
		c, err := ParseBlock(block)
		if err != nil {
			return
		}
		if n := len(c.Events()); n != c.Len {
			t.Fatalf("a block of %d events read %d", c.Len, n)
		}
	})
}

// BenchmarkScanEvents reads a sequenced batch of 2,000 events shaped like
// the ordered-log bench's, as Apply does on every host.
func BenchmarkScanEvents(b *testing.B) {
	evs := make([]ingest.Event, 2000)
	name := strings.Repeat("x", 60)
	for i := range evs {
		evs[i] = ingest.Event{Host: "bench", Source: "bench-3", SourceSeq: uint64(i + 1), Kind: "log", Name: name,
			LocalNs: 1_700_000_000_000_000_000 + int64(i)*977, RefEarliest: 1_700_000_000_000_000_000 + int64(i)*1000,
			RefLatest: 1_700_000_000_000_100_000 + int64(i)*1000}
	}
	cmd := EncodeEvents(&Events{Origin: 1, Epoch: 1, Batch: 1, Events: evs})
	_, body, err := decodeEventsPlace(Kind(cmd[0]), cmd[2:])
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	var heads []eventHead
	for b.Loop() {
		if heads, err = scanEvents(Kind(cmd[0]), body, heads[:0]); err != nil || len(heads) != len(evs) {
			b.Fatal(len(heads), err)
		}
	}
}
