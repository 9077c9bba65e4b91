package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// chronydReadyTimeout bounds the wait for chronyd's first valid answer.
const chronydReadyTimeout = 15 * time.Second

// chronyd is a chronyd process serving NTP on loopback from its local
// clock, with every file it writes in one directory.
type chronyd struct {
	addr    string // 127.0.0.1:port
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// findChronyd returns the chronyd on $PATH, else /usr/sbin/chronyd (not
// on a normal user's $PATH on Debian), else "".
func findChronyd() string {
	if p, err := exec.LookPath("chronyd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/chronyd"); err == nil {
		return "/usr/sbin/chronyd"
	}
	return ""
}

// chronyConf is the configuration of a chronyd that answers on
// 127.0.0.1:port at stratum 10 without any upstream, to every loopback
// source, and keeps its files in dir. It has no ratelimit directive:
// without one chronyd answers every request.
func chronyConf(dir string, port int) string {
	lines := []string{
		fmt.Sprintf("port %d", port),
		"bindaddress 127.0.0.1",
		"allow 127.0.0.0/8",
		"local stratum 10",
		"driftfile " + filepath.Join(dir, "drift"),
		"pidfile " + filepath.Join(dir, "chronyd.pid"),
		"bindcmdaddress " + filepath.Join(dir, "chronyd.sock"),
		"cmdport 0",
	}
	if os.Geteuid() == 0 {
		// Started as root, chronyd switches to its compiled-in user,
		// which cannot write dir.
		lines = append(lines, "user root")
	}
	return strings.Join(lines, "\n") + "\n"
}

// startChronyd runs `bin -x -d -f dir/chrony.conf`: -x leaves the system
// clock alone, -d keeps it in the foreground, logging to dir/chronyd.log.
func startChronyd(bin, dir string) (*chronyd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "chrony.conf")
	if err := os.WriteFile(conf, []byte(chronyConf(dir, port)), 0o644); err != nil {
		return nil, err
	}
	c := &chronyd{addr: fmt.Sprintf("127.0.0.1:%d", port), logPath: filepath.Join(dir, "chronyd.log"),
		exited: make(chan struct{})}
	log, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the process holds its own descriptor
	args := []string{"-x", "-d", "-f", conf}
	if os.Geteuid() != 0 {
		args = append(args, "-U") // chronyd refuses to start as another user without it
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = log, log
	// A bench killed outright takes chronyd with it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// waitReady calls query until it succeeds, chronyd exits, or
// chronydReadyTimeout passes.
func (c *chronyd) waitReady(ctx context.Context, query func() error) error {
	ctx, cancel := context.WithTimeout(ctx, chronydReadyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = query(); last == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("chronyd exited (%v); log:\n%s", c.cmd.ProcessState, c.logTail(10))
		case <-ctx.Done():
			return fmt.Errorf("chronyd gave no valid answer within %v: %v; log:\n%s", chronydReadyTimeout, last, c.logTail(10))
		case <-tick.C:
		}
	}
}

// stop kills chronyd and reaps it.
func (c *chronyd) stop() {
	c.cmd.Process.Kill()
	<-c.exited
}

func (c *chronyd) logTail(n int) string {
	b, _ := os.ReadFile(c.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freeUDPPort is a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort() (int, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}
