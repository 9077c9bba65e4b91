package main

import (
	"context"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/beevik/ntp"

	"github.com/clockd/clockd/ntpserver"
)

// NTP servers of the NTP rows.
const (
	serverClockd  = "clockd"
	serverChronyd = "chronyd"
)

const (
	// ntpTimeout bounds one query; a query without an answer by then
	// counts as an error.
	ntpTimeout = time.Second
	// ntpSourceBlock is the second octet of the loopback addresses the
	// queries come from: 127.ntpSourceBlock.x.y.
	ntpSourceBlock = 3
	// queriesPerSource is how many queries each server gets from one
	// source address: half of clockd's per-source burst, so its rate
	// limiter never has to refuse one.
	queriesPerSource = ntpserver.DefaultBurst / 2
)

// ntpSources hands out loopback source addresses, each for
// queriesPerSource queries to every server. After 65,535 addresses it
// starts again from the first, whose bucket has long refilled.
type ntpSources struct {
	next, used int
}

func (s *ntpSources) addr() netip.Addr {
	if s.used == queriesPerSource {
		s.next, s.used = (s.next+1)%maxLoopbackIndex, 0
	}
	s.used++
	return loopbackAddr(ntpSourceBlock, s.next)
}

// ntpServer is one server the rows query.
type ntpServer struct {
	name, addr string
	rounds     []ntpRound
	errors     int // over every round
	first      error
}

// ntpRound is one server's answers in one round.
type ntpRound struct {
	p50, p99 time.Duration
	answers  int
}

// queryNTP makes one query from src and returns its latency: the time
// QueryWithOptions took, which opens and closes its own socket. A reply
// that does not validate (a kiss, an unsynchronized server) is an error.
func queryNTP(addr string, src netip.Addr) (time.Duration, error) {
	begin := time.Now()
	r, err := ntp.QueryWithOptions(addr, ntp.QueryOptions{Timeout: ntpTimeout, LocalAddress: src.String()})
	d := time.Since(begin)
	if err == nil {
		err = r.Validate()
	}
	return d, err
}

// ntpRows queries clockd's NTP server on the leader and, when configured,
// a chronyd started for the purpose: a warm-up, then Repeat rounds of
// NTPQueries to each, one outstanding query at a time, alternating
// between the servers and swapping which goes first.
func (b *bench) ntpRows(ctx context.Context) ([]NTPRow, error) {
	var src ntpSources
	servers := []*ntpServer{{name: serverClockd, addr: b.leader.NTPAddr}}
	chronyNote := b.cfg.NoChrony
	if b.cfg.Chronyd != "" {
		c, err := b.startChronyd(ctx, &src)
		if err != nil {
			chronyNote = err.Error()
			b.progress("chronyd: %v", err)
		} else {
			defer c.stop()
			servers = append(servers, &ntpServer{name: serverChronyd, addr: c.addr})
		}
	}
	b.progress("NTP: %v warm-up, then %d rounds of %d queries to each of %d servers", b.cfg.Warmup, b.cfg.Repeat,
		b.cfg.NTPQueries, len(servers))
	for end := time.Now().Add(b.cfg.Warmup); time.Now().Before(end) && ctx.Err() == nil; {
		a := src.addr()
		for _, s := range servers {
			queryNTP(s.addr, a)
		}
	}
	for r := range b.cfg.Repeat {
		if err := queryRound(ctx, servers, &src, b.cfg.NTPQueries); err != nil {
			return nil, err
		}
		for _, s := range servers {
			x := s.rounds[r]
			b.progress("NTP %s (round %d of %d): p50 %v, p99 %v, %d answers", s.name, r+1, b.cfg.Repeat, x.p50, x.p99, x.answers)
		}
	}
	rows := make([]NTPRow, 0, 2)
	for _, s := range servers {
		rows = append(rows, newNTPRow(s, b.cfg.NTPQueries))
	}
	if len(servers) == 1 {
		rows = append(rows, NTPRow{Server: serverChronyd, Note: chronyNote})
	}
	return rows, nil
}

// queryRound sends queries to every server and appends a round to each.
func queryRound(ctx context.Context, servers []*ntpServer, src *ntpSources, queries int) error {
	lat := make([][]int64, len(servers))
	for i := range queries {
		if err := ctx.Err(); err != nil {
			return err
		}
		a := src.addr()
		for j := range servers {
			k := (i + j) % len(servers)
			s := servers[k]
			d, err := queryNTP(s.addr, a)
			if err != nil {
				s.errors++
				if s.first == nil {
					s.first = err
				}
				continue
			}
			lat[k] = append(lat[k], d.Nanoseconds())
		}
	}
	for k, s := range servers {
		p50, p99 := quantiles(lat[k])
		s.rounds = append(s.rounds, ntpRound{p50: p50, p99: p99, answers: len(lat[k])})
	}
	return nil
}

// startChronyd starts chronyd in the run's directory and waits for its
// first valid answer.
func (b *bench) startChronyd(ctx context.Context, src *ntpSources) (*chronyd, error) {
	b.progress("starting %s -x -d -f <conf> on loopback", b.cfg.Chronyd)
	c, err := startChronyd(b.cfg.Chronyd, filepath.Join(b.dir, "chrony"))
	if err != nil {
		return nil, err
	}
	err = c.waitReady(ctx, func() error {
		_, err := queryNTP(c.addr, src.addr())
		return err
	})
	if err != nil {
		c.stop()
		return nil, err
	}
	b.progress("chronyd answers on %s", c.addr)
	return c, nil
}
