package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const endMark = "END"

// socket is a stand-in for systemd's notification socket.
type socket struct {
	t    *testing.T
	conn *net.UnixConn
	path string
}

// listen binds a unixgram socket and points NOTIFY_SOCKET at it.
func listen(t *testing.T) *socket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return &socket{t: t, conn: conn, path: path}
}

// recv blocks until the next datagram.
func (s *socket) recv() string {
	s.t.Helper()
	buf := make([]byte, 4096)
	n, _, err := s.conn.ReadFromUnix(buf)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(buf[:n])
}

// send puts a datagram of the test's own into the queue.
func (s *socket) send(msg string) {
	s.t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		s.t.Fatal(err)
	}
}

// drain returns every datagram queued so far. A datagram is queued once
// its sender's write returns, so after the senders are done nothing more
// arrives before the end mark.
func (s *socket) drain() []string {
	s.t.Helper()
	s.send(endMark)
	var got []string
	for msg := s.recv(); msg != endMark; msg = s.recv() {
		got = append(got, msg)
	}
	return got
}

func enableWatchdog(t *testing.T, usec int, pid int) {
	t.Setenv("WATCHDOG_USEC", strconv.Itoa(usec))
	t.Setenv("WATCHDOG_PID", strconv.Itoa(pid))
}

func TestNotifications(t *testing.T) {
	s := listen(t)
	n := New(zap.NewNop())
	n.Ready()
	n.Status("leader 3\nslot 42")
	n.Stopping()
	want := []string{"READY=1", "STATUS=leader 3 slot 42", "STOPPING=1"}
	if got := s.drain(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	enableWatchdog(t, 1000, os.Getpid())
	core, logs := observer.New(zap.DebugLevel)
	n := New(zap.New(core))
	n.Ready()
	n.Status("x")
	n.Stopping()
	n.Watchdog(context.Background(), nil) // returns at once
	if logs.Len() != 0 {
		t.Errorf("logged %v, want nothing", logs.All())
	}
}

func TestWatchdogOff(t *testing.T) {
	tests := []struct {
		name string
		env  func(t *testing.T)
	}{
		{"no WATCHDOG_USEC", func(t *testing.T) { t.Setenv("WATCHDOG_USEC", ""); t.Setenv("WATCHDOG_PID", "") }},
		{"another process's", func(t *testing.T) { enableWatchdog(t, 1000, os.Getpid()+1) }},
		{"malformed", func(t *testing.T) { enableWatchdog(t, -5, os.Getpid()) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := listen(t)
			tc.env(t)
			New(nil).Watchdog(context.Background(), nil) // returns at once
			if got := s.drain(); len(got) != 0 {
				t.Errorf("got %q, want nothing", got)
			}
		})
	}
}

func TestWatchdogPings(t *testing.T) {
	s := listen(t)
	enableWatchdog(t, 2000, os.Getpid())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		New(nil).Watchdog(ctx, func() error { return nil })
	}()
	for range 3 {
		if got := s.recv(); got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}
	cancel()
	<-done
}

func TestWatchdogFailingHealthStopsPings(t *testing.T) {
	s := listen(t)
	enableWatchdog(t, 2000, os.Getpid())
	ctx, cancel := context.WithCancel(context.Background())
	core, logs := observer.New(zap.InfoLevel)
	checks := make(chan struct{}, 3)
	done := make(chan struct{})
	go func() {
		defer close(done)
		New(zap.New(core)).Watchdog(ctx, func() error {
			select {
			case checks <- struct{}{}:
			default:
			}
			return errors.New("driver stalled")
		})
	}()
	for range cap(checks) {
		<-checks
	}
	cancel()
	<-done
	if got := s.drain(); len(got) != 0 {
		t.Errorf("got %q while unhealthy, want nothing", got)
	}
	withheld := logs.FilterMessage("watchdog pings withheld: health check failed").All()
	if len(withheld) != 1 || withheld[0].ContextMap()["error"] != "driver stalled" {
		t.Errorf("withheld logs %v, want one with the error", withheld)
	}
}

// TestWatchdogResumes drives ticks by hand. The health check marks each
// call in the socket's queue, so the queue shows which checks a ping
// followed.
func TestWatchdogResumes(t *testing.T) {
	s := listen(t)
	core, logs := observer.New(zap.InfoLevel)
	health := []error{nil, errors.New("a"), errors.New("b"), nil, nil}
	calls := 0
	healthy := func() error {
		calls++
		s.send(fmt.Sprintf("check %d", calls))
		return health[calls-1]
	}
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		New(zap.New(core)).watchdog(ctx, ticks, healthy)
	}()
	for range health {
		ticks <- time.Time{}
	}
	cancel()
	<-done
	want := []string{"check 1", "WATCHDOG=1", "check 2", "check 3", "check 4", "WATCHDOG=1", "check 5", "WATCHDOG=1"}
	if got := s.drain(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	wantLogs := []string{"watchdog pings withheld: health check failed", "watchdog pings resumed: health check passed"}
	if !slices.Equal(msgs, wantLogs) {
		t.Errorf("logs %q, want %q", msgs, wantLogs)
	}
}

func TestPingFailureLoggedOnce(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "missing"))
	core, logs := observer.New(zap.InfoLevel)
	n := New(zap.New(core))
	n.Ready()
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.watchdog(ctx, ticks, nil)
	}()
	for range 3 {
		ticks <- time.Time{}
	}
	cancel()
	<-done
	if got := logs.FilterMessage("systemd notification failed").Len(); got != 1 {
		t.Errorf("%d failed-notification logs for Ready, want 1", got)
	}
	if got := logs.FilterMessage("watchdog ping failed").Len(); got != 1 {
		t.Errorf("%d failed-ping logs for 3 failed pings, want 1", got)
	}
}
