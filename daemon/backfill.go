package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/spans"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering"
)

// callEventsRead reads another member's event store, to fill a gap in
// this one: uvarint first GSN, uvarint last GSN → the events it holds
// from first on (at most readAnswerBytes of them): uvarint count, then
// each as uvarint GSN and the event as bytes (ordering.AppendEvent).
const callEventsRead = "events.read"

// readAnswerBytes bounds one answer to callEventsRead, well inside the
// transport's frames.
const readAnswerBytes = 1 << 20

// fillBytes is how many bytes of events the backfiller gathers before it
// stores them as one segment.
const fillBytes = 16 << 20

// backfillRetry is how long the backfiller waits to try again when no
// member could be asked.
const backfillRetry = 10 * time.Second

// errEventsRead reports a malformed callEventsRead answer.
var errEventsRead = errors.New("events.read answer")

// serveEventsRead answers callEventsRead from this host's store.
func (d *Daemon) serveEventsRead(_ context.Context, _ consensus.NodeID, req []byte) ([]byte, error) {
	dec := wire.NewDecoder(req, errEventsRead)
	first, last := dec.Uvarint(), dec.Uvarint()
	if err := dec.Finish(); err != nil || first == 0 || last < first {
		return nil, status.Errorf(codes.InvalidArgument, "events.read of GSNs %d..%d", first, last)
	}
	var body, enc []byte
	n := 0
	for next := first; next <= last && len(body) < readAnswerBytes; {
		evs, after, err := d.events.store.Read(next, 1000)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			if evs[i].GSN > last || len(body) >= readAnswerBytes {
				break
			}
			enc = ordering.AppendEvent(enc[:0], &evs[i].Event)
			body = wire.AppendBytes(binary.AppendUvarint(body, evs[i].GSN), enc)
			n++
		}
		next = after
	}
	return append(binary.AppendUvarint(make([]byte, 0, len(body)+binary.MaxVarintLen64), uint64(n)), body...), nil
}

// decodeEventsRead decodes a callEventsRead answer.
func decodeEventsRead(b []byte) ([]ordering.LogEvent, error) {
	dec := wire.NewDecoder(b, errEventsRead)
	out := make([]ordering.LogEvent, dec.Count(2))
	for i := range out {
		out[i].GSN = dec.Uvarint()
		ed := wire.NewDecoder(dec.Shared(), errEventsRead)
		out[i].Event = ordering.DecodeEvent(&ed)
		if err := ed.Finish(); err != nil {
			return nil, err
		}
	}
	return out, dec.Finish()
}

// backfillKind is one kind of history the backfiller fills: the event
// store's events or the offset history's ticks, each numbered in log
// order.
type backfillKind[T any] struct {
	what   string // for the logs: "events", "offset ticks"
	call   string // the peer call that reads a member's history
	decode func([]byte) ([]T, error)
	seq    func(T) uint64
	size   func(T) int // bytes, to gather fillBytes for one Fill
	// filled and lost count what was filled and what no member held.
	filled, lost prometheus.Counter
}

// gapStore is the history a backfiller fills.
type gapStore[T any] interface {
	Gaps() []spans.Gap
	Fill([]T) error
}

// backfiller fills the gaps in one of this host's histories (the event
// store, the offset history) from the other members' copies. A gap opens
// when this host installs a snapshot from another member, having fallen
// behind the log the leader keeps for followers.
//
// It asks every member in turn for what is missing. A run that every
// member answered without is gone from the cluster (retention removed it
// everywhere): it is logged, counted as unrecoverable and left as a gap,
// not asked for again until the next start. While some member cannot be
// reached, it tries again every backfillRetry.
type backfiller[T any] struct {
	d     *Daemon
	kind  backfillKind[T]
	store gapStore[T]
	log   *zap.Logger
	poke  chan struct{}
	mu    sync.Mutex
	lost  []spans.Gap // runs no member holds; mu guards it
	// ask is askMembers, but in tests.
	ask func(ctx context.Context, first, last uint64) ([]T, error)
}

func newBackfiller[T any](d *Daemon, kind backfillKind[T]) *backfiller[T] {
	b := &backfiller[T]{d: d, kind: kind, log: d.log.Named("backfill"), poke: make(chan struct{}, 1)}
	b.ask = b.askMembers
	return b
}

// newEventBackfiller fills the event store's gaps through callEventsRead.
func newEventBackfiller(d *Daemon) *backfiller[ordering.LogEvent] {
	return newBackfiller(d, backfillKind[ordering.LogEvent]{what: "events", call: callEventsRead,
		decode: decodeEventsRead, seq: ordering.GSNOf,
		size:   func(e ordering.LogEvent) int { return ordering.EncodedSize(&e.Event) },
		filled: d.metrics.eventsBackfilled, lost: d.metrics.eventsUnrecoverable})
}

