package slew

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/quick"
	"time"
)

// scenario is a random start and a sorted run of target readings.
type scenario struct {
	p        Policy
	floor    int64
	t0       int64
	readings []int64
}

func randomScenario(r *rand.Rand) scenario {
	s := scenario{
		p:  Policy{MaxRatePPM: 1 + r.Int64N(999_998)},
		t0: r.Int64N(1e17) - 5e16,
	}
	if r.IntN(2) == 0 {
		s.p.MaxLag = time.Duration(1 + r.Int64N(1e12))
	}
	s.floor = s.t0 + r.Int64N(2e12) - 1e12 // up to ±1000 s apart
	for range 1 + r.IntN(40) {
		s.readings = append(s.readings, s.t0+r.Int64N(1e13))
	}
	slices.Sort(s.readings)
	return s
}

// check runs prop over many random scenarios from a fixed seed, printing
// the seed of a failure.
func check(t *testing.T, prop func(s scenario, c Clock) string) {
	t.Helper()
	cfg := &quick.Config{MaxCount: 5000}
	seed := uint64(1)
	f := func(n uint32) bool {
		r := rand.New(rand.NewPCG(seed, uint64(n)))
		s := randomScenario(r)
		c, err := Start(s.p, s.floor, s.t0)
		if err != nil {
			t.Errorf("start %+v: %v", s, err)
			return false
		}
		if msg := prop(s, c); msg != "" {
			t.Errorf("scenario %+v (n=%d): %s", s, n, msg)
			return false
		}
		return true
	}
	if err := quick.Check(f, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestMonotoneAndAtLeastFloor(t *testing.T) {
	check(t, func(s scenario, c Clock) string {
		prev := c.At(s.t0)
		if prev < s.floor {
			return "starts below the floor"
		}
		for _, x := range s.readings {
			o := c.At(x)
			if o < prev {
				return "went backwards"
			}
			prev = o
		}
		return ""
	})
}

func TestRateWithinBounds(t *testing.T) {
	check(t, func(s scenario, c Clock) string {
		prevT, prevO := s.t0, c.At(s.t0)
		for _, x := range s.readings {
			o := c.At(x)
			dt := float64(x - prevT)
			do := float64(o - prevO)
			rho := float64(s.p.MaxRatePPM) / 1e6
			if do < dt*(1-rho)-1 || do > dt*(1+rho)+1 {
				return "rate outside [1-ρ, 1+ρ]"
			}
			prevT, prevO = x, o
		}
		return ""
	})
}

func TestConvergesWithinOffsetOverRate(t *testing.T) {
	check(t, func(s scenario, c Clock) string {
		off := c.At(s.t0) - s.t0
		if off < 0 {
			off = -off
		}
		bound := s.t0 + off*1e6/s.p.MaxRatePPM + 1
		at := c.ConvergedAt()
		if at > bound {
			return "converges later than |offset|/ρ"
		}
		for _, x := range append(s.readings, at, at+1, at+1e9) {
			if x >= at && c.At(x) != x {
				return "does not follow the target after converging"
			}
		}
		return ""
	})
}

func TestOnlyForwardStepAtStart(t *testing.T) {
	check(t, func(s scenario, c Clock) string {
		start := c.At(s.t0)
		lagging := s.p.MaxLag > 0 && s.t0-s.floor > int64(s.p.MaxLag)
		switch {
		case lagging && (!c.Stepped() || start != s.t0-int64(s.p.MaxLag)):
			return "did not step to target - MaxLag"
		case !lagging && (c.Stepped() || start != s.floor):
			return "stepped without lagging beyond MaxLag"
		}
		if lag := c.Lag(s.t0); s.p.MaxLag > 0 && lag > int64(s.p.MaxLag) {
			return "lags beyond MaxLag"
		}
		return ""
	})
}

func TestExamples(t *testing.T) {
	p := Policy{MaxRatePPM: 500} // 500 ppm: 1 ms of offset takes 2 s
	ahead, _ := Start(p, 1_001_000_000, 1_000_000_000)
	behind, _ := Start(p, 999_000_000, 1_000_000_000)
	cases := []struct {
		name string
		c    Clock
		at   int64
		want int64
	}{
		{"ahead at start", ahead, 1_000_000_000, 1_001_000_000},
		{"ahead after 1 s runs 500 µs slow", ahead, 2_000_000_000, 2_000_500_000},
		{"ahead converged after 2 s", ahead, 3_000_000_000, 3_000_000_000},
		{"behind after 1 s runs 500 µs fast", behind, 2_000_000_000, 1_999_500_000},
		{"behind converged after 2 s", behind, 3_000_000_000, 3_000_000_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.At(tc.at); got != tc.want {
				t.Fatalf("At(%d) = %d, want %d", tc.at, got, tc.want)
			}
		})
	}
	if got := ahead.ConvergedAt(); got != 3_000_000_000 {
		t.Fatalf("ConvergedAt = %d, want 3000000000", got)
	}
}

func TestPolicyErrors(t *testing.T) {
	for _, p := range []Policy{{MaxRatePPM: 0}, {MaxRatePPM: -5}, {MaxRatePPM: 1_000_000}, {MaxRatePPM: 100, MaxLag: -1}} {
		if _, err := Start(p, 0, 0); !errors.Is(err, ErrPolicy) {
			t.Errorf("Start(%+v): %v, want ErrPolicy", p, err)
		}
	}
}
