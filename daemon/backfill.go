package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/eventlog"
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

// backfiller fills the gaps in this host's event store (eventlog.Gap)
// from the other members' stores. A gap opens when this host installs a
// snapshot from another member, having fallen behind the log the leader
// keeps for followers.
//
// It asks every member in turn for the missing events. A run of them that
// every member answered without is gone from the cluster (retention
// removed it everywhere): it is logged, counted as unrecoverable and left
// as a gap, not asked for again until the next start. While some member
// cannot be reached, it tries again every backfillRetry.
type backfiller struct {
	d     *Daemon
	store *eventlog.Store
	log   *zap.Logger
	poke  chan struct{}
	mu    sync.Mutex
	lost  []eventlog.Gap // runs no member holds; mu guards it
	// ask is askMembers, but in tests.
	ask func(ctx context.Context, first, last uint64) ([]ordering.LogEvent, error)
}

func newBackfiller(d *Daemon) *backfiller {
	b := &backfiller{d: d, log: d.log.Named("backfill"), poke: make(chan struct{}, 1)}
	b.ask = b.askMembers
	return b
}

// gapOpened is the store's OnGap: it wakes the backfiller.
func (b *backfiller) gapOpened(eventlog.Gap) {
	select {
	case b.poke <- struct{}{}:
	default:
	}
}

func (b *backfiller) run(ctx context.Context) error {
	for {
		var retry <-chan time.Time
		if err := b.fillAll(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			b.log.Warn("event store gap not filled yet", zap.Error(err), zap.Duration("retry-in", backfillRetry))
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
func (b *backfiller) fillAll(ctx context.Context) error {
	var errs []error
	for _, g := range b.store.Gaps() {
		if err := b.fill(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fill fills gap g, or as much of it as the members still hold.
func (b *backfiller) fill(ctx context.Context, g eventlog.Gap) error {
	var batch []ordering.LogEvent
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := b.store.Fill(batch)
		if err == nil {
			b.d.metrics.eventsBackfilled.Add(float64(len(batch)))
		}
		batch, size = nil, 0
		return err
	}
	next := b.skipLost(g.First)
	for next <= g.Last {
		evs, err := b.ask(ctx, next, g.Last)
		if err != nil {
			return errors.Join(flush(), err)
		}
		if len(evs) == 0 || evs[0].GSN != next {
			// No member holds next: the events up to the first one some
			// member holds are gone.
			end := g.Last
			if len(evs) > 0 {
				end = evs[0].GSN - 1
			}
			if err := flush(); err != nil {
				return err
			}
			b.mu.Lock()
			b.lost = append(b.lost, eventlog.Gap{First: next, Last: end})
			b.mu.Unlock()
			b.d.metrics.eventsUnrecoverable.Add(float64(end - next + 1))
			b.log.Error("events no member holds any more are missing from this host's store",
				zap.Uint64("first-gsn", next), zap.Uint64("last-gsn", end))
			next = end + 1
			continue
		}
		for _, e := range evs {
			batch = append(batch, e)
			size += ordering.EncodedSize(&e.Event)
		}
		next = evs[len(evs)-1].GSN + 1
		if size >= fillBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// pending tells whether GSN gsn is in a gap of the store that the
// backfiller has yet to fill.
func (b *backfiller) pending(gsn uint64) bool {
	return b.skipLost(gsn) == gsn && b.store.InGap(gsn)
}

// skipLost returns the first GSN from gsn on that is not in a lost run.
func (b *backfiller) skipLost(gsn uint64) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.lost {
		if l.First <= gsn && gsn <= l.Last {
			gsn = l.Last + 1
		}
	}
	return gsn
}

// askMembers asks the members, the leader first, for the events from
// first to last, and returns the first answer that starts at first. If
// none does, it returns the answer that starts earliest (or none), but
// only once every member has answered: else it fails.
func (b *backfiller) askMembers(ctx context.Context, first, last uint64) ([]ordering.LogEvent, error) {
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
	var best []ordering.LogEvent
	var errs []error
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := b.d.tr.Call(cctx, id, callEventsRead, req)
		cancel()
		var evs []ordering.LogEvent
		if err == nil {
			evs, err = decodeEventsRead(out)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", id, err))
			continue
		}
		evs = consecutive(evs, last)
		if len(evs) > 0 && evs[0].GSN == first {
			return evs, nil
		}
		if len(evs) > 0 && (best == nil || evs[0].GSN < best[0].GSN) {
			best = evs
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return best, nil
}

// consecutive returns the leading run of evs whose GSNs follow each
// other, up to last.
func consecutive(evs []ordering.LogEvent, last uint64) []ordering.LogEvent {
	if len(evs) == 0 || evs[0].GSN > last {
		return nil
	}
	return evs[:min(ordering.Consecutive(evs, evs[0].GSN), int(last-evs[0].GSN+1))]
}
