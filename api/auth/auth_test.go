package auth_test

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/auth"
	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/api/internal/apitest"
	"github.com/clockd/clockd/api/internal/fake"
	"github.com/clockd/clockd/api/internal/testpki"
	"github.com/clockd/clockd/vclock"
)

// roleTime is a time backend that records the caller roles its Timestamp
// sees.
type roleTime struct {
	*fake.Time
	mu    sync.Mutex
	roles []string
}

func (b *roleTime) Timestamp(ctx context.Context, n uint32) (uint64, error) {
	r, ok := auth.RoleFromContext(ctx)
	b.mu.Lock()
	if ok {
		b.roles = append(b.roles, r.String())
	} else {
		b.roles = append(b.roles, "none")
	}
	b.mu.Unlock()
	return b.Time.Timestamp(ctx, n)
}

func newBackends() (*roleTime, *fake.Admin) {
	r := vclock.Reading{Time: 10, Earliest: 9, Latest: 11, Status: vclock.StatusSynchronized}
	return &roleTime{Time: fake.NewTime(r, 1)}, fake.NewAdmin(&clockdv1.StatusResponse{NodeId: 1}, &clockdv1.MembersResponse{})
}

func dial(t *testing.T, addr string, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// call is one RPC of each kind the test tries.
type call struct {
	name string
	do   func(ctx context.Context, conn *grpc.ClientConn) error
}

var (
	now = call{"Now", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := clockdv1.NewTimeServiceClient(conn).Now(ctx, &clockdv1.NowRequest{})
		return err
	}}
	timestamp = call{"Timestamp", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := clockdv1.NewTimeServiceClient(conn).Timestamp(ctx, &clockdv1.TimestampRequest{Count: 1})
		return err
	}}
	watch = call{"Watch", func(ctx context.Context, conn *grpc.ClientConn) error {
		s, err := clockdv1.NewTimeServiceClient(conn).Watch(ctx, &clockdv1.WatchRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		return err
	}}
	statusCall = call{"Status", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := clockdv1.NewAdminServiceClient(conn).Status(ctx, &clockdv1.StatusRequest{})
		return err
	}}
	members = call{"Members", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := clockdv1.NewAdminServiceClient(conn).Members(ctx, &clockdv1.MembersRequest{})
		return err
	}}
	addMember = call{"AddMember", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := clockdv1.NewAdminServiceClient(conn).AddMember(ctx, &clockdv1.AddMemberRequest{Id: 4, Addr: "h4:7000"})
		return err
	}}
	transfer = call{"TransferLeader", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := clockdv1.NewAdminServiceClient(conn).TransferLeader(ctx, &clockdv1.TransferLeaderRequest{Id: 2})
		return err
	}}
	healthCheck = call{"Health.Check", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}}
)

