package ntpserver

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/ntp"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"github.com/clockd/clockd/vclock"
)

func TestMain(m *testing.M) {
	if listen := os.Getenv(benchChildListen); listen != "" {
		os.Exit(serveBenchChild(listen, os.Getenv(benchChildLoop)))
	}
	goleak.VerifyTestMain(m)
}

// failsafe bounds every blocking read in these tests, so a broken server
// fails the test instead of hanging it. No test waits on it to pass.
const failsafe = 10 * time.Second

// liveSource is the host's wall clock moved by a known offset, with a
// fixed uncertainty and a status the test can change.
type liveSource struct {
	offset time.Duration
	unc    time.Duration
	status atomic.Int32
}

func newLiveSource(offset, unc time.Duration, status vclock.Status) *liveSource {
	l := &liveSource{offset: offset, unc: unc}
	l.status.Store(int32(status))
	return l
}

func (l *liveSource) read() vclock.Reading {
	return reading(vclock.Status(l.status.Load()), time.Now().Add(l.offset), l.unc)
}

// serve starts a Server on a loopback port and stops it when the test
// ends, checking that Serve returns nil. tweak, if not nil, runs before
// Serve starts.
func serve(t *testing.T, cfg Config, tweak func(*Server)) *Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	return serveWith(t, cfg, tweak)
}

// serveOn is serve on the address listen.
func serveOn(t testing.TB, listen string, cfg Config) *Server {
	t.Helper()
	cfg.Listen = listen
	return serveWith(t, cfg, nil)
}

