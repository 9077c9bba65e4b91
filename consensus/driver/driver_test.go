package driver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/consensus/snapshot"
	"github.com/clockd/clockd/consensus/storage"
)

type recorder struct{ applied []string }

func (r *recorder) Apply(slot uint64, cmd []byte) any {
	r.applied = append(r.applied, string(cmd))
	return len(r.applied)
}

func (r *recorder) Snapshot(w io.Writer) error { return json.NewEncoder(w).Encode(r.applied) }

func (r *recorder) Restore(rd io.Reader) error { return json.NewDecoder(rd).Decode(&r.applied) }

type noNet struct{}

func (noNet) Send([]consensus.Message) {}

func (noNet) SendSnapshot(context.Context, consensus.NodeID, io.Reader, int64) error {
	return errors.New("no network")
}

func startSolo(t *testing.T, path string, sm driver.StateMachine) (*driver.Replica, *storage.Store, context.CancelFunc) {
	t.Helper()
	return startSoloWith(t, path, sm, func(*driver.Config) {})
}

// openStores opens the acceptor store at path and the snapshot store
// beside it.
func openStores(t *testing.T, path string) (*storage.Store, *snapshot.Store) {
	t.Helper()
	store, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := snapshot.Open(path+"-snapshots", nil)
	if err != nil {
		t.Fatal(err)
	}
	return store, snaps
}

func startSoloWith(t *testing.T, path string, sm driver.StateMachine, edit func(*driver.Config)) (*driver.Replica, *storage.Store, context.CancelFunc) {
	t.Helper()
	store, snaps := openStores(t, path)
	cfg := driver.Config{Core: consensus.Config{ID: 1, Members: []consensus.NodeID{1}},
		TickInterval: time.Millisecond, Logger: zaptest.NewLogger(t), SnapshotEntries: 2, SnapshotTrailing: 1}
	edit(&cfg)
	r, err := driver.New(cfg, store, snaps, noNet{}, sm)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	return r, store, cancel
}

// proposeLeader retries until the single node has elected itself.
func proposeLeader(t *testing.T, r *driver.Replica, cmd string) driver.Result {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := r.Propose(ctx, []byte(cmd))
		cancel()
		var nl *consensus.NotLeaderError
		if errors.As(err, &nl) {
			<-time.After(time.Millisecond) // the election is a few ticks away
			continue
		}
		if err != nil {
			t.Fatalf("propose %q: %v", cmd, err)
		}
		return res
	}
}

func TestProposeReturnsSlotAndResultAndSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paxos.db")
	sm := &recorder{}
	r, store, cancel := startSolo(t, path, sm)
	for i, cmd := range []string{"a", "b", "c"} {
		res := proposeLeader(t, r, cmd)
		if res.Value != i+1 {
			t.Fatalf("propose %q: apply result %v, want %d", cmd, res.Value, i+1)
		}
		if res.Slot == 0 {
			t.Fatalf("propose %q: slot 0", cmd)
		}
	}
	cancel()
	<-r.Done()
	store.Close()

	again := &recorder{}
	r2, store2, cancel2 := startSolo(t, path, again)
	defer func() { cancel2(); <-r2.Done(); store2.Close() }()
	proposeLeader(t, r2, "d")
	if got := strings.Join(again.applied, ","); got != "a,b,c,d" {
		t.Fatalf("after restart applied %q, want a,b,c,d", got)
	}
}

