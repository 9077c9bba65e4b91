package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestExchangeOverMTLS(t *testing.T) {
	ca := newTestCA(t, "cluster")
	var nodes []*node
	for _, cfg := range clusterConfigs(t, 3, ca) {
		nodes = append(nodes, startNode(t, cfg))
	}
	linkAll(t, nodes)

	const perPair = 20
	want := map[consensus.NodeID][]consensus.Message{} // by receiver
	for _, from := range nodes {
		var batch []consensus.Message
		for seq := range uint64(perPair) {
			for _, to := range nodes {
				if to != from {
					m := testMessage(from.cfg.ID, to.cfg.ID, seq)
					batch = append(batch, m)
					want[to.cfg.ID] = append(want[to.cfg.ID], m)
				}
			}
		}
		from.Send(batch)
	}
	for _, to := range nodes {
		got := receive(t, to.got, 2*perPair)
		assertSameBySender(t, to.cfg.ID, got, want[to.cfg.ID])
	}
	for _, n := range nodes {
		if st := n.Stats(); st.Sent != 2*perPair || st.Dropped != 0 || st.Rejected != 0 || st.Refused != 0 {
			t.Errorf("node %d stats %+v, want %d sent and nothing lost", n.cfg.ID, st, 2*perPair)
		}
	}
}

// assertSameBySender compares messages per sender: each stream is FIFO, the
// interleaving of streams is not defined.
func assertSameBySender(t *testing.T, to consensus.NodeID, got, want []consensus.Message) {
	t.Helper()
	bySender := func(ms []consensus.Message) map[consensus.NodeID][]consensus.Message {
		out := map[consensus.NodeID][]consensus.Message{}
		for _, m := range ms {
			out[m.From] = append(out[m.From], m)
		}
		return out
	}
	if g, w := bySender(got), bySender(want); !reflect.DeepEqual(g, w) {
		t.Errorf("node %d received\n%+v\nwant\n%+v", to, g, w)
	}
}

func TestBatchingAndOversizedMessage(t *testing.T) {
	cfgs := clusterConfigs(t, 2, nil)
	for i := range cfgs {
		cfgs[i].MaxFrameBytes = 4096
	}
	a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
	linkAll(t, []*node{a, b})

	huge := testMessage(2, 1, 0)
	huge.Entries[0].Value.Cmds[0].Data = make([]byte, 4096)
	b.Send([]consensus.Message{huge})
	if st := b.Stats(); st.Dropped != 1 {
		t.Fatalf("oversized message: dropped %d, want 1", st.Dropped)
	}

	var want []consensus.Message
	for seq := range uint64(500) {
		want = append(want, testMessage(2, 1, seq))
	}
	b.Send(want)
	if got := receive(t, a.got, len(want)); !reflect.DeepEqual(got, want) {
		t.Fatalf("batched messages differ")
	}
	if st := b.Stats(); st.Sent != 500 || st.Frames < minFrames(want, 4096) {
		t.Errorf("stats %+v: want 500 sent in at least %d frames", st, minFrames(want, 4096))
	}
	if st := a.Stats(); st.Rejected != 0 {
		t.Errorf("receiver rejected %d", st.Rejected)
	}
}

// minFrames is how many frames of maxBytes msgs need at the least.
func minFrames(msgs []consensus.Message, maxBytes int) uint64 {
	total := 0
	for _, m := range msgs {
		n := len(encode(m))
		total += uvarintLen(uint64(n)) + n
	}
	room := maxBytes - binary.MaxVarintLen64
	return uint64((total + room - 1) / room)
}

func TestSendDrops(t *testing.T) {
	cfgs := clusterConfigs(t, 2, nil)
	a := startNode(t, cfgs[0])
	a.Send([]consensus.Message{
		testMessage(1, 9, 0), // unknown destination
		testMessage(1, 1, 0), // this node
		testMessage(3, 2, 0), // forged sender
		testMessage(1, 2, 0), // no stream up
	})
	if st := a.Stats(); st.Dropped != 4 || st.Sent != 0 {
		t.Errorf("stats %+v, want 4 dropped", st)
	}
}