// gapOpened is the store's OnGap: it wakes the backfiller.
func (b *backfiller[T]) gapOpened(spans.Gap) {
	select {
	case b.poke <- struct{}{}:
	default:
	}
}

func (b *backfiller[T]) run(ctx context.Context) error {
	for {
		var retry <-chan time.Time
		if err := b.fillAll(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			b.log.Warn("gap not filled yet", zap.String("missing", b.kind.what), zap.Error(err),
				zap.Duration("retry-in", backfillRetry))
			retry = time.After(backfillRetry)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.poke:
		case <-retry:
		}
	}
}

// fillAll fills every gap it can; it fails if some member could not be
// asked.
func (b *backfiller[T]) fillAll(ctx context.Context) error {
	var errs []error
	for _, g := range b.store.Gaps() {
		if err := b.fill(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fill fills gap g, or as much of it as the members still hold.
func (b *backfiller[T]) fill(ctx context.Context, g spans.Gap) error {
	var batch []T
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := b.store.Fill(batch)
		if err == nil {
			b.kind.filled.Add(float64(len(batch)))
		}
		batch, size = nil, 0
		return err
	}
	next := b.skipLost(g.First)
	for next <= g.Last {
		got, err := b.ask(ctx, next, g.Last)
		if err != nil {
			return errors.Join(flush(), err)
		}
		if len(got) == 0 || b.kind.seq(got[0]) != next {
			// No member holds next: what comes before the first one some
			// member holds is gone.
			end := g.Last
			if len(got) > 0 {
				end = b.kind.seq(got[0]) - 1
			}
			if err := flush(); err != nil {
				return err
			}
			b.mu.Lock()
			b.lost = append(b.lost, spans.Gap{First: next, Last: end})
			b.mu.Unlock()
			b.kind.lost.Add(float64(end - next + 1))
			b.log.Error("what no member holds any more is missing from this host", zap.String("missing", b.kind.what),
				zap.Uint64("first", next), zap.Uint64("last", end))
			next = end + 1
			continue
		}
		for _, x := range got {
			batch = append(batch, x)
			size += b.kind.size(x)
		}
		next = b.kind.seq(got[len(got)-1]) + 1
		if size >= fillBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// pending tells whether n lies in a gap of the store that the backfiller
// has yet to fill.
func (b *backfiller[T]) pending(n uint64) bool {
	return b.skipLost(n) == n && spans.In(b.store.Gaps(), n)
}

// skipLost returns the first number from n on that is not in a lost run.
func (b *backfiller[T]) skipLost(n uint64) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.lost {
		if l.First <= n && n <= l.Last {
			n = l.Last + 1
		}
	}
	return n
}

// askMembers asks the members, the leader first, for first to last, and
// returns the first answer that starts at first. If none does, it
// returns the answer that starts earliest (or none), but only once every
// member has answered: else it fails.
func (b *backfiller[T]) askMembers(ctx context.Context, first, last uint64) ([]T, error) {
	req := binary.AppendUvarint(binary.AppendUvarint(nil, first), last)
	leader := b.d.replica.Status().Leader
	peers := b.d.tr.Peers()
	ids := make([]consensus.NodeID, 0, len(peers))
	for _, p := range peers {
		switch p.ID {
		case b.d.id:
		case leader:
			ids = append([]consensus.NodeID{p.ID}, ids...)
		default:
			ids = append(ids, p.ID)
		}
	}
	var best []T
	var errs []error
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := b.d.tr.Call(cctx, id, b.kind.call, req)
		cancel()
		var got []T
		if err == nil {
			got, err = b.kind.decode(out)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", id, err))
			continue
		}
		got = consecutive(got, b.kind.seq, last)
		if len(got) > 0 && b.kind.seq(got[0]) == first {
			return got, nil
		}
		if len(got) > 0 && (best == nil || b.kind.seq(got[0]) < b.kind.seq(best[0])) {
			best = got
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return best, nil
}

// consecutive returns the leading run of xs whose numbers follow each
// other, up to last.
func consecutive[T any](xs []T, seq func(T) uint64, last uint64) []T {
	if len(xs) == 0 || seq(xs[0]) > last {
		return nil
	}
	first := seq(xs[0])
	return xs[:min(spans.Consecutive(xs, seq, first), int(last-first+1))]
}
