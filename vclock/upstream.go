package vclock

import (
	"context"
	"sync"
	"time"

	"github.com/beevik/ntp"
	"go.uber.org/zap"
)

// Upstream samples UTC from upstream NTP servers. Each answer is pinned
// to the monotonic clock at the query, so a later step of the host's wall
// clock does not corrupt it: the estimate at monotonic time m is
//
//	utc(m) = utc_q + (m − mono_q),  error = root distance + drift·(m − mono_q)
//
// where utc_q is the wall clock at the query corrected by the measured
// offset. Read uses the answer with the smallest error now; without a
// usable answer it falls back to Fallback.
type Upstream struct {
	Servers  []string
	Poll     time.Duration // between queries to one server; default 64s
	MaxAge   time.Duration // answers older than this are not used; default 4·Poll
	DriftPPM int64
	Clock    Clock
	Fallback Source
	Logger   *zap.Logger
	// Query defaults to ntp.QueryWithOptions.
	Query func(host string, opt ntp.QueryOptions) (*ntp.Response, error)

	mu      sync.Mutex
	answers map[string]upstreamAnswer
}

type upstreamAnswer struct {
	monoNs, utcNs, errNs int64
}

func (u *Upstream) defaults() {
	if u.Poll <= 0 {
		u.Poll = 64 * time.Second
	}
	if u.MaxAge <= 0 {
		u.MaxAge = 4 * u.Poll
	}
	if u.Query == nil {
		u.Query = ntp.QueryWithOptions
	}
	if u.Logger == nil {
		u.Logger = zap.NewNop()
	}
}

// Run queries every server each Poll until ctx ends.
func (u *Upstream) Run(ctx context.Context) {
	u.defaults()
	t := time.NewTicker(u.Poll)
	defer t.Stop()
	for {
		for _, s := range u.Servers {
			u.QueryOnce(s)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// QueryOnce asks one server and keeps its answer if it is valid.
func (u *Upstream) QueryOnce(server string) {
	u.defaults()
	before := u.Clock.Mono()
	resp, err := u.Query(server, ntp.QueryOptions{Timeout: 2 * time.Second})
	if err == nil {
		err = resp.Validate()
	}
	if err != nil {
		u.Logger.Warn("upstream NTP query failed", zap.String("server", server), zap.Error(err))
		return
	}
	after, wall := u.Clock.Mono(), u.Clock.Wall()
	a := upstreamAnswer{
		monoNs: after,
		utcNs:  wall + int64(resp.ClockOffset),
		// The offset is for the middle of the exchange; the answer's
		// error is its root distance plus the time since then.
		errNs: int64(resp.RootDistance) + (after-before)/2 + ppm(after-before, u.DriftPPM),
	}
	u.mu.Lock()
	if u.answers == nil {
		u.answers = map[string]upstreamAnswer{}
	}
	u.answers[server] = a
	u.mu.Unlock()
	u.Logger.Debug("upstream NTP answer", zap.String("server", server),
		zap.Duration("offset", resp.ClockOffset), zap.Duration("root-distance", resp.RootDistance))
}

// Read returns the best estimate of UTC now.
func (u *Upstream) Read() (int64, int64, int64) {
	u.defaults()
	m := u.Clock.Mono()
	u.mu.Lock()
	best, found := upstreamAnswer{}, false
	var bestErr int64
	for _, a := range u.answers {
		age := m - a.monoNs
		if age < 0 || age > int64(u.MaxAge) {
			continue
		}
		e := a.errNs + ppm(age, u.DriftPPM)
		if !found || e < bestErr {
			best, bestErr, found = a, e, true
		}
	}
	u.mu.Unlock()
	if !found {
		return u.Fallback.Read()
	}
	return m, best.utcNs + (m - best.monoNs), bestErr
}
