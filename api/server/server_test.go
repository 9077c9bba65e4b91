package server_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/api/internal/apitest"
	"github.com/clockd/clockd/api/internal/fake"
	"github.com/clockd/clockd/api/server"
	"github.com/clockd/clockd/vclock"
)

const sec = int64(time.Second)

// synced is a SYNCHRONIZED reading at t with a ±1ms bound.
func synced(t int64) vclock.Reading {
	return vclock.Reading{Time: t, Earliest: t - 1e6, Latest: t + 1e6, Status: vclock.StatusSynchronized}
}

var (
	unbounded = vclock.Reading{Time: 5 * sec, Earliest: math.MinInt64, Latest: math.MaxInt64,
		Status: vclock.StatusInitializing}
	statusResp = &clockdv1.StatusResponse{
		NodeId: 1, LeaderId: 2, Ballot: &clockdv1.Ballot{Round: 7, Node: 2}, Role: clockdv1.Role_ROLE_FOLLOWER,
		Members:   []*clockdv1.Member{{Id: 1, Addr: "h1:7000"}, {Id: 2, Addr: "h2:7000"}, {Id: 3, Addr: "h3:7000", Learner: true}},
		Reference: clockdv1.NewReading(synced(100 * sec)), LocalOffsetNanos: -1500, DriftPpb: 12,
		Falsetickers: []uint64{3}, LastTickAgeNanos: 2e8, LastTickSeq: 41, CommitSlot: 900, AppliedSlot: 899,
	}
	membersResp = &clockdv1.MembersResponse{
		Members: statusResp.Members, ConfigSlot: 12,
		Pending: []*clockdv1.Member{{Id: 1, Addr: "h1:7000"}, {Id: 2, Addr: "h2:7000"}},
	}
)

type stubs struct {
	time  clockdv1.TimeServiceClient
	admin clockdv1.AdminServiceClient
	conn  *grpc.ClientConn
}

func serve(t *testing.T, tb server.TimeBackend, ab server.AdminBackend, opts ...grpc.ServerOption) stubs {
	t.Helper()
	addr, _ := apitest.Serve(t, tb, ab, opts...)
	conn := apitest.Conn(t, addr)
	return stubs{clockdv1.NewTimeServiceClient(conn), clockdv1.NewAdminServiceClient(conn), conn}
}

