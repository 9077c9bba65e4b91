package timeline

import (
	"bytes"
	"math"
	"math/rand"
	"strings"
	"testing"
	"time"
)

func TestCorrect(t *testing.T) {
	// hv1: offset +100 ms at ref 1000 s, +200 ms at ref 2000 s.
	offs, err := NewOffsets([]Sample{
		{Host: "hv1", RefNs: 2000e9, OffsetNs: 200e6},
		{Host: "hv1", RefNs: 1000e9, OffsetNs: 100e6},
		{Host: "hv2", RefNs: 5e9, OffsetNs: -7},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		host    string
		localNs int64
		wantRef int64
		wantOK  bool
	}{
		{"at the first sample", "hv1", 1000e9 + 100e6, 1000e9, true},
		{"at the last sample", "hv1", 2000e9 + 200e6, 2000e9, true},
		{"halfway by local time", "hv1", 1500e9 + 150e6, 1500e9, true},
		{"before the first: clamped", "hv1", 10e9, 10e9 - 100e6, true},
		{"after the last: clamped", "hv1", 9000e9, 9000e9 - 200e6, true},
		{"one sample: constant", "hv2", 1, 8, true},
		{"unknown host", "hv3", 1000, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, ok := offs.Correct(tc.host, tc.localNs)
			if ref != tc.wantRef || ok != tc.wantOK {
				t.Errorf("Correct(%s, %d) = %d, %v; want %d, %v", tc.host, tc.localNs, ref, ok, tc.wantRef, tc.wantOK)
			}
		})
	}
}

// TestCorrectorMatchesCorrect checks the cached corrector, fed mostly
// increasing local times as Merge does, against the stateless lookup.
func TestCorrectorMatchesCorrect(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	for trial := 0; trial < 50; trial++ {
		var ss []Sample
		ref := int64(1e18)
		for i := 0; i < 1+rng.Intn(30); i++ {
			ref += 1 + rng.Int63n(2e9)
			off := rng.Int63n(4e9) - 2e9
			if trial%2 == 0 { // a slow drift: monotone local times
				off = rng.Int63n(2e6)
			}
			ss = append(ss, Sample{Host: "h", RefNs: ref, OffsetNs: off})
		}
		offs, err := NewOffsets(ss)
		if err != nil {
			t.Fatal(err)
		}
		c := corrector{h: offs.hosts["h"]}
		outside := int64(0)
		local := ss[0].RefNs - 65e9 // from beyond the history's reach
		for i := 0; i < 2000; i++ {
			local += rng.Int63n(3e8) - 2e7 // mostly forward, sometimes back
			l := local
			if rng.Intn(10) == 0 { // exactly at a sample, or one ns off
				s := ss[rng.Intn(len(ss))]
				l = s.RefNs + s.OffsetNs + rng.Int63n(3) - 1
			}
			want, _ := offs.Correct("h", l)
			if got := l - c.offset(l); got != want {
				t.Fatalf("seed %d trial %d: corrector gives %d for local %d, Correct %d (monotone %v)",
					seed, trial, got, l, want, offs.hosts["h"].monotone)
			}
			if naiveOutside(ss, l) {
				outside++
			}
			if c.outside != outside {
				t.Fatalf("seed %d trial %d: corrector counts %d local times outside the history after %d, want %d (monotone %v)",
					seed, trial, c.outside, l, outside, offs.hosts["h"].monotone)
			}
		}
	}
}

// naiveOutside tells whether localNs is outside the reach of the
// history ss (sorted by RefNs), as hostOffsets.outside documents it.
func naiveOutside(ss []Sample, localNs int64) bool {
	reach := int64(MinHistoryReach)
	lo, hi := ss[0].localNs(), ss[0].localNs()
	for i, s := range ss {
		lo, hi = min(lo, s.localNs()), max(hi, s.localNs())
		if i > 0 {
			reach = max(reach, s.RefNs-ss[i-1].RefNs)
		}
	}
	return localNs < lo-reach || localNs > hi+reach
}

