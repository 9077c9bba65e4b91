package ntpserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/beevik/ntp"
	"go.uber.org/zap/zaptest"
	"golang.org/x/time/rate"

	"github.com/clockd/clockd/vclock"
)

// readLoops names the read loops: "kernel" is what Serve runs (on Linux),
// "netpoll" the portable loop through the *net.UDPConn.
var readLoops = []string{"kernel", "netpoll"}

// startLoop serves s with the named read loop until stop is called, which
// closes s and returns what the loop returned.
func startLoop(s *Server, loop string) (stop func() error) {
	done := make(chan error, 1)
	switch loop {
	case "kernel":
		go func() { done <- s.Serve(context.Background()) }()
	case "netpoll":
		go func() { done <- s.readNetpoll() }()
	default:
		panic(fmt.Sprintf("unknown read loop %q", loop))
	}
	return func() error {
		s.Close()
		return <-done
	}
}

// serveLoop is serveWith for either loop: it binds cfg.Listen, runs tweak
// and serves with loop until the test ends.
func serveLoop(t *testing.T, loop string, cfg Config, tweak func(*Server)) *Server {
	t.Helper()
	cfg.Logger = zaptest.NewLogger(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if tweak != nil {
		tweak(s)
	}
	stop := startLoop(s, loop)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("%s loop: %v", loop, err)
		}
	})
	return s
}

// sequenceSource is a Source for comparing servers: the n-th reading
// after the precision reads in New is at t2024 + n ms with status
// statuses[n % len(statuses)]. Each datagram costs one read, so equal
// datagram sequences see equal readings.
type sequenceSource struct {
	mu       sync.Mutex
	statuses []vclock.Status
	reads    int
}

func (q *sequenceSource) read() vclock.Reading {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := max(q.reads-precisionReads, 0)
	q.reads++
	return reading(q.statuses[n%len(q.statuses)], t2024.Add(time.Duration(n)*time.Millisecond), time.Millisecond)
}

// TestLoopsAnswerAlike sends the same datagrams to a server running each
// read loop and expects the same replies, byte for byte, and the same
// counters: malformed datagrams, answers in each status, a RATE kiss, a
// drop, requests longer than the header. Once over IPv4, once on a
// dual-stack socket where the IPv4 client is seen as IPv4-mapped.
func TestLoopsAnswerAlike(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
		client       string // the client of the sequence
		fence        string // the source of the last request
	}{
		{"ipv4", "127.0.0.1:0", "127.0.0.1", "127.0.0.2"},
		{"dual-stack", "[::]:0", "127.0.0.1", "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var replies [][][]byte
			var stats []Stats
			for _, loop := range readLoops {
				r, st := runSequence(t, loop, tc.listen, tc.client, tc.fence)
				replies, stats = append(replies, r), append(stats, st)
			}
			want := Stats{Answered: 4, UnsynchronizedKoD: 1, RateLimited: 2, RateKoD: 1, Malformed: 4}
			for i, loop := range readLoops {
				if stats[i] != want {
					t.Errorf("%s loop: stats %+v, want %+v", loop, stats[i], want)
				}
				if len(replies[i]) != 5 {
					t.Errorf("%s loop: %d replies, want 5", loop, len(replies[i]))
				}
			}
			if !slicesEqual(replies[0], replies[1]) {
				t.Errorf("the loops answered differently:\n%s: %x\n%s: %x", readLoops[0], replies[0], readLoops[1], replies[1])
			}
			wantReplies := []string{"100 stratum 3", "101 kiss INIT", "102 stratum 2", "103 stratum 3", "104 kiss RATE"}
			for i, r := range replies[0] {
				h, err := decodeHeader(r)
				got := fmt.Sprintf("%d stratum %d", h.OrigTime, h.Stratum)
				if h.Stratum == 0 {
					got = fmt.Sprintf("%d kiss %s", h.OrigTime, h.RefID[:])
				}
				if err != nil || len(r) != headerLen || i >= len(wantReplies) || got != wantReplies[i] {
					t.Errorf("reply %d of %d bytes: %s (%v), want %q", i, len(r), got, err, wantReplies[min(i, len(wantReplies)-1)])
				}
			}
		})
	}
}