func wantCode(t *testing.T, err error, code codes.Code, msgPart string) {
	t.Helper()
	s := status.Convert(err)
	if s.Code() != code || !strings.Contains(s.Message(), msgPart) {
		t.Fatalf("got %v: %q, want %v containing %q", s.Code(), s.Message(), code, msgPart)
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := t.Context()
	ft := fake.NewTime(synced(100*sec), 1<<30)
	fa := fake.NewAdmin(statusResp, membersResp)
	c := serve(t, ft, fa)

	r, err := c.time.Now(ctx, &clockdv1.NowRequest{})
	if err != nil || r.VClock() != synced(100*sec) || !r.GetBounded() {
		t.Fatalf("Now = %v, %v", r, err)
	}
	ts, err := c.time.Timestamp(ctx, &clockdv1.TimestampRequest{Count: 5})
	if err != nil || ts.GetFirst() != 1<<30 || ts.GetCount() != 5 {
		t.Fatalf("Timestamp(5) = %v, %v", ts, err)
	}
	ts, err = c.time.Timestamp(ctx, &clockdv1.TimestampRequest{Count: clockdv1.MaxTimestampBatch})
	if err != nil || ts.GetFirst() != 1<<30+5 || ts.GetCount() != clockdv1.MaxTimestampBatch {
		t.Fatalf("Timestamp(max) = %v, %v", ts, err)
	}
	r, err = c.time.WaitUntil(ctx, &clockdv1.WaitUntilRequest{TimeUnixNano: 99 * sec})
	if err != nil || r.VClock() != synced(100*sec) {
		t.Fatalf("WaitUntil(past) = %v, %v", r, err)
	}
	st, err := c.admin.Status(ctx, &clockdv1.StatusRequest{})
	if err != nil || !proto.Equal(st, statusResp) {
		t.Fatalf("Status = %v, %v", st, err)
	}
	ms, err := c.admin.Members(ctx, &clockdv1.MembersRequest{})
	if err != nil || !proto.Equal(ms, membersResp) {
		t.Fatalf("Members = %v, %v", ms, err)
	}
	if _, err := c.admin.AddMember(ctx, &clockdv1.AddMemberRequest{Id: 4, Addr: "[::1]:7000", Learner: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.RemoveMember(ctx, &clockdv1.RemoveMemberRequest{Id: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.TransferLeader(ctx, &clockdv1.TransferLeaderRequest{Id: 1}); err != nil {
		t.Fatal(err)
	}
	want := []string{"add 4 [::1]:7000 learner=true", "remove 3", "transfer 1"}
	if got := fa.Recorded(); !slices.Equal(got, want) {
		t.Errorf("admin calls = %q, want %q", got, want)
	}
}

func TestValidation(t *testing.T) {
	ft := fake.NewTime(synced(100*sec), 1)
	fa := fake.NewAdmin(statusResp, membersResp)
	c := serve(t, ft, fa)
	long := strings.Repeat("a", 300) + ":1"
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
		msg  string
	}{
		{"count 0", timestamp(c, 0), "count must be 1 to 65536, got 0"},
		{"count 65537", timestamp(c, clockdv1.MaxTimestampBatch+1), "count must be 1 to 65536, got 65537"},
		{"add id 0", addMember(c, 0, "h:1"), "id must not be 0"},
		{"add empty addr", addMember(c, 4, ""), `addr must be host:port, got ""`},
		{"add no port", addMember(c, 4, "h"), `addr must be host:port, got "h": address h: missing port in address`},
		{"add no host", addMember(c, 4, ":7000"), `addr must be host:port, got ":7000": empty host`},
		{"add port 0", addMember(c, 4, "h:0"), `port "0" is not 1 to 65535`},
		{"add port too big", addMember(c, 4, "h:65536"), `port "65536" is not 1 to 65535`},
		{"add port name", addMember(c, 4, "h:ntp"), `port "ntp" is not 1 to 65535`},
		{"add long addr", addMember(c, 4, long), "longer than 259 bytes"},
		{"remove id 0", func(ctx context.Context) error {
			_, err := c.admin.RemoveMember(ctx, &clockdv1.RemoveMemberRequest{})
			return err
		}, "id must not be 0"},
		{"transfer id 0", func(ctx context.Context) error {
			_, err := c.admin.TransferLeader(ctx, &clockdv1.TransferLeaderRequest{})
			return err
		}, "id must not be 0"},
		{"wait too far", func(ctx context.Context) error {
			_, err := c.time.WaitUntil(ctx, &clockdv1.WaitUntilRequest{TimeUnixNano: 100*sec + int64(server.MaxWaitAhead) + 1})
			return err
		}, "time_unix_nano 3700000000001 is more than 1h0m0s ahead of the reference clock (100000000000)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.call(t.Context()), codes.InvalidArgument, tc.msg)
		})
	}
	if calls := ft.Calls(); len(calls) != 0 {
		t.Errorf("invalid requests reached Timestamp: %v", calls)
	}
	if rec := fa.Recorded(); len(rec) != 0 {
		t.Errorf("invalid requests reached the admin backend: %q", rec)
	}
}

func timestamp(c stubs, n uint32) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.time.Timestamp(ctx, &clockdv1.TimestampRequest{Count: n})
		return err
	}
}

func addMember(c stubs, id uint64, addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.admin.AddMember(ctx, &clockdv1.AddMemberRequest{Id: id, Addr: addr})
		return err
	}
}