func serveWith(t testing.TB, cfg Config, tweak func(*Server)) *Server {
	t.Helper()
	cfg.Logger = zaptest.NewLogger(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if tweak != nil {
		tweak(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func query(t *testing.T, addr string, opt ntp.QueryOptions) *ntp.Response {
	t.Helper()
	opt.Timeout = failsafe
	r, err := ntp.QueryWithOptions(addr, opt)
	if err != nil {
		t.Fatalf("query %s: %v", addr, err)
	}
	return r
}

func TestQueryAnswers(t *testing.T) {
	const (
		offset = 3*time.Hour + 17*time.Minute + 1234567*time.Nanosecond
		unc    = 1500 * time.Microsecond
	)
	for _, tc := range []struct {
		name        string
		version     int
		status      vclock.Status
		wantStratum uint8
	}{
		{"v4 synchronized", 4, vclock.StatusSynchronized, 2},
		{"v3 synchronized", 3, vclock.StatusSynchronized, 2},
		{"v4 holdover", 4, vclock.StatusHoldover, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newLiveSource(offset, unc, tc.status)
			s := serve(t, Config{Source: src.read}, nil)
			r := query(t, s.Addr(), ntp.QueryOptions{Version: tc.version})
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			// The server's readings lie between the client's send and
			// receive, so the estimate is off by at most half the round
			// trip; the extra millisecond covers timestamp rounding and
			// the client reading its clock outside the kernel.
			if diff, tol := (r.ClockOffset - offset).Abs(), r.RTT/2+time.Millisecond; diff > tol {
				t.Errorf("ClockOffset %v, want %v within %v", r.ClockOffset, offset, tol)
			}
			if r.Stratum != tc.wantStratum || r.Leap != ntp.LeapNoWarning || r.Version != tc.version {
				t.Errorf("stratum %d leap %d version %d; want %d, 0, %d", r.Stratum, r.Leap, r.Version, tc.wantStratum, tc.version)
			}
			wantDisp := time.Duration(toShort(int64(unc))) * time.Second / (1 << 16)
			if d := (r.RootDispersion - wantDisp).Abs(); d > time.Nanosecond || r.RootDispersion < unc {
				t.Errorf("RootDispersion %v, want %v (the uncertainty %v rounded up)", r.RootDispersion, wantDisp, unc)
			}
			if r.RootDelay != 0 || r.ReferenceID != 0x434c4b44 { // "CLKD"
				t.Errorf("RootDelay %v, ReferenceID %#x", r.RootDelay, r.ReferenceID)
			}
			if got := s.Stats(); got.Answered != 1 {
				t.Errorf("stats %+v, want one answer", got)
			}
		})
	}
}

func TestQueryKissWhenNotSynchronized(t *testing.T) {
	for _, status := range []vclock.Status{vclock.StatusInitializing, vclock.StatusUnsynchronized} {
		t.Run(status.String(), func(t *testing.T) {
			unc := time.Minute
			if status == vclock.StatusInitializing {
				unc = -1
			}
			s := serve(t, Config{Source: newLiveSource(0, unc, status).read}, nil)
			r := query(t, s.Addr(), ntp.QueryOptions{})
			if !r.IsKissOfDeath() || r.KissCode != "INIT" || r.Leap != ntp.LeapNotInSync {
				t.Errorf("stratum %d kiss %q leap %d; want 0, INIT, %d", r.Stratum, r.KissCode, r.Leap, ntp.LeapNotInSync)
			}
			if err := r.Validate(); !errors.Is(err, ntp.ErrKissOfDeath) {
				t.Errorf("Validate: %v, want %v", err, ntp.ErrKissOfDeath)
			}
			if got := s.Stats(); got.UnsynchronizedKoD != 1 || got.Answered != 0 {
				t.Errorf("stats %+v, want one unsynchronized kiss", got)
			}
		})
	}
}

// TestRateLimitPerSource sends from two loopback addresses: 127.0.0.1
// goes over its limit (from fresh ports each time, so the limit is per
// address), and 127.0.0.2 is still answered.
func TestRateLimitPerSource(t *testing.T) {
	src := newLiveSource(0, time.Millisecond, vclock.StatusSynchronized)
	s := serve(t, Config{Source: src.read, RateLimit: rate.Every(time.Hour), Burst: 2},
		func(s *Server) { s.table.kodEvery = time.Hour })

	for i := range 2 {
		if r := query(t, s.Addr(), ntp.QueryOptions{}); r.Stratum != 2 {
			t.Fatalf("query %d: stratum %d, want an answer", i+1, r.Stratum)
		}
	}
	r := query(t, s.Addr(), ntp.QueryOptions{})
	if r.KissCode != "RATE" || r.Leap != ntp.LeapNotInSync {
		t.Fatalf("over the limit: stratum %d kiss %q, want a RATE kiss", r.Stratum, r.KissCode)
	}
	if err := r.Validate(); !errors.Is(err, ntp.ErrKissOfDeath) {
		t.Errorf("Validate: %v, want %v", err, ntp.ErrKissOfDeath)
	}

	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	other.Close()

	// The next request from 127.0.0.1 is dropped (one kiss per kodEvery).
	// The server handles datagrams in arrival order on one goroutine, so
	// once 127.0.0.2 has its answer, any reply to c is already queued.
	c := dialServer(t, s)
	send(t, c, request(4, modeClient, 0, 42, headerLen))
	if r := query(t, s.Addr(), ntp.QueryOptions{LocalAddress: "127.0.0.2"}); r.Stratum != 2 {
		t.Fatalf("other source: stratum %d kiss %q, want an answer", r.Stratum, r.KissCode)
	}
	if n, ok := tryRecv(t, c); ok {
		t.Errorf("got a %d-byte reply to a request over the limit, want none", n)
	}
	want := Stats{Answered: 3, RateLimited: 2, RateKoD: 1}
	if got := s.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// TestMalformedAndOversizedOverUDP sends datagrams the server must ignore,
// then requests with a MAC and with extension fields, from one socket. The
// first reply must answer the first valid request, and every reply is 48
// bytes.
func TestMalformedAndOversizedOverUDP(t *testing.T) {
	src := newLiveSource(0, time.Millisecond, vclock.StatusSynchronized)
	s := serve(t, Config{Source: src.read}, nil)
	c := dialServer(t, s)

	for _, pkt := range [][]byte{
		{},
		request(4, modeClient, 0, 1, 47),
		request(2, modeClient, 0, 2, headerLen),
		request(5, modeClient, 0, 3, headerLen),
		request(4, 6, 0, 4, headerLen),
		request(4, 7, 0, 5, headerLen),
	} {
		send(t, c, pkt)
	}
	for _, tc := range []struct {
		xmit uint64
		n    int
	}{{100, headerLen + 20}, {101, headerLen + 24}, {102, 600}, {103, headerLen}} {
		send(t, c, request(4, modeClient, 0, tc.xmit, tc.n))
		buf := make([]byte, 1500)
		if err := c.SetReadDeadline(time.Now().Add(failsafe)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reply to the %d-byte request: %v", tc.n, err)
		}
		h, err := decodeHeader(buf[:n])
		if err != nil || n != headerLen || h.OrigTime != tc.xmit || h.Stratum != 2 {
			t.Fatalf("reply of %d bytes with origin %d, stratum %d (%v); want 48 bytes answering %d",
				n, h.OrigTime, h.Stratum, err, tc.xmit)
		}
	}
	want := Stats{Answered: 4, Malformed: 6}
	if got := s.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestServeLifecycle(t *testing.T) {
	src := newLiveSource(0, time.Millisecond, vclock.StatusSynchronized)
	s, err := New(Config{Listen: "127.0.0.1:0", Source: src.read})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	query(t, s.Addr(), ntp.QueryOptions{}) // Serve is running
	if err := s.Serve(ctx); !errors.Is(err, ErrServed) {
		t.Errorf("second Serve: %v, want %v", err, ErrServed)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Serve: %v", err)
	}

	// A Server that is never served releases its socket with Close.
	s, err = New(Config{Listen: "127.0.0.1:0", Source: src.read})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s, err = New(Config{Listen: addr, Source: src.read}); err != nil {
		t.Fatalf("rebinding %s after Close: %v", addr, err)
	}
	s.Close()
}

func TestNewRejectsBadConfig(t *testing.T) {
	src := newLiveSource(0, 0, vclock.StatusSynchronized).read
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no listen address", Config{Source: src}, "Listen"},
		{"bad listen address", Config{Listen: "127.0.0.1:http-nope", Source: src}, "Listen"},
		{"no source", Config{Listen: "127.0.0.1:0"}, "Source"},
		{"stratum 16", Config{Listen: "127.0.0.1:0", Source: src, Stratum: 16}, "Stratum"},
		{"negative rate", Config{Listen: "127.0.0.1:0", Source: src, RateLimit: -1}, "RateLimit"},
		{"negative burst", Config{Listen: "127.0.0.1:0", Source: src, Burst: -1}, "Burst"},
		{"negative max sources", Config{Listen: "127.0.0.1:0", Source: src, MaxSources: -1}, "MaxSources"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not wrap ErrInvalidConfig and name %s", err, tc.field)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{Listen: "127.0.0.1:0", Source: newLiveSource(0, 0, vclock.StatusSynchronized).read}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stratum != 2 || cfg.RefID != [4]byte{'C', 'L', 'K', 'D'} || cfg.RateLimit != 8 ||
		cfg.Burst != 16 || cfg.MaxSources != 65536 || cfg.Logger == nil {
		t.Errorf("defaults %+v", cfg)
	}
}

func dialServer(t testing.TB, s *Server) *net.UDPConn {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, pkt []byte) {
	t.Helper()
	if _, err := c.Write(pkt); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// tryRecv reads a datagram already queued on c without waiting.
func tryRecv(t *testing.T, c *net.UDPConn) (int, bool) {
	t.Helper()
	return tryRecvInto(t, c, make([]byte, 1500))
}

// tryRecvInto is tryRecv into buf.
func tryRecvInto(t *testing.T, c *net.UDPConn, buf []byte) (int, bool) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var (
		n    int
		rerr error
	)
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if errors.Is(rerr, unix.EAGAIN) {
		return 0, false
	}
	if rerr != nil {
		t.Fatalf("recv: %v", rerr)
	}
	return n, true
}
