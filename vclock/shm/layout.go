package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/clockd/clockd/vclock"
)

// The fixed header. Changing any word's meaning needs a new Version;
// fields may be added in the reserved words without one.
const (
	// PageSize is the length of the page file and of every mapping, bytes.
	PageSize = 4096
	// Magic is word 0: the ASCII bytes "CLKDPAGE" read as a little-endian
	// uint64.
	Magic uint64 = 0x45474150444b4c43
	// Version is word 1: the layout described in doc.go.
	Version uint64 = 2
)

// Word indices; the byte offset is 8 times the index.
const (
	wMagic   = 0
	wVersion = 1
	wSize    = 2
	wSeq     = 3 // even: stable; odd: a write is in progress
	// Words wData..wData+nData-1 are written only inside the seqlock.
	wData = 4
	nData = 13

	pageWords = PageSize / 8
)

// Order of the seqlock-protected words, relative to wData.
const (
	dStatus = iota
	dMono
	dTime
	dTarget
	dErr
	dSlew
	dDrift
	dHoldoverAt
	dUnsyncAt
	dHeartbeat
	dMaxAge
	dFlags
	dFreq
)

// maxFreqPPB bounds |freq_ppb|: a rate correction of 100% or more is
// not a clock.
const maxFreqPPB = 1_000_000_000

// flagStopped in the flags word: the writer closed the page.
const flagStopped = 1

// Errors from Open and from reads. Open wraps them with the path and the
// value found.
var (
	ErrShort        = errors.New("shm: page too short")
	ErrNotPage      = errors.New("shm: not a clockd shared page")
	ErrVersion      = errors.New("shm: unsupported page layout version")
	ErrMalformed    = errors.New("shm: malformed page")
	ErrNotPublished = errors.New("shm: no segment published yet")
	ErrBusy         = errors.New("shm: page kept changing while read")
	ErrClosed       = errors.New("shm: closed")
)

// bigEndian is the host's byte order. The page is little-endian on every
// host, so big-endian hosts swap each word.
var bigEndian = binary.NativeEndian.Uint16([]byte{0, 1}) == 1

func le(v uint64) uint64 {
	if bigEndian {
		return bits.ReverseBytes64(v)
	}
	return v
}

// page is a mapped page seen as 64-bit words. Every access is atomic: the
// words are shared with other processes, and the seqlock relies on the
// ordering that sync/atomic gives.
type page struct{ w *[pageWords]atomic.Uint64 }

// pageOf views b as a page. b must hold at least PageSize bytes and be
// 8-byte aligned, as a mapping is.
func pageOf(b []byte) page {
	if len(b) < PageSize || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		panic(fmt.Sprintf("shm: page of %d bytes at %p", len(b), &b[0]))
	}
	return page{(*[pageWords]atomic.Uint64)(unsafe.Pointer(&b[0]))}
}

func (p page) load(i int) uint64     { return le(p.w[i].Load()) }
func (p page) store(i int, v uint64) { p.w[i].Store(le(v)) }

// checkPage reports what is wrong with a file of size bytes whose first
// PageSize bytes are p. p is read only when size is large enough.
func checkPage(size int64, p page) error {
	if err := checkSize(size); err != nil {
		return err
	}
	return checkHeader(p)
}

func checkSize(size int64) error {
	if size < PageSize {
		return fmt.Errorf("%d bytes, want at least %d: %w", size, PageSize, ErrShort)
	}
	return nil
}

func checkHeader(p page) error {
	if m := p.load(wMagic); m != Magic {
		return fmt.Errorf("magic %#016x, want %#016x: %w", m, Magic, ErrNotPage)
	}
	if v := p.load(wVersion); v != Version {
		return fmt.Errorf("layout version %d, want %d: %w", v, Version, ErrVersion)
	}
	if s := p.load(wSize); s != PageSize {
		return fmt.Errorf("size word %d, want %d: %w", s, PageSize, ErrMalformed)
	}
	return nil
}

// initPage writes the fixed header and content c into a page no reader
// has seen yet.
func initPage(p page, c Snapshot) {
	p.store(wMagic, Magic)
	p.store(wVersion, Version)
	p.store(wSize, PageSize)
	p.store(wSeq, 0)
	for i, v := range encode(c) {
		p.store(wData+i, v)
	}
}

// readWords copies the seqlock-protected words, retrying while a write is
// in progress or lands during the copy. ok is false when every one of
// attempts tries overlapped a write.
func readWords(p page, attempts int, yield func()) (w [nData]uint64, seq uint64, ok bool) {
	for range attempts {
		seq = p.load(wSeq)
		if seq&1 == 0 {
			for i := range w {
				w[i] = p.load(wData + i)
			}
			if p.load(wSeq) == seq {
				return w, seq, true
			}
		}
		yield()
	}
	return w, seq, false
}

