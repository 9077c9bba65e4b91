package vclock

import (
	"errors"
	"testing"
	"time"

	"github.com/beevik/ntp"
)

// TestUpstreamSurvivesWallStep: an answer is pinned to the monotonic
// clock, so stepping the wall clock afterwards changes nothing; a stale
// answer falls back to the wall clock's configured bound.
func TestUpstreamSurvivesWallStep(t *testing.T) {
	utc := int64(1_700_000_000) * int64(time.Second)
	c := &simHost{id: 1, offset: int64(40 * time.Millisecond), now: &utc}
	u := &Upstream{Clock: c, DriftPPM: 100, Poll: time.Minute, Fallback: WallSource{Clock: c, ErrNs: int64(time.Second)},
		Query: func(string, ntp.QueryOptions) (*ntp.Response, error) {
			return &ntp.Response{ClockOffset: -40 * time.Millisecond, RootDistance: 3 * time.Millisecond,
				Stratum: 2, Version: 4, Time: time.Unix(0, utc), ReferenceTime: time.Unix(0, utc)}, nil
		}}
	u.QueryOnce("a")
	c.offset += int64(time.Hour) // someone steps the wall clock
	utc += int64(10 * time.Second)
	_, w, e := u.Read()
	if w != utc || e < int64(3*time.Millisecond) || e > int64(4*time.Millisecond) {
		t.Fatalf("estimate %v off, ±%v; want the truth ±3ms and drift", time.Duration(w-utc), time.Duration(e))
	}
	utc += int64(5 * time.Minute)
	if _, w, e := u.Read(); e != int64(time.Second) || w != utc+c.offset {
		t.Fatalf("a stale answer was used: ±%v", time.Duration(e))
	}
	u.Query = func(string, ntp.QueryOptions) (*ntp.Response, error) { return nil, errors.New("timeout") }
	u.QueryOnce("b")
	if _, _, e := u.Read(); e != int64(time.Second) {
		t.Fatal("a failed query produced an answer")
	}
}
