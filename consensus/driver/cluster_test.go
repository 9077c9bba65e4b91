package driver_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// nodeBinary is the testnode program, built once per test run.
var nodeBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clockd-testnode")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nodeBinary = filepath.Join(dir, "testnode")
	build := exec.Command("go", "build", "-o", nodeBinary, "github.com/clockd/clockd/consensus/internal/testnode")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build testnode:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one testnode process and its line protocol.
type proc struct {
	t    *testing.T
	id   int
	dir  string
	addr string
	cmd  *exec.Cmd
	in   io.WriteCloser

	mu      sync.Mutex // guards in, pending
	pending map[string]chan string
	replies chan []string // dump and status answers, in order
	reqMu   sync.Mutex    // one dump/status at a time
	exited  chan struct{}
}

func startProc(t *testing.T, id int, members, dir, listen string) *proc {
	t.Helper()
	p := &proc{t: t, id: id, dir: dir, pending: map[string]chan string{},
		replies: make(chan []string, 1), exited: make(chan struct{})}
	p.cmd = exec.Command(nodeBinary, "-id", fmt.Sprint(id), "-members", members, "-listen", listen, "-dir", dir)
	logf, err := os.OpenFile(filepath.Join(dir, "stderr.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = logf
	p.in, _ = p.cmd.StdinPipe()
	stdout, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "listening ") {
		t.Fatalf("node %d did not start: %q (see %s)", id, lines.Text(), logf.Name())
	}
	p.addr = strings.TrimPrefix(lines.Text(), "listening ")
	go p.read(lines, logf)
	return p
}

func (p *proc) read(lines *bufio.Scanner, logf *os.File) {
	defer logf.Close()
	defer close(p.exited)
	var dump []string
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch f[0] {
		case "ok", "notleader", "err":
			p.mu.Lock()
			ch := p.pending[f[1]]
			delete(p.pending, f[1])
			p.mu.Unlock()
			if ch != nil {
				ch <- lines.Text()
			}
		case "log":
			dump = append(dump, strings.Join(f[1:], " "))
		case "end":
			p.replies <- dump
			dump = nil
		case "status":
			p.replies <- f[1:]
		}
	}
	p.mu.Lock()
	for req, ch := range p.pending {
		ch <- "err " + req + " process-exited"
		delete(p.pending, req)
	}
	p.mu.Unlock()
}

func (p *proc) send(line string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := io.WriteString(p.in, line+"\n")
	return err == nil
}

// propose asks the node to propose data and returns its answer line.
func (p *proc) propose(req, data string) string {
	ch := make(chan string, 1)
	p.mu.Lock()
	p.pending[req] = ch
	p.mu.Unlock()
	if !p.send("propose " + req + " " + data) {
		return "err " + req + " write-failed"
	}
	select {
	case l := <-ch:
		return l
	case <-p.exited:
		return "err " + req + " process-exited"
	case <-time.After(10 * time.Second):
		return "err " + req + " no-answer"
	}
}

// ask sends dump or status and waits for the answer; ok is false if the
// process is gone.
func (p *proc) ask(what string) ([]string, bool) {
	p.reqMu.Lock()
	defer p.reqMu.Unlock()
	if !p.send(what) {
		return nil, false
	}
	select {
	case r := <-p.replies:
		return r, true
	case <-p.exited:
		return nil, false
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
	<-p.exited
}

type cluster struct {
	t       *testing.T
	members string
	mu      sync.Mutex
	procs   []*proc // index id-1
}

func (c *cluster) proc(id int) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[id-1]
}

func (c *cluster) replace(p *proc) {
	c.mu.Lock()
	c.procs[p.id-1] = p
	c.mu.Unlock()
}

func (c *cluster) introduce(p *proc) {
	for _, q := range c.procs {
		if q != nil && q != p {
			q.send(fmt.Sprintf("peer %d %s", p.id, p.addr))
			p.send(fmt.Sprintf("peer %d %s", q.id, q.addr))
		}
	}
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		<-tick.C
	}
}

func (c *cluster) leader() int {
	for _, p := range c.procs {
		if st, ok := p.ask("status"); ok && st[0] == "leader" {
			return p.id
		}
	}
	return 0
}

// clients propose unique commands concurrently, following leader hints, and
// record every command a node acknowledged.
type clients struct {
	c      *cluster
	hint   atomic.Int64
	mu     sync.Mutex
	acked  []string
	stop   atomic.Bool
	wg     sync.WaitGroup
	serial atomic.Int64
}

