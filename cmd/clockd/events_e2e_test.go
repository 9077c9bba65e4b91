package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/internal/proccluster"
)

// TestOrderedEventLog appends events through all three real processes at
// once, then checks: every host holds the same events in the same order;
// each source's order is kept; a retried batch adds nothing; acknowledged
// events survive a killed host; and with two hosts stopped, the third
// spools what it is given and commits it once they return. Host 2
// proposes its batches uncompressed, the others compressed, so every
// host applies and stores both kinds.
func TestOrderedEventLog(t *testing.T) {
	dir := t.TempDir()
	_, cl, ctx := startSynchronized(t, 3*time.Minute, proccluster.Config{Dir: dir, Nodes: 3,
		Args: []string{"--tick-interval", "200ms"}, NodeArgs: map[uint64][]string{2: {"--event-compression", "none"}}})
	ord := func(id uint64) clockdv1.OrderingServiceClient {
		c, err := cl.Dial(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return clockdv1.NewOrderingServiceClient(c.Conn())
	}
	const perSource, batch = 600, 50
	var wg sync.WaitGroup
	for id := uint64(1); id <= 3; id++ {
		for src := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := ord(id)
				source := fmt.Sprintf("app-%d", src)
				for seq := uint64(1); seq <= perSource; seq += batch {
					if _, err := appendEvents(ctx, o, fmt.Sprintf("host-%d", id), source, seq, batch); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	total := 3 * 2 * perSource
	// A retry of a whole batch commits nothing new.
	resp, err := appendEvents(ctx, ord(2), "host-1", "app-0", 1, batch)
	if err != nil || resp.Accepted != 0 || resp.Duplicates != batch {
		t.Fatalf("retried batch: %v %v", resp, err)
	}
	logs := map[uint64][]string{}
	for id := uint64(1); id <= 3; id++ {
		logs[id] = readLog(t, ctx, ord(id), total)
	}
	if !slices.Equal(logs[1], logs[2]) || !slices.Equal(logs[1], logs[3]) {
		t.Fatal("hosts hold different orders")
	}
	checkSourceOrder(t, logs[1], perSource)

	// Kill one host: the others still have every acknowledged event.
	cl.Kill(3)
	if got := readLog(t, ctx, ord(1), total); !slices.Equal(got, logs[1]) {
		t.Fatal("events lost with one host down")
	}

	// Stop a second host: node 1 cannot commit, so it spools.
	cl.Terminate(2)
	resp, err = appendEvents(ctx, ord(1), "host-1", "late", 1, batch)
	if err != nil || resp.Spooled != batch {
		t.Fatalf("append without a quorum: %v %v, want %d spooled", resp, err, batch)
	}
	if st := status(t, ctx, cl, 1); st.EventsSpooled != batch || st.EventsLastGsn != uint64(total) {
		t.Fatalf("node 1's status while spooling: %d spooled, last GSN %d; want %d, %d", st.EventsSpooled,
			st.EventsLastGsn, batch, total)
	}
	if err := cl.Start(2); err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(3); err != nil {
		t.Fatal(err)
	}
	got := readLog(t, ctx, ord(3), total+batch)
	checkSourceOrder(t, got, perSource)
	if !slices.Equal(got[:total], logs[1]) {
		t.Fatal("the restarted host's log differs")
	}

	// A local process writes three events on the ingest socket and keeps
	// its connection open: they commit all the same, without waiting for
	// more to fill a batch or for the writer to leave. One more, whose
	// host holds a NUL, is refused and counted.
	sock, err := net.Dial("unix", filepath.Join(cl.Node(3).DataDir, "ingest.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	for i := range 3 {
		fmt.Fprintf(sock, `{"time":%d,"msg":"from-the-socket-%d"}`+"\n", time.Now().UnixNano(), i)
		if i == 0 {
			fmt.Fprintf(sock, `{"time":%d,"host":"hv3\u0000x","msg":"refused"}`+"\n", time.Now().UnixNano())
		}
	}
	got = readLog(t, ctx, ord(3), total+batch+3)
	if want := []string{"from-the-socket-0", "from-the-socket-1", "from-the-socket-2"}; !slices.Equal(got[total+batch:], want) {
		t.Fatalf("the socket's events: %q, want %q", got[total+batch:], want)
	}
	mresp, err := http.Get("http://" + cl.Node(3).MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if err != nil || !strings.Contains(string(metrics), "\nclockd_events_refused_total 1\n") {
		t.Fatalf("node 3's /metrics does not count the refused event (%v)", err)
	}
	if st := status(t, ctx, cl, 3); st.EventsRefused != 1 || st.EventsSpooled != 0 || st.EventsLastGsn != uint64(total+batch+3) {
		t.Fatalf("node 3's status: %d refused, %d spooled, last GSN %d; want 1, 0, %d", st.EventsRefused,
			st.EventsSpooled, st.EventsLastGsn, total+batch+3)
	}
	// Events of most of a MiB each, as the socket takes them, are read
	// back in answers that fit a client's 4 MiB messages.
	big := strings.Repeat("x", 900<<10)
	for i := range 6 {
		fmt.Fprintf(sock, `{"time":%d,"msg":"big-%d-%s"}`+"\n", time.Now().UnixNano(), i, big)
	}
	fmt.Fprintf(sock, `{"time":%d,"msg":"after-the-big-ones"}`+"\n", time.Now().UnixNano())
	firstBig := uint64(total + batch + 3 + 1)
	cliPoll(t, ctx, "the events after the large ones", func() bool {
		resp, err := ord(3).Read(ctx, &clockdv1.ReadRequest{FromGsn: firstBig + 6})
		return err == nil && len(resp.Events) == 1 && resp.Events[0].Event.Name == "after-the-big-ones"
	})
	var names []string
	from, deadline := firstBig, time.Now().Add(time.Minute)
	for len(names) < 6 {
		resp, err := ord(3).Read(ctx, &clockdv1.ReadRequest{FromGsn: from})
		if err != nil {
			t.Fatalf("read from GSN %d, at the large events: %v", from, err)
		}
		for _, e := range resp.Events {
			names = append(names, e.Event.Name)
		}
		if len(resp.Events) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d of the 6 large events read", len(names))
			}
			time.Sleep(50 * time.Millisecond) // not committed yet
		}
		from = resp.NextGsn
	}
	for i, name := range names[:6] {
		if want := fmt.Sprintf("big-%d-%s", i, big); name != want {
			t.Fatalf("large event %d read back as %.20q..., %d bytes", i, name, len(name))
		}
	}
}

func appendEvents(ctx context.Context, o clockdv1.OrderingServiceClient, host, source string, seq uint64, n int) (*clockdv1.AppendResponse, error) {
	return appendPadded(ctx, o, host, source, seq, n, 0)
}

// appendPadded appends n events named host/source/seq, each with an
// attribute "pad" of padBytes random base64 characters unless padBytes is
// 0: event i of the n gets the i-th run of padBytes of randomText, so no
// two of one Append repeat each other, and their batches take about as
// many bytes in the log compressed as not (three quarters: base64
// carries 6 bits a byte).
func appendPadded(ctx context.Context, o clockdv1.OrderingServiceClient, host, source string, seq uint64, n int, padBytes int) (*clockdv1.AppendResponse, error) {
	text := randomText(n * padBytes)
	st, err := o.Append(ctx)
	if err != nil {
		return nil, err
	}
	req := &clockdv1.AppendRequest{}
	for i := range n {
		e := &clockdv1.Event{Host: host, Source: source, SourceSeq: seq + uint64(i),
			LocalUnixNano: time.Now().UnixNano(), Kind: "log", Name: fmt.Sprintf("%s/%s/%d", host, source, seq+uint64(i))}
		if padBytes > 0 {
			e.Attrs = []*clockdv1.Attr{{Key: "pad", Value: text[i*padBytes : (i+1)*padBytes]}}
		}
		req.Events = append(req.Events, e)
	}
	if err := st.Send(req); err != nil {
		return nil, err
	}
	return st.CloseAndRecv()
}

// randomText returns n random base64 characters, the same each time.
func randomText(n int) string {
	randomTextOnce.Do(func() {
		raw := make([]byte, 1<<20)
		rand.NewChaCha8([32]byte{7}).Read(raw)
		randomTextAll = base64.StdEncoding.EncodeToString(raw)
	})
	return randomTextAll[:n]
}

var (
	randomTextOnce sync.Once
	randomTextAll  string // 4/3 MiB
)

// readLog reads a host's log until it holds n events, as "host/source/seq".
func readLog(t *testing.T, ctx context.Context, o clockdv1.OrderingServiceClient, n int) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var out []string
		from := uint64(1)
		for {
			resp, err := o.Read(ctx, &clockdv1.ReadRequest{FromGsn: from})
			if err != nil {
				break // the host is starting
			}
			for i, e := range resp.Events {
				if e.Gsn != from+uint64(i) {
					t.Fatalf("GSN %d after %d", e.Gsn, from+uint64(i)-1)
				}
				out = append(out, e.Event.Name)
			}
			if len(resp.Events) == 0 {
				break
			}
			from = resp.NextGsn
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log holds %d events, want %d", len(out), n)
		}
		time.Sleep(50 * time.Millisecond) // the host is still catching up
	}
}

// checkSourceOrder: each source's events appear once each, in seq order.
func checkSourceOrder(t *testing.T, log []string, perSource int) {
	t.Helper()
	next := map[string]int{}
	for _, name := range log {
		var host, source string
		var seq int
		if _, err := fmt.Sscanf(name, "host-%s", &host); err != nil {
			t.Fatalf("event %q", name)
		}
		i := len(name) - 1
		for name[i] != '/' {
			i--
		}
		fmt.Sscanf(name[i+1:], "%d", &seq)
		source = name[:i]
		if next[source] == 0 {
			next[source] = 1
		}
		if seq != next[source] {
			t.Fatalf("source %s: seq %d where %d was due", source, seq, next[source])
		}
		next[source]++
	}
}

// TestOrderedEventLogFailover kills the leader while every host is
// appending, batches in flight on all of them, and starts it again. The
// clients retry what failed, through another host. Every host ends with
// the same log, holding each event exactly once, in its source's order.
func TestOrderedEventLogFailover(t *testing.T) {
	dir := t.TempDir()
	_, cl, ctx := startSynchronized(t, 3*time.Minute, proccluster.Config{Dir: dir, Nodes: 3,
		Args: []string{"--tick-interval", "200ms"}})
	conns := map[uint64]clockdv1.OrderingServiceClient{}
	for id := uint64(1); id <= 3; id++ {
		c, err := cl.Dial(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[id] = clockdv1.NewOrderingServiceClient(c.Conn())
	}
	leader := status(t, ctx, cl, 1).LeaderId
	const perSource, batch = 3000, 100
	acked := make(chan struct{}, 3*perSource/batch)
	var wg sync.WaitGroup
	for id := uint64(1); id <= 3; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			via := id
			for seq := uint64(1); seq <= perSource; seq += batch {
				for attempt := 0; ; attempt++ {
					actx, acancel := context.WithTimeout(ctx, 5*time.Second)
					_, err := appendEvents(actx, conns[via], fmt.Sprintf("host-%d", id), "fail", seq, batch)
					acancel()
					if err == nil {
						break
					}
					if attempt == 50 {
						t.Errorf("host-%d seq %d: %v", id, seq, err)
						return
					}
					via = otherThan(via) // the retry goes elsewhere
				}
				acked <- struct{}{}
			}
		}()
	}
	for range 15 {
		<-acked
	}
	cl.Kill(leader)
	wg.Wait()
	if t.Failed() {
		return
	}
	if err := cl.Start(leader); err != nil {
		t.Fatal(err)
	}
	total := 3 * perSource
	logs := map[uint64][]string{}
	for id := uint64(1); id <= 3; id++ {
		logs[id] = readLog(t, ctx, conns[id], total)
		if len(logs[id]) != total {
			t.Fatalf("host %d holds %d events, want %d", id, len(logs[id]), total)
		}
	}
	if !slices.Equal(logs[1], logs[2]) || !slices.Equal(logs[1], logs[3]) {
		t.Fatal("hosts hold different orders")
	}
	checkSourceOrder(t, logs[1], perSource)
}

