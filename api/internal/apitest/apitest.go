// Package apitest starts a real API server on 127.0.0.1 for tests.
package apitest

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"

	"github.com/clockd/clockd/api/server"
)

// Serve starts a gRPC server with opts on a fresh 127.0.0.1 port, with the
// backends registered (each may be nil), and stops it when the test ends.
func Serve(t testing.TB, tb server.TimeBackend, ab server.AdminBackend, opts ...grpc.ServerOption) (string, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	hs := server.Register(s, tb, ab)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(lis); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return lis.Addr().String(), hs
}

// Conn is a plaintext connection to addr, closed when the test ends.
func Conn(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
