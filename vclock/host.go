package vclock

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
)

// Source is where a host's samples come from: its wall clock, corrected
// by upstream NTP where configured. Read returns the monotonic and wall
// readings taken together, and the wall reading's error bound.
type Source interface {
	Read() (monoNs, wallNs, errNs int64)
}

// WallSource trusts the wall clock to within a configured bound.
type WallSource struct {
	Clock Clock
	ErrNs int64
}

// Read samples the wall clock.
func (s WallSource) Read() (int64, int64, int64) {
	return s.Clock.Mono(), s.Clock.Wall(), s.ErrNs
}

// HostConfig configures a Host.
type HostConfig struct {
	ID     consensus.NodeID
	Clock  Clock
	Source Source
	// SlewPPM bounds the output's rate relative to the reference;
	// DriftPPM bounds the monotonic clock's error. Defaults 500 and 100.
	SlewPPM, DriftPPM int64
	// HoldoverAfter is how old the host's latest anchor may get before
	// the status drops to HOLDOVER; UnsyncAfter, before UNSYNCHRONIZED.
	// Defaults 3s and 15m.
	HoldoverAfter, UnsyncAfter time.Duration
	// HWM persists the high-water mark, kept HWMWindow (default 1s) ahead
	// of the output. Required.
	HWM       HWMStore
	HWMWindow time.Duration
	// Publish, if set, receives every new segment, in order (the shared
	// page). It must not block.
	Publish func(Segment)
	// Incarnation names this process in samples; 0 draws a random one.
	Incarnation uint64
	// Name is the host's name in samples (and so in the offset history).
	Name   string
	Logger *zap.Logger
}