// TestEventLogBackfill pauses a follower while more events are committed
// than the leader keeps for it, and than its transport queue holds, so
// that it resumes by installing a snapshot and skips them; its event
// store then fetches them from the others. It ends with the same events,
// in the same order, as the leader, and says it filled the gap.
func TestEventLogBackfill(t *testing.T) {
	dir := t.TempDir()
	_, cl, ctx := startSynchronized(t, 3*time.Minute, proccluster.Config{Dir: dir, Nodes: 3,
		Args: []string{"--tick-interval", "200ms"}})
	leader := status(t, ctx, cl, 1).LeaderId
	paused := otherThan(leader)
	conns := map[uint64]clockdv1.OrderingServiceClient{}
	for _, id := range []uint64{leader, paused} {
		c, err := cl.Dial(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[id] = clockdv1.NewOrderingServiceClient(c.Conn())
	}
	const batch = 1000
	send := func(seq uint64) {
		t.Helper()
		if _, err := appendPadded(ctx, conns[leader], "host-1", "bulk", seq, batch, 1000); err != nil { // 1 KiB events
			t.Fatal(err)
		}
	}
	// Some events every host stores, then about 96 MiB the paused one
	// misses (72 MiB in the log, compressed): the leader keeps 8 MiB
	// behind a snapshot, and its transport queues 32 MiB for the paused
	// host.
	seq := uint64(1)
	for ; seq <= 2*batch; seq += batch {
		send(seq)
	}
	waitContiguous(t, ctx, conns[paused], 2*batch)
	cl.Pause(paused)
	for ; seq <= 96*batch; seq += batch {
		send(seq)
	}
	cl.Resume(paused)
	for ; seq <= 98*batch; seq += batch {
		send(seq)
	}
	const total = 98 * batch
	want := waitContiguous(t, ctx, conns[leader], total)
	if got := waitContiguous(t, ctx, conns[paused], total); !slices.Equal(got, want) {
		t.Fatal("the resumed host's log differs from the leader's")
	}
	// The offset history too: the ticks the paused host skipped are
	// fetched, so it ends with the leader's history, in the same order.
	wantOffsets := offsetHistory(t, ctx, conns[leader])
	deadline := time.Now().Add(time.Minute)
	for {
		got := offsetHistory(t, ctx, conns[paused])
		if len(got) >= len(wantOffsets) && slices.Equal(got[:len(wantOffsets)], wantOffsets) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed host's offset history (%d samples) does not begin with the leader's (%d)",
				len(got), len(wantOffsets))
		}
		time.Sleep(100 * time.Millisecond) // the offset backfiller is still at work
	}
	logged, err := os.ReadFile(cl.Node(paused).LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"event store gap:", "event store gap filled", "offset history gap:", "offset history gap filled"} {
		if !bytes.Contains(logged, []byte(line)) {
			t.Fatalf("the resumed host's log does not say %q: it did not skip events, and the test proves nothing", line)
		}
	}
}

