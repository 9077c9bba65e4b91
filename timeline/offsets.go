package timeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sample is one measurement of a host's wall clock against the cluster
// reference: at reference time RefNs the host's clock read
// RefNs+OffsetNs, to within ±ErrNs.
type Sample struct {
	Host     string
	RefNs    int64 // reference time of the sample, ns since the Unix epoch
	OffsetNs int64 // host wall clock minus reference, ns
	ErrNs    int64 // uncertainty of OffsetNs, ns, >= 0
}

// localNs is the host's own clock reading at the sample. check makes
// sure that it does not overflow.
func (s Sample) localNs() int64 { return s.RefNs + s.OffsetNs }

// MaxOffsetNs bounds the magnitude of an offset, ns: 200 years (of 365.25
// days). It is far more than any clock that runs is off, even one whose
// real-time clock reset to 1970, and small enough that the differences
// correction computes stay within int64. Offsets beyond it are refused
// when read.
const MaxOffsetNs = 73050 * 24 * int64(time.Hour)

// Offsets is the clock-offset history of a set of hosts, for turning a
// host's local timestamps into reference time. It is read-only after
// loading and safe for concurrent use.
type Offsets struct {
	hosts map[string]*hostOffsets
}

// MinHistoryReach is the least reach of a host's offset history beyond
// its samples (see hostOffsets.loNs): how far before the earliest
// sample's local time or after the latest an event's local time may lie
// and still be corrected without a warning.
const MinHistoryReach = time.Minute

// hostOffsets is one host's history.
//
// Invariant: samples are sorted by RefNs, no two share a RefNs, and
// len(samples) >= 1. monotone tells whether their local times
// (RefNs+OffsetNs) are non-decreasing too, which is what a binary search
// by local time needs.
type hostOffsets struct {
	samples  []Sample
	monotone bool
	// loNs and hiNs bound the local times the history reaches: from the
	// samples' earliest local time to their latest, widened on each side
	// by the largest gap between two consecutive samples (by RefNs), or
	// by MinHistoryReach if that is larger. Samples are taken at about
	// even intervals, so an event further out lies where clockd was not
	// measuring the host (a file for another period, a host down),
	// and the first or last sample's offset, which corrects it, may be
	// far off. A constant history (SetConstant) reaches every time.
	// Invariant: loNs <= every sample's local time <= hiNs.
	loNs, hiNs int64
}

// NewOffsets builds the history from samples in any order. Two samples
// of one host at the same reference time are an error.
func NewOffsets(samples []Sample) (*Offsets, error) {
	o := &Offsets{hosts: make(map[string]*hostOffsets)}
	byHost := make(map[string][]Sample)
	for _, s := range samples {
		if err := s.check(); err != nil {
			return nil, err
		}
		byHost[s.Host] = append(byHost[s.Host], s)
	}
	for host, ss := range byHost {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].RefNs < ss[j].RefNs })
		for i := 1; i < len(ss); i++ {
			if ss[i].RefNs == ss[i-1].RefNs {
				return nil, fmt.Errorf("host %q has two samples at ref_unix_nano %d", host, ss[i].RefNs)
			}
		}
		o.hosts[host] = newHostOffsets(ss)
	}
	return o, nil
}

func newHostOffsets(ss []Sample) *hostOffsets {
	h := &hostOffsets{samples: ss, monotone: true}
	minNs, maxNs := ss[0].localNs(), ss[0].localNs()
	reachNs := int64(MinHistoryReach)
	for i := 1; i < len(ss); i++ {
		if ss[i].localNs() < ss[i-1].localNs() {
			h.monotone = false
		}
		minNs, maxNs = min(minNs, ss[i].localNs()), max(maxNs, ss[i].localNs())
		if gap, ok := subNs(ss[i].RefNs, ss[i-1].RefNs); !ok || gap > reachNs {
			reachNs = gap
			if !ok {
				reachNs = math.MaxInt64
			}
		}
	}
	h.loNs, h.hiNs = satSubNs(minNs, reachNs), satSubNs(maxNs, -reachNs)
	return h
}

// satSubNs is a - b for b >= -MaxInt64, saturated to int64's range.
func satSubNs(a, b int64) int64 {
	if d, ok := subNs(a, b); ok {
		return d
	}
	if b > 0 {
		return math.MinInt64
	}
	return math.MaxInt64
}

