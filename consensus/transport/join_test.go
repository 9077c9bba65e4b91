package transport

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// joinServer starts node 2 of a cluster of two whose OnJoin records each
// request and answers with answer.
func joinServer(t *testing.T, ca *testCA, answer func(JoinRequest) (JoinResponse, error)) (*node, <-chan JoinRequest) {
	t.Helper()
	cfgs := clusterConfigs(t, 2, ca)
	got := make(chan JoinRequest, 10)
	if answer != nil {
		cfgs[1].OnJoin = func(req JoinRequest) (JoinResponse, error) {
			got <- req
			return answer(req)
		}
	}
	return startNode(t, cfgs[1]), got
}

func joinCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestJoin(t *testing.T) {
	ca := newTestCA(t, "cluster")
	tests := []struct {
		name string
		resp JoinResponse
	}{
		{"accepted", JoinResponse{Accepted: true, LeaderID: 2, LeaderAddr: "127.0.0.1:7002", Members: []Peer{
			{ID: 1, Addr: "127.0.0.1:7001", Name: nodeName(1)},
			{ID: 2, Addr: "127.0.0.1:7002", Name: nodeName(2)},
			{ID: 4, Addr: "127.0.0.1:7004", Name: nodeName(4)},
		}}},
		{"ask the leader", JoinResponse{LeaderID: 1, LeaderAddr: "127.0.0.1:7001", Reason: "not the leader"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, got := joinServer(t, ca, func(JoinRequest) (JoinResponse, error) { return tt.resp, nil })
			req := JoinRequest{ID: 4, Addr: "127.0.0.1:7004", Name: nodeName(4)}
			resp, err := Join(joinCtx(t), server.Addr(), req, ca.issue(t, nodeName(4)), nodeName(2), false, 0)
			if err != nil {
				t.Fatalf("join: %v", err)
			}
			if !reflect.DeepEqual(resp, tt.resp) {
				t.Errorf("response %+v, want %+v", resp, tt.resp)
			}
			if r := <-got; r != req {
				t.Errorf("OnJoin got %+v, want %+v", r, req)
			}
		})
	}
}

func TestJoinInsecure(t *testing.T) {
	want := JoinResponse{Accepted: true, Members: []Peer{{ID: 1}, {ID: 2}, {ID: 3, Addr: "127.0.0.1:7003"}}}
	server, got := joinServer(t, nil, func(JoinRequest) (JoinResponse, error) { return want, nil })
	req := JoinRequest{ID: 3, Addr: "127.0.0.1:7003"}
	resp, err := Join(joinCtx(t), server.Addr(), req, nil, "", true, 0)
	if err != nil || !reflect.DeepEqual(resp, want) {
		t.Fatalf("join: %+v, %v; want %+v", resp, err, want)
	}
	if r := <-got; r != req {
		t.Errorf("OnJoin got %+v, want %+v", r, req)
	}
}

