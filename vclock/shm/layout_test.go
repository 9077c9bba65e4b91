package shm

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"testing/quick"
	"unsafe"

	"github.com/clockd/clockd/vclock"
)

// heapPage is a page in Go memory, so the race detector sees every access.
func heapPage() page {
	buf := make([]uint64, pageWords)
	return pageOf(unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), PageSize))
}

// pageFromBytes copies b into an aligned page; b holds at least PageSize
// bytes.
func pageFromBytes(b []byte) page {
	p := heapPage()
	copy(unsafe.Slice((*byte)(unsafe.Pointer(p.w)), PageSize), b)
	return p
}

// validHeader is a page header written byte by byte from the documented
// layout, independently of the package's encoder.
func validHeader() []byte {
	b := make([]byte, PageSize)
	copy(b[0:8], "CLKDPAGE")
	binary.LittleEndian.PutUint64(b[8:], 2)
	binary.LittleEndian.PutUint64(b[16:], 4096)
	return b
}

// naiveCheck is checkPage written straight from the documented layout.
func naiveCheck(b []byte) error {
	switch {
	case len(b) < 4096:
		return ErrShort
	case string(b[0:8]) != "CLKDPAGE":
		return ErrNotPage
	case binary.LittleEndian.Uint64(b[8:]) != 2:
		return ErrVersion
	case binary.LittleEndian.Uint64(b[16:]) != 4096:
		return ErrMalformed
	}
	return nil
}

// FuzzCheckPage checks header validation against the naive reading of the
// layout on arbitrary files, and that whatever a valid header carries in
// its data words either fails to decode or round-trips through encode.
func FuzzCheckPage(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("CLKDPAGE"))
	f.Add(validHeader())
	v1 := validHeader()
	v1[8] = 1
	f.Add(v1)
	withData := validHeader()
	binary.LittleEndian.PutUint64(withData[32:], uint64(vclock.StatusHoldover))
	binary.LittleEndian.PutUint64(withData[120:], 3)
	binary.LittleEndian.PutUint64(withData[128:], uint64(1<<64-25_000))
	f.Add(withData)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p page
		if len(b) >= PageSize {
			p = pageFromBytes(b)
		}
		got, want := checkPage(int64(len(b)), p), naiveCheck(b)
		if !errors.Is(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("checkPage = %v, want %v", got, want)
		}
		if got != nil {
			return
		}
		w, _, ok := readWords(p, 1, func() {})
		if odd := binary.LittleEndian.Uint64(b[24:])&1 == 1; ok == odd {
			t.Fatalf("read ok=%v with sequence word %d", ok, binary.LittleEndian.Uint64(b[24:]))
		}
		if !ok {
			return
		}
		c, err := decode(w)
		st, freq := int64(binary.LittleEndian.Uint64(b[32:])), int64(binary.LittleEndian.Uint64(b[128:]))
		if (err == nil) != (st >= 0 && st <= 4 && freq > -1e9 && freq < 1e9) {
			t.Fatalf("status word %d, freq_ppb word %d decoded with error %v", st, freq, err)
		}
		if err != nil {
			return
		}
		w[dFlags] &= flagStopped
		if back := encode(c); back != w {
			t.Fatalf("words %v decode to %+v, which encodes to %v", w, c, back)
		}
	})
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	f := func(c Snapshot, status uint8) bool {
		c.Segment.Status = vclock.Status(status % 5)
		c.Segment.FreqPPB %= maxFreqPPB
		got, err := decode(encode(c))
		return err == nil && got == c
	}
	if err := quick.Check(f, nil); err != nil {
		t.Fatal(err)
	}
}