func (c *HostConfig) fill() error {
	switch {
	case c.ID == 0:
		return errors.New("vclock: host id 0")
	case c.Clock == nil || c.Source == nil || c.HWM == nil:
		return errors.New("vclock: host needs a Clock, a Source and an HWM store")
	case c.SlewPPM < 0 || c.SlewPPM >= 1_000_000 || c.DriftPPM < 0 || c.DriftPPM >= 1_000_000:
		return fmt.Errorf("vclock: slew %d ppm, drift %d ppm: want 0..999999", c.SlewPPM, c.DriftPPM)
	case c.HoldoverAfter < 0 || c.UnsyncAfter < 0 || c.HWMWindow < 0:
		return errors.New("vclock: negative duration")
	}
	if c.SlewPPM == 0 {
		c.SlewPPM = 500
	}
	if c.DriftPPM == 0 {
		c.DriftPPM = 100
	}
	if c.HoldoverAfter == 0 {
		c.HoldoverAfter = 3 * time.Second
	}
	if c.UnsyncAfter == 0 {
		c.UnsyncAfter = 15 * time.Minute
	}
	if c.UnsyncAfter < c.HoldoverAfter {
		return fmt.Errorf("vclock: unsync_after %v is shorter than holdover_after %v", c.UnsyncAfter, c.HoldoverAfter)
	}
	if c.HWMWindow == 0 {
		c.HWMWindow = time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	for c.Incarnation == 0 {
		var b [8]byte
		rand.Read(b[:])
		c.Incarnation = binary.LittleEndian.Uint64(b[:])
	}
	return nil
}

// Host is one host's reference output: monotone, slewed toward the
// committed ticks, and persisted through its high-water mark.
type Host struct {
	cfg HostConfig
	log *zap.Logger

	mu sync.Mutex
	// Invariant: every reading returned so far is <= hwm, and hwm is on
	// stable storage.
	hwm    int64
	hwmErr error
	// storeMu serialises writes of the mark, made outside mu by Run so
	// readers do not wait on the disk; stored is the last mark written.
	// Lock order: mu, then storeMu.
	storeMu sync.Mutex
	stored  int64
	seg     Segment
	anchor  ordering.Anchor // the latest anchor of this incarnation
	prev    ordering.Anchor // the one before, for the drift estimate
	anchors int
	// hist holds this incarnation's recent anchors, oldest first, for the
	// frequency estimate freq (parts per billion; see Segment.FreqPPB).
	hist    []ordering.Anchor
	freq    int64
	tick    ordering.Tick // the latest tick applied, anchored here or not
	ticked  bool
	changed chan struct{} // closed and replaced when seg changes
}

// NewHost starts a host's output at its high-water mark, INITIALIZING,
// until the first tick that anchors this process.
func NewHost(cfg HostConfig) (*Host, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	floor, _, err := cfg.HWM.Load()
	if err != nil {
		return nil, err
	}
	h := &Host{cfg: cfg, log: cfg.Logger, hwm: floor, stored: floor, changed: make(chan struct{})}
	h.seg = Segment{Status: StatusInitializing, MonoNs: cfg.Clock.Mono(), TimeNs: floor, TargetNs: NoTarget,
		ErrNs: -1, SlewPPM: cfg.SlewPPM, DriftPPM: cfg.DriftPPM, HoldoverAtNs: math.MaxInt64, UnsyncAtNs: math.MaxInt64}
	if cfg.Publish != nil {
		cfg.Publish(h.seg)
	}
	h.log.Info("reference output initializing", zap.Int64("floor-unix-ns", floor),
		zap.Uint64("incarnation", cfg.Incarnation))
	return h, nil
}

// Incarnation names this process in its samples.
func (h *Host) Incarnation() uint64 { return h.cfg.Incarnation }

// Sample answers the leader's request for this host's time.
func (h *Host) Sample() Sample {
	m, w, e := h.cfg.Source.Read()
	return Sample{Incarnation: h.cfg.Incarnation, MonoNs: m, WallNs: w, ErrNs: e, Name: h.cfg.Name}
}

// Now reads the reference output.
func (h *Host) Now() Reading {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.seg.At(h.cfg.Clock.Mono())
	if r.Time > h.hwm {
		// The background loop fell behind (a slow disk): persist before
		// answering, so no reading ever exceeds the stored mark.
		h.raiseLocked(r.Time)
	}
	return r
}

// Segment is the current segment.
func (h *Host) Segment() Segment {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seg
}

// ApplyTick takes a committed tick; ordering.Machine.OnTick calls it on
// the driver goroutine. A tick without an anchor for this process only
// updates what Info reports.
func (h *Host) ApplyTick(t ordering.Tick) {
	a, ok := t.AnchorOf(h.cfg.ID)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tick, h.ticked = t, true
	if !ok || a.Incarnation != h.cfg.Incarnation {
		return
	}
	m := h.cfg.Clock.Mono()
	cur := h.seg.At(m)
	h.prev, h.anchor = h.anchor, a
	h.anchors++
	h.trackFreqLocked(a)
	since := max(m-a.MonoNs, 0)
	target := SatAdd(a.RefNs, SatAdd(since, ppb(since, h.freq)))
	out := cur.Time
	switch {
	case cur.Status == StatusInitializing && target < out:
		// The floor from before a restart is ahead of the reference: hold
		// at it until the reference passes it (at most a window), rather
		// than run ahead of the reference for the long time a slew would
		// take. The next tick after that synchronizes.
		h.setLocked(Segment{Status: StatusInitializing, MonoNs: m, TimeNs: out, TargetNs: target, ErrNs: -1,
			SlewPPM: h.cfg.SlewPPM, DriftPPM: h.cfg.DriftPPM, FreqPPB: h.freq,
			HoldoverAtNs: math.MaxInt64, UnsyncAtNs: math.MaxInt64})
		return
	case (cur.Status == StatusInitializing || cur.Status == StatusUnsynchronized) && target > out:
		// Nothing trusted this output: join the reference at once, forward.
		out = target
	}
	h.setLocked(Segment{
		Status: StatusSynchronized, MonoNs: m, TimeNs: out, TargetNs: target,
		ErrNs:   SatAdd(a.ErrNs, Segment{DriftPPM: h.cfg.DriftPPM, FreqPPB: h.freq}.growth(since)),
		SlewPPM: h.cfg.SlewPPM, DriftPPM: h.cfg.DriftPPM, FreqPPB: h.freq,
		HoldoverAtNs: SatAdd(a.MonoNs, int64(h.cfg.HoldoverAfter)),
		UnsyncAtNs:   SatAdd(a.MonoNs, int64(h.cfg.UnsyncAfter)),
	})
	if cur.Status != StatusSynchronized {
		h.log.Info("reference output synchronized", zap.Stringer("was", cur.Status),
			zap.Int64("offset-ns", target-out), zap.Uint64("tick", t.Seq))
	}
}

func (h *Host) setLocked(s Segment) {
	h.seg = s
	close(h.changed)
	h.changed = make(chan struct{})
	if h.cfg.Publish != nil {
		h.cfg.Publish(s)
	}
}

// raiseLocked stores a mark a window above ns.
func (h *Host) raiseLocked(ns int64) {
	next := SatAdd(ns, int64(h.cfg.HWMWindow))
	h.raisedLocked(next, h.persist(next, false))
}

// raisedLocked records the outcome of persisting mark next.
func (h *Host) raisedLocked(next int64, err error) {
	if err != nil {
		if h.hwmErr == nil {
			h.log.Error("high-water mark write failed", zap.Error(err))
		}
		h.hwmErr = err
		return
	}
	h.hwm, h.hwmErr = max(h.hwm, next), nil
}

// persist writes mark next unless one at least as high is written
// already (or, with lower, writes it anyway: the clean shutdown's tight
// mark).
func (h *Host) persist(next int64, lower bool) error {
	h.storeMu.Lock()
	defer h.storeMu.Unlock()
	if next <= h.stored && !lower {
		return nil
	}
	if err := h.cfg.HWM.Store(next); err != nil {
		return err
	}
	h.stored = next
	return nil
}

// Err reports a failing high-water mark store: the restart guarantee is
// at risk, and the daemon should count itself unhealthy.
func (h *Host) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hwmErr
}