// TestSubmitKeepsOrder: commands one goroutine submits without waiting
// are applied in the order submitted.
func TestSubmitKeepsOrder(t *testing.T) {
	sm := &recorder{}
	r, store, cancel := startSolo(t, filepath.Join(t.TempDir(), "paxos.db"), sm)
	defer func() { cancel(); <-r.Done(); store.Close() }()
	proposeLeader(t, r, "0")
	var pend []*driver.Pending
	want := []string{"0"}
	for i := 1; i <= 300; i++ {
		p, err := r.Submit(context.Background(), []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		pend = append(pend, p)
		want = append(want, fmt.Sprint(i))
	}
	for i, p := range pend {
		res, err := p.Wait(context.Background())
		if err != nil || res.Value != i+2 {
			t.Fatalf("command %d: %v, %v", i+1, res.Value, err)
		}
	}
	if got := strings.Join(sm.applied, ","); got != strings.Join(want, ",") {
		t.Fatalf("applied %s", got)
	}
}

// TestSnapshotTrailingBytes: however many slots SnapshotTrailing allows,
// the log behind a snapshot keeps no more command bytes than
// SnapshotTrailingBytes.
func TestSnapshotTrailingBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paxos.db")
	r, store, cancel := startSoloWith(t, path, &recorder{}, func(c *driver.Config) {
		c.SnapshotEntries, c.SnapshotBytes = 1<<30, 4<<10
		c.SnapshotTrailing, c.SnapshotTrailingBytes = 1000, 3<<10
	})
	defer store.Close()
	var last uint64
	for i := range 40 {
		last = proposeLeader(t, r, fmt.Sprintf("%04d", i)+strings.Repeat("x", 1020)).Slot
	}
	cancel()
	<-r.Done()
	floor, err := store.Compacted()
	if err != nil {
		t.Fatal(err)
	}
	// A clean stop finishes the snapshot under way and its compaction, so
	// the latest snapshot's trail is what the store keeps.
	snaps, err := snapshot.Open(path+"-snapshots", nil)
	if err != nil {
		t.Fatal(err)
	}
	meta, ok, err := snaps.Latest()
	if err != nil || !ok {
		t.Fatalf("latest snapshot: %v, found %v", err, ok)
	}
	// 3 KiB behind the snapshot holds at most 3 commands of 1 KiB; with
	// SnapshotTrailing alone, nothing of 40 slots would be compacted.
	if floor == 0 || meta.Index < floor || meta.Index-floor > 3 {
		t.Fatalf("log compacted to %d behind the snapshot at %d (last slot %d)", floor, meta.Index, last)
	}
}

func TestStorageFailureStopsNode(t *testing.T) {
	r, store, cancel := startSolo(t, filepath.Join(t.TempDir(), "paxos.db"), &recorder{})
	defer cancel()
	proposeLeader(t, r, "before")
	store.Close() // every later write fails
	_, err := r.Propose(context.Background(), []byte("after"))
	if !errors.Is(err, driver.ErrStopped) {
		t.Fatalf("propose after storage failure: %v, want ErrStopped", err)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "storage") {
		t.Fatalf("replica stopped with %v, want a storage error", err)
	}
}

func TestProposeCancelAndShutdown(t *testing.T) {
	r, store, cancel := startSolo(t, filepath.Join(t.TempDir(), "paxos.db"), &recorder{})
	defer store.Close()
	proposeLeader(t, r, "x")
	ctx, cancelProp := context.WithCancel(context.Background())
	cancelProp()
	if _, err := r.Propose(ctx, []byte("y")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled propose: %v", err)
	}
	cancel()
	<-r.Done()
	if _, err := r.Propose(context.Background(), []byte("z")); !errors.Is(err, driver.ErrStopped) {
		t.Fatalf("propose after shutdown: %v, want ErrStopped", err)
	}
}

// flipIn flips one byte of every occurrence of marker in file. bolt may
// keep stale copies of a record in freed pages, before or after the live
// one, so flipping only the first could miss it.
func flipIn(t *testing.T, file string, marker []byte) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for i := 0; ; {
		j := bytes.Index(data[i:], marker)
		if j < 0 {
			break
		}
		data[i+j+len(marker)/2] ^= 0x40
		found++
		i += j + len(marker)
	}
	if found == 0 {
		t.Fatalf("marker %q not found in %s", marker, file)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptionRefusesToStart flips a byte inside a log record in the
// bolt file, and inside a snapshot file, and checks that the node refuses
// to start with an error naming the file, instead of serving wrong data.
func TestCorruptionRefusesToStart(t *testing.T) {
	cases := []struct {
		name   string
		file   func(dir string) string
		marker string
	}{
		{"log record", func(dir string) string { return filepath.Join(dir, "paxos.db") }, "log-record-marker-0001"},
		{"snapshot", func(dir string) string {
			m, _ := filepath.Glob(filepath.Join(dir, "paxos.db-snapshots", "*.snap"))
			if len(m) == 0 {
				t.Fatal("no snapshot file")
			}
			return m[len(m)-1]
		}, "snapshot-marker-0002"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "paxos.db")
			r, store, cancel := startSolo(t, path, &recorder{})
			// With SnapshotEntries 2 and a trailing window of 1, the
			// first marker stays in the log, the second reaches a snapshot.
			for _, cmd := range []string{"snapshot-marker-0002", "x", "y", "log-record-marker-0001"} {
				proposeLeader(t, r, cmd)
			}
			cancel()
			<-r.Done()
			store.Close()

			file := c.file(dir)
			flipIn(t, file, []byte(c.marker))
			store2, err := storage.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer store2.Close()
			snaps, err := snapshot.Open(path+"-snapshots", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = driver.New(driver.Config{Core: consensus.Config{ID: 1, Members: []consensus.NodeID{1}},
				Logger: zaptest.NewLogger(t)}, store2, snaps, noNet{}, &recorder{})
			if err == nil || !strings.Contains(err.Error(), file) {
				t.Fatalf("start after corrupting %s: %v; want an error naming the file", file, err)
			}
		})
	}
}