// offsetHistory is a host's offset history, each sample as a string.
func offsetHistory(t *testing.T, ctx context.Context, o clockdv1.OrderingServiceClient) []string {
	t.Helper()
	stream, err := o.Offsets(ctx, &clockdv1.OffsetsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		s, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d %d %d", s.Host, s.RefUnixNano, s.OffsetNanos, s.ErrNanos))
	}
}

// waitContiguous reads a host's log from GSN 1 until it holds n events
// without a jump in GSNs (a host that is catching up, or filling a gap,
// holds fewer), and returns their names.
func waitContiguous(t *testing.T, ctx context.Context, o clockdv1.OrderingServiceClient, n int) []string {
	t.Helper()
	// Generous: a host catching up by backfill fetches tens of MiB, under
	// the race detector, on a machine running other tests' clusters.
	deadline := time.Now().Add(2 * time.Minute)
	var out []string
	from := uint64(1)
	for len(out) < n {
		resp, err := o.Read(ctx, &clockdv1.ReadRequest{FromGsn: from, Max: 1000}) // 1 MiB a reply
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Events {
			if e.Gsn != from {
				break // a gap, not filled yet
			}
			out = append(out, e.Event.Name)
			from++
		}
		if len(resp.Events) > 0 && resp.Events[0].Gsn == from-uint64(len(resp.Events)) {
			continue // more may follow at once
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host holds %d events in a row, up to GSN %d, want %d", len(out), from-1, n)
		}
		time.Sleep(50 * time.Millisecond) // it is still catching up
	}
	return out
}