func TestWrongCertificateNameIsRefused(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cfgs := clusterConfigs(t, 2, ca)
	server := startNode(t, cfgs[1])

	// A certificate from the right CA, but for another node's name.
	cs := rawStream(t, server.Addr(), ca.issue(t, "node-9"), nodeName(2), metadata.Pairs(nodeIDKey, "1"))
	_ = cs.SendMsg(frameOf(encode(testMessage(1, 2, 0))))
	assertCode(t, cs.RecvMsg(&frame{}), codes.PermissionDenied)

	// A full transport with that certificate never gets a stream up.
	impostor := cfgs[0]
	impostor.TLS = ca.issue(t, "node-9")
	imp := startNode(t, impostor)
	if err := imp.SetPeerAddr(2, server.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second refusal", func() bool { return server.Stats().Refused >= 2 })
	imp.Send([]consensus.Message{testMessage(1, 2, 1)})

	if imp.Connected(2) || server.Connected(1) {
		t.Errorf("impostor connected")
	}
	if st := server.Stats(); st.Received != 0 || len(server.got) != 0 {
		t.Errorf("delivered %d messages from an impostor", st.Received)
	}
}

func TestIdentityRefusals(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cfgs := clusterConfigs(t, 3, ca)
	server := startNode(t, cfgs[1]) // node 2
	other := newTestCA(t, "other")

	tests := []struct {
		name  string
		files *TLSFiles
		md    metadata.MD
		want  codes.Code
	}{
		{"unknown id", ca.issue(t, "node-7"), metadata.Pairs(nodeIDKey, "7"), codes.PermissionDenied},
		{"higher id dials", cfgs[2].TLS, metadata.Pairs(nodeIDKey, "3"), codes.PermissionDenied},
		{"self", cfgs[1].TLS, metadata.Pairs(nodeIDKey, "2"), codes.PermissionDenied},
		{"missing id", cfgs[0].TLS, metadata.MD{}, codes.Unauthenticated},
		{"malformed id", cfgs[0].TLS, metadata.Pairs(nodeIDKey, "one"), codes.Unauthenticated},
		{"two ids", cfgs[0].TLS, metadata.Pairs(nodeIDKey, "1", nodeIDKey, "1"), codes.Unauthenticated},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := rawStream(t, server.Addr(), tt.files, nodeName(2), tt.md)
			assertCode(t, cs.RecvMsg(&frame{}), tt.want)
			if got := server.Stats().Refused; got != uint64(i+1) {
				t.Errorf("refused %d, want %d", got, i+1)
			}
		})
	}

	t.Run("untrusted CA", func(t *testing.T) {
		files := other.issue(t, nodeName(1))
		files.CAFile = ca.caFile // trust the server, be untrusted by it
		cs, err := openRawStream(t, server.Addr(), files, nodeName(2), metadata.Pairs(nodeIDKey, "1"))
		if err == nil {
			err = cs.RecvMsg(&frame{}) // the handshake may fail after the stream opened
		}
		assertCode(t, err, codes.Unavailable)
	})
	if st := server.Stats(); st.Received != 0 || server.Connected(1) {
		t.Errorf("stats %+v after refusals, want nothing received", st)
	}
}

func TestDialerChecksServerName(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cfgs := clusterConfigs(t, 2, ca)
	cfgs[1].TLS = ca.issue(t, "node-3") // node 2 presents another name
	core, logs := observer.New(zapcore.WarnLevel)
	cfgs[0].Logger = zap.New(core)
	a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
	if err := a.SetPeerAddr(2, b.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dial failure logged", func() bool {
		for _, e := range logs.FilterMessage("peer dial failed").All() {
			if strings.Contains(e.ContextMap()["error"].(string), "certificate is valid for node-3, not node-2") {
				return true
			}
		}
		return false
	})
	if a.Connected(2) || b.Connected(1) {
		t.Errorf("connected to a server with the wrong name")
	}
}