// gatedStore holds the next Save, once armed, until the test lets it go.
type gatedStore struct {
	*storage.Store
	armed   chan struct{} // a value arms the gate for one Save
	entered chan struct{}
	release chan struct{}
}

func (g *gatedStore) Save(hs consensus.HardState, changed bool, ents []consensus.Entry) error {
	select {
	case <-g.armed:
		g.entered <- struct{}{}
		<-g.release
	default:
	}
	return g.Store.Save(hs, changed, ents)
}

// startGated runs a single-member replica with a gate on its store and
// the given GatherWindow (0: the default), once it leads.
func startGated(t *testing.T, window time.Duration) (*driver.Replica, *gatedStore) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paxos.db")
	store, snaps := openStores(t, path)
	g := &gatedStore{Store: store, armed: make(chan struct{}, 1), entered: make(chan struct{}), release: make(chan struct{})}
	cfg := driver.Config{Core: consensus.Config{ID: 1, Members: []consensus.NodeID{1}},
		TickInterval: time.Millisecond, GatherWindow: window, Logger: zaptest.NewLogger(t)}
	r, err := driver.New(cfg, g, snaps, noNet{}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	t.Cleanup(func() { cancel(); <-r.Done(); store.Close() })
	proposeLeader(t, r, "0")
	return r, g
}

// submitHeld submits cmd and returns once the write carrying it has
// reached g, which holds it until released.
func submitHeld(t *testing.T, ctx context.Context, r *driver.Replica, g *gatedStore, cmd string) *driver.Pending {
	t.Helper()
	g.armed <- struct{}{}
	p, err := r.Submit(ctx, []byte(cmd))
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered
	return p
}

// TestLoopRunsDuringWrites: while the leader's write is on its way to
// disk, the replica goes on serving (a linearizable read completes), and
// the commands proposed meanwhile are held and then share slots: 100
// commands take at most two slots, not one each.
func TestLoopRunsDuringWrites(t *testing.T) {
	r, g := startGated(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := submitHeld(t, ctx, r, g, "1") // its write is under way, and stays so
	readCtx, readCancel := context.WithTimeout(ctx, 30*time.Second)
	defer readCancel()
	if err := r.Read(readCtx); err != nil {
		t.Fatalf("read while a write is in flight: %v", err)
	}
	var rest []*driver.Pending
	for i := 2; i <= 101; i++ {
		p, err := r.Submit(ctx, []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, p)
	}
	close(g.release)

	res, err := first.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slots := map[uint64]bool{}
	for i, p := range rest {
		got, err := p.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Slot <= res.Slot || got.Value != i+3 {
			t.Fatalf("command %d: slot %d value %v, after slot %d", i+2, got.Slot, got.Value, res.Slot)
		}
		slots[got.Slot] = true
	}
	if len(slots) > 2 {
		t.Fatalf("100 commands proposed during one write took %d slots, want at most 2", len(slots))
	}
}

// gatedCompactStore holds the first Compact until the test lets it go.
type gatedCompactStore struct {
	*storage.Store
	once    sync.Once
	entered chan uint64
	release chan struct{}
}

func (g *gatedCompactStore) Compact(upTo uint64) error {
	g.once.Do(func() {
		g.entered <- upTo
		<-g.release
	})
	return g.Store.Compact(upTo)
}

// TestCompactionOffLoop: the log's compaction after a snapshot runs on the
// writer, so the replica goes on serving (a linearizable read completes)
// while it is under way; a command proposed meanwhile commits once it is
// done, and the store is compacted.
func TestCompactionOffLoop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paxos.db")
	store, snaps := openStores(t, path)
	defer store.Close()
	g := &gatedCompactStore{Store: store, entered: make(chan uint64, 1), release: make(chan struct{})}
	cfg := driver.Config{Core: consensus.Config{ID: 1, Members: []consensus.NodeID{1}},
		TickInterval: time.Millisecond, Logger: zaptest.NewLogger(t), SnapshotEntries: 2, SnapshotTrailing: 1}
	r, err := driver.New(cfg, g, snaps, noNet{}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-r.Done() }()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(g.release) }) }
	defer release() // before waiting for the replica, which may be in Compact
	go r.Run(ctx)

	proposeLeader(t, r, "a")
	second, err := r.Submit(ctx, []byte("b")) // the second entry: a snapshot, then a compaction
	if err != nil {
		t.Fatal(err)
	}
	var upTo uint64
	select {
	case upTo = <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no compaction after two entries with SnapshotEntries 2")
	}
	if _, err := second.Wait(ctx); err != nil {
		t.Fatalf("command before the compaction: %v", err)
	}
	readCtx, readCancel := context.WithTimeout(ctx, 30*time.Second)
	defer readCancel()
	if err := r.Read(readCtx); err != nil {
		t.Fatalf("read while the compaction is held: %v", err)
	}
	third, err := r.Submit(ctx, []byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := third.Wait(ctx); err != nil {
		t.Fatalf("command proposed during the compaction: %v", err)
	}
	if floor, err := store.Compacted(); err != nil || floor < upTo {
		t.Fatalf("compaction floor %d, %v; want at least %d", floor, err, upTo)
	}
}