// Run keeps the high-water mark ahead of the output until ctx ends, then
// stores the final output, so a clean restart resumes without a lag.
func (h *Host) Run(ctx context.Context) {
	t := time.NewTicker(h.cfg.HWMWindow / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.mu.Lock()
			r := h.seg.At(h.cfg.Clock.Mono())
			if err := h.persist(r.Time+1, true); err != nil {
				h.log.Error("final high-water mark write failed", zap.Error(err))
			}
			h.hwm = r.Time + 1
			h.mu.Unlock()
			return
		case <-t.C:
			// The mark is written outside mu: readers go on meanwhile,
			// below the mark in force, which stays until the new one is
			// on disk.
			h.mu.Lock()
			r := h.seg.At(h.cfg.Clock.Mono())
			need := r.Time+int64(h.cfg.HWMWindow/2) > h.hwm
			h.mu.Unlock()
			if need {
				next := SatAdd(r.Time, int64(h.cfg.HWMWindow))
				err := h.persist(next, false)
				h.mu.Lock()
				h.raisedLocked(next, err)
				h.mu.Unlock()
			}
		}
	}
}

// StatusChanges delivers the current reading, then a reading each time
// the status changes, until ctx ends. The channel is closed then.
func (h *Host) StatusChanges(ctx context.Context) <-chan Reading {
	out := make(chan Reading, 1)
	go func() {
		defer close(out)
		var last Status
		for {
			h.mu.Lock()
			seg, changed := h.seg, h.changed
			h.mu.Unlock()
			now := h.cfg.Clock.Mono()
			if r := seg.At(now); r.Status != last {
				last = r.Status
				select {
				case out <- h.Now():
				case <-ctx.Done():
					return
				}
			}
			wait := time.Hour
			for _, at := range []int64{seg.HoldoverAtNs, seg.UnsyncAtNs} {
				if seg.Status == StatusSynchronized && at > now {
					wait = min(wait, time.Duration(at-now))
				}
			}
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-changed:
			case <-timer.C:
			}
			timer.Stop()
		}
	}()
	return out
}

// The frequency estimate compares the reference's progress with the
// monotonic clock's between the newest anchor and the oldest one kept, at
// least freqMinSpan and at most freqMaxSpan apart: over a long span the
// anchors' own errors (half a round trip's asymmetry each) matter little.
// It is clamped to ±DriftPPM, the most the monotonic clock may be off.
const (
	freqMinSpan = int64(16 * time.Second)
	freqMaxSpan = int64(128 * time.Second)
	freqNoiseNs = int64(time.Millisecond)
)

