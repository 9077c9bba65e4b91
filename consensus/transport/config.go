package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
)

// Peer is another member of the cluster.
type Peer struct {
	ID consensus.NodeID
	// Addr is host:port. It may be empty at New and set later with
	// SetPeerAddr; a dialer waits until it is known.
	Addr string
	// Name is the identity the peer's TLS certificate must carry as a DNS
	// SAN. Required with TLS, ignored when Insecure.
	Name string
}

// TLSFiles names the PEM files for mutual TLS.
type TLSFiles struct {
	CertFile string // this node's certificate chain, used as server and client
	KeyFile  string // the certificate's private key
	CAFile   string // the CA that signs every member's certificate
}

// Config configures a Transport.
type Config struct {
	// ID is this node's identity. It must be non-zero.
	ID consensus.NodeID
	// Listen is the host:port to accept peer streams on, e.g. "127.0.0.1:0".
	Listen string
	// Peers lists every other member, each once: the starting membership,
	// which AddPeer and RemovePeer change later.
	Peers []Peer
	// TLS turns on mutual TLS. Required unless Insecure.
	TLS *TLSFiles
	// Insecure runs plaintext, identity resting on the claimed node id
	// alone. Only for tests and isolated networks; exclusive with TLS.
	Insecure bool
	// MaxFrameBytes bounds one gRPC message, a batch of peer messages.
	// A single peer message that does not fit is dropped. Default 4 MiB.
	MaxFrameBytes int
	// QueueLen bounds the messages waiting to go to one peer. When full,
	// new messages are dropped and counted. Default 4096.
	QueueLen int
	// QueueBytes bounds the encoded bytes waiting to go to one peer, so a
	// stalled peer cannot grow the sender's memory. Default 32 MiB.
	QueueBytes int
	// BackoffMin and BackoffMax bound the dialer's delay between attempts,
	// which doubles after each failure. Defaults 100ms and 5s.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// Logger receives connection events and rejections. Default: no logs.
	Logger *zap.Logger

	// SnapshotChunkBytes bounds one gRPC message of a snapshot transfer.
	// At most MaxFrameBytes, because the receiver's gRPC limit is its
	// MaxFrameBytes. Default 1 MiB, or MaxFrameBytes if that is smaller.
	SnapshotChunkBytes int
	// MaxSnapshotBytes bounds one snapshot, sent or received. Default 4 GiB.
	MaxSnapshotBytes int64
	// OnSnapshot receives a snapshot a peer sends with SendSnapshot. It
	// reads r to io.EOF, which comes only once every byte the sender
	// declared has arrived; any other read error means the transfer failed
	// and must be discarded. Checking the content is OnSnapshot's job. Its
	// error fails the transfer and reaches the sender. It runs on the
	// stream's gRPC goroutine and must return soon after r fails, or Close
	// hangs. Nil refuses snapshots with codes.Unimplemented.
	OnSnapshot func(from consensus.NodeID, r io.Reader) error
	// OnJoin answers a node that asks to join with Join. The transport has
	// checked that the request is well formed and, with TLS, that the
	// caller's certificate carries req.Name; everything else, and adding
	// the node with AddPeer, is OnJoin's job. An error fails the call and
	// reaches the caller; a refusal with a reason is a response with
	// Accepted false. Nil refuses joins with codes.Unimplemented.
	OnJoin func(JoinRequest) (JoinResponse, error)
	// Handlers answer Call from authenticated members, by name. They run
	// on gRPC goroutines, concurrently. A name without a handler is
	// answered with codes.Unimplemented.
	Handlers map[string]Handler
}

// Defaults and limits of Config.
const (
	DefaultMaxFrameBytes = 4 << 20
	DefaultQueueLen      = 4096
	DefaultQueueBytes    = 32 << 20
	DefaultBackoffMin    = 100 * time.Millisecond
	DefaultBackoffMax    = 5 * time.Second
	// DefaultSnapshotChunkBytes applies when MaxFrameBytes allows it.
	DefaultSnapshotChunkBytes = 1 << 20
	DefaultMaxSnapshotBytes   = 4 << 30
	// MinMaxFrameBytes is the smallest MaxFrameBytes accepted: room for a
	// few small messages.
	MinMaxFrameBytes = 1 << 10
)