func TestRejectsBadInput(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cfgs := clusterConfigs(t, 3, ca)
	cfgs[1].MaxFrameBytes = 4096
	server := startNode(t, cfgs[1]) // node 2
	cs := rawStream(t, server.Addr(), cfgs[0].TLS, nodeName(2), metadata.Pairs(nodeIDKey, "1"))
	awaitHeader(t, cs)

	valid := encode(testMessage(1, 2, 1))
	spoofed := encode(testMessage(3, 2, 2))
	misaddressed := encode(testMessage(1, 3, 3))
	badType := bytes.Clone(valid)
	badType[1] = 200
	frames := []struct {
		name     string
		buf      []byte
		rejected uint64
	}{
		{"garbage", bytes.Repeat([]byte{0xff}, 11), 1},
		{"empty", nil, 1},
		{"length past end", frameOf(valid).buf[:len(frameOf(valid).buf)-1], 1},
		{"trailing bytes", append(frameOf(valid).buf, 7), 1},
		{"truncated message", frameOf(valid[:len(valid)-1]).buf, 1},
		{"bad message type", frameOf(badType).buf, 1},
		{"spoofed sender", frameOf(spoofed).buf, 1},
		{"wrong destination", frameOf(misaddressed).buf, 1},
		{"over MaxFrameBytes", frameOf(bytes.Repeat(valid, 4096/len(valid)+1)).buf, 1},
		{"mixed", frameOf(spoofed, valid, []byte{1}).buf, 2},
	}
	var rejected uint64
	for _, f := range frames {
		if err := cs.SendMsg(&frame{buf: f.buf}); err != nil {
			t.Fatalf("%s: send: %v", f.name, err)
		}
		rejected += f.rejected
	}
	if err := cs.SendMsg(frameOf(valid)); err != nil {
		t.Fatalf("send valid: %v", err)
	}
	got := receive(t, server.got, 2) // from "mixed" and the last frame
	if want := testMessage(1, 2, 1); !reflect.DeepEqual(got[0], want) || !reflect.DeepEqual(got[1], want) {
		t.Errorf("received %+v, want twice %+v", got, want)
	}
	if st := server.Stats(); st.Rejected != rejected || st.Received != 2 {
		t.Errorf("stats %+v, want %d rejected and 2 received", st, rejected)
	}

	// Past the gRPC limit the stream itself fails.
	_ = cs.SendMsg(&frame{buf: make([]byte, 4096+grpcSlackBytes+1)})
	assertCode(t, cs.RecvMsg(&frame{}), codes.ResourceExhausted)
	waitFor(t, "oversized frame counted", func() bool { return server.Stats().Rejected == rejected+1 })
}

func TestNewerStreamTakesOver(t *testing.T) {
	cfgs := clusterConfigs(t, 2, nil)
	server := startNode(t, cfgs[1])
	md := metadata.Pairs(nodeIDKey, "1")
	first := rawStream(t, server.Addr(), nil, "", md)
	awaitHeader(t, first)
	second := rawStream(t, server.Addr(), nil, "", md)
	awaitHeader(t, second)

	server.Send([]consensus.Message{testMessage(2, 1, 1)})
	expectFrame(t, second, testMessage(2, 1, 1))

	// The older stream ending leaves the newer one in charge.
	if err := first.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := first.RecvMsg(&frame{}); !errors.Is(err, io.EOF) {
		t.Fatalf("first stream ended with %v, want EOF", err)
	}
	if !server.Connected(1) {
		t.Fatal("server lost the newer stream")
	}
	server.Send([]consensus.Message{testMessage(2, 1, 2)})
	expectFrame(t, second, testMessage(2, 1, 2))
}

func awaitHeader(t *testing.T, cs grpc.ClientStream) {
	t.Helper()
	if md, err := cs.Header(); err != nil || md == nil {
		t.Fatalf("header %v, %v: stream not accepted", md, err)
	}
}

