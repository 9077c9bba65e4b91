package server

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/vclock"
)

// MaxWaitAhead is how far past the current reading's time a WaitUntil
// target may lie.
const MaxWaitAhead = time.Hour

// WaitUntil polling. A bounded reading's earliest advances at nearly the
// rate of real time, so the wait until it passes the target is about
// their distance; the next read corrects the estimate. The cap makes a
// bound that narrows (a fresh tick) count within maxPoll.
const (
	minPoll       = 50 * time.Microsecond
	maxPoll       = 100 * time.Millisecond
	unboundedPoll = 10 * time.Millisecond
)

type timeServer struct {
	clockdv1.UnimplementedTimeServiceServer
	b TimeBackend
}

func (s *timeServer) Now(context.Context, *clockdv1.NowRequest) (*clockdv1.Reading, error) {
	return clockdv1.NewReading(s.b.Now()), nil
}

func (s *timeServer) Timestamp(ctx context.Context, req *clockdv1.TimestampRequest) (*clockdv1.TimestampResponse, error) {
	n := req.GetCount()
	if n == 0 || n > clockdv1.MaxTimestampBatch {
		return nil, status.Errorf(codes.InvalidArgument, "count must be 1 to %d, got %d", clockdv1.MaxTimestampBatch, n)
	}
	first, err := s.b.Timestamp(ctx, n)
	if err != nil {
		return nil, toStatus(err)
	}
	return &clockdv1.TimestampResponse{First: first, Count: n}, nil
}

func (s *timeServer) WaitUntil(ctx context.Context, req *clockdv1.WaitUntilRequest) (*clockdv1.Reading, error) {
	t := req.GetTimeUnixNano()
	r := s.b.Now()
	if r.Status != vclock.StatusInitializing && r.Bounded() && t > vclock.SatAdd(r.Time, int64(MaxWaitAhead)) {
		return nil, status.Errorf(codes.InvalidArgument, "time_unix_nano %d is more than %v ahead of the reference clock (%d)",
			t, MaxWaitAhead, r.Time)
	}
	var timer *time.Timer
	for !passed(r, t) {
		d := pollDelay(r, t)
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-timer.C:
		}
		r = s.b.Now()
	}
	return clockdv1.NewReading(r), nil
}

// passed reports whether r proves that t is in the past.
func passed(r vclock.Reading, t int64) bool {
	return r.Status != vclock.StatusInitializing && r.Bounded() && r.Earliest > t
}

// pollDelay is how long to wait before reading again, given that r has
// not passed t.
func pollDelay(r vclock.Reading, t int64) time.Duration {
	if r.Status == vclock.StatusInitializing || !r.Bounded() {
		return unboundedPoll
	}
	// t >= r.Earliest, so the difference is exact in uint64.
	gap := uint64(t) - uint64(r.Earliest) + 1
	if gap > uint64(maxPoll) {
		return maxPoll
	}
	return max(time.Duration(gap), minPoll)
}

func (s *timeServer) Watch(_ *clockdv1.WatchRequest, stream grpc.ServerStreamingServer[clockdv1.Reading]) error {
	ctx := stream.Context()
	changes := s.b.StatusChanges(ctx)
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case r, ok := <-changes:
			if !ok {
				if ctx.Err() != nil {
					return status.FromContextError(ctx.Err()).Err()
				}
				return status.Error(codes.Unavailable, "status changes ended: the server is shutting down")
			}
			if err := stream.Send(clockdv1.NewReading(r)); err != nil {
				return err
			}
		}
	}
}
