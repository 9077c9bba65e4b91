package ntpserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/clockd/clockd/vclock"
)

// Defaults for the zero fields of Config.
const (
	DefaultStratum    = 2
	DefaultRateLimit  = rate.Limit(8) // requests/s per source
	DefaultBurst      = 16
	DefaultMaxSources = 65536
)

// DefaultRefID is the Reference ID announced when Config.RefID is zero.
var DefaultRefID = [4]byte{'C', 'L', 'K', 'D'}

const (
	// rateKissEvery is the least time between two RATE kisses to one
	// source; over-limit requests in between are dropped.
	rateKissEvery = time.Second
	// readBufLen bounds the datagram read. Only the first headerLen bytes
	// are looked at; a longer datagram is truncated, which changes nothing.
	readBufLen = 1024
	// precisionReads is how many Source reads New times to set the
	// precision field.
	precisionReads = 32
)

var (
	// ErrInvalidConfig is wrapped by every error New returns for a bad
	// Config field; the message names the field.
	ErrInvalidConfig = errors.New("ntpserver: invalid config")
	// ErrServed is returned by a second call to Serve.
	ErrServed = errors.New("ntpserver: Serve already called")
)

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	// Listen is the UDP host:port to bind, e.g. "127.0.0.1:0" or ":123".
	Listen string
	// Source reads the reference clock. It is called on the Serve
	// goroutine once for every datagram, and 32 times by New to measure
	// its cost. It must be cheap and must not block. Required.
	Source func() vclock.Reading
	// Stratum is announced while the Source is SYNCHRONIZED (1..15); in
	// HOLDOVER the server announces Stratum+1, at most 15.
	Stratum uint8
	// RefID is the Reference ID of normal answers.
	RefID [4]byte
	// RateLimit is the sustained rate of answers per source, in requests/s;
	// rate.Inf turns rate limiting off. A source is an IPv4 address or an
	// IPv6 /64.
	RateLimit rate.Limit
	// Burst is how many requests a source may send at once.
	Burst int
	// MaxSources bounds the per-source limiter table; beyond it the least
	// recently seen source is forgotten.
	MaxSources int
	// Logger receives start and stop messages, and send failures at debug
	// level. Nil logs nothing.
	Logger *zap.Logger
}

// withDefaults validates c and fills in its zero fields.
func (c Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Listen == "":
		return bad("Listen is empty; want host:port")
	case c.Source == nil:
		return bad("Source is nil")
	case c.Stratum > maxStratum:
		return bad("Stratum %d is outside 1..%d", c.Stratum, maxStratum)
	case math.IsNaN(float64(c.RateLimit)) || c.RateLimit < 0:
		return bad("RateLimit %v is negative or NaN", float64(c.RateLimit))
	case c.Burst < 0:
		return bad("Burst %d is negative", c.Burst)
	case c.MaxSources < 0:
		return bad("MaxSources %d is negative", c.MaxSources)
	}
	if c.Stratum == 0 {
		c.Stratum = DefaultStratum
	}
	if c.RefID == [4]byte{} {
		c.RefID = DefaultRefID
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.MaxSources == 0 {
		c.MaxSources = DefaultMaxSources
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// Stats counts what the server did with the datagrams it read. Each
// datagram lands in exactly one of Answered, UnsynchronizedKoD,
// RateLimited and Malformed. The counters count decisions; a reply that
// the socket then failed to send is also counted in SendFailed.
type Stats struct {
	// Answered is the number of normal (mode 4, stratum > 0) answers.
	Answered uint64
	// UnsynchronizedKoD is the number of INIT kisses sent because the
	// clock was initializing or unsynchronized.
	UnsynchronizedKoD uint64
	// RateLimited is the number of requests over their source's limit,
	// whether answered with a RATE kiss or dropped.
	RateLimited uint64
	// RateKoD is the number of RATE kisses sent; RateKoD <= RateLimited.
	RateKoD uint64
	// Malformed is the number of datagrams dropped because they were not
	// NTPv3/v4 client requests: too short, another version or another mode.
	Malformed uint64
	// SendFailed is the number of replies the socket refused.
	SendFailed uint64
}

type counters struct {
	answered, unsyncKoD, rateLimited, rateKoD, malformed, sendFailed atomic.Uint64
}

// Server answers NTP client requests from a reference clock. New binds the
// socket; Serve answers on it until its context ends.
type Server struct {
	src  func() vclock.Reading
	pol  policy
	conn *net.UDPConn
	addr string // conn's local address, which outlives conn
	log  *zap.Logger
	// elapsed is the local time since a time.Now reading: time.Since,
	// except in tests of the decision path, which script it.
	elapsed func(time.Time) time.Duration

	// table is owned by the Serve goroutine.
	table *sourceTable
	stats counters

	// kern is what Close shares with the kernel read loop (serve_linux.go);
	// nil where Serve runs the netpoller loop and for servers without a
	// socket. closing is set first thing in Close, and the kernel loop
	// checks it before every read, so a loop that never has to wait still
	// stops.
	kern    *kernelState
	closing atomic.Bool

	served    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, measures the Source's read cost and binds cfg.Listen.
// The socket is released by Serve when it returns, or by Close.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	laddr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: Listen %q: %v", ErrInvalidConfig, cfg.Listen, err)
	}
	s := newServer(cfg, measurePrecision(cfg.Source))
	s.conn, err = net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("ntpserver: listen on %s (Config.Listen): %w", cfg.Listen, err)
	}
	s.addr = s.conn.LocalAddr().String()
	if s.kern, err = newKernelState(); err != nil {
		s.conn.Close()
		return nil, err
	}
	return s, nil
}

