package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/vclock"
)

// Options say how to reach the server. One of TLS, CAFile or Insecure
// must be set.
type Options struct {
	// TLS is the client's TLS configuration, used as given except for
	// ServerName.
	TLS *tls.Config
	// CAFile is the cluster CA's certificate (PEM), used when TLS is nil.
	// CertFile and KeyFile are the client's certificate and key; both or
	// neither. Without them the server refuses every call
	// (codes.Unauthenticated).
	CAFile, CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry, when it
	// is not the host part of the address.
	ServerName string
	// Insecure dials without TLS, as `clockd dev` serves.
	Insecure bool
	// DialOptions are applied after the client's own.
	DialOptions []grpc.DialOption
}

// Client is a connection to one clockd API server. It is safe for
// concurrent use.
type Client struct {
	conn   *grpc.ClientConn
	time   clockdv1.TimeServiceClient
	admin  clockdv1.AdminServiceClient
	mig    clockdv1.MigrationServiceClient
	ts     *batcher
	cancel context.CancelFunc
}

// Dial connects to addr (host:port) and waits until the connection is up
// or ctx ends.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	c, err := DialLazy(addr, opts)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, c.conn); err != nil {
		c.Close()
		return nil, fmt.Errorf("client: connect to %s: %w", addr, err)
	}
	return c, nil
}

// DialLazy makes a client for addr without waiting for the connection:
// the first call connects, and fails at once if the server is down.
func DialLazy(addr string, opts Options) (*Client, error) {
	creds, err := opts.credentials()
	if err != nil {
		return nil, err
	}
	dialOpts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, opts.DialOptions...)
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	return New(conn), nil
}

// New wraps a connection made elsewhere. Close closes it.
func New(conn *grpc.ClientConn) *Client {
	base, cancel := context.WithCancel(context.Background())
	c := &Client{
		conn:   conn,
		time:   clockdv1.NewTimeServiceClient(conn),
		admin:  clockdv1.NewAdminServiceClient(conn),
		mig:    clockdv1.NewMigrationServiceClient(conn),
		cancel: cancel,
	}
	c.ts = newBatcher(base, c.Timestamps)
	return c
}

func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("%w (connection %s)", ctx.Err(), s)
		}
	}
}

func (o Options) credentials() (credentials.TransportCredentials, error) {
	if o.Insecure {
		return insecure.NewCredentials(), nil
	}
	cfg := o.TLS
	if cfg == nil {
		var err error
		if cfg, err = o.loadTLS(); err != nil {
			return nil, err
		}
	} else {
		cfg = cfg.Clone()
	}
	if o.ServerName != "" {
		cfg.ServerName = o.ServerName
	}
	return credentials.NewTLS(cfg), nil
}

func (o Options) loadTLS() (*tls.Config, error) {
	if o.CAFile == "" {
		return nil, errors.New("client: no TLS configuration: set Options.TLS, Options.CAFile or Options.Insecure")
	}
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("client: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client: CA file %s holds no PEM certificate", o.CAFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("client: set both Options.CertFile and Options.KeyFile, or neither")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client: load key pair %s, %s: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Close ends the connection; calls in progress fail.
func (c *Client) Close() error {
	c.cancel()
	return c.conn.Close()
}

// Time is the raw TimeService stub.
func (c *Client) Time() clockdv1.TimeServiceClient { return c.time }

// Admin is the raw AdminService stub.
func (c *Client) Admin() clockdv1.AdminServiceClient { return c.admin }

// Conn is the underlying connection, for services the client does not
// wrap.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Migration is the raw MigrationService stub: VM freeze, resume and clocks.
func (c *Client) Migration() clockdv1.MigrationServiceClient { return c.mig }

// Now is the server host's current reading of the reference clock.
func (c *Client) Now(ctx context.Context) (vclock.Reading, error) {
	r, err := c.time.Now(ctx, &clockdv1.NowRequest{})
	if err != nil {
		return vclock.Reading{}, err
	}
	return r.VClock(), nil
}

// Timestamp is one cluster-wide unique timestamp. Concurrent calls share
// requests: while one is in flight the others queue, and the next request
// asks for all of them at once.
func (c *Client) Timestamp(ctx context.Context) (uint64, error) {
	return c.ts.get(ctx)
}

// Timestamps reserves n consecutive timestamps, 1 <= n <=
// clockdv1.MaxTimestampBatch, in one request of its own, and returns the
// first.
func (c *Client) Timestamps(ctx context.Context, n uint32) (first uint64, err error) {
	resp, err := c.time.Timestamp(ctx, &clockdv1.TimestampRequest{Count: n})
	if err != nil {
		return 0, err
	}
	if resp.GetCount() != n || resp.GetFirst() > math.MaxUint64-uint64(n)+1 {
		return 0, fmt.Errorf("client: asked for %d timestamps, the server answered %d from %d", n, resp.GetCount(), resp.GetFirst())
	}
	return resp.GetFirst(), nil
}

// WaitUntil returns once a reading's Earliest is after tNs (ns since the
// Unix epoch), or fails with codes.DeadlineExceeded at ctx's deadline.
func (c *Client) WaitUntil(ctx context.Context, tNs int64) (vclock.Reading, error) {
	r, err := c.time.WaitUntil(ctx, &clockdv1.WaitUntilRequest{TimeUnixNano: tNs})
	if err != nil {
		return vclock.Reading{}, err
	}
	return r.VClock(), nil
}

// Watcher receives the readings of a Watch.
type Watcher struct {
	stream grpc.ServerStreamingClient[clockdv1.Reading]
}

// Watch streams the current reading, then one per status change, until
// ctx ends.
func (c *Client) Watch(ctx context.Context) (*Watcher, error) {
	s, err := c.time.Watch(ctx, &clockdv1.WatchRequest{})
	if err != nil {
		return nil, err
	}
	return &Watcher{stream: s}, nil
}

// Recv blocks for the next reading. Once the stream ends it returns an
// error: codes.Canceled after ctx was canceled, codes.Unavailable when the
// server stopped reporting.
func (w *Watcher) Recv() (vclock.Reading, error) {
	r, err := w.stream.Recv()
	if err != nil {
		return vclock.Reading{}, err
	}
	return r.VClock(), nil
}

// Status is the server node's consensus and clock state.
func (c *Client) Status(ctx context.Context) (*clockdv1.StatusResponse, error) {
	return c.admin.Status(ctx, &clockdv1.StatusRequest{})
}

// Members is the cluster's configuration as the server node knows it.
func (c *Client) Members(ctx context.Context) (*clockdv1.MembersResponse, error) {
	return c.admin.Members(ctx, &clockdv1.MembersRequest{})
}

// AddMember adds node id at addr (host:port), as a learner or a voter.
func (c *Client) AddMember(ctx context.Context, id uint64, addr string, learner bool) error {
	_, err := c.admin.AddMember(ctx, &clockdv1.AddMemberRequest{Id: id, Addr: addr, Learner: learner})
	return err
}

// RemoveMember removes node id from the cluster.
func (c *Client) RemoveMember(ctx context.Context, id uint64) error {
	_, err := c.admin.RemoveMember(ctx, &clockdv1.RemoveMemberRequest{Id: id})
	return err
}

// TransferLeader asks the leader to hand its leadership to node id.
func (c *Client) TransferLeader(ctx context.Context, id uint64) error {
	_, err := c.admin.TransferLeader(ctx, &clockdv1.TransferLeaderRequest{Id: id})
	return err
}
