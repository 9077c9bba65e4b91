package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/clockd/clockd/consensus"
)

// testCA is a throwaway certificate authority writing PEM files to dir.
type testCA struct {
	dir    string
	name   string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse CA: %v", err)
	}
	ca := &testCA{dir: t.TempDir(), name: name, cert: cert, key: key}
	ca.caFile = writePEM(t, ca.dir, name+"-ca.pem", "CERTIFICATE", der)
	return ca
}

// issue writes a certificate for dnsName, valid for server and client use.
func (ca *testCA) issue(t *testing.T, dnsName string) *TLSFiles {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: dnsName},
		DNSNames:     []string{dnsName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("issue %s: %v", dnsName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	return &TLSFiles{
		CertFile: writePEM(t, ca.dir, dnsName+".pem", "CERTIFICATE", der),
		KeyFile:  writePEM(t, ca.dir, dnsName+"-key.pem", "PRIVATE KEY", keyDER),
		CAFile:   ca.caFile,
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("serial: %v", err)
	}
	return n
}

func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}

func nodeName(id consensus.NodeID) string { return fmt.Sprintf("node-%d", id) }

// node is a started Transport whose handler feeds got.
type node struct {
	*Transport
	got chan consensus.Message
}

// startNode starts a transport for cfg and closes it when the test ends.
func startNode(t *testing.T, cfg Config) *node {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(nodeName(cfg.ID))
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 50*time.Millisecond
	}
	n := &node{got: make(chan consensus.Message, 10000)}
	tr, err := New(cfg, func(m consensus.Message) { n.got <- m })
	if err != nil {
		t.Fatalf("new node %d: %v", cfg.ID, err)
	}
	n.Transport = tr
	if err := tr.Start(); err != nil {
		t.Fatalf("start node %d: %v", cfg.ID, err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return n
}

// clusterConfigs configures nodes 1..n on 127.0.0.1:0, with mTLS from ca
// unless ca is nil. Peer addresses are left empty for linkAll.
func clusterConfigs(t *testing.T, n int, ca *testCA) []Config {
	t.Helper()
	cfgs := make([]Config, n)
	for i := range cfgs {
		id := consensus.NodeID(i + 1)
		cfgs[i] = Config{ID: id, Listen: "127.0.0.1:0", Insecure: ca == nil}
		if ca != nil {
			cfgs[i].TLS = ca.issue(t, nodeName(id))
		}
		for j := range n {
			if j != i {
				cfgs[i].Peers = append(cfgs[i].Peers, Peer{ID: consensus.NodeID(j + 1), Name: nodeName(consensus.NodeID(j + 1))})
			}
		}
	}
	return cfgs
}

// linkAll tells every node where the others listen and waits until every
// pair has a stream up on both sides.
func linkAll(t *testing.T, nodes []*node) {
	t.Helper()
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				if err := a.SetPeerAddr(b.cfg.ID, b.Addr()); err != nil {
					t.Fatalf("set peer addr: %v", err)
				}
			}
		}
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				waitFor(t, fmt.Sprintf("node %d connected to %d", a.cfg.ID, b.cfg.ID),
					func() bool { return a.Connected(b.cfg.ID) })
			}
		}
	}
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// receive takes n messages from got, failing the test if they do not come.
func receive(t *testing.T, got <-chan consensus.Message, n int) []consensus.Message {
	t.Helper()
	out := make([]consensus.Message, 0, n)
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case m := <-got:
			out = append(out, m)
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

// testMessage is a message with entries and commands, distinct per seq.
func testMessage(from, to consensus.NodeID, seq uint64) consensus.Message {
	return consensus.Message{
		Type:   consensus.MsgAccept,
		From:   from,
		To:     to,
		Ballot: consensus.Ballot{Round: seq + 1, Node: from},
		Slot:   seq,
		Commit: seq / 2,
		Entries: []consensus.Entry{{
			Slot:   seq,
			Ballot: consensus.Ballot{Round: seq + 1, Node: from},
			Value: consensus.Value{Cmds: []consensus.Command{
				{ID: seq, Data: []byte(fmt.Sprintf("cmd %d->%d #%d", from, to, seq))},
				{ID: seq + 1000, Data: []byte{0, 1, 2, 255}},
			}},
		}},
	}
}

// rawStream opens a peer stream by hand, as a misbehaving peer would.
// With tlsFiles nil it dials in plaintext; md is the request metadata.
func rawStream(t *testing.T, addr string, tlsFiles *TLSFiles, serverName string, md metadata.MD) grpc.ClientStream {
	t.Helper()
	cs, err := openRawStream(t, addr, tlsFiles, serverName, md)
	if err != nil {
		t.Fatalf("new stream: %v", err)
	}
	return cs
}

func openRawStream(t *testing.T, addr string, tlsFiles *TLSFiles, serverName string, md metadata.MD) (grpc.ClientStream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	conn := rawConn(t, addr, tlsFiles, serverName)
	return conn.NewStream(metadata.NewOutgoingContext(ctx, md), streamDesc, streamMethod)
}

// rawConn is a client connection to addr that the test closes at its end.
// With tlsFiles nil it is plaintext.
func rawConn(t *testing.T, addr string, tlsFiles *TLSFiles, serverName string) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if tlsFiles != nil {
		m, err := loadTLS(tlsFiles)
		if err != nil {
			t.Fatalf("load TLS: %v", err)
		}
		creds = credentials.NewTLS(m.clientConfig(serverName))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(frameCodec{})))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// frameOf packs raw message encodings into one frame.
func frameOf(msgs ...[]byte) *frame {
	b := newFrameBuilder(1 << 30)
	for _, m := range msgs {
		b.add(m)
	}
	f, _ := b.take()
	return f
}

func encode(m consensus.Message) []byte { return consensus.AppendMessage(nil, &m) }