// encode lays c out as the seqlock-protected words.
func encode(c Snapshot) [nData]uint64 {
	s := c.Segment
	var w [nData]uint64
	w[dStatus] = uint64(int64(s.Status))
	w[dMono] = uint64(s.MonoNs)
	w[dTime] = uint64(s.TimeNs)
	w[dTarget] = uint64(s.TargetNs)
	w[dErr] = uint64(s.ErrNs)
	w[dSlew] = uint64(s.SlewPPM)
	w[dDrift] = uint64(s.DriftPPM)
	w[dFreq] = uint64(s.FreqPPB)
	w[dHoldoverAt] = uint64(s.HoldoverAtNs)
	w[dUnsyncAt] = uint64(s.UnsyncAtNs)
	w[dHeartbeat] = uint64(c.HeartbeatNs)
	w[dMaxAge] = uint64(c.MaxAgeNs)
	if c.Stopped {
		w[dFlags] |= flagStopped
	}
	return w
}

// decode is the inverse of encode. Status 0 (nothing published) decodes;
// a status outside 0..4 does not. Flag bits other than flagStopped are
// ignored.
func decode(w [nData]uint64) (Snapshot, error) {
	st := int64(w[dStatus])
	if st < 0 || st > int64(vclock.StatusUnsynchronized) {
		return Snapshot{}, fmt.Errorf("status word %d: %w", st, ErrMalformed)
	}
	if f := int64(w[dFreq]); f <= -maxFreqPPB || f >= maxFreqPPB {
		return Snapshot{}, fmt.Errorf("freq_ppb word %d: %w", f, ErrMalformed)
	}
	return Snapshot{
		Segment: vclock.Segment{
			Status:       vclock.Status(st),
			MonoNs:       int64(w[dMono]),
			TimeNs:       int64(w[dTime]),
			TargetNs:     int64(w[dTarget]),
			ErrNs:        int64(w[dErr]),
			SlewPPM:      int64(w[dSlew]),
			DriftPPM:     int64(w[dDrift]),
			FreqPPB:      int64(w[dFreq]),
			HoldoverAtNs: int64(w[dHoldoverAt]),
			UnsyncAtNs:   int64(w[dUnsyncAt]),
		},
		HeartbeatNs: int64(w[dHeartbeat]),
		MaxAgeNs:    int64(w[dMaxAge]),
		Stopped:     w[dFlags]&flagStopped != 0,
	}, nil
}

// Snapshot is one consistent read of the page: the published segment and
// the writer's liveness.
type Snapshot struct {
	Segment vclock.Segment
	// HeartbeatNs is CLOCK_MONOTONIC at the writer's last Publish or
	// Touch, ns.
	HeartbeatNs int64
	// MaxAgeNs is how long, in ns of CLOCK_MONOTONIC, the writer promises
	// to go without a heartbeat. math.MaxInt64: no promise.
	MaxAgeNs int64
	// Stopped says the writer closed the page; nobody maintains it.
	Stopped bool
}

// Live reports whether the writer counts as alive at monotonic time mono:
// the page is not stopped and mono − HeartbeatNs <= MaxAgeNs. A heartbeat
// later than mono counts as fresh.
func (c Snapshot) Live(mono int64) bool {
	if c.Stopped {
		return false
	}
	if mono <= c.HeartbeatNs {
		return true
	}
	// mono > HeartbeatNs, so the difference fits in a uint64 exactly.
	return uint64(mono)-uint64(c.HeartbeatNs) <= uint64(max(c.MaxAgeNs, 0))
}

// At is the reading at monotonic time mono: the segment's reading, with
// status UNSYNCHRONIZED when the writer is not Live at mono. The bounds
// are the segment's either way.
func (c Snapshot) At(mono int64) vclock.Reading {
	r := c.Segment.At(mono)
	if !c.Live(mono) && r.Status != vclock.StatusInitializing {
		r.Status = vclock.StatusUnsynchronized
	}
	return r
}

// Effective is the segment with the writer's liveness folded in, for a
// caller that evaluates it at monotonic times from mono on. If the writer
// is not Live at mono the status is UNSYNCHRONIZED throughout, except that
// an INITIALIZING segment, which claims nothing, stays as it is. Otherwise a
// SYNCHRONIZED segment turns UNSYNCHRONIZED no later than the first
// instant the heartbeat is stale; other statuses cannot express a later
// change and are kept. Effective(mono).At(mono) == At(mono).
func (c Snapshot) Effective(mono int64) vclock.Segment {
	s := c.Segment
	if s.Status == vclock.StatusInitializing {
		return s // claims nothing already, and computes its output its own way
	}
	if !c.Live(mono) {
		s.Status = vclock.StatusUnsynchronized
		return s
	}
	if s.Status == vclock.StatusSynchronized {
		s.UnsyncAtNs = min(s.UnsyncAtNs, c.staleAt())
	}
	return s
}

// staleAt is the first monotonic time at which a page that is not
// stopped is no longer Live, or math.MaxInt64 when that never comes.
func (c Snapshot) staleAt() int64 {
	age := max(c.MaxAgeNs, 0)
	if c.HeartbeatNs > math.MaxInt64-age-1 {
		return math.MaxInt64
	}
	return c.HeartbeatNs + age + 1
}
