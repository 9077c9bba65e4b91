package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestParseRole(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want Role
		err  string
	}{
		{"clockd:peer", Role{Kind: KindPeer}, ""},
		{"clockd:host", Role{Kind: KindHost}, ""},
		{"clockd:admin", Role{Kind: KindAdmin}, ""},
		{"CLOCKD:admin", Role{Kind: KindAdmin}, ""},
		{"clockd:vm:42", Role{Kind: KindVM, VM: "42"}, ""},
		{"clockd:vm:web-1.prod_A", Role{Kind: KindVM, VM: "web-1.prod_A"}, ""},
		{"clockd:vm:", Role{}, "VM id must be 1 to 128 characters, got 0"},
		{"clockd:vm:" + strings.Repeat("a", 129), Role{}, "VM id must be 1 to 128 characters, got 129"},
		{"clockd:vm:a/b", Role{}, `VM id holds '/'`},
		{"clockd:root", Role{}, "names no role"},
		{"clockd:Admin", Role{}, "names no role"},
		{"clockd://admin", Role{}, "is not of the form clockd:<role>"},
		{"clockd:admin?x=1", Role{}, "is not of the form clockd:<role>"},
		{"clockd:admin#x", Role{}, "is not of the form clockd:<role>"},
		{"spiffe://cluster/admin", Role{}, "is not a clockd: URI"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			got, err := ParseRole(mustURL(t, tc.uri))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseRole = %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRole = %v, %v; want %v", got, err, tc.want)
			}
			if back, err := ParseRole(got.URI()); err != nil || back != got {
				t.Errorf("URI %v parses back as %v, %v", got.URI(), back, err)
			}
		})
	}
}

