package server

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
)

// maxAddrLen bounds a member address: a DNS name of 253 bytes, a colon
// and a port.
const maxAddrLen = 253 + 1 + 5

type adminServer struct {
	clockdv1.UnimplementedAdminServiceServer
	b AdminBackend
}

func (s *adminServer) Status(ctx context.Context, _ *clockdv1.StatusRequest) (*clockdv1.StatusResponse, error) {
	resp, err := s.b.Status(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	if resp == nil {
		resp = &clockdv1.StatusResponse{}
	}
	return resp, nil
}

func (s *adminServer) Members(ctx context.Context, _ *clockdv1.MembersRequest) (*clockdv1.MembersResponse, error) {
	resp, err := s.b.Members(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	if resp == nil {
		resp = &clockdv1.MembersResponse{}
	}
	return resp, nil
}

func (s *adminServer) AddMember(ctx context.Context, req *clockdv1.AddMemberRequest) (*clockdv1.AddMemberResponse, error) {
	if err := checkID(req.GetId()); err != nil {
		return nil, err
	}
	if err := checkAddr(req.GetAddr()); err != nil {
		return nil, err
	}
	if err := s.b.AddMember(ctx, req.GetId(), req.GetAddr(), req.GetLearner()); err != nil {
		return nil, toStatus(err)
	}
	return &clockdv1.AddMemberResponse{}, nil
}

func (s *adminServer) RemoveMember(ctx context.Context, req *clockdv1.RemoveMemberRequest) (*clockdv1.RemoveMemberResponse, error) {
	if err := checkID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.b.RemoveMember(ctx, req.GetId()); err != nil {
		return nil, toStatus(err)
	}
	return &clockdv1.RemoveMemberResponse{}, nil
}

func (s *adminServer) TransferLeader(ctx context.Context, req *clockdv1.TransferLeaderRequest) (*clockdv1.TransferLeaderResponse, error) {
	if err := checkID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.b.TransferLeader(ctx, req.GetId()); err != nil {
		return nil, toStatus(err)
	}
	return &clockdv1.TransferLeaderResponse{}, nil
}

// checkID refuses the id 0, which names no node.
func checkID(id uint64) error {
	if id == 0 {
		return status.Error(codes.InvalidArgument, "id must not be 0")
	}
	return nil
}

// checkAddr accepts host:port with a non-empty host and a port of 1 to
// 65535.
func checkAddr(addr string) error {
	if err := parseAddr(addr); err != nil {
		return status.Errorf(codes.InvalidArgument, "addr must be host:port, got %q: %v", addr, err)
	}
	return nil
}

func parseAddr(addr string) error {
	if len(addr) > maxAddrLen {
		return fmt.Errorf("longer than %d bytes", maxAddrLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("empty host")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("port %q is not 1 to 65535", port)
	}
	return nil
}
