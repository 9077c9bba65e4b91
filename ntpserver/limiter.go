package ntpserver

import (
	"container/list"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// verdict is the limiter's decision on one request.
type verdict uint8

const (
	admit   verdict = iota // within the source's limit
	kissOff                // over the limit; send one RATE kiss
	drop                   // over the limit; send nothing
)

// sourceTable rate-limits requests per source with one token bucket each,
// keeping at most maxSources buckets and evicting the least recently seen.
// It reads no clock: every call passes the time. It is not safe for
// concurrent use; the Serve goroutine owns it.
type sourceTable struct {
	limit      rate.Limit // requests/s per source; rate.Inf disables the table
	burst      int
	maxSources int
	// kodEvery is the least time between two RATE kisses to one source.
	kodEvery time.Duration

	// Invariant: len(bySource) == lru.Len() <= maxSources, and every
	// element of lru holds the *source its map key names.
	bySource map[netip.Addr]*list.Element
	lru      list.List // *source, most recently seen at the front
}

type source struct {
	key     netip.Addr
	bucket  *rate.Limiter
	lastKoD time.Time // zero until the first RATE kiss
}

func newSourceTable(limit rate.Limit, burst, maxSources int, kodEvery time.Duration) *sourceTable {
	return &sourceTable{
		limit:      limit,
		burst:      burst,
		maxSources: maxSources,
		kodEvery:   kodEvery,
		bySource:   make(map[netip.Addr]*list.Element),
	}
}

// check takes one token from from's bucket at now. Over the limit, the
// first request and then at most one every kodEvery earn a RATE kiss; the
// rest are dropped.
func (t *sourceTable) check(from netip.Addr, now time.Time) verdict {
	if t.limit == rate.Inf {
		return admit
	}
	s := t.lookup(sourceKey(from))
	if s.bucket.AllowN(now, 1) {
		return admit
	}
	if s.lastKoD.IsZero() || now.Sub(s.lastKoD) >= t.kodEvery {
		s.lastKoD = now
		return kissOff
	}
	return drop
}

// lookup returns key's entry, creating it with a full bucket and evicting
// the least recently seen entry when the table is full.
func (t *sourceTable) lookup(key netip.Addr) *source {
	if e, ok := t.bySource[key]; ok {
		t.lru.MoveToFront(e)
		return e.Value.(*source)
	}
	if t.lru.Len() >= t.maxSources {
		oldest := t.lru.Back()
		delete(t.bySource, oldest.Value.(*source).key)
		t.lru.Remove(oldest)
	}
	s := &source{key: key, bucket: rate.NewLimiter(t.limit, t.burst)}
	t.bySource[key] = t.lru.PushFront(s)
	return s
}

// size is the number of sources tracked.
func (t *sourceTable) size() int { return t.lru.Len() }

// sourceKey is the unit of rate limiting: the IPv4 address, or the /64 an
// IPv6 address lies in, since one host commonly holds a whole /64 and
// could otherwise rotate through fresh buckets at will. IPv4-mapped IPv6
// addresses count as IPv4; zones are ignored.
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a
}
