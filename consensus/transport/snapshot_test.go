package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
)

// received is what an OnSnapshot handler saw.
type received struct {
	from consensus.NodeID
	data []byte
	err  error // the reader's error, nil at a clean EOF
}

// recordSnapshots sets OnSnapshot on every config to read the whole
// snapshot, report it on the returned channel and return ret(data).
func recordSnapshots(cfgs []Config, ret func([]byte) error) <-chan received {
	got := make(chan received, 10)
	for i := range cfgs {
		cfgs[i].OnSnapshot = func(from consensus.NodeID, r io.Reader) error {
			data, err := io.ReadAll(r)
			got <- received{from: from, data: data, err: err}
			if err != nil {
				return err
			}
			return ret(data)
		}
	}
	return got
}

func accept([]byte) error { return nil }

func awaitSnapshot(t *testing.T, got <-chan received) received {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot received")
		return received{}
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshotOverMTLS(t *testing.T) {
	cfgs := clusterConfigs(t, 2, newTestCA(t, "cluster"))
	cfgs[0].SnapshotChunkBytes = 100_000 // node 1 sends in odd chunks
	got := recordSnapshots(cfgs, accept)
	a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
	linkAll(t, []*node{a, b})

	tests := []struct {
		name     string
		from, to *node
		size     int
	}{
		{"higher id dials lower", b, a, 5 << 20},
		{"lower id, uneven chunks", a, b, 5<<20 + 7},
		{"empty", b, a, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := randomBytes(t, tt.size)
			err := tt.from.SendSnapshot(context.Background(), tt.to.cfg.ID, bytes.NewReader(want), int64(len(want)))
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			r := awaitSnapshot(t, got)
			if r.err != nil || r.from != tt.from.cfg.ID || !bytes.Equal(r.data, want) {
				t.Errorf("received %d bytes from %d (%v), want the %d sent by %d",
					len(r.data), r.from, r.err, len(want), tt.from.cfg.ID)
			}
		})
	}
	exchange(t, a, b, 0) // the message streams are unaffected
}

func TestSnapshotReceiverErrorReachesSender(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
	}{
		{"plain error", errors.New("checksum mismatch at byte 42"), codes.Aborted},
		{"status", status.Error(codes.FailedPrecondition, "have a newer snapshot"), codes.FailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgs := clusterConfigs(t, 2, nil)
			got := recordSnapshots(cfgs, func([]byte) error { return tt.err })
			a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
			linkAll(t, []*node{a, b})
			data := randomBytes(t, 3<<20)
			err := a.SendSnapshot(context.Background(), 2, bytes.NewReader(data), int64(len(data)))
			if err == nil || !strings.Contains(err.Error(), status.Convert(tt.err).Message()) {
				t.Fatalf("send: %v, want an error containing %q", err, tt.err)
			}
			assertCode(t, err, tt.wantCode)
			if r := awaitSnapshot(t, got); r.err != nil || len(r.data) != len(data) {
				t.Errorf("handler read %d bytes (%v), want all %d", len(r.data), r.err, len(data))
			}
		})
	}
}

func TestSnapshotRefusals(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cfgs := clusterConfigs(t, 3, ca)
	cfgs[0].Peers = cfgs[0].Peers[:1] // node 1 does not know node 3
	cfgs[0].MaxSnapshotBytes = 1000
	got := recordSnapshots(cfgs[:1], accept)
	a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
	c := startNode(t, cfgs[2])
	linkAll(t, []*node{a, b})
	if err := c.SetPeerAddr(1, a.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPeerAddr(3, c.Addr()); err != nil {
		t.Fatal(err)
	}

	data := []byte("0123456789")
	send := func(from *node, to consensus.NodeID, size int64) error {
		return from.SendSnapshot(context.Background(), to, bytes.NewReader(data), size)
	}
	tests := []struct {
		name   string
		err    error
		code   codes.Code
		wantIs error
	}{
		{"unknown to the receiver", send(c, 1, 10), codes.PermissionDenied, nil},
		{"receiver takes no snapshots", send(b, 3, 10), codes.Unimplemented, nil},
		{"over the receiver's limit", send(b, 1, 1001), codes.ResourceExhausted, nil},
		{"unknown to the sender", send(a, 9, 10), codes.Unknown, ErrUnknownPeer},
		{"over the sender's limit", send(a, 2, 1001), codes.Unknown, ErrSnapshotTooLarge},
		{"reader too short", send(b, 1, 11), codes.Unknown, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCode(t, tt.err, tt.code)
			if tt.wantIs != nil && !errors.Is(tt.err, tt.wantIs) {
				t.Errorf("error %v, want %v", tt.err, tt.wantIs)
			}
		})
	}
	// Only the short reader got as far as the handler, which saw it fail.
	if r := awaitSnapshot(t, got); r.err == nil {
		t.Errorf("handler read %q without error from a cut transfer", r.data)
	}
	if len(got) != 0 {
		t.Errorf("%d more snapshots reached the handler", len(got))
	}
	if st := a.Stats(); st.Refused != 1 {
		t.Errorf("node 1 refused %d, want 1", st.Refused)
	}
}

