package main

// The admin CLI's shared plumbing: the connection flags every client
// command takes, the exit codes, and the formats its outputs share.
//
// Exit codes: 0 the operation succeeded; 1 it failed (the node is
// unreachable, refused the call, or answered something wrong, such as a
// reading that went backwards); 2 bad usage (a flag value, a missing flag,
// an unexpected argument, or a TLS file that cannot be used).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/client"
	"github.com/clockd/clockd/internal/certs"
	"github.com/clockd/clockd/vclock"
)

// Defaults of the connection flags: the API port `clockd run` listens on,
// and the directory deploy/systemd installs the certificates into.
const (
	clientDefaultAddr    = "127.0.0.1:7401"
	clientDefaultCA      = "/etc/clockd/tls/" + certs.CAFile
	clientDefaultTimeout = 5 * time.Second
)

// clientCertNames are the client certificates looked for beside the CA
// when --tls-cert is not given, in order: the admin's (every call), then
// the node's (clockd certs gives nodes the host role, so every read).
var clientCertNames = []string{"admin", "node"}

// clientTimeLayout is RFC 3339 with all nine fractional digits, so that
// times line up in columns and sort as strings.
const clientTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// clientFlags are the connection flags of every client command, with
// --json when the command has a JSON output.
func clientFlags(withJSON bool) []cli.Flag {
	env := func(name string) []string { return []string{"CLOCKD_" + name} }
	flags := []cli.Flag{
		&cli.StringFlag{Name: "addr", Value: clientDefaultAddr, Usage: "the node's API `HOST:PORT`", EnvVars: env("ADDR")},
		&cli.BoolFlag{Name: "insecure", Usage: "plaintext, for nodes run with --insecure (clockd dev); the --tls-* flags are ignored", EnvVars: env("INSECURE")},
		&cli.StringFlag{Name: "tls-ca", Value: clientDefaultCA, Usage: "cluster CA certificate (PEM) that the node's certificate must chain to", EnvVars: env("TLS_CA"), TakesFile: true},
		&cli.StringFlag{Name: "tls-cert", Usage: "client certificate (PEM) (default: admin.pem, else node.pem, in the directory of --tls-ca)", EnvVars: env("TLS_CERT"), TakesFile: true},
		&cli.StringFlag{Name: "tls-key", Usage: "client private key (PEM) (default: --tls-cert's NAME.pem as NAME-key.pem)", EnvVars: env("TLS_KEY"), TakesFile: true},
		&cli.StringFlag{Name: "server-name", Usage: "`NAME` the node's certificate must carry, e.g. node-1 (default: the host of --addr; node certificates carry localhost and 127.0.0.1)", EnvVars: env("SERVER_NAME")},
		&cli.DurationFlag{Name: "timeout", Value: clientDefaultTimeout, Usage: "how long each call may take", EnvVars: env("TIMEOUT")},
	}
	if withJSON {
		flags = append(flags, &cli.BoolFlag{Name: "json", Usage: "print JSON for scripts instead of text", EnvVars: env("JSON")})
	}
	return flags
}

// clientHelp ends the Description of every client command.
const clientHelp = "Exit status: 0 success, 1 the operation failed (the node is unreachable or\n" +
	"refused), 2 bad usage. Flags can also be set through the CLOCKD_* variables shown.\n" +
	"In JSON, instants are RFC 3339 strings in UTC with nine fractional digits, and\n" +
	"values that may exceed 2^53 (Unix nanoseconds, timestamps) are decimal strings."

// clientCommand fills in what every client command shares: the flags,
// the help text's end, and exit status 2 for flags that do not parse.
func clientCommand(cmd *cli.Command, withJSON bool) *cli.Command {
	cmd.Flags = append(cmd.Flags, clientFlags(withJSON)...)
	if cmd.Description != "" {
		cmd.Description += "\n\n"
	}
	cmd.Description += clientHelp
	cmd.OnUsageError = onUsageError
	return cmd
}

// onUsageError makes flags that do not parse a usage failure: exit
// status 2 with the reason, and no help dumped.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return clientUsage(c, "%v (see --help)", err)
}

// clientUsage is a bad-usage failure: exit status 2.
func clientUsage(c *cli.Context, format string, args ...any) error {
	return cli.Exit(clientCommandPath(c)+": "+fmt.Sprintf(format, args...), 2)
}

