package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
)

// engine is one consensus node as the node process drives it.
type engine interface {
	// Addr is the peer address the node listens on.
	Addr() string
	// SetPeer tells the node where member id listens. Called before Start.
	SetPeer(id uint64, addr string) error
	// Start starts the node; every peer address is known by then.
	Start() error
	Status() nodeStatus
	// Propose replicates cmd and returns once it is committed and applied
	// on this node. cmd must not be reused.
	Propose(ctx context.Context, cmd []byte) error
	// Failed is closed if the node stopped on its own (a storage error).
	Failed() <-chan error
	Close() error
}

// nodeStatus is what "status" answers.
type nodeStatus struct {
	Role    string // "leader", "follower", "candidate", ...
	Leader  uint64 // 0 when unknown
	Applied uint64 // last log index applied to the state machine
}

// nodeOptions are the hidden node command's flags.
type nodeOptions struct {
	Engine  string
	ID      uint64
	Members []uint64
	Dir     string
}

func nodeCommand() *cli.Command {
	return &cli.Command{
		Name:   "node",
		Hidden: true,
		Usage:  "run one cluster member, driven by lines on stdin (internal)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "engine", Required: true, Usage: "clockd or raft"},
			&cli.Uint64Flag{Name: "id", Required: true},
			&cli.StringFlag{Name: "members", Required: true, Usage: "comma-separated member ids"},
			&cli.StringFlag{Name: "dir", Required: true, Usage: "data directory"},
		},
		Action: func(c *cli.Context) error {
			members, err := parseIDs(c.String("members"))
			if err != nil {
				return err
			}
			o := nodeOptions{Engine: c.String("engine"), ID: c.Uint64("id"), Members: members, Dir: c.String("dir")}
			stop, err := startProfile(o)
			if err != nil {
				return err
			}
			defer stop()
			return runNode(c.Context, o, os.Stdin, os.Stdout)
		},
	}
}

// startProfile writes a CPU profile of the node process when
// CLOCKD_BENCH_CPUPROFILE names a directory: DIR/ENGINE-ID.pprof, covering
// the node's first CLOCKD_BENCH_CPUPROFILE_FOR (default 10s). It is for
// finding where an engine spends its time; the report does not use it.
func startProfile(o nodeOptions) (stop func(), err error) {
	dir := os.Getenv("CLOCKD_BENCH_CPUPROFILE")
	if dir == "" {
		return func() {}, nil
	}
	span := 10 * time.Second
	if v := os.Getenv("CLOCKD_BENCH_CPUPROFILE_FOR"); v != "" {
		if span, err = time.ParseDuration(v); err != nil || span <= 0 {
			return nil, fmt.Errorf("CLOCKD_BENCH_CPUPROFILE_FOR: bad duration %q", v)
		}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", o.Engine, o.ID)))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}
	time.AfterFunc(span, stop)
	return stop, nil
}

func newEngine(o nodeOptions) (engine, error) {
	switch o.Engine {
	case engineClockd:
		return newClockd(o)
	case engineRaft:
		return newRaft(o)
	}
	return nil, fmt.Errorf("unknown engine %q", o.Engine)
}

// lineWriter serialises the node's answers on stdout.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *lineWriter) say(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format+"\n", args...)
}

// runNode serves the line protocol until stdin closes:
//
//	peer ID ADDR             -> "ok"
//	start                    -> "started"
//	status                   -> "status ROLE LEADER APPLIED"
//	load CLIENTS DUR WARMUP  -> "window-start", "window-end", "result JSON"
//
// A failed command answers "error MSG". On start it prints "listening ADDR".
func runNode(ctx context.Context, o nodeOptions, in io.Reader, out io.Writer) error {
	eng, err := newEngine(o)
	if err != nil {
		return err
	}
	defer eng.Close()
	w := &lineWriter{w: out}
	w.say("listening %s", eng.Addr())
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case err := <-eng.Failed():
			return fmt.Errorf("node %d stopped: %w", o.ID, err)
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if err := handleLine(ctx, eng, w, line); err != nil {
				w.say("error %s", oneLine(err.Error()))
			}
		}
	}
}

func handleLine(ctx context.Context, eng engine, w *lineWriter, line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 3 && f[0] == "peer":
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return fmt.Errorf("peer id %q: %w", f[1], err)
		}
		if err := eng.SetPeer(id, f[2]); err != nil {
			return err
		}
		w.say("ok")
	case len(f) == 1 && f[0] == "start":
		if err := eng.Start(); err != nil {
			return err
		}
		w.say("started")
	case len(f) == 1 && f[0] == "status":
		st := eng.Status()
		w.say("status %s %d %d", st.Role, st.Leader, st.Applied)
	case len(f) == 4 && f[0] == "load":
		spec, err := parseLoadSpec(f[1:])
		if err != nil {
			return err
		}
		go func() {
			res := runLoad(ctx, eng.Propose, spec, func(mark string) { w.say("%s", mark) })
			b, _ := json.Marshal(res)
			w.say("result %s", b)
		}()
	default:
		return fmt.Errorf("unknown command %q", line)
	}
	return nil
}

func parseLoadSpec(f []string) (loadSpec, error) {
	var s loadSpec
	var err error
	if s.Clients, err = strconv.Atoi(f[0]); err != nil || s.Clients < 1 {
		return s, fmt.Errorf("load: bad client count %q", f[0])
	}
	if s.Duration, err = time.ParseDuration(f[1]); err != nil || s.Duration <= 0 {
		return s, fmt.Errorf("load: bad duration %q", f[1])
	}
	if s.Warmup, err = time.ParseDuration(f[2]); err != nil || s.Warmup < 0 {
		return s, fmt.Errorf("load: bad warm-up %q", f[2])
	}
	return s, nil
}

func parseIDs(s string) ([]uint64, error) {
	var ids []uint64
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("bad member id %q", f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