// TestSnapshotRawRefusals plays senders that break the protocol.
func TestSnapshotRawRefusals(t *testing.T) {
	ca := newTestCA(t, "cluster")
	cfgs := clusterConfigs(t, 2, ca)
	got := recordSnapshots(cfgs, accept)
	server := startNode(t, cfgs[1]) // node 2

	md := func(id, size string) metadata.MD { return metadata.Pairs(nodeIDKey, id, snapshotSizeKey, size) }
	tests := []struct {
		name  string
		files *TLSFiles
		md    metadata.MD
		send  [][]byte
		want  codes.Code
	}{
		{"unknown id", ca.issue(t, "node-7"), md("7", "10"), nil, codes.PermissionDenied},
		{"certificate of another node", ca.issue(t, "node-9"), md("1", "10"), nil, codes.PermissionDenied},
		{"no size", cfgs[0].TLS, metadata.Pairs(nodeIDKey, "1"), nil, codes.InvalidArgument},
		{"negative size", cfgs[0].TLS, md("1", "-1"), nil, codes.InvalidArgument},
		{"more than declared", cfgs[0].TLS, md("1", "10"), [][]byte{make([]byte, 6), make([]byte, 6)}, codes.InvalidArgument},
		{"less than declared", cfgs[0].TLS, md("1", "10"), [][]byte{make([]byte, 6)}, codes.DataLoss},
		{"empty chunk", cfgs[0].TLS, md("1", "10"), [][]byte{{}}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn := rawConn(t, server.Addr(), tt.files, nodeName(2))
			cs, err := conn.NewStream(metadata.NewOutgoingContext(ctx, tt.md), snapshotDesc, snapshotMethod)
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range tt.send {
				if err := cs.SendMsg(&frame{buf: chunk}); err != nil {
					break
				}
			}
			_ = cs.CloseSend()
			assertCode(t, cs.RecvMsg(&frame{}), tt.want)
		})
	}
	for len(got) > 0 {
		if r := <-got; r.err == nil {
			t.Errorf("handler accepted %d bytes from a broken stream", len(r.data))
		}
	}
}

// TestSnapshotAbort starts a snapshot of 1 GiB whose receiver reads one
// byte and then stops, so the sender blocks on flow control, and aborts it.
func TestSnapshotAbort(t *testing.T) {
	tests := []struct {
		name   string
		abort  func(cancel context.CancelFunc, sender *node)
		wantIs error
	}{
		{"context canceled", func(cancel context.CancelFunc, _ *node) { cancel() }, context.Canceled},
		{"peer removed", func(_ context.CancelFunc, sender *node) { _ = sender.RemovePeer(2) }, ErrUnknownPeer},
		{"transport closed", func(_ context.CancelFunc, sender *node) { _ = sender.Close() }, ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgs := clusterConfigs(t, 2, nil)
			started, release, readErr := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			cfgs[1].OnSnapshot = func(_ consensus.NodeID, r io.Reader) error {
				if _, err := r.Read(make([]byte, 1)); err != nil {
					t.Errorf("first read: %v", err)
				}
				close(started)
				<-release
				_, err := io.Copy(io.Discard, r)
				readErr <- err
				return err
			}
			a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
			linkAll(t, []*node{a, b})

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sent := make(chan error, 1)
			go func() { sent <- a.SendSnapshot(ctx, 2, io.LimitReader(zeros{}, 1<<30), 1<<30) }()
			<-started
			tt.abort(cancel, a)
			err := <-sent
			close(release)
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("send: %v, want an error wrapping %v", err, tt.wantIs)
			}
			if err := <-readErr; err == nil {
				t.Errorf("receiver read to a clean EOF after the sender gave up")
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

func TestProgressLogsEvery64MiB(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	p := progress{log: zap.New(core), msg: "snapshot sending", peer: 2, total: 200 << 20}
	for p.done < p.total {
		p.add(1 << 20)
	}
	var at []string
	for _, e := range logs.All() {
		at = append(at, strconv.FormatInt(e.ContextMap()["done-bytes"].(int64)>>20, 10))
	}
	if got := strings.Join(at, ","); got != "64,128,192" {
		t.Errorf("progress logged at %s MiB, want 64,128,192", got)
	}
}

func TestSnapshotAcceptedEarly(t *testing.T) {
	cfgs := clusterConfigs(t, 2, nil)
	cfgs[1].OnSnapshot = func(_ consensus.NodeID, r io.Reader) error {
		_, err := io.ReadFull(r, make([]byte, 10)) // enough to see it is stale, say
		return err
	}
	a, b := startNode(t, cfgs[0]), startNode(t, cfgs[1])
	linkAll(t, []*node{a, b})
	const size = 64 << 20 // more than flow control lets through unread
	if err := a.SendSnapshot(context.Background(), 2, io.LimitReader(zeros{}, size), size); err != nil {
		t.Errorf("send: %v, want the receiver's early acceptance", err)
	}
}