func TestBackendErrors(t *testing.T) {
	fa := fake.NewAdmin(statusResp, membersResp)
	c := serve(t, fake.NewTime(synced(sec), 1), fa)
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{fmt.Errorf("%w: leader is 2 at h2:7000", server.ErrNotLeader), codes.Unavailable, "server: not the leader: leader is 2 at h2:7000"},
		{server.ErrUnavailable, codes.Unavailable, "server: unavailable"},
		{fmt.Errorf("remove 9: %w", server.ErrUnknownMember), codes.NotFound, "remove 9: server: unknown member"},
		{server.ErrMemberExists, codes.AlreadyExists, "server: member already exists"},
		{fmt.Errorf("%w: a change is in flight", server.ErrConflict), codes.FailedPrecondition, "in flight"},
		{status.Error(codes.Aborted, "raced"), codes.Aborted, "raced"},
		{fmt.Errorf("propose: %w", status.Error(codes.ResourceExhausted, "queue full")), codes.ResourceExhausted, "propose: "},
		{fmt.Errorf("apply: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "apply: context deadline exceeded"},
		{context.Canceled, codes.Canceled, "context canceled"},
		{errors.New("disk on fire"), codes.Unknown, "disk on fire"},
	} {
		t.Run(tc.code.String()+" "+tc.msg, func(t *testing.T) {
			fa.FailWith(tc.err)
			_, err := c.admin.RemoveMember(t.Context(), &clockdv1.RemoveMemberRequest{Id: 9})
			wantCode(t, err, tc.code, tc.msg)
			_, err = c.admin.Status(t.Context(), &clockdv1.StatusRequest{})
			wantCode(t, err, tc.code, tc.msg)
		})
	}
}

// waiter runs WaitUntil(target) in the background.
func waiter(ctx context.Context, c stubs, target int64) <-chan result {
	done := make(chan result, 1)
	go func() {
		r, err := c.time.WaitUntil(ctx, &clockdv1.WaitUntilRequest{TimeUnixNano: target})
		done <- result{r.VClock(), err}
	}()
	return done
}

type result struct {
	r   vclock.Reading
	err error
}

// pollCounter returns a fake clock whose reads are signaled on the
// returned channel.
func pollCounter(r vclock.Reading) (*fake.Time, <-chan vclock.Reading) {
	polls := make(chan vclock.Reading, 1024)
	ft := fake.NewTime(r, 1)
	ft.OnNow = func(r vclock.Reading) {
		select {
		case polls <- r:
		default:
		}
	}
	return ft, polls
}

// awaitPolls waits for n reads that return want, and fails if WaitUntil
// returns first.
func awaitPolls(t *testing.T, polls <-chan vclock.Reading, done <-chan result, want vclock.Reading, n int) {
	t.Helper()
	for n > 0 {
		select {
		case r := <-polls:
			if r == want {
				n--
			}
		case res := <-done:
			t.Fatalf("WaitUntil returned early: %+v, %v", res.r, res.err)
		}
	}
}

func notDone(t *testing.T, done <-chan result) {
	t.Helper()
	select {
	case res := <-done:
		t.Fatalf("WaitUntil returned early: %+v, %v", res.r, res.err)
	default:
	}
}

func TestWaitUntilNeedsEarliestAfterTarget(t *testing.T) {
	const target = 100 * sec
	atTarget := vclock.Reading{Time: target + 1e6, Earliest: target, Latest: target + 2e6, Status: vclock.StatusSynchronized}
	ft, polls := pollCounter(atTarget)
	c := serve(t, ft, nil)
	done := waiter(t.Context(), c, target)

	// Earliest == target does not prove the target passed.
	awaitPolls(t, polls, done, atTarget, 3)
	notDone(t, done)

	after := atTarget
	after.Earliest = target + 1
	ft.Set(after)
	res := <-done
	if res.err != nil || res.r != after {
		t.Fatalf("WaitUntil = %+v, %v; want %+v", res.r, res.err, after)
	}
}

func TestWaitUntilWaitsThroughInitializing(t *testing.T) {
	const target = 100 * sec
	ft, polls := pollCounter(unbounded)
	c := serve(t, ft, nil)
	done := waiter(t.Context(), c, target)
	awaitPolls(t, polls, done, unbounded, 2)
	notDone(t, done)

	// A bound while still INITIALIZING is not trusted.
	initBounded := vclock.Reading{Time: target + 2e6, Earliest: target + 1e6, Latest: target + 3e6,
		Status: vclock.StatusInitializing}
	ft.Set(initBounded)
	awaitPolls(t, polls, done, initBounded, 2)
	notDone(t, done)

	holdover := initBounded
	holdover.Status = vclock.StatusHoldover
	ft.Set(holdover)
	if res := <-done; res.err != nil || res.r != holdover {
		t.Fatalf("WaitUntil = %+v, %v; want %+v", res.r, res.err, holdover)
	}
}

func TestWaitUntilDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    vclock.Reading
	}{
		{"bounded", synced(100 * sec)},
		{"initializing", unbounded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, fake.NewTime(tc.r, 1), nil)
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err := c.time.WaitUntil(ctx, &clockdv1.WaitUntilRequest{TimeUnixNano: 100*sec + 30*sec})
			wantCode(t, err, codes.DeadlineExceeded, "")
		})
	}
}