// expectFrame reads one frame from cs and checks that it holds just want.
func expectFrame(t *testing.T, cs grpc.ClientStream, want consensus.Message) {
	t.Helper()
	var f frame
	if err := cs.RecvMsg(&f); err != nil {
		t.Fatalf("receive: %v", err)
	}
	var got []consensus.Message
	err := walkFrame(f.buf, func(b []byte) {
		m, err := consensus.DecodeMessage(b)
		if err != nil {
			t.Errorf("decode: %v", err)
		}
		got = append(got, m)
	})
	if err != nil || !reflect.DeepEqual(got, []consensus.Message{want}) {
		t.Errorf("frame holds %+v (%v), want %+v", got, err, want)
	}
}

func TestReconnect(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cfgs := clusterConfigs(t, 2, ca)
	a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
	linkAll(t, []*node{a, b})
	exchange(t, a, b, 0)

	// Restart the accepting side on its address; the dialer comes back.
	cfgs[1].Listen = b.Addr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dialer sees the stream down", func() bool { return !a.Connected(2) })
	a.Send([]consensus.Message{testMessage(1, 2, 99)}) // lost: no stream
	b = startNode(t, cfgs[1])
	linkAll(t, []*node{a, b})
	exchange(t, a, b, 1)

	// Restart the dialing side; it dials again at once.
	cfgs[0].Listen = a.Addr()
	cfgs[0].Peers[0].Addr = b.Addr()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "acceptor sees the stream down", func() bool { return !b.Connected(1) })
	a = startNode(t, cfgs[0])
	linkAll(t, []*node{a, b})
	exchange(t, a, b, 2)
}