func TestCorrectorCountsOutsideHistory(t *testing.T) {
	// Samples at ref 1000 s, 1010 s and 1030 s: the largest gap, 20 s, is
	// under a minute, so the history reaches from 940 s to 1090 s (local
	// times, offset 0). One sample reaches a minute each way; a constant
	// offset, every time.
	three := []Sample{{Host: "h", RefNs: 1000e9}, {Host: "h", RefNs: 1010e9}, {Host: "h", RefNs: 1030e9}}
	// A gap of 10 minutes reaches 10 minutes.
	wide := []Sample{{Host: "h", RefNs: 1000e9}, {Host: "h", RefNs: 1600e9}}
	constant, _ := NewOffsets(nil)
	if err := constant.SetConstant("h", 5); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		samples []Sample // nil: constant
		localNs []int64
		want    int64
	}{
		{"inside", three, []int64{1000e9, 1020e9, 1030e9}, 0},
		{"within the reach", three, []int64{940e9, 1090e9}, 0},
		{"just beyond the reach", three, []int64{940e9 - 1, 1090e9 + 1}, 2},
		{"far out, repeatedly", three, []int64{1e9, 2e9, 1000e9, 5000e9, 5001e9, 1e18}, 5},
		{"a wide gap reaches further", wide, []int64{500e9, 401e9, 2199e9}, 0},
		{"beyond a wide gap", wide, []int64{399e9, 2201e9}, 2},
		{"one sample", []Sample{{Host: "h", RefNs: 1000e9, OffsetNs: 7}}, []int64{940e9 + 7, 1060e9 + 7, 1060e9 + 8}, 1},
		{"a constant offset", nil, []int64{math.MinInt64, 0, math.MaxInt64}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offs := constant
			if tc.samples != nil {
				var err error
				if offs, err = NewOffsets(tc.samples); err != nil {
					t.Fatal(err)
				}
			}
			c := corrector{h: offs.hosts["h"]}
			for _, l := range tc.localNs {
				c.offset(l)
			}
			if c.outside != tc.want {
				t.Errorf("%d local times outside the history, want %d", c.outside, tc.want)
			}
		})
	}
}

func TestCorrectNonMonotone(t *testing.T) {
	// The host's clock stepped back 3 s between the samples at ref 10 s
	// and 11 s: local times 10.5 s .. 11 s were read twice.
	offs, err := NewOffsets([]Sample{
		{Host: "h", RefNs: 9e9, OffsetNs: 2e9},   // local 11 s
		{Host: "h", RefNs: 10e9, OffsetNs: 2e9},  // local 12 s
		{Host: "h", RefNs: 11e9, OffsetNs: -1e9}, // local 10 s
		{Host: "h", RefNs: 12e9, OffsetNs: -1e9}, // local 11 s
	})
	if err != nil {
		t.Fatal(err)
	}
	// Local 11 s lies in the first segment (11..12) and in the second
	// (12..10) and third (10..11): the earliest wins.
	if ref, _ := offs.Correct("h", 11e9); ref != 9e9 {
		t.Errorf("Correct(11 s) = %d, want 9e9 (the earliest segment)", ref)
	}
}

func TestInterpolateLargeSpans(t *testing.T) {
	// A day between samples and a 10 s offset change overflow int64 if
	// multiplied out.
	a := Sample{RefNs: 0, OffsetNs: 0}
	b := Sample{RefNs: 86400e9, OffsetNs: 10e9}
	if got := interpolate(a, b, b.localNs()/2); got != 5e9 {
		t.Errorf("interpolate at half = %d, want 5e9", got)
	}
	// Offsets of ±MaxOffsetNs: their difference, and that of their
	// local times, overflow int64. Half way the offset is 0, to within
	// float64's precision at 1e19.
	a = Sample{Host: "h", RefNs: 0, OffsetNs: -MaxOffsetNs}
	b = Sample{Host: "h", RefNs: 2e9, OffsetNs: MaxOffsetNs}
	if got := interpolate(a, b, 1e9); got < -1e4 || got > 1e4 {
		t.Errorf("interpolate half way between ±MaxOffsetNs = %d, want about 0", got)
	}
	offs, err := NewOffsets([]Sample{a, b})
	if err != nil {
		t.Fatal(err)
	}
	c := corrector{h: offs.hosts["h"]}
	if got := c.offset(1e9); got < -1e4 || got > 1e4 {
		t.Errorf("corrector half way between ±MaxOffsetNs = %d, want about 0", got)
	}
}