// heldSnapshots is a recorder whose snapshot writes, once captured, wait
// until the test lets them go (or fail with fail, if set).
type heldSnapshots struct {
	recorder
	captured chan []string // what each capture copied
	release  chan struct{}
	fail     error
}

func (h *heldSnapshots) Capture() (func(io.Writer) error, error) {
	state := slices.Clone(h.applied)
	h.captured <- state
	return func(w io.Writer) error {
		<-h.release
		if h.fail != nil {
			return h.fail
		}
		return json.NewEncoder(w).Encode(state)
	}, nil
}

// TestSnapshotWriteOffLoop: a snapshot's file is written off the driver
// goroutine, so while it is under way the replica goes on serving (a
// linearizable read completes, a command commits); the file holds the
// state as captured, and the log is compacted only once it is committed.
func TestSnapshotWriteOffLoop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paxos.db")
	sm := &heldSnapshots{captured: make(chan []string, 16), release: make(chan struct{})}
	r, store, cancel := startSolo(t, path, sm)
	defer store.Close()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(sm.release) }) }
	defer func() { release(); cancel(); <-r.Done() }()

	proposeLeader(t, r, "a")
	second := proposeLeader(t, r, "b") // the second entry: a snapshot
	var state []string
	select {
	case state = <-sm.captured:
	case <-time.After(30 * time.Second):
		t.Fatal("no snapshot after two entries with SnapshotEntries 2")
	}
	ctx, cancelWait := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelWait()
	if err := r.Read(ctx); err != nil {
		t.Fatalf("read while the snapshot is written: %v", err)
	}
	third := proposeLeader(t, r, "c")
	if floor, err := store.Compacted(); err != nil || floor != 0 {
		t.Fatalf("compacted to %d (%v) before the snapshot was committed", floor, err)
	}
	snaps, err := snapshot.Open(path+"-snapshots", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := snaps.Latest(); ok || err != nil {
		t.Fatalf("a snapshot file (%v, %v) before its write returned", ok, err)
	}

	release()
	if err := r.WaitApplied(ctx, third.Slot); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-r.Done() // a snapshot under way is finished before Run returns
	meta, ok, err := snaps.Latest()
	if err != nil || !ok {
		t.Fatalf("no snapshot after its write returned: %v", err)
	}
	_, rc, _, err := snaps.Open(meta.Index)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	if err := json.NewDecoder(rc).Decode(&got); err != nil {
		t.Fatal(err)
	}
	for len(sm.captured) > 0 { // later snapshots: the last file holds the last capture
		state = <-sm.captured
	}
	if !slices.Equal(got, state) || meta.Index < second.Slot {
		t.Fatalf("snapshot at slot %d holds %q; the last capture was %q, after slot %d", meta.Index, got, state, second.Slot)
	}
	if floor, err := store.Compacted(); err != nil || floor == 0 || floor > meta.Index {
		t.Fatalf("compacted to %d (%v); want behind snapshot %d", floor, err, meta.Index)
	}
}

// TestSnapshotWriteFailureStopsNode: a snapshot whose write fails stops
// the node, as a failed write to the log does.
func TestSnapshotWriteFailureStopsNode(t *testing.T) {
	sm := &heldSnapshots{captured: make(chan []string, 16), release: make(chan struct{}),
		fail: errors.New("event store sync failed")}
	close(sm.release)
	r, store, cancel := startSolo(t, filepath.Join(t.TempDir(), "paxos.db"), sm)
	defer store.Close()
	defer cancel()
	proposeLeader(t, r, "a")
	r.Submit(context.Background(), []byte("b")) // the snapshot's trigger; its answer may not come
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("node still running after its snapshot failed")
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "event store sync failed") {
		t.Fatalf("Run ended with %v; want the snapshot's error", err)
	}
}