// runSequence serves listen with loop and sends it the comparison
// sequence from client, then one request from fence; once fence has its
// answer, every reply to client is queued, since the server handles
// datagrams in order. It returns the replies to client and the counters.
func runSequence(t *testing.T, loop, listen, client, fence string) ([][]byte, Stats) {
	t.Helper()
	src := &sequenceSource{statuses: []vclock.Status{
		vclock.StatusSynchronized, vclock.StatusHoldover, vclock.StatusUnsynchronized,
	}}
	s := serveLoop(t, loop, Config{Listen: listen, Source: src.read, RateLimit: rate.Every(time.Hour), Burst: 4},
		func(s *Server) {
			s.table.kodEvery = time.Hour
			s.pol.precision = testPrecision
			s.elapsed = func(time.Time) time.Duration { return 3 * time.Microsecond }
		})
	port := netip.MustParseAddrPort(s.Addr()).Port()
	c := dialFrom(t, client, port)
	// Datagram n gets reading n, whose status is statuses[n % 3].
	for _, pkt := range [][]byte{
		{},                                  // 0 malformed
		request(4, modeClient, 0, 1, 47),    // 1 malformed: short
		request(2, modeClient, 0, 2, 48),    // 2 malformed: version
		request(4, 6, 0, 3, headerLen),      // 3 malformed: mode 6
		request(4, modeClient, 0, 100, 48),  // 4 HOLDOVER: answer, stratum 3
		request(3, modeClient, 6, 101, 68),  // 5 UNSYNCHRONIZED: INIT kiss
		request(4, modeClient, 0, 102, 600), // 6 SYNCHRONIZED: answer
		request(4, modeClient, 0, 103, 48),  // 7 HOLDOVER: answer, last token
		request(4, modeClient, 0, 104, 48),  // 8 RATE kiss
		request(4, modeClient, 0, 105, 48),  // 9 dropped
	} {
		send(t, c, pkt)
	}
	f := dialFrom(t, fence, port)
	send(t, f, request(4, modeClient, 0, 200, headerLen))
	if h := recvHeader(t, f); h.OrigTime != 200 {
		t.Fatalf("fence reply answers %d, want 200", h.OrigTime)
	}
	var replies [][]byte
	for {
		buf := make([]byte, 1500)
		n, ok := tryRecvInto(t, c, buf)
		if !ok {
			break
		}
		replies = append(replies, buf[:n])
	}
	return replies, s.Stats()
}