func TestLiveAndAt(t *testing.T) {
	seg := vclock.Segment{Status: vclock.StatusSynchronized, MonoNs: 0, TimeNs: 1e18, TargetNs: 1e18,
		ErrNs: 10, HoldoverAtNs: math.MaxInt64, UnsyncAtNs: math.MaxInt64}
	for _, c := range []struct {
		name   string
		snap   Snapshot
		mono   int64
		live   bool
		status vclock.Status
	}{
		{"heartbeat ahead of the reader", Snapshot{Segment: seg, HeartbeatNs: 1000, MaxAgeNs: 100}, 500, true, vclock.StatusSynchronized},
		{"exactly max age", Snapshot{Segment: seg, HeartbeatNs: 1000, MaxAgeNs: 100}, 1100, true, vclock.StatusSynchronized},
		{"one ns past max age", Snapshot{Segment: seg, HeartbeatNs: 1000, MaxAgeNs: 100}, 1101, false, vclock.StatusUnsynchronized},
		{"stopped", Snapshot{Segment: seg, HeartbeatNs: 1000, MaxAgeNs: 100, Stopped: true}, 500, false, vclock.StatusUnsynchronized},
		{"no promise", Snapshot{Segment: seg, HeartbeatNs: 1000, MaxAgeNs: math.MaxInt64}, math.MaxInt64 - 1, true, vclock.StatusSynchronized},
		{"age beyond int64", Snapshot{Segment: seg, HeartbeatNs: math.MinInt64, MaxAgeNs: math.MaxInt64}, math.MaxInt64 - 1, false, vclock.StatusUnsynchronized},
		{"negative max age", Snapshot{Segment: seg, HeartbeatNs: 1000, MaxAgeNs: -5}, 1001, false, vclock.StatusUnsynchronized},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.snap.Live(c.mono); got != c.live {
				t.Fatalf("Live(%d) = %v, want %v", c.mono, got, c.live)
			}
			r := c.snap.At(c.mono)
			if r.Status != c.status {
				t.Fatalf("At(%d).Status = %v, want %v", c.mono, r.Status, c.status)
			}
			if want := seg.At(c.mono); r.Time != want.Time || r.Earliest != want.Earliest || r.Latest != want.Latest {
				t.Fatalf("At(%d) = %+v, want the segment's bounds %+v", c.mono, r, want)
			}
		})
	}
}

func TestEffectiveTurnsUnsynchronizedWhenTheHeartbeatGoesStale(t *testing.T) {
	c := Snapshot{Segment: vclock.Segment{Status: vclock.StatusSynchronized, ErrNs: 1,
		HoldoverAtNs: 5000, UnsyncAtNs: 9000}, HeartbeatNs: 1000, MaxAgeNs: 100}
	s := c.Effective(1000)
	for _, tc := range []struct {
		mono int64
		want vclock.Status
	}{{1100, vclock.StatusSynchronized}, {1101, vclock.StatusUnsynchronized}} {
		if got := s.At(tc.mono).Status; got != tc.want {
			t.Errorf("segment kept from mono 1000, read at %d: %v, want %v", tc.mono, got, tc.want)
		}
	}
	holdover := c
	holdover.Segment.Status = vclock.StatusHoldover
	if got := holdover.Effective(1000); got != holdover.Segment {
		t.Errorf("a live HOLDOVER segment changed: %+v", got)
	}
	if got := holdover.Effective(1101).Status; got != vclock.StatusUnsynchronized {
		t.Errorf("a stale HOLDOVER segment reads %v, want UNSYNCHRONIZED", got)
	}
}

// TestEffectiveAgreesWithAt checks the folded segment against the direct
// computation at the instant it was folded and at a later one.
func TestEffectiveAgreesWithAt(t *testing.T) {
	f := func(c Snapshot, status uint8, mono int64, later uint32) bool {
		c.Segment.Status = vclock.Status(status%4 + 1)
		s := c.Effective(mono)
		if s.At(mono) != c.At(mono) {
			return false
		}
		m2 := mono + int64(later)
		if m2 < mono {
			return true
		}
		// Once stale, a folded segment never reads as more trusted than
		// the page does.
		return c.At(m2).Status != vclock.StatusUnsynchronized || s.At(m2).Status != vclock.StatusSynchronized
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 20000}); err != nil {
		t.Fatal(err)
	}
}
