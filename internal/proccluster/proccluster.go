// Package proccluster runs a clockd cluster as real `clockd run`
// processes on loopback, for the multi-process tests, `clockd dev` and
// the demo. Each node gets its own data directory, ports, log file and
// shared page under one directory; nodes can be killed (SIGKILL) and
// started again with the same configuration.
package proccluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clockd/clockd/api/client"
	"github.com/clockd/clockd/internal/certs"
	"github.com/clockd/clockd/vclock"
)

// Config describes a cluster.
type Config struct {
	// Binary is the clockd executable (see Build).
	Binary string
	// Dir holds every node's files.
	Dir   string
	Nodes int
	// WallOffset and WallDriftPPM skew nodes' wall clocks, by node id.
	WallOffset   map[uint64]time.Duration
	WallDriftPPM map[uint64]int64
	// Args are extra `clockd run` flags for every node, NodeArgs for
	// one, by node id, after Args.
	Args     []string
	NodeArgs map[uint64][]string
	// TLS runs the cluster with mutual TLS, as in production: a CA and
	// certificates for every node, a host "hv1" and an admin are made in
	// Dir/tls (clockd certs init). Otherwise it runs in plaintext.
	TLS bool
}

// Node is one member.
type Node struct {
	ID                                      uint64
	PeerAddr, APIAddr, NTPAddr, MetricsAddr string
	DataDir, ShmPath, LogPath               string

	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Cluster is a running set of nodes.
type Cluster struct {
	cfg   Config
	Nodes []*Node
}

// Build compiles ./cmd/clockd of the module at root into dir.
func Build(root, dir string) (string, error) { return build(root, dir) }

// BuildVersion is Build with the binary's version set at link time, as a
// release build sets it (package buildinfo).
func BuildVersion(root, dir, version string) (string, error) {
	return build(root, dir, "-ldflags", "-X github.com/clockd/clockd/internal/buildinfo.version="+version)
}

func build(root, dir string, flags ...string) (string, error) {
	bin := filepath.Join(dir, "clockd")
	cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, flags...), "./cmd/clockd")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/clockd: %v\n%s", err, out)
	}
	return bin, nil
}

// Start starts every node; it does not wait for them to synchronize.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("proccluster: %d nodes", cfg.Nodes)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("proccluster: %w", err)
	}
	c := &Cluster{cfg: cfg}
	if cfg.TLS {
		spec := certs.Spec{Admin: true, Hosts: []string{"hv1"}}
		for i := 1; i <= cfg.Nodes; i++ {
			spec.Nodes = append(spec.Nodes, certs.Node{ID: uint64(i)})
		}
		if _, err := certs.Init(c.TLSDir(), spec); err != nil {
			return nil, err
		}
	}
	var members []string
	for i := 1; i <= cfg.Nodes; i++ {
		ports, err := freeAddrs(4)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(cfg.Dir, fmt.Sprintf("node-%d", i))
		n := &Node{ID: uint64(i), PeerAddr: ports[0], APIAddr: ports[1], MetricsAddr: ports[2], NTPAddr: ports[3],
			DataDir: dir, ShmPath: filepath.Join(dir, "clock"), LogPath: filepath.Join(cfg.Dir, fmt.Sprintf("node-%d.log", i))}
		c.Nodes = append(c.Nodes, n)
		members = append(members, fmt.Sprintf("%d=%s", i, n.PeerAddr))
	}
	for _, n := range c.Nodes {
		security := []string{"--insecure"}
		if cfg.TLS {
			name := filepath.Join(c.TLSDir(), certs.NodeName(n.ID))
			security = []string{"--tls-ca", filepath.Join(c.TLSDir(), certs.CAFile),
				"--tls-cert", name + ".pem", "--tls-key", name + "-key.pem"}
		}
		n.args = append(append([]string{"run", "--log-format", "console"}, security...),
			"--id", fmt.Sprint(n.ID), "--host-name", fmt.Sprintf("hv%d", n.ID),
			"--ingest-socket", filepath.Join(n.DataDir, "ingest.sock"), "--data-dir", n.DataDir, "--members", strings.Join(members, ","),
			"--peer-listen", n.PeerAddr, "--api-listen", n.APIAddr, "--ntp-listen", n.NTPAddr,
			"--metrics-listen", n.MetricsAddr, "--shm-path", n.ShmPath)
		n.args = append(n.args, cfg.Args...)
		n.args = append(n.args, cfg.NodeArgs[n.ID]...)
		if off := cfg.WallOffset[n.ID]; off != 0 {
			n.args = append(n.args, "--test-wall-offset", off.String())
		}
		if d := cfg.WallDriftPPM[n.ID]; d != 0 {
			n.args = append(n.args, "--test-wall-drift-ppm", fmt.Sprint(d))
		}
		if err := c.Start(n.ID); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// Node returns node id.
func (c *Cluster) Node(id uint64) *Node { return c.Nodes[id-1] }

// Command is node id's clockd command line, ready to run: a second
// process with the same configuration, as an operator starting clockd by
// hand next to the service would run.
func (c *Cluster) Command(id uint64) *exec.Cmd {
	return exec.Command(c.cfg.Binary, c.Node(id).args...)
}

// Start (re)starts node id, appending to its log.
func (c *Cluster) Start(id uint64) error {
	n := c.Node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("proccluster: node %d is running", id)
	}
	log, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.cfg.Binary, n.args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("proccluster: start node %d: %w", id, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		cmd.Wait()
		log.Close()
		close(done)
	}(n.done)
	return nil
}