// Errors returned by the transport.
var (
	ErrInvalidConfig = errors.New("transport: invalid config")
	ErrStarted       = errors.New("transport: already started")
	ErrClosed        = errors.New("transport: closed")
	ErrUnknownPeer   = errors.New("transport: unknown peer")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// withDefaults checks c and fills in defaults. It does not touch files.
func (c *Config) withDefaults() (Config, error) {
	out := *c
	if out.ID == 0 {
		return out, invalid("id must be non-zero")
	}
	if err := checkHostPort("listen", out.Listen); err != nil {
		return out, err
	}
	if err := out.checkSecurity(); err != nil {
		return out, err
	}
	if err := out.checkPeers(); err != nil {
		return out, err
	}
	if err := out.fillLimits(); err != nil {
		return out, err
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	return out, nil
}

func (c *Config) checkSecurity() error {
	switch {
	case c.TLS == nil && !c.Insecure:
		return invalid("TLS files are required unless Insecure is set")
	case c.TLS != nil && c.Insecure:
		return invalid("TLS and Insecure are exclusive")
	case c.TLS == nil:
		return nil
	case c.TLS.CertFile == "":
		return invalid("TLS.CertFile is empty")
	case c.TLS.KeyFile == "":
		return invalid("TLS.KeyFile is empty")
	case c.TLS.CAFile == "":
		return invalid("TLS.CAFile is empty")
	}
	return nil
}

func (c *Config) checkPeers() error {
	seen := make(map[consensus.NodeID]bool, len(c.Peers))
	for _, p := range c.Peers {
		if seen[p.ID] {
			return invalid("duplicate peer %d", p.ID)
		}
		if err := c.checkPeer(p); err != nil {
			return err
		}
		seen[p.ID] = true
	}
	return nil
}

// checkPeer checks one member on its own, at New or AddPeer.
func (c *Config) checkPeer(p Peer) error {
	switch {
	case p.ID == 0:
		return invalid("peer id 0")
	case p.ID == c.ID:
		return invalid("peer %d is this node", p.ID)
	case c.TLS != nil && p.Name == "":
		return invalid("peer %d: Name is required with TLS", p.ID)
	case p.Addr == "":
		return nil
	}
	return checkHostPort(fmt.Sprintf("peer %d address", p.ID), p.Addr)
}

func (c *Config) fillLimits() error {
	switch {
	case c.MaxFrameBytes < 0:
		return invalid("MaxFrameBytes %d is negative", c.MaxFrameBytes)
	case c.MaxFrameBytes == 0:
		c.MaxFrameBytes = DefaultMaxFrameBytes
	case c.MaxFrameBytes < MinMaxFrameBytes:
		return invalid("MaxFrameBytes %d is below the minimum %d", c.MaxFrameBytes, MinMaxFrameBytes)
	}
	switch {
	case c.QueueLen < 0:
		return invalid("QueueLen %d is negative", c.QueueLen)
	case c.QueueLen == 0:
		c.QueueLen = DefaultQueueLen
	}
	switch {
	case c.QueueBytes < 0:
		return invalid("QueueBytes %d is negative", c.QueueBytes)
	case c.QueueBytes == 0:
		c.QueueBytes = DefaultQueueBytes
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BackoffMax < c.BackoffMin {
		return invalid("BackoffMax %v is below BackoffMin %v", c.BackoffMax, c.BackoffMin)
	}
	return c.fillSnapshotLimits()
}

// fillSnapshotLimits runs after MaxFrameBytes is known.
func (c *Config) fillSnapshotLimits() error {
	switch {
	case c.SnapshotChunkBytes < 0:
		return invalid("SnapshotChunkBytes %d is negative", c.SnapshotChunkBytes)
	case c.SnapshotChunkBytes == 0:
		c.SnapshotChunkBytes = min(DefaultSnapshotChunkBytes, c.MaxFrameBytes)
	case c.SnapshotChunkBytes > c.MaxFrameBytes:
		return invalid("SnapshotChunkBytes %d exceeds MaxFrameBytes %d", c.SnapshotChunkBytes, c.MaxFrameBytes)
	}
	switch {
	case c.MaxSnapshotBytes < 0:
		return invalid("MaxSnapshotBytes %d is negative", c.MaxSnapshotBytes)
	case c.MaxSnapshotBytes == 0:
		c.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	return nil
}

func checkHostPort(what, addr string) error {
	if addr == "" {
		return invalid("%s address is empty", what)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return invalid("%s %q: %v", what, addr, err)
	}
	return nil
}

// tlsMaterial is the loaded form of TLSFiles.
type tlsMaterial struct {
	cert tls.Certificate
	ca   *x509.CertPool
}

func loadTLS(f *TLSFiles) (*tlsMaterial, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("transport: load key pair %s, %s: %w", f.CertFile, f.KeyFile, err)
	}
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("transport: read CA: %w", err)
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrInvalidConfig, f.CAFile)
	}
	return &tlsMaterial{cert: cert, ca: ca}, nil
}

func (m *tlsMaterial) serverConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{m.cert},
		ClientCAs:    m.ca,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

func (m *tlsMaterial) clientConfig(serverName string) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{m.cert},
		RootCAs:      m.ca,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS13,
	}
}
