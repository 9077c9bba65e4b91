package transport

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
)

// TestCallBothWays calls a handler in each direction of a pair over mTLS:
// the answer carries the caller's authenticated id and its payload.
func TestCallBothWays(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cfgs := clusterConfigs(t, 2, ca)
	for i := range cfgs {
		cfgs[i].Handlers = map[string]Handler{
			"echo": func(_ context.Context, from consensus.NodeID, req []byte) ([]byte, error) {
				return append([]byte{byte(from)}, req...), nil
			},
			"fail": func(context.Context, consensus.NodeID, []byte) ([]byte, error) {
				return nil, status.Error(codes.FailedPrecondition, "not the leader")
			},
		}
	}
	a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
	linkAll(t, []*node{a, b})
	ctx := context.Background()
	for _, c := range []struct{ from, to *node }{{a, b}, {b, a}} {
		got, err := c.from.Call(ctx, c.to.cfg.ID, "echo", []byte("ping"))
		if err != nil {
			t.Fatalf("call %d→%d: %v", c.from.cfg.ID, c.to.cfg.ID, err)
		}
		if want := append([]byte{byte(c.from.cfg.ID)}, "ping"...); string(got) != string(want) {
			t.Fatalf("call %d→%d answered %q, want %q", c.from.cfg.ID, c.to.cfg.ID, got, want)
		}
	}
	_, err := a.Call(ctx, b.cfg.ID, "fail", nil)
	assertCode(t, err, codes.FailedPrecondition)
	_, err = a.Call(ctx, b.cfg.ID, "missing", nil)
	assertCode(t, err, codes.Unimplemented)
	if _, err := a.Call(ctx, 99, "echo", nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("call to a stranger: %v, want ErrUnknownPeer", err)
	}
}
