package ntpserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/ntp"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"github.com/clockd/clockd/vclock"
)

// benchConfig lets every request through the limiter, which still runs.
func benchConfig(listen string) Config {
	src := newLiveSource(0, time.Millisecond, vclock.StatusSynchronized)
	return Config{Listen: listen, Source: src.read, RateLimit: rate.Limit(1e9), Burst: 1 << 30, Logger: zap.NewNop()}
}

// BenchmarkRespond is the decision path alone: parse, limiter, answer,
// encode.
func BenchmarkRespond(b *testing.B) {
	src := newLiveSource(0, time.Millisecond, vclock.StatusSynchronized)
	s := newSocketless(b, Config{Source: src.read, RateLimit: rate.Limit(1e9), Burst: 1 << 30}, time.Microsecond)
	pkt := request(4, modeClient, 6, 1, headerLen)
	from := netip.MustParseAddr("192.0.2.1")
	rx := src.read()
	var out [headerLen]byte
	b.ReportAllocs()
	for range b.N {
		if s.respond(pkt, from, time.Now(), rx, out[:]) == nil {
			b.Fatal("no reply")
		}
	}
}

// Environment of the server processes BenchmarkServeProcess starts: this
// test binary, which then serves instead of testing.
const (
	benchChildListen = "NTPSERVER_BENCH_LISTEN" // the address to bind
	benchChildLoop   = "NTPSERVER_BENCH_LOOP"   // "kernel" or "netpoll"
	// benchPeer, set by whoever runs the benchmark, adds another NTP
	// server at that host:port (e.g. a chronyd) to the rotation.
	benchPeer = "NTPSERVER_BENCH_PEER"
)

// BenchmarkServeProcess is the round trip of one request to a Server in
// another process, as an NTP client sees it, one request outstanding. One
// server process runs each read loop; every iteration queries each server
// once, in rotating order, so that they meet the same background load.
// Two clients: "raw" blocks in the kernel on an OS thread of its own, so
// that the figures are mostly the servers'; "query" is a
// github.com/beevik/ntp query, socket set-up included, as bench/time makes
// it. LOOP-p50-ns and LOOP-p99-ns are each server's quantiles; ns/op is
// the time for one query to each.
func BenchmarkServeProcess(b *testing.B) {
	clients := []struct {
		name string
		new  func(*testing.B, netip.AddrPort) func() error
	}{{"raw", rawClient}, {"query", queryClient}}
	for _, c := range clients {
		for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
			b.Run(c.name+"/"+listen, func(b *testing.B) {
				var names []string
				var calls []func() error
				for _, loop := range readLoops {
					addr, err := startServerProcess(b, loop, listen)
					if err != nil {
						b.Skip(err)
					}
					names, calls = append(names, loop), append(calls, c.new(b, addr))
				}
				if peer, err := netip.ParseAddrPort(os.Getenv(benchPeer)); err == nil &&
					peer.Addr().Is4() == strings.HasPrefix(listen, "127.") {
					names, calls = append(names, "peer"), append(calls, c.new(b, peer))
				}
				benchRotation(b, names, calls)
			})
		}
	}
}

// benchRotation runs b.N rounds of one call to each of calls, in rotating
// order, and reports each call's latency quantiles under its name.
func benchRotation(b *testing.B, names []string, calls []func() error) {
	lat := make([][]int64, len(calls))
	for i := range lat {
		lat[i] = make([]int64, 0, b.N)
	}
	b.ResetTimer()
	for i := range b.N {
		for j := range calls {
			k := (i + j) % len(calls)
			start := time.Now()
			if err := calls[k](); err != nil {
				b.Fatalf("%s: %v", names[k], err)
			}
			lat[k] = append(lat[k], time.Since(start).Nanoseconds())
		}
	}
	b.StopTimer()
	for k, name := range names {
		slices.Sort(lat[k])
		b.ReportMetric(float64(lat[k][len(lat[k])/2]), name+"-p50-ns")
		b.ReportMetric(float64(lat[k][len(lat[k])*99/100]), name+"-p99-ns")
	}
}

// startServerProcess runs this binary as a server process with the given
// loop on listen, stopped when b ends, and returns its address.
func startServerProcess(b *testing.B, loop, listen string) (netip.AddrPort, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchChildListen+"="+listen, benchChildLoop+"="+loop)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("server process: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("server process: %w", err)
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "error "); ok {
		return netip.AddrPort{}, errors.New(msg)
	}
	return netip.ParseAddrPort(line)
}

// serveBenchChild is the server process: it serves on the address the
// environment names, prints it on stdout, and stops when stdin closes.
func serveBenchChild(listen, loop string) int {
	s, err := New(benchConfig(listen))
	if err != nil {
		fmt.Printf("error %v\n", err)
		return 0
	}
	fmt.Println(s.Addr())
	stop := startLoop(s, loop)
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

// rawClient returns a call that sends one request to addr and reads the
// reply on a connected blocking socket, so that the calling thread sleeps
// in the kernel, not in Go's netpoller. The benchmark goroutine is locked
// to its thread until b ends.
func rawClient(b *testing.B, addr netip.AddrPort) func() error {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	if addr.Addr().Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	unix.CloseOnExec(fd)
	b.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != nil {
		b.Fatal(err)
	}
	// A reply that takes longer than this fails the benchmark rather
	// than hanging it.
	tv := unix.NsecToTimeval(int64(failsafe))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		b.Fatal(err)
	}
	req := request(4, modeClient, 6, 1, headerLen)
	buf := make([]byte, 1500)
	return func() error {
		if _, err := unix.Write(fd, req); err != nil {
			return err
		}
		n, err := unix.Read(fd, buf)
		for err == unix.EINTR {
			n, err = unix.Read(fd, buf)
		}
		if err == nil && n != headerLen {
			err = fmt.Errorf("reply of %d bytes", n)
		}
		return err
	}
}

// queryClient returns a call that makes one github.com/beevik/ntp query
// to addr, which opens and closes a socket of its own.
func queryClient(_ *testing.B, addr netip.AddrPort) func() error {
	return func() error {
		r, err := ntp.QueryWithOptions(addr.String(), ntp.QueryOptions{Timeout: failsafe})
		if err == nil && r.Stratum == 0 {
			err = fmt.Errorf("kiss %q", r.KissCode)
		}
		return err
	}
}

// BenchmarkRespondSources is the decision path with a new source every
// eight requests, as bench/time queries, the table never full.
func BenchmarkRespondSources(b *testing.B) {
	src := newLiveSource(0, time.Millisecond, vclock.StatusSynchronized)
	s := newSocketless(b, Config{Source: src.read}, time.Microsecond)
	pkt := request(4, modeClient, 6, 1, headerLen)
	rx := src.read()
	var out [headerLen]byte
	b.ReportAllocs()
	for i := range b.N {
		from := netip.AddrFrom4([4]byte{127, 3, byte(i >> 11), byte(i >> 3)})
		if s.respond(pkt, from, time.Now(), rx, out[:]) == nil {
			b.Fatal("no reply")
		}
	}
}
