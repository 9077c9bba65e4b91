package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// child is one node process as the coordinator sees it: lines go in on
// its stdin and come out of its stdout; its stderr goes to a log file.
type child struct {
	id      uint64
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string // closed when stdout ends
	logPath string
	exited  chan struct{}
}

// errChildGone is wrapped when a node process exits or closes stdout.
var errChildGone = errors.New("node process exited")

// startChild starts exe as "node --engine E --id ID --members M --dir D".
// Its data directory is dir/node-ID.
func startChild(exe, engine string, id uint64, members, dir string) (*child, error) {
	data := filepath.Join(dir, fmt.Sprintf("node-%d", id))
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	c := &child{id: id, logPath: filepath.Join(dir, fmt.Sprintf("node-%d.log", id)),
		lines: make(chan string, 16), exited: make(chan struct{})}
	logf, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	c.cmd = exec.Command(exe, "node", "--engine", engine, "--id", fmt.Sprint(id), "--members", members, "--dir", data)
	c.cmd.Stderr = logf
	// Own process group: a Ctrl-C in the terminal reaches only the
	// coordinator, which kills its children. Pdeathsig covers a
	// coordinator that dies without cleaning up.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node %d: %w", id, err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// send writes one command line.
func (c *child) send(format string, args ...any) error {
	if _, err := fmt.Fprintf(c.stdin, format+"\n", args...); err != nil {
		return c.gone(err)
	}
	return nil
}

// expect waits for the next line and returns what follows prefix. A line
// "error MSG", another prefix, the process's exit, ctx or timeout fail.
func (c *child) expect(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case line, ok := <-c.lines:
		switch {
		case !ok:
			return "", c.gone(nil)
		case line == prefix:
			return "", nil
		case strings.HasPrefix(line, prefix+" "):
			return line[len(prefix)+1:], nil
		case strings.HasPrefix(line, "error "):
			return "", fmt.Errorf("node %d: %s", c.id, line[len("error "):])
		}
		return "", fmt.Errorf("node %d: got %q, want %q", c.id, line, prefix)
	case <-tm.C:
		return "", fmt.Errorf("node %d: no %q within %v", c.id, prefix, timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// call sends a command and waits for the answer starting with prefix.
func (c *child) call(ctx context.Context, prefix string, format string, args ...any) (string, error) {
	if err := c.send(format, args...); err != nil {
		return "", err
	}
	return c.expect(ctx, prefix, 10*time.Second)
}

// gone describes a process that stopped answering, with its last log
// lines.
func (c *child) gone(cause error) error {
	tail := c.logTail(5)
	if cause != nil {
		return fmt.Errorf("node %d: %w (%v); log tail:\n%s", c.id, errChildGone, cause, tail)
	}
	return fmt.Errorf("node %d: %w; log tail:\n%s", c.id, errChildGone, tail)
}

func (c *child) logTail(n int) string {
	b, _ := os.ReadFile(c.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// signal sends sig (SIGSTOP, SIGCONT) to the process.
func (c *child) signal(sig syscall.Signal) error { return c.cmd.Process.Signal(sig) }

// kill stops the process at once, paused or not, and reaps it.
func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.exited
	c.stdin.Close()
}
