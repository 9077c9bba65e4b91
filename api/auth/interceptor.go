package auth

import (
	"context"
	"crypto/x509"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

type callerKey struct{}

// callerRoles is what the interceptors put in a call's context.
type callerRoles struct {
	granted Role   // the role that the policy allowed for the method
	all     []Role // every role of the certificate, in its order
}

// RoleFromContext is the role that let the caller in: the first of its
// certificate's roles that the policy allows for the method (dev in
// insecure mode). ok is false outside a call that passed the
// interceptors.
func RoleFromContext(ctx context.Context) (r Role, ok bool) {
	c, ok := ctx.Value(callerKey{}).(callerRoles)
	return c.granted, ok
}

// RolesFromContext are all the roles of the caller's certificate, in its
// order; the caller must not modify them. Nil outside a call that passed
// the interceptors.
func RolesFromContext(ctx context.Context) []Role {
	c, _ := ctx.Value(callerKey{}).(callerRoles)
	return c.all
}

// Interceptors are DefaultPolicy().Interceptors(insecure).
func Interceptors(insecure bool) []grpc.ServerOption {
	return DefaultPolicy().Interceptors(insecure)
}

// Interceptors are server options that check every unary call and every
// stream against p before its handler runs. They chain after interceptors
// given earlier and before ones given later. With insecure, every call is
// allowed and its role is dev.
func (p Policy) Interceptors(insecure bool) []grpc.ServerOption {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, err := p.authorize(ctx, info.FullMethod, insecure)
		if err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ctx, err := p.authorize(ss.Context(), info.FullMethod, insecure)
		if err != nil {
			return err
		}
		return h(srv, &roleStream{ServerStream: ss, ctx: ctx})
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream)}
}

// authorize returns ctx carrying the caller's roles, or the status error
// that refuses the call.
func (p Policy) authorize(ctx context.Context, method string, insecure bool) (context.Context, error) {
	if insecure {
		dev := Role{Kind: KindDev}
		return context.WithValue(ctx, callerKey{}, callerRoles{granted: dev, all: []Role{dev}}), nil
	}
	cert := verifiedLeaf(ctx)
	if cert == nil {
		return nil, status.Errorf(codes.Unauthenticated, "auth: %s needs a client certificate signed by the cluster CA", method)
	}
	roles, err := RolesFromCert(cert)
	if err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "%v; calling %s", err, method)
	}
	if _, known := p[method]; !known {
		return nil, status.Errorf(codes.PermissionDenied, "auth: %s is not open to any role (caller is %s)", method, names(roles))
	}
	for _, r := range roles {
		if p.Allowed(method, r) {
			return context.WithValue(ctx, callerKey{}, callerRoles{granted: r, all: roles}), nil
		}
	}
	return nil, status.Errorf(codes.PermissionDenied, "auth: role %s may not call %s", names(roles), method)
}

func names(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// verifiedLeaf is the client certificate that TLS verified against the
// server's client CAs, or nil.
func verifiedLeaf(ctx context.Context) *x509.Certificate {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0][0]
}

// roleStream is a server stream whose context carries the caller's roles.
type roleStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *roleStream) Context() context.Context { return s.ctx }