// trackFreqLocked adds anchor a to the history and updates h.freq.
func (h *Host) trackFreqLocked(a ordering.Anchor) {
	if n := len(h.hist); n > 0 && a.MonoNs <= h.hist[n-1].MonoNs {
		return // the same sample again: nothing new to learn
	}
	if n := len(h.hist); n > 0 {
		// A reference that moved more than drift and noise allow since
		// the last anchor (it joined a new agreement, or this host's
		// sample was far off) would skew the estimate: start over from
		// here, keeping the estimate there is.
		p := h.hist[n-1]
		d := a.MonoNs - p.MonoNs
		moved := a.RefNs - SatAdd(p.RefNs, SatAdd(d, ppb(d, h.freq)))
		if abs(moved) > SatAdd(ppm(d, 2*h.cfg.DriftPPM), freqNoiseNs) {
			h.hist = h.hist[:0]
		}
	}
	h.hist = append(h.hist, a)
	drop := 0
	for drop < len(h.hist)-1 && a.MonoNs-h.hist[drop+1].MonoNs >= freqMaxSpan {
		drop++
	}
	h.hist = append(h.hist[:0], h.hist[drop:]...)
	o := h.hist[0]
	span := a.MonoNs - o.MonoNs
	if span < freqMinSpan {
		return // keep the estimate there is
	}
	limit := h.cfg.DriftPPM * 1000
	f := float64((a.RefNs-o.RefNs)-span) * 1e9 / float64(span)
	h.freq = int64(max(min(f, float64(limit)), float64(-limit)))
}

// Prior is the reference interval at monotonic time atNs implied by this
// process's latest anchor, widened by drift since; false before the first.
// A new tick's leader narrows its agreement to it (TickInput.Prior).
func (h *Host) Prior(atNs int64) (Interval, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.anchors == 0 || atNs < h.anchor.MonoNs {
		return Interval{}, false
	}
	// Carried at the monotonic clock's own rate, not corrected by the
	// frequency estimate: that estimate is measured against the reference,
	// and feeding it back would let the reference run away with it.
	a, d := h.anchor, atNs-h.anchor.MonoNs
	ref := SatAdd(a.RefNs, d)
	w := SatAdd(a.ErrNs, ppm(d, h.cfg.DriftPPM))
	return Interval{Host: h.cfg.ID, Lo: SatAdd(ref, -w), Hi: SatAdd(ref, w)}, true
}

// Info is what a host knows of its reference output, for status reports.
type Info struct {
	Reading     Reading
	Segment     Segment
	Incarnation uint64
	// Anchored: a tick has anchored this process; Anchor is the latest.
	Anchored bool
	Anchor   ordering.Anchor
	// AnchorAge is how long ago the latest anchor's sample was taken.
	AnchorAge time.Duration
	// WallOffsetNs is this host's wall clock minus the output now.
	WallOffsetNs int64
	// DriftPPB is the wall clock's rate error against the reference,
	// from the last two anchors (0 until there are two).
	DriftPPB int64
	// Tick is the latest tick applied (Ticked), whoever it anchored.
	Ticked bool
	Tick   ordering.Tick
}

// Info reports the output's state.
func (h *Host) Info() Info {
	r := h.Now()
	wall := h.cfg.Clock.Wall()
	m := h.cfg.Clock.Mono()
	h.mu.Lock()
	defer h.mu.Unlock()
	in := Info{Reading: r, Segment: h.seg, Incarnation: h.cfg.Incarnation, Anchored: h.anchors > 0,
		Anchor: h.anchor, WallOffsetNs: wall - r.Time, Ticked: h.ticked, Tick: h.tick}
	if in.Anchored {
		in.AnchorAge = time.Duration(m - h.anchor.MonoNs)
	}
	if h.anchors >= 2 {
		if dt := h.anchor.MonoNs - h.prev.MonoNs; dt > 0 {
			in.DriftPPB = int64(float64(h.anchor.WallOffsetNs-h.prev.WallOffsetNs) * 1e9 / float64(dt))
		}
	}
	return in
}
