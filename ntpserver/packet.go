package ntpserver

import (
	"encoding/binary"
	"errors"
	"math"
)

// headerLen is the size of the fixed NTPv3/v4 header (RFC 5905 §7.3). Every
// response is exactly this long.
const headerLen = 48

// Field values this package reads or writes.
const (
	modeClient = 3
	modeServer = 4

	leapNone  = 0
	leapAlarm = 3 // clock not synchronized

	// maxStratum is the highest stratum a synchronized server may announce;
	// 16 means unsynchronized.
	maxStratum = 15
)

// ntpEpochOffsetSec is the number of seconds from the NTP prime epoch
// (1900-01-01 UTC) to the Unix epoch.
const ntpEpochOffsetSec = 2_208_988_800

var (
	errShort   = errors.New("ntpserver: datagram shorter than an NTP header")
	errVersion = errors.New("ntpserver: NTP version other than 3 or 4")
	errMode    = errors.New("ntpserver: not a client-mode request")
)

// header is the fixed part of an NTP packet. The layout on the wire, all
// fields big-endian:
//
//	 0  LI (2 bits) | VN (3 bits) | Mode (3 bits)
//	 1  Stratum
//	 2  Poll       log2 s, signed
//	 3  Precision  log2 s, signed
//	 4  Root Delay       short format, Q16.16 s
//	 8  Root Dispersion  short format, Q16.16 s
//	12  Reference ID
//	16  Reference Timestamp  Q32.32 s since the start of the NTP era
//	24  Origin Timestamp
//	32  Receive Timestamp
//	40  Transmit Timestamp
//
// Extension fields and a MAC may follow the header in a request; this
// package never reads them.
type header struct {
	Leap    uint8 // 0..3
	Version uint8 // 0..7
	Mode    uint8 // 0..7

	Stratum   uint8
	Poll      int8
	Precision int8

	RootDelay      uint32 // short format
	RootDispersion uint32 // short format
	RefID          [4]byte

	RefTime  uint64 // timestamp format
	OrigTime uint64
	RecvTime uint64
	XmitTime uint64
}

// decodeHeader reads the first headerLen bytes of b, whatever they hold.
func decodeHeader(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, errShort
	}
	h := header{
		Leap:           b[0] >> 6,
		Version:        (b[0] >> 3) & 7,
		Mode:           b[0] & 7,
		Stratum:        b[1],
		Poll:           int8(b[2]),
		Precision:      int8(b[3]),
		RootDelay:      binary.BigEndian.Uint32(b[4:]),
		RootDispersion: binary.BigEndian.Uint32(b[8:]),
		RefTime:        binary.BigEndian.Uint64(b[16:]),
		OrigTime:       binary.BigEndian.Uint64(b[24:]),
		RecvTime:       binary.BigEndian.Uint64(b[32:]),
		XmitTime:       binary.BigEndian.Uint64(b[40:]),
	}
	copy(h.RefID[:], b[12:16])
	return h, nil
}

// encode writes h into b[:headerLen]. Leap, Version and Mode are masked to
// their bit widths.
func (h *header) encode(b []byte) {
	_ = b[headerLen-1]
	b[0] = (h.Leap&3)<<6 | (h.Version&7)<<3 | h.Mode&7
	b[1] = h.Stratum
	b[2] = byte(h.Poll)
	b[3] = byte(h.Precision)
	binary.BigEndian.PutUint32(b[4:], h.RootDelay)
	binary.BigEndian.PutUint32(b[8:], h.RootDispersion)
	copy(b[12:16], h.RefID[:])
	binary.BigEndian.PutUint64(b[16:], h.RefTime)
	binary.BigEndian.PutUint64(b[24:], h.OrigTime)
	binary.BigEndian.PutUint64(b[32:], h.RecvTime)
	binary.BigEndian.PutUint64(b[40:], h.XmitTime)
}

// parseRequest accepts an NTPv3 or NTPv4 client-mode request. Anything
// after the header (extension fields, a MAC) is ignored.
func parseRequest(b []byte) (header, error) {
	h, err := decodeHeader(b)
	if err != nil {
		return header{}, err
	}
	if h.Version != 3 && h.Version != 4 {
		return header{}, errVersion
	}
	if h.Mode != modeClient {
		return header{}, errMode
	}
	return h, nil
}

// toTimestamp converts nanoseconds since the Unix epoch to the NTP
// timestamp format. The seconds wrap modulo 2³² (the NTP era), so
// 2036-02-07 reads as era 1, second 0, as RFC 5905 prescribes. The
// fraction is truncated; it is finer than a nanosecond, so decoding with
// rounding to the nearest nanosecond gives unixNs back exactly.
func toTimestamp(unixNs int64) uint64 {
	sec, rem := unixNs/1e9, unixNs%1e9
	if rem < 0 {
		sec, rem = sec-1, rem+1e9
	}
	frac := (uint64(rem) << 32) / 1e9 // rem < 2³⁰, so no overflow
	return uint64(uint32(sec+ntpEpochOffsetSec))<<32 | frac
}

// toShort converts a non-negative duration in ns to the NTP short format
// (Q16.16 s), rounding up so the field never understates the duration, and
// saturating at 0xffffffff (just under 65536 s). Negative durations read 0.
func toShort(ns int64) uint32 {
	if ns <= 0 {
		return 0
	}
	const limitNs = 65536 * 1e9 // 2¹⁶ s: the first value not representable
	if ns >= limitNs {
		return math.MaxUint32
	}
	q := (uint64(ns)<<16 + 1e9 - 1) / 1e9 // ns < 2⁴⁶, so no overflow
	if q > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(q)
}

// precisionExp is the RFC 5905 precision field for a clock whose cheapest
// read costs costNs: the least e with 2^e s >= costNs, within [-30, 0].
// 2⁻³⁰ s is just under 1 ns, the resolution of a vclock.Reading.
func precisionExp(costNs int64) int8 {
	for e := -30; e < 0; e++ {
		if math.Ldexp(1e9, e) >= float64(costNs) {
			return int8(e)
		}
	}
	return 0
}
