package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/eventlog"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/internal/spans"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
)

// openEvents opens the event store, the spool and the offset history.
func (d *Daemon) openEvents() error {
	d.backfill = newEventBackfiller(d)
	store, err := eventlog.Open(eventlog.Config{Dir: filepath.Join(d.cfg.DataDir, "events"),
		MaxBytes: d.cfg.EventRetentionBytes, MaxAge: d.cfg.EventRetentionAge, Logger: d.log,
		OnGap: d.backfill.gapOpened})
	if err != nil {
		return err
	}
	d.closers = append(d.closers, store.Close)
	d.backfill.store = store
	writer := startStoreWriter(store, d.log, func(err error) { d.storeErr.Store(err) })
	d.closers = append(d.closers, writer.Close)
	sp, err := openSpool(filepath.Join(d.cfg.DataDir, "spool"), d.cfg.SpoolMaxBytes)
	if err != nil {
		return err
	}
	d.closers = append(d.closers, sp.Close)
	d.events, err = newEventPipeline(d, store, sp, vclock.FileHWM{Path: filepath.Join(d.cfg.DataDir, "events-epoch")})
	if err != nil {
		return err
	}
	d.events.writer = writer
	return d.openOffsets()
}

// The limits of one Append message (whose size the API server bounds at
// 4 MiB).
const (
	maxAppendEvents = 10_000
	maxEventBytes   = 64 << 10
)

// orderingServer serves OrderingService.
type orderingServer struct {
	clockdv1.UnimplementedOrderingServiceServer
	d *Daemon
}

func (s *orderingServer) Append(stream clockdv1.OrderingService_AppendServer) error {
	var resp clockdv1.AppendResponse
	lastSeq := map[string]uint64{}
	for {
		// The server's codec decodes an AppendRequest straight into
		// ingest.Events (appendCodec).
		var m appendMessage
		if err := stream.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return stream.SendAndClose(&resp)
			}
			return err
		}
		evs := m.events
		if err := checkAppend(evs, lastSeq); err != nil {
			return err
		}
		if len(evs) == 0 {
			continue
		}
		r, err := s.d.events.Append(stream.Context(), evs)
		resp.Spooled += uint64(r.spooled)
		if errors.Is(err, ErrSpoolFull) {
			// What was spooled is kept, and a retry of the message is
			// answered for those as duplicates: the client retries it all.
			return status.Errorf(codes.ResourceExhausted, "the cluster is out of reach and the spool is full "+
				"(spool_max_bytes %d): %d of this message's %d events were spooled, the rest dropped; retry later",
				s.d.cfg.SpoolMaxBytes, r.spooled, len(evs))
		}
		if err != nil && r.spooled == 0 {
			return grpcError(err)
		}
		resp.Accepted += uint64(r.accepted)
		resp.Duplicates += uint64(r.duplicates)
		if resp.FirstGsn == 0 {
			resp.FirstGsn = r.firstGSN
		}
		if r.lastGSN != 0 {
			resp.LastGsn = r.lastGSN
		}
	}
}

// checkAppend checks the events of one Append message and gives those
// without a kind KindLog.
func checkAppend(evs []ingest.Event, lastSeq map[string]uint64) error {
	if len(evs) > maxAppendEvents {
		return status.Errorf(codes.ResourceExhausted, "%d events in one message, at most %d", len(evs), maxAppendEvents)
	}
	return sourceRuns(evs, func(from int, run []ingest.Event, key string) error {
		last := lastSeq[key]
		for j := range run {
			e, i := &run[j], from+j
			if size := eventSize(e); size > maxEventBytes {
				return status.Errorf(codes.ResourceExhausted, "event %d is %d bytes, at most %d (%s)", i, size, maxEventBytes,
					largestField(e))
			}
			if e.Source == "" {
				return status.Errorf(codes.InvalidArgument, "event %d has no source", i)
			}
			if j == 0 || e.Kind != run[j-1].Kind {
				if err := checkNames(e); err != nil { // host and source are run[0]'s
					return status.Errorf(codes.InvalidArgument, "event %d: %v", i, err)
				}
			}
			if e.SourceSeq == math.MaxUint64 {
				// The next event of the source, numbered by clockd,
				// would wrap to 0 and be taken for a duplicate.
				return status.Errorf(codes.InvalidArgument, "event %d: source %q seq %d: the largest is %d",
					i, e.Source, e.SourceSeq, uint64(math.MaxUint64-1))
			}
			if e.SourceSeq != 0 {
				if e.SourceSeq <= last {
					return status.Errorf(codes.InvalidArgument, "event %d: source %q seq %d after %d in this stream",
						i, e.Source, e.SourceSeq, last)
				}
				last = e.SourceSeq
			}
			if e.Kind == "" {
				e.Kind = ingest.KindLog
			}
		}
		lastSeq[key] = last
		return nil
	})
}

