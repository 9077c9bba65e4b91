package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/vclock"
)

// TimeBackend is the host's reference clock and the cluster's timestamp
// oracle, as TimeService serves them.
type TimeBackend interface {
	// Now is the host's current reading. It must not block.
	Now() vclock.Reading
	// Timestamp reserves n consecutive timestamps and returns the first;
	// 1 <= n <= clockdv1.MaxTimestampBatch.
	Timestamp(ctx context.Context, n uint32) (first uint64, err error)
	// StatusChanges delivers the current reading, then one per status
	// change, until ctx ends. Closing the channel before then ends the
	// watchers' streams with codes.Unavailable.
	StatusChanges(ctx context.Context) <-chan vclock.Reading
}

// AdminBackend is the node's consensus state and its membership changes,
// as AdminService serves them. Requests reach it validated: ids are not 0
// and addresses are host:port.
type AdminBackend interface {
	Status(ctx context.Context) (*clockdv1.StatusResponse, error)
	Members(ctx context.Context) (*clockdv1.MembersResponse, error)
	AddMember(ctx context.Context, id uint64, addr string, learner bool) error
	RemoveMember(ctx context.Context, id uint64) error
	TransferLeader(ctx context.Context, id uint64) error
}

// Register registers on s TimeService over tb and AdminService over ab
// (each skipped when nil), gRPC health and server reflection. The returned
// health server reports SERVING for the whole server ("") and for each
// registered service; set NOT_SERVING on it, or call its Shutdown, to
// drain.
func Register(s *grpc.Server, tb TimeBackend, ab AdminBackend) *health.Server {
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	if tb != nil {
		clockdv1.RegisterTimeServiceServer(s, &timeServer{b: tb})
		hs.SetServingStatus(clockdv1.TimeService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
	if ab != nil {
		clockdv1.RegisterAdminServiceServer(s, &adminServer{b: ab})
		hs.SetServingStatus(clockdv1.AdminService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	return hs
}