// commandGroup completes a command that is only a group of subcommands:
// run without one, it shows their help and fails as bad usage; given an
// unknown one, it names it and the ones there are.
func commandGroup(cmd *cli.Command) *cli.Command {
	names := make([]string, len(cmd.Subcommands))
	for i, s := range cmd.Subcommands {
		names[i] = s.Name
	}
	want := names[len(names)-1]
	if len(names) > 1 {
		want = strings.Join(names[:len(names)-1], ", ") + " or " + want
	}
	cmd.Action = func(c *cli.Context) error {
		if c.Args().Present() {
			return clientUsage(c, "unknown subcommand %q: want %s", c.Args().First(), want)
		}
		cli.ShowSubcommandHelp(c)
		return clientUsage(c, "want a subcommand: %s", want)
	}
	cmd.OnUsageError = onUsageError
	return cmd
}

// clientFailed is a failed operation: exit status 1.
func clientFailed(c *cli.Context, format string, args ...any) error {
	return cli.Exit(clientCommandPath(c)+": "+fmt.Sprintf(format, args...), 1)
}

// clientCommandPath names the command that runs, "clockd members add",
// for the messages of its failures.
func clientCommandPath(c *cli.Context) string {
	var names []string
	for _, x := range c.Lineage() {
		if x.Command != nil && x.Command.Name != "" {
			names = append([]string{x.Command.Name}, names...)
		}
	}
	if len(names) == 0 || names[0] != c.App.Name { // the application's own
		names = append([]string{c.App.Name}, names...)
	}
	return strings.Join(names, " ")
}

// clientNoArgs refuses positional arguments: every input is a flag.
func clientNoArgs(c *cli.Context) error {
	if c.Args().Present() {
		return clientUsage(c, "unexpected argument %q: every input is a flag", c.Args().First())
	}
	return nil
}

// clientConn is a connection to one node and the settings it was made with.
type clientConn struct {
	*client.Client
	addr    string
	timeout time.Duration
}

// clientDial checks the connection flags and connects. The connection is
// made with the first call, and calls fail fast: a node that is down is
// reported at once with the transport's reason (connection refused, a
// certificate rejected) instead of after --timeout.
func clientDial(c *cli.Context) (*clientConn, error) {
	if err := clientNoArgs(c); err != nil {
		return nil, err
	}
	addr := c.String("addr")
	if err := clientCheckAddr(addr); err != nil {
		return nil, clientUsage(c, "--addr %q: %v", addr, err)
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return nil, clientUsage(c, "--timeout %v: want a positive duration", timeout)
	}
	creds := insecure.NewCredentials()
	if !c.Bool("insecure") {
		cfg, err := clientTLS(c.String("tls-ca"), c.String("tls-cert"), c.String("tls-key"))
		if err != nil {
			return nil, clientUsage(c, "%v", err)
		}
		cfg.ServerName = c.String("server-name")
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, clientUsage(c, "--addr %q: %v", addr, err)
	}
	return &clientConn{Client: client.New(conn), addr: addr, timeout: timeout}, nil
}

// call runs one call with --timeout.
func (cc *clientConn) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, cc.timeout)
	defer cancel()
	return f(ctx)
}

// clientCheckAddr accepts HOST:PORT with a non-empty host and a port of 1
// to 65535, as the server does for member addresses.
func clientCheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if host == "" {
		return errors.New("want HOST:PORT, the host is empty")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("want HOST:PORT, port %q is not 1 to 65535", port)
	}
	return nil
}

// clientTLS loads the CA and the client's key pair. An empty cert means
// the first of clientCertNames beside the CA that exists; an empty key
// means the cert's NAME.pem as NAME-key.pem, as clockd certs names them.
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w (pass --insecure for a plaintext node)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", caFile)
	}
	if certFile == "" {
		if certFile, err = clientFindCert(filepath.Dir(caFile)); err != nil {
			return nil, err
		}
	}
	if keyFile == "" {
		base, ok := strings.CutSuffix(certFile, ".pem")
		if !ok {
			return nil, fmt.Errorf("--tls-cert %s does not end in .pem: pass --tls-key", certFile)
		}
		keyFile = base + "-key.pem"
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13}, nil
}

func clientFindCert(dir string) (string, error) {
	var tried []string
	for _, name := range clientCertNames {
		path := filepath.Join(dir, name+".pem")
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		tried = append(tried, path)
	}
	return "", fmt.Errorf("no client certificate: none of %s exists; pass --tls-cert and --tls-key",
		strings.Join(tried, ", "))
}