// exchange sends one message each way between a and b and checks both.
func exchange(t *testing.T, a, b *node, seq uint64) {
	t.Helper()
	ab, ba := testMessage(a.cfg.ID, b.cfg.ID, seq), testMessage(b.cfg.ID, a.cfg.ID, seq)
	a.Send([]consensus.Message{ab})
	b.Send([]consensus.Message{ba})
	if got := receive(t, b.got, 1)[0]; !reflect.DeepEqual(got, ab) {
		t.Errorf("round %d: %d received %+v, want %+v", seq, b.cfg.ID, got, ab)
	}
	if got := receive(t, a.got, 1)[0]; !reflect.DeepEqual(got, ba) {
		t.Errorf("round %d: %d received %+v, want %+v", seq, a.cfg.ID, got, ba)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var nodes []*node
	for _, cfg := range clusterConfigs(t, 3, newTestCA(t, "cluster")) {
		nodes = append(nodes, startNode(t, cfg))
	}
	linkAll(t, nodes)
	for _, n := range nodes {
		n.Send([]consensus.Message{testMessage(n.cfg.ID, n.cfg.ID%3+1, 0)})
	}
	for _, n := range nodes {
		receive(t, n.got, 1)
	}
	for _, n := range nodes {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
	}
}

func TestStartErrors(t *testing.T) {
	cfgs := clusterConfigs(t, 2, nil)
	a := startNode(t, cfgs[0])
	if err := a.Start(); !errors.Is(err, ErrStarted) {
		t.Errorf("second start: %v, want %v", err, ErrStarted)
	}
	cfgs[1].Listen = a.Addr()
	b, err := New(cfgs[1], func(consensus.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil || !strings.Contains(err.Error(), "listen "+a.Addr()) {
		t.Errorf("start on a busy address: %v", err)
	}
	_ = a.Close()
	if err := a.Start(); !errors.Is(err, ErrClosed) {
		t.Errorf("start after close: %v, want %v", err, ErrClosed)
	}
	if err := a.SetPeerAddr(5, "127.0.0.1:1"); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("set unknown peer: %v, want %v", err, ErrUnknownPeer)
	}
	if err := a.SetPeerAddr(2, "nowhere"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("set bad address: %v, want %v", err, ErrInvalidConfig)
	}
}

func TestConfigErrors(t *testing.T) {
	ca := newTestCA(t, "cluster")
	files := ca.issue(t, "node-1")
	noPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() Config {
		return Config{ID: 1, Listen: "127.0.0.1:0", TLS: files, Peers: []Peer{{ID: 2, Addr: "127.0.0.1:7000", Name: "node-2"}}}
	}
	withTLS := func(cert, key, ca string) func(*Config) {
		return func(c *Config) { c.TLS = &TLSFiles{CertFile: cert, KeyFile: key, CAFile: ca} }
	}
	tests := []struct {
		name   string
		edit   func(*Config)
		wantIs error
		want   string
	}{
		{"zero id", func(c *Config) { c.ID = 0 }, ErrInvalidConfig, "id must be non-zero"},
		{"no listen", func(c *Config) { c.Listen = "" }, ErrInvalidConfig, "listen address is empty"},
		{"bad listen", func(c *Config) { c.Listen = "localhost" }, ErrInvalidConfig, `listen "localhost"`},
		{"no security", func(c *Config) { c.TLS = nil }, ErrInvalidConfig, "TLS files are required unless Insecure is set"},
		{"both", func(c *Config) { c.Insecure = true }, ErrInvalidConfig, "TLS and Insecure are exclusive"},
		{"no cert", func(c *Config) { c.TLS = &TLSFiles{KeyFile: "k", CAFile: "c"} }, ErrInvalidConfig, "TLS.CertFile is empty"},
		{"no key", func(c *Config) { c.TLS = &TLSFiles{CertFile: "c", CAFile: "c"} }, ErrInvalidConfig, "TLS.KeyFile is empty"},
		{"no CA", func(c *Config) { c.TLS = &TLSFiles{CertFile: "c", KeyFile: "k"} }, ErrInvalidConfig, "TLS.CAFile is empty"},
		{"peer zero", func(c *Config) { c.Peers[0].ID = 0 }, ErrInvalidConfig, "peer id 0"},
		{"peer self", func(c *Config) { c.Peers[0].ID = 1 }, ErrInvalidConfig, "peer 1 is this node"},
		{"duplicate peer", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, ErrInvalidConfig, "duplicate peer 2"},
		{"peer without name", func(c *Config) { c.Peers[0].Name = "" }, ErrInvalidConfig, "peer 2: Name is required with TLS"},
		{"bad peer addr", func(c *Config) { c.Peers[0].Addr = "host" }, ErrInvalidConfig, `peer 2 address "host"`},
		{"negative frame", func(c *Config) { c.MaxFrameBytes = -1 }, ErrInvalidConfig, "MaxFrameBytes -1 is negative"},
		{"tiny frame", func(c *Config) { c.MaxFrameBytes = 100 }, ErrInvalidConfig, "MaxFrameBytes 100 is below the minimum 1024"},
		{"negative queue", func(c *Config) { c.QueueLen = -5 }, ErrInvalidConfig, "QueueLen -5 is negative"},
		{"backoff", func(c *Config) { c.BackoffMin, c.BackoffMax = 2e9, 1e9 }, ErrInvalidConfig, "BackoffMax 1s is below BackoffMin 2s"},
		{"missing cert file", withTLS("/nonexistent/c.pem", files.KeyFile, files.CAFile), fs.ErrNotExist, "/nonexistent/c.pem"},
		{"missing CA file", withTLS(files.CertFile, files.KeyFile, "/nonexistent/ca.pem"), fs.ErrNotExist, "/nonexistent/ca.pem"},
		{"CA without PEM", withTLS(files.CertFile, files.KeyFile, noPEM), ErrInvalidConfig, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.edit(&cfg)
			_, err := New(cfg, func(consensus.Message) {})
			if !errors.Is(err, tt.wantIs) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want %v containing %q", err, tt.wantIs, tt.want)
			}
		})
	}
	t.Run("nil handler", func(t *testing.T) {
		if _, err := New(base(), nil); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "handler is nil") {
			t.Errorf("New: %v", err)
		}
	})
	t.Run("insecure without names", func(t *testing.T) {
		cfg := base()
		cfg.TLS, cfg.Insecure, cfg.Peers[0].Name, cfg.Peers[0].Addr = nil, true, "", ""
		if _, err := New(cfg, func(consensus.Message) {}); err != nil {
			t.Errorf("New: %v", err)
		}
	})
}

func assertCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("error %v: code %v, want %v", err, got, want)
	}
}