// outside tells whether localNs is beyond the history's reach.
func (h *hostOffsets) outside(localNs int64) bool {
	return localNs < h.loNs || localNs > h.hiNs
}

func (s Sample) check() error {
	switch {
	case s.Host == "":
		return errors.New("empty host")
	case s.ErrNs < 0:
		return fmt.Errorf("host %q: negative err_nanos %d", s.Host, s.ErrNs)
	case s.OffsetNs > MaxOffsetNs || s.OffsetNs < -MaxOffsetNs:
		return fmt.Errorf("host %q: offset_nanos %d is beyond ±%d (200 years)", s.Host, s.OffsetNs, MaxOffsetNs)
	}
	if _, ok := subNs(s.RefNs, -s.OffsetNs); !ok { // RefNs + OffsetNs
		return fmt.Errorf("host %q: ref_unix_nano %d plus offset_nanos %d is beyond the range of int64", s.Host, s.RefNs, s.OffsetNs)
	}
	return nil
}

// subNs is a - b; ok is false when that overflows int64.
func subNs(a, b int64) (d int64, ok bool) {
	d = a - b
	if b > 0 && d > a || b < 0 && d < a {
		return d, false
	}
	return d, true
}

// spanNs is b - a as a float64, exact to float64's precision even where
// the int64 difference overflows.
func spanNs(a, b int64) float64 {
	if d, ok := subNs(b, a); ok {
		return float64(d)
	}
	return float64(b) - float64(a)
}

// SetConstant replaces host's history by one constant offset (host
// clock minus reference, ns), as a manual --offset does. An empty host
// or an offset beyond ±MaxOffsetNs is an error.
func (o *Offsets) SetConstant(host string, offsetNs int64) error {
	s := Sample{Host: host, OffsetNs: offsetNs}
	if err := s.check(); err != nil {
		return err
	}
	if o.hosts == nil {
		o.hosts = make(map[string]*hostOffsets)
	}
	h := newHostOffsets([]Sample{s})
	h.loNs, h.hiNs = math.MinInt64, math.MaxInt64
	o.hosts[host] = h
	return nil
}

