package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clockd/clockd/internal/proccluster"
)

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "start a local cluster on loopback for trying clockd, and print its addresses",
		Description: "Starts --nodes `clockd run` processes on 127.0.0.1 (plaintext, real gRPC, bolt\n" +
			"files with fsync), waits until every node is synchronized, prints each node's\n" +
			"addresses, and runs until interrupted. Then try, for example:\n" +
			"  clockd status --insecure --addr <api>\n" +
			"  clockd now --insecure --addr <api>",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 3, Usage: "number of nodes, 1 to 7", EnvVars: []string{"CLOCKD_DEV_NODES"}},
			&cli.StringFlag{Name: "dir", Usage: "directory for the nodes' data and logs (default: a new temporary directory, removed at exit)", EnvVars: []string{"CLOCKD_DEV_DIR"}},
			&cli.StringSliceFlag{Name: "skew", Usage: "shift a node's wall clock, ID=DURATION (e.g. 3=1h), to watch it outvoted", EnvVars: []string{"CLOCKD_DEV_SKEW"}},
		},
		Action: runDev,
	}
}

// startLocal starts a process cluster of this executable.
func startLocal(ctx context.Context, nodes int, dir string, skews []string, args ...string) (*proccluster.Cluster, func(), error) {
	if nodes < 1 || nodes > 7 {
		return nil, nil, cli.Exit(fmt.Sprintf("--nodes %d: want 1 to 7", nodes), 2)
	}
	offsets, err := parseSkews(skews, nodes)
	if err != nil {
		return nil, nil, cli.Exit(err, 2)
	}
	bin, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "clockd-dev"); err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	cl, err := proccluster.Start(proccluster.Config{Binary: bin, Dir: dir, Nodes: nodes, WallOffset: offsets, Args: args})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	stop := func() { cl.Stop(); cleanup() }
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.WaitSynchronized(wctx); err != nil {
		stop()
		return nil, nil, err
	}
	return cl, stop, nil
}

func parseSkews(in []string, nodes int) (map[uint64]time.Duration, error) {
	out := map[uint64]time.Duration{}
	for _, s := range splitList(in) {
		idText, d, ok := strings.Cut(s, "=")
		id, err := strconv.ParseUint(idText, 10, 64)
		if !ok || err != nil || id < 1 || id > uint64(nodes) {
			return nil, fmt.Errorf("--skew %q: want ID=DURATION with ID in 1..%d", s, nodes)
		}
		off, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("--skew %q: %v", s, err)
		}
		out[id] = off
	}
	return out, nil
}

func runDev(c *cli.Context) error {
	if c.Args().Present() {
		return clientUsage(c, "unexpected argument %q (see --help)", c.Args().First())
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "starting %d nodes...\n", c.Int("nodes"))
	cl, shutdown, err := startLocal(ctx, c.Int("nodes"), c.String("dir"), c.StringSlice("skew"))
	if err != nil {
		return err
	}
	defer shutdown()
	fmt.Printf("%-4s %-8s %-21s %-21s %-21s %-21s %s\n", "node", "pid", "api", "peer", "ntp", "metrics", "log")
	for _, n := range cl.Nodes {
		fmt.Printf("%-4d %-8d %-21s %-21s %-21s %-21s %s\n", n.ID, n.Pid(), n.APIAddr, n.PeerAddr, n.NTPAddr,
			"http://"+n.MetricsAddr+"/metrics", n.LogPath)
	}
	fmt.Printf("\nall nodes synchronized; try: %s status --insecure --addr %s\n", os.Args[0], cl.Nodes[0].APIAddr)
	fmt.Println("press Ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping")
	return nil
}