func (cl *clients) run(n int) {
	for i := range n {
		cl.wg.Add(1)
		go func() {
			defer cl.wg.Done()
			for seq := 0; !cl.stop.Load(); seq++ {
				cl.one(fmt.Sprintf("c%d-%d", i, seq))
			}
		}()
	}
}

// one proposes data until some node acknowledges it or the clients stop.
// A retry after an unknown outcome may commit the command twice; the test
// only needs acknowledged commands to be kept.
func (cl *clients) one(data string) {
	for !cl.stop.Load() {
		target := int(cl.hint.Load())
		if target == 0 {
			target = 1 + int(cl.serial.Add(1))%len(cl.c.procs)
		}
		req := fmt.Sprint(cl.serial.Add(1))
		ans := strings.Fields(cl.c.proc(target).propose(req, data))
		switch ans[0] {
		case "ok":
			cl.mu.Lock()
			cl.acked = append(cl.acked, data)
			cl.mu.Unlock()
			return
		case "notleader":
			var l int64
			fmt.Sscan(ans[2], &l)
			cl.hint.CompareAndSwap(int64(target), l)
			if l == 0 {
				cl.hint.Store(0)
			}
		default:
			cl.hint.CompareAndSwap(int64(target), 0)
		}
		if ans[0] != "ok" {
			time.Sleep(10 * time.Millisecond) // back off before retrying elsewhere
		}
	}
}

func (cl *clients) count() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.acked)
}

// TestClusterKillRestart runs three real processes over gRPC on loopback
// with bolt files, kills one abruptly while clients propose, restarts it,
// and checks that every acknowledged command is on every node, in the same
// order everywhere.
func TestClusterKillRestart(t *testing.T) {
	c := &cluster{t: t, members: "1,2,3"}
	for id := 1; id <= 3; id++ {
		dir := t.TempDir()
		c.procs = append(c.procs, startProc(t, id, c.members, dir, "127.0.0.1:0"))
	}
	defer func() {
		for _, p := range c.procs {
			p.kill()
		}
	}()
	for _, p := range c.procs {
		c.introduce(p)
	}
	waitFor(t, 20*time.Second, "a leader", func() bool { return c.leader() != 0 })

	cl := &clients{c: c}
	cl.run(4)
	waitFor(t, 30*time.Second, "50 acknowledged commands", func() bool { return cl.count() >= 50 })

	victim := c.leader()
	if victim == 0 {
		victim = 1
	}
	old := c.proc(victim)
	old.kill()
	before := cl.count()
	t.Logf("killed node %d (the leader) after %d acknowledged commands", victim, before)
	// At most 4 commands share a slot, so 100 commands fill at least 25
	// slots: the others take a snapshot (every 40 commands) and compact
	// their logs (keeping 1 slot) past everything the victim had.
	waitFor(t, 30*time.Second, "progress without the killed node", func() bool { return cl.count() >= before+100 })

	c.replace(startProc(t, victim, c.members, old.dir, old.addr))
	c.introduce(c.proc(victim))
	restarted := cl.count()
	waitFor(t, 30*time.Second, "progress after the restart", func() bool { return cl.count() >= restarted+30 })
	cl.stop.Store(true)
	cl.wg.Wait()

	acked := slices.Clone(cl.acked)
	t.Logf("%d commands acknowledged in all", len(acked))
	var logs [][]string
	waitFor(t, 30*time.Second, "every node to apply every acknowledged command", func() bool {
		logs = logs[:0]
		for _, p := range c.procs {
			d, ok := p.ask("dump")
			if !ok || !containsAll(d, acked) {
				return false
			}
			logs = append(logs, d)
		}
		return true
	})
	for i := range logs {
		for j := range logs {
			n := min(len(logs[i]), len(logs[j]))
			if !slices.Equal(logs[i][:n], logs[j][:n]) {
				t.Fatalf("node %d and node %d applied different sequences", i+1, j+1)
			}
		}
	}
	// The others compacted their logs while the victim was down, so it can
	// only have caught up through a snapshot transfer.
	stderr, err := os.ReadFile(filepath.Join(old.dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stderr), "snapshot installed") {
		t.Fatalf("the restarted node never installed a snapshot; its log:\n%s", stderr)
	}
}

func containsAll(log []string, acked []string) bool {
	have := map[string]bool{}
	for _, l := range log {
		_, data, _ := strings.Cut(l, " ")
		have[data] = true
	}
	for _, a := range acked {
		if !have[a] {
			return false
		}
	}
	return true
}