func TestRolesFromCert(t *testing.T) {
	for _, tc := range []struct {
		name string
		uris []string
		want string
		err  string
	}{
		{"none", nil, "", "carries no clockd: URI"},
		{"other schemes only", []string{"spiffe://c/x"}, "", "carries no clockd: URI"},
		{"one among others", []string{"spiffe://c/x", "clockd:vm:7"}, "vm:7", ""},
		{"node", []string{"clockd:peer", "clockd:host"}, "peer, host", ""},
		{"one malformed", []string{"clockd:host", "clockd:root"}, "", "names no role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &x509.Certificate{}
			for _, u := range tc.uris {
				c.URIs = append(c.URIs, mustURL(t, u))
			}
			got, err := RolesFromCert(c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("RolesFromCert = %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || names(got) != tc.want {
				t.Fatalf("RolesFromCert = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// callerCtx is a call's context as gRPC builds it for a TLS client whose
// verified certificate carries uris; no uris and no cert: nil.
func callerCtx(t *testing.T, uris ...string) context.Context {
	var state tls.ConnectionState
	if uris != nil {
		c := &x509.Certificate{}
		for _, u := range uris {
			c.URIs = append(c.URIs, mustURL(t, u))
		}
		state.VerifiedChains = [][]*x509.Certificate{{c}}
	}
	return peer.NewContext(t.Context(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: state}})
}

func TestDefaultPolicy(t *testing.T) {
	admin, host, peerRole, vm := "clockd:admin", "clockd:host", "clockd:peer", "clockd:vm:9"
	open := []string{admin, host, peerRole, vm}
	for _, tc := range []struct {
		method  string
		allowed []string
	}{
		{clockdv1.TimeService_Now_FullMethodName, open},
		{clockdv1.TimeService_Timestamp_FullMethodName, open},
		{clockdv1.TimeService_WaitUntil_FullMethodName, open},
		{clockdv1.TimeService_Watch_FullMethodName, open},
		{clockdv1.AdminService_Status_FullMethodName, []string{admin, host, peerRole}},
		{clockdv1.AdminService_Members_FullMethodName, []string{admin, host, peerRole}},
		{clockdv1.AdminService_AddMember_FullMethodName, []string{admin}},
		{clockdv1.AdminService_RemoveMember_FullMethodName, []string{admin}},
		{clockdv1.AdminService_TransferLeader_FullMethodName, []string{admin}},
		{clockdv1.MigrationService_Freeze_FullMethodName, []string{admin, host}},
		{clockdv1.MigrationService_Resume_FullMethodName, []string{admin, host}},
		{clockdv1.MigrationService_Release_FullMethodName, []string{admin, host}},
		{clockdv1.MigrationService_List_FullMethodName, []string{admin, host}},
		{clockdv1.MigrationService_VMClock_FullMethodName, []string{admin, host, vm}},
		{clockdv1.RunbookService_Submit_FullMethodName, []string{admin}},
		{clockdv1.RunbookService_Cancel_FullMethodName, []string{admin}},
		{clockdv1.RunbookService_Get_FullMethodName, []string{admin, host}},
		{clockdv1.RunbookService_List_FullMethodName, []string{admin, host}},
		{clockdv1.RunbookService_Wait_FullMethodName, []string{admin, host}},
		{"/grpc.health.v1.Health/Check", open},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", open},
		{"/clockd.v1.TimeService/Unknown", nil},
	} {
		for _, role := range open {
			ctx, err := DefaultPolicy().authorize(callerCtx(t, role), tc.method, false)
			allowed := strings.Contains(strings.Join(tc.allowed, " "), role)
			switch {
			case allowed && err != nil:
				t.Errorf("%s calling %s: %v", role, tc.method, err)
			case allowed:
				if got, ok := RoleFromContext(ctx); !ok || got.URI().String() != role {
					t.Errorf("%s calling %s: handler sees role %v, %v", role, tc.method, got, ok)
				}
			case status.Code(err) != codes.PermissionDenied:
				t.Errorf("%s calling %s: got %v, want PermissionDenied", role, tc.method, err)
			}
		}
	}
}

func TestAuthorizeErrors(t *testing.T) {
	p := DefaultPolicy()
	add := clockdv1.AdminService_AddMember_FullMethodName
	for _, tc := range []struct {
		name string
		ctx  context.Context
		code codes.Code
		msg  string
	}{
		{"no peer", t.Context(), codes.Unauthenticated,
			"auth: /clockd.v1.AdminService/AddMember needs a client certificate signed by the cluster CA"},
		{"no certificate", callerCtx(t), codes.Unauthenticated, "needs a client certificate"},
		{"no role", callerCtx(t, "spiffe://c/x"), codes.PermissionDenied,
			"auth: bad role: the certificate carries no clockd: URI; calling /clockd.v1.AdminService/AddMember"},
		{"wrong role", callerCtx(t, "clockd:host"), codes.PermissionDenied,
			"auth: role host may not call /clockd.v1.AdminService/AddMember"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.authorize(tc.ctx, add, false)
			if s := status.Convert(err); s.Code() != tc.code || !strings.Contains(s.Message(), tc.msg) {
				t.Fatalf("got %v %q, want %v %q", s.Code(), s.Message(), tc.code, tc.msg)
			}
		})
	}
	// A node's certificate: the first role that the method allows is the
	// one granted, and all of them are in the context.
	node := callerCtx(t, "clockd:peer", "clockd:host")
	ctx, err := p.authorize(node, clockdv1.MigrationService_Freeze_FullMethodName, false)
	if r, _ := RoleFromContext(ctx); err != nil || r.Kind != KindHost || names(RolesFromContext(ctx)) != "peer, host" {
		t.Fatalf("node calling Freeze: granted %v, roles %v, err %v", r, RolesFromContext(ctx), err)
	}
	_, err = p.authorize(node, add, false)
	if s := status.Convert(err); s.Code() != codes.PermissionDenied ||
		s.Message() != "auth: role peer, host may not call /clockd.v1.AdminService/AddMember" {
		t.Fatalf("node calling AddMember: %v", err)
	}
	_, err = p.authorize(callerCtx(t, "clockd:admin"), "/clockd.v1.Secret/Do", false)
	if s := status.Convert(err); s.Code() != codes.PermissionDenied ||
		s.Message() != "auth: /clockd.v1.Secret/Do is not open to any role (caller is admin)" {
		t.Fatalf("unknown method: %v", err)
	}
	ctx, err = p.authorize(t.Context(), "/clockd.v1.Secret/Do", true)
	if r, _ := RoleFromContext(ctx); err != nil || r.Kind != KindDev {
		t.Fatalf("insecure mode: role %v, err %v", r, err)
	}
}