func TestJoinRefusals(t *testing.T) {
	ca := newTestCA(t, "cluster")
	server, got := joinServer(t, ca, func(req JoinRequest) (JoinResponse, error) {
		return JoinResponse{}, errors.New("cluster is changing membership, retry later")
	})
	bare, _ := joinServer(t, ca, nil)
	files := ca.issue(t, nodeName(4))
	req := JoinRequest{ID: 4, Addr: "127.0.0.1:7004", Name: nodeName(4)}
	other := req
	other.Name = nodeName(5)
	self := req
	self.ID = 2

	tests := []struct {
		name       string
		addr       string
		req        JoinRequest
		serverName string
		code       codes.Code
		contain    string
		onJoin     bool // whether OnJoin is called
	}{
		{"OnJoin error", server.Addr(), req, nodeName(2), codes.Aborted, "cluster is changing membership, retry later", true},
		{"certificate for another name", server.Addr(), other, nodeName(2), codes.PermissionDenied,
			`certificate names ["node-4"], want "node-5"`, false},
		{"this node's id", server.Addr(), self, nodeName(2), codes.InvalidArgument, "node 2 is this node", false},
		{"no OnJoin", bare.Addr(), req, nodeName(2), codes.Unimplemented, "takes no joins", false},
		{"server is not who we asked for", server.Addr(), req, nodeName(3), codes.Unavailable, "node-3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Join(joinCtx(t), tt.addr, tt.req, files, tt.serverName, false, 0)
			assertCode(t, err, tt.code)
			if err == nil || !strings.Contains(err.Error(), tt.contain) {
				t.Errorf("error %v, want it to contain %q", err, tt.contain)
			}
			if called := len(got) > 0; called != tt.onJoin {
				t.Errorf("OnJoin called: %v, want %v", called, tt.onJoin)
			}
			for len(got) > 0 {
				<-got
			}
		})
	}
	if st := server.Stats(); st.Refused != 1 {
		t.Errorf("refused %d, want 1 (the certificate mismatch)", st.Refused)
	}
}

func TestJoinRejectsMalformedRequest(t *testing.T) {
	server, got := joinServer(t, nil, func(JoinRequest) (JoinResponse, error) { return JoinResponse{}, nil })
	conn := rawConn(t, server.Addr(), nil, "")
	tests := []struct {
		name string
		buf  []byte
	}{
		{"garbage", []byte{0xff, 0xff}},
		{"empty", nil},
		{"trailing bytes", append(appendJoinRequest(nil, &JoinRequest{ID: 3, Addr: "h:1"}), 0)},
		{"id 0", appendJoinRequest(nil, &JoinRequest{Addr: "h:1"})},
		{"no address", appendJoinRequest(nil, &JoinRequest{ID: 3})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewOutgoingContext(joinCtx(t), nil)
			err := conn.Invoke(ctx, joinMethod, &frame{buf: tt.buf}, &frame{})
			assertCode(t, err, codes.InvalidArgument)
		})
	}
	if len(got) != 0 {
		t.Errorf("OnJoin called for %d malformed requests", len(got))
	}
}

func TestJoinArgumentErrors(t *testing.T) {
	ca := newTestCA(t, "cluster")
	files := ca.issue(t, nodeName(4))
	req := JoinRequest{ID: 4, Addr: "127.0.0.1:7004", Name: nodeName(4)}
	tests := []struct {
		name       string
		addr       string
		edit       func(*JoinRequest)
		files      *TLSFiles
		serverName string
		insecure   bool
		maxFrame   int
		want       string
	}{
		{"no security", "127.0.0.1:1", nil, nil, "", false, 0, "TLS files are required unless insecure is set"},
		{"both", "127.0.0.1:1", nil, files, "node-2", true, 0, "TLS and insecure are exclusive"},
		{"no server name", "127.0.0.1:1", nil, files, "", false, 0, "server name is required with TLS"},
		{"bad address", "nowhere", nil, files, "node-2", false, 0, `join "nowhere"`},
		{"id 0", "127.0.0.1:1", func(r *JoinRequest) { r.ID = 0 }, files, "node-2", false, 0, "join request: id 0"},
		{"no name", "127.0.0.1:1", func(r *JoinRequest) { r.Name = "" }, files, "node-2", false, 0, "Name is required with TLS"},
		{"bad own address", "127.0.0.1:1", func(r *JoinRequest) { r.Addr = "x" }, files, "node-2", false, 0, `address "x"`},
		{"tiny frame", "127.0.0.1:1", nil, files, "node-2", false, 100, "MaxFrameBytes 100 is below the minimum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req
			if tt.edit != nil {
				tt.edit(&r)
			}
			_, err := Join(joinCtx(t), tt.addr, r, tt.files, tt.serverName, tt.insecure, tt.maxFrame)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("join: %v, want %v containing %q", err, ErrInvalidConfig, tt.want)
			}
		})
	}
}