// Hosts lists the hosts with a history, sorted.
func (o *Offsets) Hosts() []string {
	var hs []string
	for h := range o.hosts {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	return hs
}

// Samples returns host's samples sorted by reference time. The slice
// belongs to o: callers must not modify it.
func (o *Offsets) Samples(host string) []Sample {
	if h := o.hosts[host]; h != nil {
		return h.samples
	}
	return nil
}

// Correct maps a local timestamp of host (ns since the epoch on the
// host's clock) to reference time. The offset is interpolated linearly
// between the two samples whose local times surround localNs, and is
// the first or the last sample's outside them. ok is false when host
// has no samples, or when the reference time would overflow int64 (a
// local time within an offset of the ends of int64's range).
func (o *Offsets) Correct(host string, localNs int64) (refNs int64, ok bool) {
	h := o.hosts[host]
	if h == nil {
		return 0, false
	}
	var c corrector
	c.h = h
	return subNs(localNs, c.offset(localNs))
}

// corrector evaluates one host's offset for a stream of local times that
// mostly increase: it remembers the segment of the last lookup, and on a
// monotone history the local times that segment covers, so that the
// next lookup usually costs two comparisons and the interpolation. It
// also counts the local times beyond the history's reach, at no cost to
// the others: the range it remembers never includes them.
type corrector struct {
	h *hostOffsets
	// outside counts the local times looked up that are beyond h's reach
	// (hostOffsets.outside).
	outside int64
	// seg is the index i of the last segment [samples[i], samples[i+1]]
	// used; -1 before the first sample, len-1 after the last.
	seg int
	// When valid (a monotone history), the local times [loNs, hiNs) are
	// those holds accepts for seg and within h's reach, and the offset
	// over them is flatNs if flat, else the line through (aLocalNs,
	// aOffNs) that rises dOffNs over spanNs, as interpolate computes it.
	valid, flat    bool
	loNs, hiNs     int64
	flatNs         int64
	aLocalNs       int64
	aOffNs         int64
	spanNs, dOffNs float64
}

// offset is the host's offset (clock minus reference, ns) at local time
// localNs.
func (c *corrector) offset(localNs int64) int64 {
	if c.valid && c.loNs <= localNs && localNs < c.hiNs {
		if c.flat {
			return c.flatNs
		}
		f := float64(localNs-c.aLocalNs) / c.spanNs
		return c.aOffNs + int64(math.Round(f*c.dOffNs))
	}
	return c.lookup(localNs)
}

// lookup is offset without the remembered range; it sets the range,
// and counts localNs when it is beyond the history's reach.
func (c *corrector) lookup(localNs int64) int64 {
	if c.h.outside(localNs) {
		c.outside++
	}
	ss := c.h.samples
	n := len(ss)
	if n == 1 {
		c.valid, c.flat, c.loNs, c.hiNs, c.flatNs = true, true, c.h.loNs, endNs(c.h.hiNs), ss[0].OffsetNs
		return ss[0].OffsetNs
	}
	i := c.seg
	if !c.h.monotone || !c.holds(i, localNs) {
		i = c.h.segment(localNs)
		c.seg = i
	}
	if c.h.monotone {
		c.remember(i)
	}
	switch {
	case i < 0:
		return ss[0].OffsetNs
	case i >= n-1:
		return ss[n-1].OffsetNs
	}
	return interpolate(ss[i], ss[i+1], localNs)
}

// remember sets the range and line of segment i, on a monotone history.
func (c *corrector) remember(i int) {
	ss := c.h.samples
	n := len(ss)
	c.valid = true
	switch {
	case i < 0:
		c.flat, c.loNs, c.hiNs, c.flatNs = true, c.h.loNs, ss[0].localNs(), ss[0].OffsetNs
	case i >= n-1:
		c.flat, c.loNs, c.hiNs, c.flatNs = true, ss[n-1].localNs(), endNs(c.h.hiNs), ss[n-1].OffsetNs
	default:
		a, b := ss[i], ss[i+1]
		if _, ok := subNs(b.localNs(), a.localNs()); !ok {
			// The fast path's localNs-aLocalNs could overflow: leave such
			// a segment, hours past any real history, to interpolate.
			c.valid = false
			return
		}
		c.flat, c.loNs, c.hiNs = false, a.localNs(), b.localNs()
		c.aLocalNs, c.aOffNs = a.localNs(), a.OffsetNs
		c.spanNs, c.dOffNs = spanNs(a.localNs(), b.localNs()), spanNs(a.OffsetNs, b.OffsetNs)
	}
}

// endNs is the exclusive end of a range whose last local time is hiNs;
// math.MaxInt64 itself is left to lookup.
func endNs(hiNs int64) int64 {
	if hiNs == math.MaxInt64 {
		return hiNs
	}
	return hiNs + 1
}

// holds tells whether segment i is the one a binary search would find
// for localNs, on a monotone history.
func (c *corrector) holds(i int, localNs int64) bool {
	ss := c.h.samples
	n := len(ss)
	switch {
	case i < 0:
		return localNs < ss[0].localNs()
	case i >= n-1:
		return localNs >= ss[n-1].localNs()
	}
	return ss[i].localNs() <= localNs && localNs < ss[i+1].localNs()
}

// segment finds i with samples[i].local <= localNs <= samples[i+1].local:
// by binary search when local times are monotone, else the earliest such
// segment (see HAZARD in doc.go). It returns -1 or len-1 when localNs is
// before or after every sample.
func (h *hostOffsets) segment(localNs int64) int {
	ss := h.samples
	n := len(ss)
	if h.monotone {
		// The first sample whose local time exceeds localNs.
		j := sort.Search(n, func(k int) bool { return ss[k].localNs() > localNs })
		return j - 1
	}
	for i := 0; i+1 < n; i++ {
		a, b := ss[i].localNs(), ss[i+1].localNs()
		if min(a, b) <= localNs && localNs <= max(a, b) {
			return i
		}
	}
	if localNs < ss[0].localNs() {
		return -1
	}
	return n - 1
}

// interpolate is the offset at local time l on the line through a and b.
// The fraction goes through float64: the product of an offset change and
// a time span can overflow int64, and the rounding error is far below
// 1 ns for offsets under a day. l is between la and lb, so the result is
// between the two offsets.
func interpolate(a, b Sample, l int64) int64 {
	la, lb := a.localNs(), b.localNs()
	if la == lb {
		return b.OffsetNs
	}
	f := spanNs(la, l) / spanNs(la, lb)
	return a.OffsetNs + int64(math.Round(f*spanNs(a.OffsetNs, b.OffsetNs)))
}

// LoadOffsets reads the JSON-lines offsets file that `clockd offsets
// export` writes (format in doc.go). A UTF-8 byte-order mark before the
// first line and blank lines are skipped; unknown fields are ignored;
// host and ref_unix_nano and offset_nanos are required. Errors name the
// line, and the field when one is wrong.
func LoadOffsets(r io.Reader) (*Offsets, error) {
	var samples []Sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff") // a byte-order mark
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		s, err := parseSampleLine([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		samples = append(samples, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return NewOffsets(samples)
}

// sampleJSON is one line of the offsets file. Pointers tell a missing
// field from a zero.
type sampleJSON struct {
	Host     *string `json:"host"`
	RefNs    *int64  `json:"ref_unix_nano"`
	OffsetNs *int64  `json:"offset_nanos"`
	ErrNs    *int64  `json:"err_nanos"`
}

func parseSampleLine(b []byte) (Sample, error) {
	var j sampleJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Sample{}, sampleJSONError(err)
	}
	switch {
	case j.Host == nil:
		return Sample{}, errors.New(`missing "host"`)
	case j.RefNs == nil:
		return Sample{}, errors.New(`missing "ref_unix_nano"`)
	case j.OffsetNs == nil:
		return Sample{}, errors.New(`missing "offset_nanos"`)
	}
	s := Sample{Host: *j.Host, RefNs: *j.RefNs, OffsetNs: *j.OffsetNs}
	if j.ErrNs != nil {
		s.ErrNs = *j.ErrNs
	}
	return s, s.check()
}

// sampleJSONError says what is wrong with a line json.Unmarshal refused
// as a sampleJSON, in the file's terms rather than Go's.
func sampleJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if te.Field == "" {
		return fmt.Errorf("want a JSON object, got %s", te.Value)
	}
	want := "a string"
	if te.Type.Kind() == reflect.Int64 {
		want = "a whole number of ns"
	}
	return fmt.Errorf("field %q: want %s, got %s", te.Field, want, te.Value)
}

// WriteOffsets writes samples in the offsets file format, one line each,
// in the order given.
func WriteOffsets(w io.Writer, samples []Sample) error {
	bw := bufio.NewWriter(w)
	var b []byte
	for _, s := range samples {
		if err := s.check(); err != nil {
			return err
		}
		b = append(b[:0], `{"host":`...)
		b = appendJSONString(b, s.Host)
		b = append(b, `,"ref_unix_nano":`...)
		b = strconv.AppendInt(b, s.RefNs, 10)
		b = append(b, `,"offset_nanos":`...)
		b = strconv.AppendInt(b, s.OffsetNs, 10)
		b = append(b, `,"err_nanos":`...)
		b = strconv.AppendInt(b, s.ErrNs, 10)
		b = append(b, "}\n"...)
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ManualOffset is a constant offset given by hand: host's clock minus
// the reference is OffsetNs.
type ManualOffset struct {
	Host     string
	OffsetNs int64
}

// ParseManualOffset parses HOST=±DURATION, e.g. "hv2=+1.5ms" (hv2's
// clock is 1.5 ms ahead: its timestamps are moved 1.5 ms earlier) or
// "hv3=-250us". The duration takes Go's units (ns, us, µs, ms, s, m, h);
// the sign is optional. Its magnitude is at most MaxOffsetNs (200 years).
func ParseManualOffset(s string) (ManualOffset, error) {
	host, dur, ok := strings.Cut(s, "=")
	host = strings.TrimSpace(host)
	if !ok || host == "" {
		return ManualOffset{}, fmt.Errorf("offset %q: want HOST=±DURATION, e.g. hv2=+1.5ms", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(dur))
	if err != nil {
		return ManualOffset{}, fmt.Errorf("offset %q: %v", s, err)
	}
	if d > time.Duration(MaxOffsetNs) || d < -time.Duration(MaxOffsetNs) {
		return ManualOffset{}, fmt.Errorf("offset %q: %v is beyond ±200 years, the most an offset may be", s, d)
	}
	return ManualOffset{Host: host, OffsetNs: int64(d)}, nil
}