// dialFrom connects a UDP socket from the address from to the loopback
// server port of its family, skipping the test when from is not
// available.
func dialFrom(t *testing.T, from string, port uint16) *net.UDPConn {
	t.Helper()
	laddr := netip.AddrPortFrom(netip.MustParseAddr(from), 0)
	raddr := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	if laddr.Addr().Is4() {
		raddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
	}
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(laddr), net.UDPAddrFromAddrPort(raddr))
	if err != nil {
		t.Skipf("no client address %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvHeader reads one reply of exactly headerLen bytes.
func recvHeader(t *testing.T, c *net.UDPConn) header {
	t.Helper()
	buf := make([]byte, 1500)
	if err := c.SetReadDeadline(time.Now().Add(failsafe)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if n != headerLen {
		t.Fatalf("reply of %d bytes, want %d", n, headerLen)
	}
	h, err := decodeHeader(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func slicesEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestCloseStopsServe closes a server whose loop waits for datagrams,
// one that is flooded with them, and one never served: Close returns,
// Serve returns nil, and the port can be bound again, so no descriptor
// of the socket is left open. goleak (TestMain) checks that no loop is
// left.
func TestCloseStopsServe(t *testing.T) {
	src := newLiveSource(0, time.Millisecond, vclock.StatusSynchronized)
	newServer := func(t *testing.T) *Server {
		s, err := New(Config{Listen: "127.0.0.1:0", Source: src.read, RateLimit: rate.Inf, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rebind := func(t *testing.T, addr string) {
		t.Helper()
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("rebinding %s after Close: %v", addr, err)
		}
		c.Close()
	}
	t.Run("idle", func(t *testing.T) {
		s := newServer(t)
		done := make(chan error, 1)
		go func() { done <- s.Serve(context.Background()) }()
		query(t, s.Addr(), ntp.QueryOptions{}) // the loop is running
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		rebind(t, s.Addr())
	})
	t.Run("flooded", func(t *testing.T) {
		s := newServer(t)
		done := make(chan error, 1)
		go func() { done <- s.Serve(context.Background()) }()
		c := dialServer(t, s)
		flooding := make(chan struct{})
		stopFlood := make(chan struct{})
		go func() {
			defer close(flooding)
			req := request(4, modeClient, 0, 1, headerLen)
			for {
				select {
				case <-stopFlood:
					return
				default:
				}
				c.Write(req) // the send buffer may fill; errors are fine
			}
		}()
		query(t, s.Addr(), ntp.QueryOptions{}) // the loop is running
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		close(stopFlood)
		<-flooding
		rebind(t, s.Addr())
	})
	t.Run("closed before Serve", func(t *testing.T) {
		s := newServer(t)
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := s.Serve(context.Background()); err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
		rebind(t, s.Addr())
	})
}

// TestServeIPv6 queries a server bound to ::1, and a dual-stack server
// from both families; the IPv4 client's limiter bucket is its IPv4
// address whichever socket family it came in on.
func TestServeIPv6(t *testing.T) {
	src := newLiveSource(0, time.Millisecond, vclock.StatusSynchronized)
	for _, tc := range []struct{ name, listen string }{{"loopback", "[::1]:0"}, {"dual-stack", "[::]:0"}} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Listen: tc.listen, Source: src.read, Logger: zaptest.NewLogger(t)})
			if err != nil {
				t.Skipf("no IPv6: %v", err)
			}
			stop := startLoop(s, "kernel")
			port := netip.MustParseAddrPort(s.Addr()).Port()
			v6 := netip.AddrPortFrom(netip.IPv6Loopback(), port).String()
			if r := query(t, v6, ntp.QueryOptions{}); r.Stratum != 2 {
				t.Errorf("over IPv6: stratum %d kiss %q, want an answer", r.Stratum, r.KissCode)
			}
			want := []netip.Addr{netip.IPv6Unspecified()} // ::1's /64
			if tc.listen == "[::]:0" {
				v4 := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port).String()
				if r := query(t, v4, ntp.QueryOptions{}); r.Stratum != 2 {
					t.Errorf("over IPv4: stratum %d kiss %q, want an answer", r.Stratum, r.KissCode)
				}
				want = append(want, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
			}
			if err := stop(); err != nil {
				t.Errorf("Serve: %v", err)
			}
			// The loop is over; the table is the test's now.
			for _, a := range want {
				if _, ok := s.table.bySource[a]; !ok {
					t.Errorf("no bucket for %s", a)
				}
			}
			if n := s.table.size(); n != len(want) {
				t.Errorf("%d buckets, want %d", n, len(want))
			}
		})
	}
}

// TestServeSteadyStateAllocs checks that answering a known source
// allocates nothing, socket included. The client's connected UDPConn
// allocates nothing either, so the whole process's count is the server's.
func TestServeSteadyStateAllocs(t *testing.T) {
	src := newLiveSource(0, time.Millisecond, vclock.StatusSynchronized)
	s := serve(t, Config{Source: src.read, RateLimit: rate.Limit(1e9), Burst: 1 << 30}, nil)
	c := dialServer(t, s)
	req := request(4, modeClient, 6, 1, headerLen)
	buf := make([]byte, 1500)
	if err := c.SetReadDeadline(time.Now().Add(failsafe)); err != nil {
		t.Fatal(err)
	}
	var failed error
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			failed = errors.Join(failed, err)
			return
		}
		if _, err := c.Read(buf); err != nil {
			failed = errors.Join(failed, err)
		}
	}
	roundTrip() // the source's bucket and the first-use buffers
	if allocs := testing.AllocsPerRun(200, roundTrip); allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if failed != nil {
		t.Fatal(failed)
	}
}
