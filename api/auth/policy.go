package auth

import (
	"slices"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionalphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/clockd/clockd/api/clockdv1"
)

// Policy maps a full method name, "/package.Service/Method", to the role
// kinds that may call it. KindDev is allowed everything and need not be
// listed.
type Policy map[string][]Kind

var (
	anyRole     = []Kind{KindPeer, KindHost, KindAdmin, KindVM}
	readersRole = []Kind{KindAdmin, KindHost, KindPeer}
	adminOnly   = []Kind{KindAdmin}
	hostOrAdmin = []Kind{KindHost, KindAdmin}
	vmClock     = []Kind{KindHost, KindAdmin, KindVM}
)

// DefaultPolicy is the policy of the clockd API server: clockd.v1's
// TimeService, AdminService, MigrationService, OrderingService and
// RunbookService, gRPC health and server reflection. Each call returns a
// new map.
func DefaultPolicy() Policy {
	return Policy{
		clockdv1.TimeService_Now_FullMethodName:       anyRole,
		clockdv1.TimeService_Timestamp_FullMethodName: anyRole,
		clockdv1.TimeService_WaitUntil_FullMethodName: anyRole,
		clockdv1.TimeService_Watch_FullMethodName:     anyRole,

		clockdv1.AdminService_Status_FullMethodName:         readersRole,
		clockdv1.AdminService_Members_FullMethodName:        readersRole,
		clockdv1.AdminService_AddMember_FullMethodName:      adminOnly,
		clockdv1.AdminService_RemoveMember_FullMethodName:   adminOnly,
		clockdv1.AdminService_TransferLeader_FullMethodName: adminOnly,

		// The handlers check further which host owns the VM, and that a
		// VM reads only its own clock.
		clockdv1.MigrationService_Freeze_FullMethodName:  hostOrAdmin,
		clockdv1.MigrationService_Resume_FullMethodName:  hostOrAdmin,
		clockdv1.MigrationService_Release_FullMethodName: hostOrAdmin,
		clockdv1.MigrationService_List_FullMethodName:    hostOrAdmin,
		clockdv1.MigrationService_VMClock_FullMethodName: vmClock,

		clockdv1.OrderingService_Append_FullMethodName:    {KindHost, KindAdmin},
		clockdv1.OrderingService_Read_FullMethodName:      readersRole,
		clockdv1.OrderingService_Subscribe_FullMethodName: readersRole,
		clockdv1.OrderingService_Offsets_FullMethodName:   readersRole,

		// A run-book runs commands on the hosts: only an operator submits
		// or cancels one.
		clockdv1.RunbookService_Submit_FullMethodName: adminOnly,
		clockdv1.RunbookService_Cancel_FullMethodName: adminOnly,
		clockdv1.RunbookService_Get_FullMethodName:    hostOrAdmin,
		clockdv1.RunbookService_List_FullMethodName:   hostOrAdmin,
		clockdv1.RunbookService_Wait_FullMethodName:   hostOrAdmin,

		healthpb.Health_Check_FullMethodName: anyRole,
		healthpb.Health_List_FullMethodName:  anyRole,
		healthpb.Health_Watch_FullMethodName: anyRole,

		reflectionpb.ServerReflection_ServerReflectionInfo_FullMethodName:      anyRole,
		reflectionalphapb.ServerReflection_ServerReflectionInfo_FullMethodName: anyRole,
	}
}

// Allowed reports whether r may call method.
func (p Policy) Allowed(method string, r Role) bool {
	return r.Kind == KindDev || slices.Contains(p[method], r.Kind)
}