func TestWatch(t *testing.T) {
	ft := fake.NewTime(synced(100*sec), 1)
	c := serve(t, ft, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := c.time.Watch(ctx, &clockdv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recv := func() vclock.Reading {
		t.Helper()
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r.VClock()
	}
	if got := recv(); got != synced(100*sec) {
		t.Fatalf("first reading = %+v, want the current one", got)
	}
	ft.Set(synced(101 * sec)) // same status: not sent
	holdover := vclock.Reading{Time: 102 * sec, Earliest: 101 * sec, Latest: 103 * sec, Status: vclock.StatusHoldover}
	ft.Set(holdover)
	if got := recv(); got != holdover {
		t.Fatalf("after a status change got %+v, want %+v", got, holdover)
	}
	ft.Set(unbounded)
	if got := recv(); got != unbounded {
		t.Fatalf("after a status change got %+v, want %+v", got, unbounded)
	}
	cancel()
	_, err = stream.Recv()
	wantCode(t, err, codes.Canceled, "")
}

func TestWatchEndsWhenBackendStops(t *testing.T) {
	ft := fake.NewTime(synced(100*sec), 1)
	c := serve(t, ft, nil)
	stream, err := c.time.Watch(t.Context(), &clockdv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	ft.EndWatches()
	_, err = stream.Recv()
	wantCode(t, err, codes.Unavailable, "status changes ended")
}

func TestHealth(t *testing.T) {
	addr, hs := apitest.Serve(t, fake.NewTime(synced(sec), 1), nil)
	h := healthpb.NewHealthClient(apitest.Conn(t, addr))
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		return resp.GetStatus()
	}
	for _, svc := range []string{"", "clockd.v1.TimeService"} {
		if got := check(svc); got != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, want SERVING", svc, got)
		}
	}
	_, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "clockd.v1.AdminService"})
	wantCode(t, err, codes.NotFound, "")
	hs.Shutdown()
	if got := check(""); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after Shutdown, Check = %v, want NOT_SERVING", got)
	}
}

func TestReflection(t *testing.T) {
	c := serve(t, fake.NewTime(synced(sec), 1), fake.NewAdmin(statusResp, membersResp))
	stream, err := reflectionpb.NewServerReflectionClient(c.conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := ask(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"clockd.v1.TimeService", "clockd.v1.AdminService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %q, missing %s", names, want)
		}
	}
	resp = ask(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "clockd.v1.AdminService"}})
	if len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("no descriptor for clockd.v1.AdminService: %v", resp)
	}
}

func TestNilAdminBackend(t *testing.T) {
	c := serve(t, fake.NewTime(synced(sec), 1), nil)
	_, err := c.admin.Status(t.Context(), &clockdv1.StatusRequest{})
	wantCode(t, err, codes.Unimplemented, "")
}

func TestLimits(t *testing.T) {
	l := server.DefaultLimits()
	l.MaxRecvMsgBytes = 64
	l.RatePerSec, l.Burst, l.MaxRateWait = 0.001, 2, 0
	c := serve(t, fake.NewTime(synced(sec), 1), fake.NewAdmin(statusResp, membersResp), l.ServerOptions()...)
	ctx := t.Context()
	_, err := c.admin.AddMember(ctx, &clockdv1.AddMemberRequest{Id: 4, Addr: strings.Repeat("h", 100) + ":1"})
	wantCode(t, err, codes.ResourceExhausted, "larger than max")
	// That request was refused before the rate limit counted it.
	for range 2 {
		if _, err := c.time.Now(ctx, &clockdv1.NowRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.time.Now(ctx, &clockdv1.NowRequest{})
	wantCode(t, err, codes.ResourceExhausted, "rate limit: at most 0.001 calls/s per client (burst 2)")
	stream, err := c.time.Watch(ctx, &clockdv1.WatchRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.ResourceExhausted, "rate limit")
}