func TestLoadOffsets(t *testing.T) {
	in := "\ufeff" + `{"host":"hv1","ref_unix_nano":1700000001000000000,"offset_nanos":-1234567,"err_nanos":50000}

{"host":"hv1","ref_unix_nano":1700000000000000000,"offset_nanos":-1000000,"extra":"ignored"}
{"host":"hv2","ref_unix_nano":1700000000000000000,"offset_nanos":42}
`
	offs, err := LoadOffsets(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := offs.Hosts(); strings.Join(got, ",") != "hv1,hv2" {
		t.Errorf("Hosts = %v", got)
	}
	want := []Sample{
		{Host: "hv1", RefNs: 1700000000000000000, OffsetNs: -1000000},
		{Host: "hv1", RefNs: 1700000001000000000, OffsetNs: -1234567, ErrNs: 50000},
	}
	if got := offs.Samples("hv1"); !equalSamples(got, want) {
		t.Errorf("Samples(hv1) = %+v, want %+v", got, want)
	}
}

func TestLoadOffsetsErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not JSON", "{\"host\":\"a\",\"ref_unix_nano\":1,\"offset_nanos\":1}\nnope\n", "line 2:"},
		{"no host", `{"ref_unix_nano":1,"offset_nanos":1}`, `line 1: missing "host"`},
		{"no ref", `{"host":"a","offset_nanos":1}`, `missing "ref_unix_nano"`},
		{"no offset", `{"host":"a","ref_unix_nano":1}`, `missing "offset_nanos"`},
		{"empty host", `{"host":"","ref_unix_nano":1,"offset_nanos":1}`, "empty host"},
		{"negative error", `{"host":"a","ref_unix_nano":1,"offset_nanos":1,"err_nanos":-1}`, "negative err_nanos"},
		{"float", `{"host":"a","ref_unix_nano":1.5,"offset_nanos":1}`, `line 1: field "ref_unix_nano": want a whole number of ns, got number 1.5`},
		{"string", `{"host":"a","ref_unix_nano":"1","offset_nanos":1}`, `line 1: field "ref_unix_nano": want a whole number of ns, got string`},
		{"number host", `{"host":7,"ref_unix_nano":1,"offset_nanos":1}`, `line 1: field "host": want a string, got number`},
		{"not an object", `[1]`, "line 1: want a JSON object, got array"},
		{"a second BOM", "\ufeff\n\ufeff{}", "line 2: invalid JSON"},
		{"offset too large", `{"host":"a","ref_unix_nano":1,"offset_nanos":9223372036854775807}`, "offset_nanos 9223372036854775807 is beyond ±6311520000000000000 (200 years)"},
		{"offset too small", `{"host":"a","ref_unix_nano":1,"offset_nanos":-6311520000000000001}`, "beyond ±6311520000000000000"},
		{"local time overflows", `{"host":"a","ref_unix_nano":9223372036854775807,"offset_nanos":1}`, "beyond the range of int64"},
		{"duplicate", "{\"host\":\"a\",\"ref_unix_nano\":1,\"offset_nanos\":1}\n{\"host\":\"a\",\"ref_unix_nano\":1,\"offset_nanos\":2}", "two samples"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadOffsets(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadOffsets error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestWriteOffsetsRoundTrip(t *testing.T) {
	samples := []Sample{
		{Host: "hv1", RefNs: 1700000000000000000, OffsetNs: -1234567, ErrNs: 50000},
		{Host: "h\"v\n2", RefNs: -5, OffsetNs: 1 << 62, ErrNs: 0},
	}
	var buf bytes.Buffer
	if err := WriteOffsets(&buf, samples); err != nil {
		t.Fatal(err)
	}
	wantFirst := `{"host":"hv1","ref_unix_nano":1700000000000000000,"offset_nanos":-1234567,"err_nanos":50000}`
	if first, _, _ := strings.Cut(buf.String(), "\n"); first != wantFirst {
		t.Errorf("first line %s, want %s", first, wantFirst)
	}
	offs, err := LoadOffsets(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if got := offs.Samples(s.Host); !equalSamples(got, []Sample{s}) {
			t.Errorf("round trip of %+v gave %+v", s, got)
		}
	}
}

func TestParseManualOffset(t *testing.T) {
	tests := []struct {
		in      string
		want    ManualOffset
		wantErr bool
	}{
		{"hv1=+1.5ms", ManualOffset{"hv1", 1500000}, false},
		{"hv1=-250us", ManualOffset{"hv1", -250000}, false},
		{"hv.example.com=2s", ManualOffset{"hv.example.com", 2e9}, false},
		{" hv1 = -1h ", ManualOffset{"hv1", -3600e9}, false},
		{"hv1", ManualOffset{}, true},
		{"=1ms", ManualOffset{}, true},
		{"hv1=1", ManualOffset{}, true},
		{"hv1=fast", ManualOffset{}, true},
		{"hv1=1753200h", ManualOffset{"hv1", MaxOffsetNs}, false},
		{"hv1=-1753200h", ManualOffset{"hv1", -MaxOffsetNs}, false},
		{"hv1=1753200h1ns", ManualOffset{}, true},
		{"hv2=-2562047h", ManualOffset{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseManualOffset(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseManualOffset(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestSetConstantReplaces(t *testing.T) {
	offs, err := NewOffsets([]Sample{{Host: "hv1", RefNs: 1e9, OffsetNs: 5e6}, {Host: "hv1", RefNs: 2e9, OffsetNs: 9e6}})
	if err != nil {
		t.Fatal(err)
	}
	for host, offsetNs := range map[string]int64{"hv1": 1500000, "hv9": -1} {
		if err := offs.SetConstant(host, offsetNs); err != nil {
			t.Fatal(err)
		}
	}
	for _, offsetNs := range []int64{MaxOffsetNs + 1, -MaxOffsetNs - 1, math.MaxInt64, math.MinInt64} {
		if err := offs.SetConstant("hv1", offsetNs); err == nil {
			t.Errorf("SetConstant accepted offset %d", offsetNs)
		}
	}
	for _, local := range []int64{0, 1e9, 5e9} {
		if ref, _ := offs.Correct("hv1", local); ref != local-1500000 {
			t.Errorf("hv1 at %d: %d, want the constant offset", local, ref)
		}
	}
	if ref, ok := offs.Correct("hv9", 10); ref != 11 || !ok {
		t.Errorf("hv9: %d %v", ref, ok)
	}
	if ref, ok := offs.Correct("hv9", math.MaxInt64); ok {
		t.Errorf("hv9 at the end of int64: %d, want the overflow refused", ref)
	}
}

func equalSamples(a, b []Sample) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
