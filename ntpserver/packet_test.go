package ntpserver

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"testing/quick"
	"time"

	"github.com/clockd/clockd/vclock"
)

func TestToTimestamp(t *testing.T) {
	const unixEpoch = uint64(0x83aa7e80) << 32
	for _, tc := range []struct {
		name string
		ns   int64
		want uint64
	}{
		{"unix epoch", 0, unixEpoch},
		{"one ns", 1, unixEpoch | 4},
		{"half second", 5e8, unixEpoch | 0x80000000},
		{"one ns before the unix epoch", -1, uint64(0x83aa7e7f)<<32 | 0xfffffffb},
		{"NTP prime epoch", -ntpEpochOffsetSec * 1e9, 0},
		{"start of era 1", time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC).UnixNano(), 0},
		{"2024", time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano(), uint64(0xea058bc0) << 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := toTimestamp(tc.ns); got != tc.want {
				t.Errorf("toTimestamp(%d) = %#016x, want %#016x", tc.ns, got, tc.want)
			}
		})
	}
}

// TestTimestampRoundTrip checks that encoding keeps every ns in the span
// clients can place without an era hint (1970 to 2106).
func TestTimestampRoundTrip(t *testing.T) {
	const spanNs = (1<<32 - ntpEpochOffsetSec) * 1e9
	f := func(u uint64) bool {
		ns := int64(u % spanNs)
		return fromTimestamp(toTimestamp(ns)) == ns
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 100_000}); err != nil {
		t.Error(err)
	}
}

func TestToShort(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   int64
		want uint32
	}{
		{"negative", -5, 0},
		{"zero", 0, 0},
		{"one ns rounds up to one unit", 1, 1},
		{"just under one unit", 15_258, 1},
		{"just over one unit", 15_259, 2},
		{"1.5 ms", 1_500_000, 99},
		{"one second", 1e9, 1 << 16},
		{"largest exact value", 65535e9, 65535 << 16},
		{"rounds up past the top", 65535_999_999_999, math.MaxUint32},
		{"2^16 s", 65536e9, math.MaxUint32},
		{"max int64", math.MaxInt64, math.MaxUint32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := toShort(tc.ns); got != tc.want {
				t.Errorf("toShort(%d) = %d, want %d", tc.ns, got, tc.want)
			}
		})
	}
}

// TestToShortNeverUnderstates checks toShort against exact rational
// arithmetic: the result is the least unit count covering ns.
func TestToShortNeverUnderstates(t *testing.T) {
	f := func(u uint64) bool {
		ns := int64(u % 70_000e9)
		got := toShort(ns)
		if got == math.MaxUint32 {
			return uint64(ns)<<16 > (math.MaxUint32-1)*1e9
		}
		covers := uint64(got)*1e9 >= uint64(ns)<<16
		least := got == 0 || (uint64(got)-1)*1e9 < uint64(ns)<<16
		return covers && least
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 100_000}); err != nil {
		t.Error(err)
	}
}

func TestPrecisionExp(t *testing.T) {
	for _, tc := range []struct {
		costNs int64
		want   int8
	}{
		{0, -30},
		{1, -29},
		{50, -24},
		{953, -20},
		{954, -19},
		{1e9, 0},
		{5e9, 0},
	} {
		if got := precisionExp(tc.costNs); got != tc.want {
			t.Errorf("precisionExp(%d) = %d, want %d", tc.costNs, got, tc.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, errShort},
		{"47 bytes", request(4, modeClient, 6, 1, 47), errShort},
		{"v4 client", request(4, modeClient, 6, 1, headerLen), nil},
		{"v3 client", request(3, modeClient, 6, 1, headerLen), nil},
		{"v4 with MAC", request(4, modeClient, 6, 1, headerLen+20), nil},
		{"v4 with extension field", request(4, modeClient, 6, 1, headerLen+64), nil},
		{"v0", request(0, modeClient, 6, 1, headerLen), errVersion},
		{"v1", request(1, modeClient, 6, 1, headerLen), errVersion},
		{"v2", request(2, modeClient, 6, 1, headerLen), errVersion},
		{"v5", request(5, modeClient, 6, 1, headerLen), errVersion},
		{"v7", request(7, modeClient, 6, 1, headerLen), errVersion},
		{"symmetric active", request(4, 1, 6, 1, headerLen), errMode},
		{"server", request(4, modeServer, 6, 1, headerLen), errMode},
		{"broadcast", request(4, 5, 6, 1, headerLen), errMode},
		{"control", request(4, 6, 6, 1, headerLen), errMode},
		{"private", request(4, 7, 6, 1, headerLen), errMode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseRequest(tc.pkt)
			if !errors.Is(err, tc.want) {
				t.Fatalf("parseRequest: %v, want %v", err, tc.want)
			}
			if err == nil && (h.XmitTime != 1 || h.Poll != 6) {
				t.Errorf("parsed %+v, want transmit 1 and poll 6", h)
			}
		})
	}
}

// FuzzParseRequest checks the request parser against its contract and the
// encoder: any header decodes and re-encodes to the same 48 bytes; an
// accepted request is a v3/v4 client request, and every reply to it is a
// 48-byte mode-4 header, no longer than the request, echoing its version,
// poll and transmit timestamp.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte{})
	f.Add(request(4, modeClient, 6, 0x0123456789abcdef, headerLen))
	f.Add(request(3, modeClient, -3, 1, headerLen))
	f.Add(request(4, modeClient, 10, 2, headerLen+20))
	f.Add(request(4, 6, 0, 0, headerLen))
	f.Add(request(4, modeClient, 6, 1, 47))
	sync := reading(vclock.StatusSynchronized, time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC), time.Millisecond)
	unsync := reading(vclock.StatusInitializing, time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC), -1)
	pol := policy{stratum: 2, refID: DefaultRefID, precision: testPrecision}

	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := decodeHeader(data); err == nil {
			var b [headerLen]byte
			h.encode(b[:])
			if !bytes.Equal(b[:], data[:headerLen]) {
				t.Fatalf("decode/encode round trip:\n got %x\nwant %x", b, data[:headerLen])
			}
		}
		req, err := parseRequest(data)
		if err != nil {
			return
		}
		if len(data) < headerLen || (req.Version != 3 && req.Version != 4) || req.Mode != modeClient {
			t.Fatalf("accepted %d bytes with version %d, mode %d", len(data), req.Version, req.Mode)
		}
		for _, rx := range []vclock.Reading{sync, unsync} {
			resp, _ := answer(req, rx, pol)
			var b [headerLen]byte
			resp.encode(b[:])
			if len(b) > len(data) {
				t.Fatalf("reply of %d bytes to a request of %d", len(b), len(data))
			}
			got, err := decodeHeader(b[:])
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != modeServer || got.Version != req.Version || got.Poll != req.Poll || got.OrigTime != req.XmitTime {
				t.Fatalf("reply %+v does not echo request %+v", got, req)
			}
		}
	})
}
