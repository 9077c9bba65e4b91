// Command testnode runs one consensus replica over real gRPC and bolt
// storage, driven by a line protocol on stdin, for the multi-process
// cluster tests. It is not part of the product.
//
// Input lines:
//
//	peer ID ADDR        set a peer's address
//	propose REQ DATA    propose DATA; answers "ok REQ SLOT", "notleader REQ ID" or "err REQ MSG"
//	dump                print "log SLOT DATA" for every applied command, then "end"
//	status              print "status ROLE LEADER COMMIT APPLIED"
//
// On start it prints "listening ADDR".
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/consensus/snapshot"
	"github.com/clockd/clockd/consensus/storage"
	"github.com/clockd/clockd/consensus/transport"
)

type logSM struct {
	mu      sync.Mutex
	entries []string
}

func (s *logSM) Snapshot(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.NewEncoder(w).Encode(s.entries)
}

func (s *logSM) Restore(r io.Reader) error {
	var entries []string
	if err := json.NewDecoder(r).Decode(&entries); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = entries
	return nil
}

func (s *logSM) Apply(slot uint64, cmd []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, fmt.Sprintf("%d %s", slot, cmd))
	return len(s.entries)
}

type output struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (o *output) say(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format+"\n", args...)
	o.w.Flush()
}

func main() {
	id := flag.Uint64("id", 0, "node id")
	members := flag.String("members", "", "comma-separated member ids")
	listen := flag.String("listen", "127.0.0.1:0", "peer listen address")
	dir := flag.String("dir", "", "data directory")
	flag.Parse()
	if err := run(consensus.NodeID(*id), *members, *listen, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "testnode:", err)
		os.Exit(1)
	}
}

func run(id consensus.NodeID, memberList, listen, dir string) error {
	var members []consensus.NodeID
	var peers []transport.Peer
	for _, f := range strings.Split(memberList, ",") {
		m, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return fmt.Errorf("bad member %q", f)
		}
		members = append(members, consensus.NodeID(m))
		if consensus.NodeID(m) != id {
			peers = append(peers, transport.Peer{ID: consensus.NodeID(m), Addr: "127.0.0.1:1"})
		}
	}
	logger, _ := zap.NewDevelopment()
	store, err := storage.OpenLogger(dir+"/paxos.db", logger)
	if err != nil {
		return err
	}
	defer store.Close()
	snaps, err := snapshot.Open(dir+"/snapshots", logger)
	if err != nil {
		return err
	}
	var rep *driver.Replica
	tr, err := transport.New(transport.Config{ID: id, Listen: listen, Peers: peers, Insecure: true, Logger: logger,
		OnSnapshot: func(from consensus.NodeID, r io.Reader) error { return rep.ReceiveSnapshot(from, r) }},
		func(m consensus.Message) { rep.Step(m) })
	if err != nil {
		return err
	}
	sm := &logSM{}
	// Small snapshot thresholds, so the kill/restart test exercises
	// snapshots, compaction and snapshot transfer.
	rep, err = driver.New(driver.Config{Core: consensus.Config{ID: id, Members: members},
		TickInterval: 20 * time.Millisecond, Logger: logger,
		SnapshotEntries: 40, SnapshotTrailing: 1}, store, snaps, tr, sm)
	if err != nil {
		return err
	}
	if err := tr.Start(); err != nil {
		return err
	}
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rep.Run(ctx)
	out := &output{w: bufio.NewWriter(os.Stdout)}
	out.say("listening %s", tr.Addr())
	return serve(ctx, rep, tr, sm, out)
}

func serve(ctx context.Context, rep *driver.Replica, tr *transport.Transport, sm *logSM, out *output) error {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 3 && f[0] == "peer":
			p, _ := strconv.ParseUint(f[1], 10, 64)
			if err := tr.SetPeerAddr(consensus.NodeID(p), f[2]); err != nil {
				out.say("error %v", err)
			}
		case len(f) == 3 && f[0] == "propose":
			go propose(ctx, rep, out, f[1], f[2])
		case len(f) == 1 && f[0] == "dump":
			sm.mu.Lock()
			lines := append([]string(nil), sm.entries...)
			sm.mu.Unlock()
			for _, l := range lines {
				out.say("log %s", l)
			}
			out.say("end")
		case len(f) == 1 && f[0] == "status":
			st := rep.Status()
			out.say("status %s %d %d %d", st.Role, st.Leader, st.Commit, st.Applied)
		default:
			out.say("error unknown command %q", in.Text())
		}
	}
	return in.Err()
}

func propose(ctx context.Context, rep *driver.Replica, out *output, req, data string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	res, err := rep.Propose(ctx, []byte(data))
	var nl *consensus.NotLeaderError
	switch {
	case err == nil:
		out.say("ok %s %d", req, res.Slot)
	case errors.As(err, &nl):
		out.say("notleader %s %d", req, nl.Leader)
	default:
		out.say("err %s %s", req, strings.ReplaceAll(err.Error(), " ", "_"))
	}
}