// newServer builds a Server without a socket from a validated Config.
func newServer(cfg Config, precision int8) *Server {
	return &Server{
		src:     cfg.Source,
		pol:     policy{stratum: cfg.Stratum, refID: cfg.RefID, precision: precision},
		log:     cfg.Logger.Named("ntpserver"),
		elapsed: time.Since,
		table: newSourceTable(cfg.RateLimit, cfg.Burst, cfg.MaxSources,
			rateKissEvery),
	}
}

// Addr is the bound local address, host:port.
func (s *Server) Addr() string { return s.addr }

// Stats returns the counters. Safe to call from any goroutine.
func (s *Server) Stats() Stats {
	return Stats{
		Answered:          s.stats.answered.Load(),
		UnsynchronizedKoD: s.stats.unsyncKoD.Load(),
		RateLimited:       s.stats.rateLimited.Load(),
		RateKoD:           s.stats.rateKoD.Load(),
		Malformed:         s.stats.malformed.Load(),
		SendFailed:        s.stats.sendFailed.Load(),
	}
}

// Close releases the socket; a running Serve then returns nil. Serve closes
// the socket itself on return, so Close is needed only for a Server that
// is never served. Close returns once the read loop has let go of the
// socket, so the Source must not call it. Calls after the first return the
// first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.closeErr = s.release()
	})
	return s.closeErr
}

// Serve reads and answers requests on one goroutine, the calling one,
// until ctx ends or Close is called, then closes the socket and returns
// nil. On Linux the goroutine keeps its OS thread for the whole time
// (doc.go, "The read loop"). A read error other than the socket closing
// stops it and is returned. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if !s.served.CompareAndSwap(false, true) {
		return ErrServed
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	defer func() { _ = s.Close() }()

	s.log.Info("ntp server serving",
		zap.String("addr", s.Addr()),
		zap.Uint8("stratum", s.pol.stratum),
		zap.Int8("precision", s.pol.precision),
		zap.Float64("rate-limit", float64(s.table.limit)),
		zap.Int("burst", s.table.burst),
		zap.Int("max-sources", s.table.maxSources))

	if err := s.readLoop(); err != nil {
		return err
	}
	s.log.Info("ntp server stopped", zap.String("addr", s.Addr()))
	return nil
}

// readNetpoll is the portable read loop: it reads and writes through the
// *net.UDPConn, so the goroutine sleeps in Go's netpoller between
// datagrams. It returns nil once the socket is closed.
func (s *Server) readNetpoll() error {
	buf := make([]byte, readBufLen)
	var out [headerLen]byte
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("ntpserver: read: %w", err)
		}
		rx := s.src()
		resp := s.respond(buf[:n], from.Addr(), time.Now(), rx, out[:])
		if resp == nil {
			continue
		}
		if _, err := s.conn.WriteToUDPAddrPort(resp, from); err != nil {
			s.sendFailed(from, err)
		}
	}
}

// sendFailed counts and logs a reply the socket refused.
func (s *Server) sendFailed(to netip.AddrPort, err error) {
	s.stats.sendFailed.Add(1)
	s.log.Debug("ntp send failed", zap.Stringer("to", to), zap.Error(err))
}

// respond decides the reply to the datagram pkt from from and encodes it
// into out, returning the bytes to send, or nil to send nothing. rx is the
// Source reading taken when pkt was read and now the local time read just
// after it; now drives the limiter and dates rx on the local monotonic
// clock. The reply is never longer than pkt.
func (s *Server) respond(pkt []byte, from netip.Addr, now time.Time, rx vclock.Reading, out []byte) []byte {
	h, o := s.decide(pkt, from, now, rx)
	s.count(o)
	if !o.sends() {
		return nil
	}
	if o == outAnswer {
		// The transmit timestamp is rx moved on by the local time since,
		// taken as late as possible; the Source is read once per
		// datagram. max keeps receive <= transmit should the local
		// clock ever report a negative interval.
		h.XmitTime = toTimestamp(rx.Time + max(s.elapsed(now), 0).Nanoseconds())
	}
	h.encode(out)
	return out[:headerLen]
}

func (s *Server) decide(pkt []byte, from netip.Addr, now time.Time, rx vclock.Reading) (header, outcome) {
	req, err := parseRequest(pkt)
	if err != nil {
		return header{}, outMalformed
	}
	switch s.table.check(from, now) {
	case kissOff:
		return kissOfDeath(req, kissRate, s.pol.precision), outRateKoD
	case drop:
		return header{}, outRateDrop
	}
	return answer(req, rx, s.pol)
}

func (s *Server) count(o outcome) {
	switch o {
	case outMalformed:
		s.stats.malformed.Add(1)
	case outRateDrop:
		s.stats.rateLimited.Add(1)
	case outRateKoD:
		s.stats.rateLimited.Add(1)
		s.stats.rateKoD.Add(1)
	case outUnsyncKoD:
		s.stats.unsyncKoD.Add(1)
	case outAnswer:
		s.stats.answered.Add(1)
	}
}

// measurePrecision times precisionReads reads of src and returns the
// precision field for the cheapest.
func measurePrecision(src func() vclock.Reading) int8 {
	best := int64(math.MaxInt64)
	for range precisionReads {
		start := time.Now()
		src()
		best = min(best, time.Since(start).Nanoseconds())
	}
	return precisionExp(best)
}