// clientError turns a failed call into exit status 1 with what went
// wrong in words, and a hint where one helps. what names the operation
// when the command's name does not; it may be empty.
func clientError(c *cli.Context, cc *clientConn, what string, err error) error {
	if what != "" {
		what += ": "
	}
	st, ok := grpcstatus.FromError(err)
	if !ok {
		return clientFailed(c, "%s%v", what, err)
	}
	msg, hint := st.Message(), ""
	switch st.Code() {
	case codes.Unavailable:
		if strings.Contains(msg, "first record does not look like a TLS handshake") {
			hint = " (the node serves plaintext: pass --insecure)"
		} else if strings.Contains(msg, "error reading server preface") && c.Bool("insecure") {
			hint = " (the port may serve TLS, then drop --insecure; or it may not be a clockd API port: check --addr)"
		}
		if _, dial, ok := strings.Cut(msg, "Error while dialing: "); ok {
			return clientFailed(c, "%scannot reach %s: %s%s", what, cc.addr, strings.TrimSuffix(dial, `"`), hint)
		}
		if _, tlsErr, ok := strings.Cut(msg, "authentication handshake failed: "); ok {
			return clientFailed(c, "%sTLS handshake with %s failed: %s", what, cc.addr, strings.TrimSuffix(tlsErr, `"`))
		}
		return clientFailed(c, "%snode %s unavailable: %s%s", what, cc.addr, msg, hint)
	case codes.DeadlineExceeded:
		return clientFailed(c, "%sno answer from %s within --timeout %v", what, cc.addr, cc.timeout)
	case codes.Unauthenticated:
		hint = " (pass --tls-cert and --tls-key)"
	case codes.PermissionDenied:
		hint = " (membership changes need the admin certificate, clockd certs init --admin)"
	case codes.Unimplemented:
		if strings.Contains(msg, "unknown service") {
			hint = " (is --addr the node's API port, api_listen? this port serves something else)"
		}
	}
	return clientFailed(c, "%s%s: %s%s", what, clientCodeWords(st.Code()), msg, hint)
}

// clientCodeWords spells a code in lower-case words: "failed precondition".
func clientCodeWords(code codes.Code) string {
	var b strings.Builder
	for i, r := range code.String() {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte(' ')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// clientTime formats Unix nanoseconds with clientTimeLayout in UTC.
func clientTime(ns int64) string { return time.Unix(0, ns).UTC().Format(clientTimeLayout) }

// clientReadingJSON is a reading in JSON. Unbounded readings have null
// earliest, latest and uncertainty.
type clientReadingJSON struct {
	Time             string  `json:"time"`
	TimeUnixNano     int64   `json:"time_unix_nano,string"`
	Earliest         *string `json:"earliest"`
	EarliestUnixNano *int64  `json:"earliest_unix_nano,string"`
	Latest           *string `json:"latest"`
	LatestUnixNano   *int64  `json:"latest_unix_nano,string"`
	UncertaintyNs    *int64  `json:"uncertainty_ns"`
	Status           string  `json:"status"`
	Bounded          bool    `json:"bounded"`
}

func clientReading(r vclock.Reading) clientReadingJSON {
	out := clientReadingJSON{Time: clientTime(r.Time), TimeUnixNano: r.Time, Status: r.Status.String(), Bounded: r.Bounded()}
	if r.Bounded() {
		e, l, u := clientTime(r.Earliest), clientTime(r.Latest), r.Uncertainty()
		out.Earliest, out.EarliestUnixNano = &e, &r.Earliest
		out.Latest, out.LatestUnixNano = &l, &r.Latest
		out.UncertaintyNs = &u
	}
	return out
}

// clientUncertainty is "±d", or "unbounded".
func clientUncertainty(r vclock.Reading) string {
	if !r.Bounded() {
		return "unbounded"
	}
	return "±" + time.Duration(r.Uncertainty()).String()
}

// clientPrintJSON writes v indented, or on one line when compact (JSON
// Lines, for streams).
func clientPrintJSON(w io.Writer, v any, compact bool) error {
	enc := json.NewEncoder(w)
	if !compact {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

// clientField is one "Name : value" line; clientFields aligns them.
type clientField struct{ name, value string }

func clientFields(w io.Writer, fields []clientField) {
	width := 0
	for _, f := range fields {
		width = max(width, len(f.name))
	}
	for _, f := range fields {
		lines := strings.Split(f.value, "\n")
		fmt.Fprintf(w, "%-*s : %s\n", width, f.name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%-*s   %s\n", width, "", l)
		}
	}
}

// streamWatchdog bounds the silence of a stream, whose call has no
// deadline of its own: the context it returns ends once d passes without
// a Reset. Fired tells whether that, rather than ctx, ended it; Stop
// ends the watch.
type streamWatchdog struct {
	t     *time.Timer
	fired atomic.Bool
}

func watchStream(ctx context.Context, d time.Duration) (context.Context, *streamWatchdog, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	w := &streamWatchdog{}
	w.t = time.AfterFunc(d, func() {
		w.fired.Store(true)
		cancel()
	})
	return ctx, w, func() {
		w.t.Stop()
		cancel()
	}
}

func (w *streamWatchdog) Reset(d time.Duration) { w.t.Reset(d) }
func (w *streamWatchdog) Stop()                 { w.t.Stop() }
func (w *streamWatchdog) Fired() bool           { return w.fired.Load() }
