package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors a backend returns, alone or wrapped (fmt.Errorf("%w: leader is
// 3 at %s", server.ErrNotLeader, addr)), to choose the caller's status
// code. The status message is the error's text.
var (
	// ErrNotLeader: only the leader serves the call; codes.Unavailable.
	ErrNotLeader = errors.New("server: not the leader")
	// ErrUnavailable: the node cannot serve now (no quorum, starting,
	// stopping); codes.Unavailable.
	ErrUnavailable = errors.New("server: unavailable")
	// ErrUnknownMember: the id names no member; codes.NotFound.
	ErrUnknownMember = errors.New("server: unknown member")
	// ErrMemberExists: the id is already a member; codes.AlreadyExists.
	ErrMemberExists = errors.New("server: member already exists")
	// ErrConflict: the cluster's state refuses the change (another change
	// or a transfer in flight, a quorum would be lost, a learner cannot
	// lead); codes.FailedPrecondition.
	ErrConflict = errors.New("server: conflicts with the cluster's state")
)

var sentinelCodes = []struct {
	err  error
	code codes.Code
}{
	{ErrNotLeader, codes.Unavailable},
	{ErrUnavailable, codes.Unavailable},
	{ErrUnknownMember, codes.NotFound},
	{ErrMemberExists, codes.AlreadyExists},
	{ErrConflict, codes.FailedPrecondition},
}

// toStatus maps a backend error to the error a handler returns. An error
// that carries a gRPC status keeps it; context errors become Canceled or
// DeadlineExceeded; the sentinels above their codes; anything else
// Unknown.
func toStatus(err error) error {
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		code := codes.Canceled
		if errors.Is(err, context.DeadlineExceeded) {
			code = codes.DeadlineExceeded
		}
		return status.Error(code, err.Error())
	}
	for _, sc := range sentinelCodes {
		if errors.Is(err, sc.err) {
			return status.Error(sc.code, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}