// Kill sends SIGKILL to node id and waits for it to die.
func (c *Cluster) Kill(id uint64) { c.signal(id, syscall.SIGKILL) }

// Terminate sends SIGTERM to node id and waits for it to exit.
func (c *Cluster) Terminate(id uint64) { c.signal(id, syscall.SIGTERM) }

func (c *Cluster) signal(id uint64, sig syscall.Signal) {
	n := c.Node(id)
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	cmd.Process.Signal(syscall.SIGCONT) // a paused node handles it
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Pause stops node id's process (SIGSTOP) without ending it, as a host
// that hangs; Resume lets it go on (SIGCONT).
func (c *Cluster) Pause(id uint64) { c.Node(id).signalRunning(syscall.SIGSTOP) }

// Resume continues a paused node.
func (c *Cluster) Resume(id uint64) { c.Node(id).signalRunning(syscall.SIGCONT) }

func (n *Node) signalRunning(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.cmd.Process.Signal(sig)
	}
}

// Running reports whether node id's process is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Pid is the node's process id, or 0.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Stop terminates every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		c.Terminate(n.ID)
	}
}

// TLSDir holds the CA and certificates of a TLS cluster.
func (c *Cluster) TLSDir() string { return filepath.Join(c.cfg.Dir, "tls") }

// Dial connects to node id's API, with the admin certificate when the
// cluster uses TLS.
func (c *Cluster) Dial(ctx context.Context, id uint64) (*client.Client, error) {
	return c.DialAs(ctx, id, "admin")
}

// DialAs connects with the certificate named leaf (admin, host-hv1,
// node-1; "" for none). A plaintext cluster ignores it.
func (c *Cluster) DialAs(ctx context.Context, id uint64, leaf string) (*client.Client, error) {
	if !c.cfg.TLS {
		return client.Dial(ctx, c.Node(id).APIAddr, client.Options{Insecure: true})
	}
	opts := client.Options{CAFile: filepath.Join(c.TLSDir(), certs.CAFile)}
	if leaf != "" {
		opts.CertFile = filepath.Join(c.TLSDir(), leaf+".pem")
		opts.KeyFile = filepath.Join(c.TLSDir(), leaf+"-key.pem")
	}
	return client.Dial(ctx, c.Node(id).APIAddr, opts)
}

// WaitSynchronized waits until every running node reads SYNCHRONIZED.
func (c *Cluster) WaitSynchronized(ctx context.Context) error {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		if err := c.waitNode(ctx, n.ID); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) waitNode(ctx context.Context, id uint64) error {
	n := c.Node(id)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited := n.exited()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	cl, err := c.Dial(ctx, id)
	if err != nil {
		return c.explain(id, err)
	}
	defer cl.Close()
	var last error
	for ctx.Err() == nil {
		r, err := cl.Now(ctx)
		if err == nil && r.Status == vclock.StatusSynchronized {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("status %v", r.Status)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return c.explain(id, fmt.Errorf("not synchronized: %w", errors.Join(last, ctx.Err())))
}

// exited is closed when node's current process ends (at once if none runs).
func (n *Node) exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil || n.cmd == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return n.done
}

// explain wraps err from waiting on node id with whether its process is
// still up and the end of its log, so a failed wait says why.
func (c *Cluster) explain(id uint64, err error) error {
	n := c.Node(id)
	state := "running"
	select {
	case <-n.exited():
		state = "exited"
	default:
	}
	return fmt.Errorf("proccluster: node %d (%s): %w\n--- last lines of %s ---\n%s", id, state, err, n.LogPath, tail(n.LogPath, 20))
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
