package transport

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/clockd/clockd/consensus"
)

// loneConfigs configures nodes 1..n that know no peers yet.
func loneConfigs(t *testing.T, n int, ca *testCA) []Config {
	t.Helper()
	cfgs := clusterConfigs(t, n, ca)
	for i := range cfgs {
		cfgs[i].Peers = nil
	}
	return cfgs
}

func addPeer(t *testing.T, n *node, p Peer) {
	t.Helper()
	if err := n.AddPeer(p); err != nil {
		t.Fatalf("node %d: add peer %d: %v", n.cfg.ID, p.ID, err)
	}
}

func removePeer(t *testing.T, n *node, id consensus.NodeID) {
	t.Helper()
	if err := n.RemovePeer(id); err != nil {
		t.Fatalf("node %d: remove peer %d: %v", n.cfg.ID, id, err)
	}
}

func TestAddAndRemovePeerAfterStart(t *testing.T) {
	cfgs := loneConfigs(t, 2, newTestCA(t, "cluster"))
	a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
	baseline := goleak.IgnoreCurrent()

	for round := range uint64(2) { // the second round re-adds what the first removed
		addPeer(t, a, Peer{ID: 2, Addr: b.Addr(), Name: nodeName(2)})
		addPeer(t, b, Peer{ID: 1, Name: nodeName(1)}) // the acceptor needs no address
		waitFor(t, "streams up", func() bool { return a.Connected(2) && b.Connected(1) })
		exchange(t, a, b, round)
		if got, want := a.Peers(), []Peer{{ID: 2, Addr: b.Addr(), Name: nodeName(2)}}; !reflect.DeepEqual(got, want) {
			t.Errorf("peers of 1: %+v, want %+v", got, want)
		}

		dropped := a.Stats().Dropped
		removePeer(t, a, 2) // the dialer's side
		if a.Connected(2) || len(a.Peers()) != 0 {
			t.Errorf("node 1 still has peer 2 after removing it: %+v", a.Peers())
		}
		waitFor(t, "acceptor sees the stream end", func() bool { return !b.Connected(1) })
		a.Send([]consensus.Message{testMessage(1, 2, 100)})
		if got := a.Stats().Dropped; got != dropped+1 {
			t.Errorf("dropped %d after sending to a removed peer, want %d", got, dropped+1)
		}
		removePeer(t, b, 1)
		// No dialer, stream, writer or connection is left behind.
		goleak.VerifyNone(t, baseline)
	}
	if len(b.got) != 0 {
		t.Errorf("node 2 received %d messages sent after the removal", len(b.got))
	}
}

func TestRemovedPeerIsRefused(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cfgs := clusterConfigs(t, 2, ca)
	a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
	linkAll(t, []*node{a, b})

	// The acceptor removes the dialer, which keeps redialing in vain.
	removePeer(t, b, 1)
	waitFor(t, "dialer refused", func() bool { return b.Stats().Refused >= 1 })
	if a.Connected(2) || b.Connected(1) {
		t.Errorf("stream up after removal")
	}
	cs := rawStream(t, b.Addr(), cfgs[0].TLS, nodeName(2), metadata.Pairs(nodeIDKey, "1"))
	err := cs.RecvMsg(&frame{})
	assertCode(t, err, codes.PermissionDenied)
	if !strings.Contains(err.Error(), "node 1 is not a configured peer") {
		t.Errorf("refusal %v does not say why", err)
	}
	b.Send([]consensus.Message{testMessage(2, 1, 0)})
	if st := b.Stats(); st.Dropped != 1 || st.Received != 0 {
		t.Errorf("stats %+v, want 1 dropped and none received", st)
	}
}

func TestAddPeerBeforeStart(t *testing.T) {
	cfgs := loneConfigs(t, 2, nil)
	b := startNode(t, cfgs[1])
	addPeer(t, b, Peer{ID: 1})
	a, err := New(cfgs[0], func(consensus.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.AddPeer(Peer{ID: 2, Addr: b.Addr()}); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stream up", func() bool { return a.Connected(2) && b.Connected(1) })
}

func TestMembershipErrors(t *testing.T) {
	cfgs := clusterConfigs(t, 3, newTestCA(t, "cluster"))
	n := startNode(t, cfgs[0])
	tests := []struct {
		name   string
		peer   Peer
		wantIs error
		want   string
	}{
		{"zero id", Peer{ID: 0, Name: "x"}, ErrInvalidConfig, "peer id 0"},
		{"this node", Peer{ID: 1, Name: nodeName(1)}, ErrInvalidConfig, "peer 1 is this node"},
		{"existing", Peer{ID: 2, Name: nodeName(2)}, ErrInvalidConfig, "peer 2 is already a member"},
		{"no name with TLS", Peer{ID: 4}, ErrInvalidConfig, "peer 4: Name is required with TLS"},
		{"bad address", Peer{ID: 4, Name: nodeName(4), Addr: "host"}, ErrInvalidConfig, `peer 4 address "host"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := n.AddPeer(tt.peer)
			if !errors.Is(err, tt.wantIs) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AddPeer: %v, want %v containing %q", err, tt.wantIs, tt.want)
			}
		})
	}
	if err := n.RemovePeer(4); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("remove unknown: %v, want %v", err, ErrUnknownPeer)
	}
	if got := len(n.Peers()); got != 2 {
		t.Errorf("%d peers after failed changes, want 2", got)
	}
	_ = n.Close()
	if err := n.AddPeer(Peer{ID: 4, Name: nodeName(4)}); !errors.Is(err, ErrClosed) {
		t.Errorf("add after close: %v, want %v", err, ErrClosed)
	}
}
