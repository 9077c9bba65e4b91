package client

import (
	"context"
	"errors"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/auth"
	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/api/internal/apitest"
	"github.com/clockd/clockd/api/internal/fake"
	"github.com/clockd/clockd/api/internal/testpki"
	"github.com/clockd/clockd/vclock"
)

const sec = int64(time.Second)

func synced(t int64) vclock.Reading {
	return vclock.Reading{Time: t, Earliest: t - 1e6, Latest: t + 1e6, Status: vclock.StatusSynchronized}
}

// serveInsecure serves the backends in dev mode and dials them.
func serveInsecure(t *testing.T, ft *fake.Time, fa *fake.Admin) *Client {
	t.Helper()
	addr, _ := apitest.Serve(t, ft, fa, auth.Interceptors(true)...)
	c, err := Dial(t.Context(), addr, Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRoundTrip(t *testing.T) {
	ctx := t.Context()
	ft := fake.NewTime(synced(100*sec), 1000)
	members := []*clockdv1.Member{{Id: 1, Addr: "h1:7000"}}
	fa := fake.NewAdmin(&clockdv1.StatusResponse{NodeId: 1, LeaderId: 1, Role: clockdv1.Role_ROLE_LEADER},
		&clockdv1.MembersResponse{Members: members, ConfigSlot: 3})
	c := serveInsecure(t, ft, fa)

	if r, err := c.Now(ctx); err != nil || r != synced(100*sec) {
		t.Fatalf("Now = %+v, %v", r, err)
	}
	if ts, err := c.Timestamp(ctx); err != nil || ts != 1000 {
		t.Fatalf("Timestamp = %d, %v; want 1000", ts, err)
	}
	if first, err := c.Timestamps(ctx, 10); err != nil || first != 1001 {
		t.Fatalf("Timestamps(10) = %d, %v; want 1001", first, err)
	}
	if _, err := c.Timestamps(ctx, 0); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Timestamps(0): %v, want InvalidArgument", err)
	}
	if r, err := c.WaitUntil(ctx, 99*sec); err != nil || r.Earliest <= 99*sec {
		t.Fatalf("WaitUntil = %+v, %v", r, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.GetRole() != clockdv1.Role_ROLE_LEADER {
		t.Fatalf("Status = %v, %v", st, err)
	}
	ms, err := c.Members(ctx)
	if err != nil || ms.GetConfigSlot() != 3 || len(ms.GetMembers()) != 1 {
		t.Fatalf("Members = %v, %v", ms, err)
	}
	if err := c.AddMember(ctx, 2, "h2:7000", true); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveMember(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.TransferLeader(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.AddMember(ctx, 0, "h2:7000", false); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("AddMember(id 0): %v, want InvalidArgument", err)
	}
	want := []string{"add 2 h2:7000 learner=true", "remove 2", "transfer 1"}
	if got := fa.Recorded(); !slices.Equal(got, want) {
		t.Errorf("admin calls = %q, want %q", got, want)
	}
	if _, err := c.Time().Now(ctx, &clockdv1.NowRequest{}); err != nil {
		t.Errorf("raw Time stub: %v", err)
	}
	if _, err := c.Admin().Members(ctx, &clockdv1.MembersRequest{}); err != nil {
		t.Errorf("raw Admin stub: %v", err)
	}
}

func TestWaitUntilDeadline(t *testing.T) {
	c := serveInsecure(t, fake.NewTime(synced(100*sec), 1), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.WaitUntil(ctx, 110*sec); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("WaitUntil: %v, want DeadlineExceeded", err)
	}
}

func TestWatch(t *testing.T) {
	ft := fake.NewTime(vclock.Reading{Time: 1, Earliest: math.MinInt64, Latest: math.MaxInt64,
		Status: vclock.StatusInitializing}, 1)
	c := serveInsecure(t, ft, nil)
	ctx, cancel := context.WithCancel(t.Context())
	w, err := c.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.Status != vclock.StatusInitializing || r.Bounded() {
		t.Fatalf("first reading = %+v, %v", r, err)
	}
	for _, st := range []vclock.Status{vclock.StatusSynchronized, vclock.StatusHoldover, vclock.StatusUnsynchronized} {
		want := vclock.Reading{Time: 10, Earliest: 5, Latest: 15, Status: st}
		ft.Set(want)
		if r, err := w.Recv(); err != nil || r != want {
			t.Fatalf("after the change to %v: %+v, %v", st, r, err)
		}
	}
	cancel()
	if _, err := w.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: %v, want Canceled", err)
	}
}

// blockFirst makes the fake's first Timestamp call wait for release, and
// reports on started when it begins.
func blockFirst(ft *fake.Time) (started <-chan struct{}, release func()) {
	s, r := make(chan struct{}), make(chan struct{})
	ft.OnTimestamp = func(_ context.Context, call int, _ uint32) {
		if call == 1 {
			close(s)
			<-r
		}
	}
	return s, sync.OnceFunc(func() { close(r) })
}

// queueHook counts callers that have queued in c's batcher.
func queueHook(c *Client) *sync.WaitGroup {
	var wg sync.WaitGroup
	c.ts.onQueued = wg.Done
	return &wg
}

// timestamps runs n Timestamp calls at once, each after wg.Add(1).
func timestamps(c *Client, ctx context.Context, wg *sync.WaitGroup, n int) <-chan result {
	out := make(chan result, n)
	for range n {
		wg.Add(1)
		go func() {
			ts, err := c.Timestamp(ctx)
			out <- result{ts, err}
		}()
	}
	return out
}

type result struct {
	ts  uint64
	err error
}

func collect(t *testing.T, ch <-chan result, n int) []uint64 {
	t.Helper()
	var got []uint64
	for range n {
		r := <-ch
		if r.err != nil {
			t.Fatalf("Timestamp: %v", r.err)
		}
		got = append(got, r.ts)
	}
	slices.Sort(got)
	return got
}

func consecutive(got []uint64, from uint64) bool {
	for i, v := range got {
		if v != from+uint64(i) {
			return false
		}
	}
	return true
}

func TestTimestampBatching(t *testing.T) {
	const callers = 50
	ft := fake.NewTime(synced(sec), 1<<20)
	started, release := blockFirst(ft)
	defer release()
	c := serveInsecure(t, ft, nil)
	queued := queueHook(c)

	first := timestamps(c, t.Context(), queued, 1)
	<-started // the first request is in flight and held
	rest := timestamps(c, t.Context(), queued, callers-1)
	queued.Wait() // every caller has queued behind it
	release()

	got := append(collect(t, first, 1), collect(t, rest, callers-1)...)
	slices.Sort(got)
	if !consecutive(got, 1<<20) {
		t.Errorf("timestamps %v are not %d distinct consecutive values from %d", got, callers, 1<<20)
	}
	if calls := ft.Calls(); !slices.Equal(calls, []uint32{1, callers - 1}) {
		t.Errorf("requests asked for %v; want [1 %d]: one request for all the callers that queued", calls, callers-1)
	}
}

func TestTimestampBatchCap(t *testing.T) {
	ft := fake.NewTime(synced(sec), 7)
	started, release := blockFirst(ft)
	defer release()
	c := serveInsecure(t, ft, nil)
	c.ts.maxBatch = 3
	queued := queueHook(c)

	first := timestamps(c, t.Context(), queued, 1)
	<-started
	rest := timestamps(c, t.Context(), queued, 8)
	queued.Wait()
	release()
	got := append(collect(t, first, 1), collect(t, rest, 8)...)
	slices.Sort(got)
	if !consecutive(got, 7) {
		t.Errorf("timestamps %v are not 9 consecutive values from 7", got)
	}
	if calls := ft.Calls(); !slices.Equal(calls, []uint32{1, 3, 3, 2}) {
		t.Errorf("requests asked for %v, want [1 3 3 2]", calls)
	}
}

func TestTimestampQueuedCallerLeaves(t *testing.T) {
	ft := fake.NewTime(synced(sec), 100)
	started, release := blockFirst(ft)
	defer release()
	c := serveInsecure(t, ft, nil)
	queued := queueHook(c)

	first := timestamps(c, t.Context(), queued, 1)
	<-started
	leaving, leave := context.WithCancel(t.Context())
	gone := timestamps(c, leaving, queued, 1)
	staying := timestamps(c, t.Context(), queued, 1)
	queued.Wait()
	leave()
	if r := <-gone; status.Code(r.err) != codes.Canceled {
		t.Fatalf("canceled caller got %d, %v; want Canceled", r.ts, r.err)
	}
	release()
	got := append(collect(t, first, 1), collect(t, staying, 1)...)
	if !slices.Equal(got, []uint64{100, 101}) {
		t.Errorf("timestamps = %v, want [100 101]", got)
	}
	if calls := ft.Calls(); !slices.Equal(calls, []uint32{1, 1}) {
		t.Errorf("requests asked for %v, want [1 1]: the caller that left is not asked for", calls)
	}
}

func TestTimestampRequestCanceledWhenCallersLeave(t *testing.T) {
	ft := fake.NewTime(synced(sec), 1)
	entered, serverSawCancel := make(chan struct{}), make(chan struct{})
	ft.OnTimestamp = func(ctx context.Context, call int, _ uint32) {
		if call == 1 {
			close(entered)
			<-ctx.Done()
			close(serverSawCancel)
		}
	}
	c := serveInsecure(t, ft, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Timestamp(ctx)
		done <- err
	}()
	<-entered
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("Timestamp: %v, want Canceled", err)
	}
	<-serverSawCancel
	// The batcher is free again.
	if ts, err := c.Timestamp(t.Context()); err != nil || ts != 1 {
		t.Fatalf("next Timestamp = %d, %v", ts, err)
	}
}

func TestTimestampAfterClose(t *testing.T) {
	c := serveInsecure(t, fake.NewTime(synced(sec), 1), nil)
	c.Close()
	if _, err := c.Timestamp(t.Context()); status.Code(err) != codes.Canceled {
		t.Fatalf("Timestamp after Close: %v, want Canceled", err)
	}
}

func TestDialTLSFiles(t *testing.T) {
	ca := testpki.NewCA(t)
	fa := fake.NewAdmin(&clockdv1.StatusResponse{}, &clockdv1.MembersResponse{})
	opts := append(auth.Interceptors(false), grpc.Creds(credentials.NewTLS(ca.ServerConfig(t))))
	addr, _ := apitest.Serve(t, fake.NewTime(synced(sec), 1), fa, opts...)
	caFile, adminCert, adminKey := ca.WriteFiles(t, t.TempDir(), ca.Client(t, "clockd:admin"))
	_, hostCert, hostKey := ca.WriteFiles(t, t.TempDir(), ca.Client(t, "clockd:host"))

	admin, err := Dial(t.Context(), addr, Options{CAFile: caFile, CertFile: adminCert, KeyFile: adminKey, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.AddMember(t.Context(), 5, "h5:7000", false); err != nil {
		t.Fatalf("admin AddMember: %v", err)
	}

	host, err := Dial(t.Context(), addr, Options{CAFile: caFile, CertFile: hostCert, KeyFile: hostKey, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if err := host.AddMember(t.Context(), 6, "h6:7000", false); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("host AddMember: %v, want PermissionDenied", err)
	}
	if _, err := host.Now(t.Context()); err != nil {
		t.Fatalf("host Now: %v", err)
	}

	anon, err := Dial(t.Context(), addr, Options{CAFile: caFile, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.Now(t.Context()); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no certificate: %v, want Unauthenticated", err)
	}

	cert := ca.Client(t, "clockd:vm:1")
	vm, err := Dial(t.Context(), addr, Options{TLS: ca.ClientConfig(&cert)})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if _, err := vm.Timestamp(t.Context()); err != nil {
		t.Fatalf("vm Timestamp: %v", err)
	}
	if got := fa.Recorded(); !slices.Equal(got, []string{"add 5 h5:7000 learner=false"}) {
		t.Errorf("admin backend saw %q", got)
	}
}

func TestDialErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		msg  string
	}{
		{"no TLS", Options{}, "no TLS configuration"},
		{"missing CA", Options{CAFile: "/nonexistent/ca.pem"}, "read CA"},
		{"CA not PEM", Options{CAFile: "client_test.go"}, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dial(t.Context(), "127.0.0.1:1", tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Dial: %v, want an error containing %q", err, tc.msg)
			}
		})
	}
	ca := testpki.NewCA(t)
	caFile, _, _ := ca.WriteFiles(t, t.TempDir(), ca.Client(t))
	_, err := Dial(t.Context(), "127.0.0.1:1", Options{CAFile: caFile, CertFile: "x.pem"})
	if err == nil || !strings.Contains(err.Error(), "set both Options.CertFile and Options.KeyFile") {
		t.Fatalf("cert without key: %v", err)
	}
}

func TestDialGivesUpWithContext(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, addr, Options{Insecure: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial: %v, want DeadlineExceeded", err)
	}
}
