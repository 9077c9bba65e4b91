package ntpserver

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/clockd/clockd/vclock"
)

// testPrecision is the precision of servers built without a socket, so
// that their replies are reproducible.
const testPrecision = -20

// fromTimestamp decodes an NTP timestamp to ns since the Unix epoch,
// rounding to the nearest ns. Like common clients it places seconds that
// would fall before 1970 in era 0 into era 1 (2036 on).
func fromTimestamp(ts uint64) int64 {
	sec := int64(ts >> 32)
	if sec < ntpEpochOffsetSec {
		sec += 1 << 32
	}
	frac := ((ts&math.MaxUint32)*1e9 + 1<<31) >> 32
	return (sec-ntpEpochOffsetSec)*1e9 + int64(frac)
}

// fromShort decodes the NTP short format to ns, rounding down.
func fromShort(v uint32) int64 { return int64(uint64(v) * 1e9 >> 16) }

// scriptedSource is a Source whose reading a test sets. Every read
// advances the reading by stepNs, so the transmit timestamp can differ
// from the receive timestamp.
type scriptedSource struct {
	mu     sync.Mutex
	r      vclock.Reading
	stepNs int64
	reads  int
}

func (s *scriptedSource) set(r vclock.Reading, stepNs int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r, s.stepNs = r, stepNs
}

func (s *scriptedSource) read() vclock.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	out := s.r
	s.r.Time += s.stepNs
	if s.r.Bounded() {
		s.r.Earliest += s.stepNs
		s.r.Latest += s.stepNs
	}
	return out
}

// reading is a reading at t with symmetric uncertainty unc; unc < 0 means
// unbounded.
func reading(status vclock.Status, t time.Time, unc time.Duration) vclock.Reading {
	ns := t.UnixNano()
	if unc < 0 {
		return vclock.Reading{Time: ns, Earliest: math.MinInt64, Latest: math.MaxInt64, Status: status}
	}
	return vclock.Reading{Time: ns, Earliest: ns - int64(unc), Latest: ns + int64(unc), Status: status}
}

// newSocketless builds a Server with no socket, for tests that drive
// respond directly; it never measures precision. turnaround is what the
// server takes between the receive reading and the transmit timestamp.
func newSocketless(t testing.TB, cfg Config, turnaround time.Duration) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s := newServer(cfg, testPrecision)
	s.elapsed = func(time.Time) time.Duration { return turnaround }
	return s
}

// request is an NTP client request of length n (at least headerLen; bytes
// past the header are filler standing for extension fields or a MAC).
func request(version, mode uint8, poll int8, xmit uint64, n int) []byte {
	b := make([]byte, max(n, headerLen))
	h := header{Version: version, Mode: mode, Poll: poll, XmitTime: xmit}
	h.encode(b)
	for i := headerLen; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b[:n]
}