func TestMutualTLS(t *testing.T) {
	ca := testpki.NewCA(t)
	tb, ab := newBackends()
	opts := append(auth.Interceptors(false), grpc.Creds(credentials.NewTLS(ca.ServerConfig(t))))
	addr, _ := apitest.Serve(t, tb, ab, opts...)

	certFor := func(uris ...string) *tls.Config {
		c := ca.Client(t, uris...)
		return ca.ClientConfig(&c)
	}
	admin, host, vm, peer := certFor("clockd:admin"), certFor("clockd:host"), certFor("clockd:vm:42"), certFor("clockd:peer")
	node := certFor("clockd:peer", "clockd:host")
	noRole, noCert := certFor("spiffe://cluster/x"), ca.ClientConfig(nil)

	for _, tc := range []struct {
		who  string
		cfg  *tls.Config
		call call
		code codes.Code
		msg  string
	}{
		{"admin", admin, addMember, codes.OK, ""},
		{"admin", admin, transfer, codes.OK, ""},
		{"admin", admin, timestamp, codes.OK, ""},
		{"host", host, addMember, codes.PermissionDenied, "auth: role host may not call /clockd.v1.AdminService/AddMember"},
		{"host", host, statusCall, codes.OK, ""},
		{"host", host, timestamp, codes.OK, ""},
		{"peer", peer, members, codes.OK, ""},
		{"peer", peer, transfer, codes.PermissionDenied, "auth: role peer may not call /clockd.v1.AdminService/TransferLeader"},
		{"node", node, statusCall, codes.OK, ""},
		{"node", node, addMember, codes.PermissionDenied, "auth: role peer, host may not call /clockd.v1.AdminService/AddMember"},
		{"vm", vm, now, codes.OK, ""},
		{"vm", vm, timestamp, codes.OK, ""},
		{"vm", vm, watch, codes.OK, ""},
		{"vm", vm, healthCheck, codes.OK, ""},
		{"vm", vm, statusCall, codes.PermissionDenied, "auth: role vm:42 may not call /clockd.v1.AdminService/Status"},
		{"no role", noRole, now, codes.PermissionDenied, "the certificate carries no clockd: URI"},
		{"no cert", noCert, now, codes.Unauthenticated, "needs a client certificate signed by the cluster CA"},
		{"no cert", noCert, watch, codes.Unauthenticated, "needs a client certificate"},
		{"no cert", noCert, addMember, codes.Unauthenticated, "needs a client certificate"},
	} {
		t.Run(tc.who+" "+tc.call.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			err := tc.call.do(ctx, dial(t, addr, tc.cfg))
			if s := status.Convert(err); s.Code() != tc.code || !strings.Contains(s.Message(), tc.msg) {
				t.Fatalf("got %v %q, want %v %q", s.Code(), s.Message(), tc.code, tc.msg)
			}
		})
	}
	if got := ab.Recorded(); len(got) != 2 || got[0] != "add 4 h4:7000 learner=false" || got[1] != "transfer 2" {
		t.Errorf("admin backend saw %q; want only the admin's two changes", got)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if got := strings.Join(tb.roles, " "); got != "admin host vm:42" {
		t.Errorf("Timestamp saw roles %q, want %q", got, "admin host vm:42")
	}
}

func TestForeignCARefused(t *testing.T) {
	ca, other := testpki.NewCA(t), testpki.NewCA(t)
	tb, ab := newBackends()
	opts := append(auth.Interceptors(false), grpc.Creds(credentials.NewTLS(ca.ServerConfig(t))))
	addr, _ := apitest.Serve(t, tb, ab, opts...)
	forged := other.Client(t, "clockd:admin")
	cfg := ca.ClientConfig(&forged) // trusts the server, presents a certificate it cannot verify
	err := addMember.do(t.Context(), dial(t, addr, cfg))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("a certificate from another CA: got %v, want the handshake to fail (Unavailable)", err)
	}
	if got := ab.Recorded(); len(got) != 0 {
		t.Errorf("admin backend saw %q", got)
	}
}

func TestServerTLSFiles(t *testing.T) {
	ca := testpki.NewCA(t)
	caFile, certFile, keyFile := ca.WriteFiles(t, t.TempDir(), ca.Server(t))
	cfg, err := auth.ServerTLS(caFile, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tb, ab := newBackends()
	addr, _ := apitest.Serve(t, tb, ab, append(auth.Interceptors(false), grpc.Creds(credentials.NewTLS(cfg)))...)
	admin := ca.Client(t, "clockd:admin")
	if err := addMember.do(t.Context(), dial(t, addr, ca.ClientConfig(&admin))); err != nil {
		t.Fatal(err)
	}
	err = now.do(t.Context(), dial(t, addr, ca.ClientConfig(nil)))
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no certificate: got %v, want Unauthenticated", err)
	}
	if _, err := auth.ServerTLS(keyFile, certFile, keyFile); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
}

func TestInsecureAllowsAll(t *testing.T) {
	tb, ab := newBackends()
	addr, _ := apitest.Serve(t, tb, ab, auth.Interceptors(true)...)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range []call{addMember, transfer, timestamp, watch} {
		if err := c.do(t.Context(), conn); err != nil {
			t.Errorf("%s in insecure mode: %v", c.name, err)
		}
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.roles) != 1 || tb.roles[0] != "dev" {
		t.Errorf("Timestamp saw roles %q, want dev", tb.roles)
	}
}

func TestSecureWithoutTLSRefusesAll(t *testing.T) {
	tb, ab := newBackends()
	addr, _ := apitest.Serve(t, tb, ab, auth.Interceptors(false)...)
	conn := apitest.Conn(t, addr)
	err := now.do(t.Context(), conn)
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("plaintext call to a secure server: got %v, want Unauthenticated", err)
	}
}