// largestField names e's largest field and its size, for the message
// that refuses an event over maxEventBytes: "its name is 70000 bytes".
func largestField(e *ingest.Event) string {
	what, n := "its name", len(e.Name)
	for _, f := range []struct {
		what string
		n    int
	}{{"its host", len(e.Host)}, {"its source", len(e.Source)}, {"its kind", len(e.Kind)}} {
		if f.n > n {
			what, n = f.what, f.n
		}
	}
	attrs := 0
	for _, a := range e.Attrs {
		attrs += len(a.Key) + len(a.Value)
		if len(a.Value) > n {
			what, n = fmt.Sprintf("its attribute %.40q", a.Key), len(a.Value)
		}
	}
	if attrs > n && len(e.Attrs) > 1 {
		return fmt.Sprintf("its %d attributes are %d bytes", len(e.Attrs), attrs)
	}
	return fmt.Sprintf("%s is %d bytes", what, n)
}

func eventSize(e *ingest.Event) int {
	n := len(e.Host) + len(e.Source) + len(e.Kind) + len(e.Name) + 40
	for _, a := range e.Attrs {
		n += len(a.Key) + len(a.Value) + 4
	}
	return n
}

func toProtoEvent(le ordering.LogEvent) *clockdv1.LogEvent {
	e := &le.Event
	pe := &clockdv1.Event{Host: e.Host, Source: e.Source, SourceSeq: e.SourceSeq, LocalUnixNano: e.LocalNs,
		RefEarliestUnixNano: e.RefEarliest, RefLatestUnixNano: e.RefLatest, Kind: e.Kind, Name: e.Name, DurNanos: e.DurNs}
	for _, a := range e.Attrs {
		pe.Attrs = append(pe.Attrs, &clockdv1.Attr{Key: a.Key, Value: a.Value})
	}
	return &clockdv1.LogEvent{Gsn: le.GSN, Event: pe}
}

const maxRead = 10_000

// maxReadBytes bounds the encoded events of one Read answer (but for its
// first event, which always goes).
const maxReadBytes = 3 << 20

func (s *orderingServer) Read(ctx context.Context, req *clockdv1.ReadRequest) (*clockdv1.ReadResponse, error) {
	limit := int(req.Max)
	if limit <= 0 || limit > maxRead {
		limit = maxRead
	}
	s.d.events.writer.caughtUp(ctx)
	evs, next, err := s.d.events.store.Read(max(req.FromGsn, 1), limit)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &clockdv1.ReadResponse{NextGsn: next}
	size := 0
	for i, e := range evs {
		pe := toProtoEvent(e)
		// Within maxReadBytes, so an answer of large events (a source's
		// lines may reach a MiB) fits a client's 4 MiB messages; the
		// client goes on from NextGsn.
		if size += proto.Size(pe) + 8; i > 0 && size > maxReadBytes {
			resp.NextGsn = e.GSN
			break
		}
		resp.Events = append(resp.Events, pe)
	}
	return resp, nil
}

// subscribeGapWait bounds how long Subscribe waits at a gap in this
// host's store for the backfiller to fill it; after that the subscriber
// gets the events after the gap, and sees the jump in GSNs.
var subscribeGapWait = 10 * time.Second

func (s *orderingServer) Subscribe(req *clockdv1.SubscribeRequest, stream clockdv1.OrderingService_SubscribeServer) error {
	ctx := stream.Context()
	next := req.FromGsn
	if next == 0 { // from the next event committed
		next = s.d.events.store.Last() + 1
	}
	send := func(evs []ordering.LogEvent) error {
		for _, e := range evs {
			if err := stream.Send(toProtoEvent(e)); err != nil {
				return err
			}
		}
		return nil
	}
	var waited uint64 // the gap last waited for, by its first GSN
	for {
		evs, n, err := s.d.events.store.Read(next, 1000)
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		// A jump in GSNs at a gap the backfiller is filling: send up to
		// it, and wait for the fill (once per gap, up to subscribeGapWait)
		// rather than skip events the cluster holds.
		if i := spans.Consecutive(evs, ordering.GSNOf, next); i < len(evs) && next+uint64(i) != waited && s.d.backfill.pending(next+uint64(i)) {
			if err := send(evs[:i]); err != nil {
				return err
			}
			next += uint64(i)
			waited = next
			wctx, cancel := context.WithTimeout(ctx, subscribeGapWait)
			s.d.events.store.WaitFilled(wctx, next)
			cancel()
			if err := ctx.Err(); err != nil {
				return status.FromContextError(err).Err()
			}
			continue
		}
		if err := send(evs); err != nil {
			return err
		}
		if len(evs) > 0 {
			next = n
			continue
		}
		if err := s.d.events.store.Wait(ctx, next-1); err != nil {
			return status.FromContextError(err).Err()
		}
	}
}
