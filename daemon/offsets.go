package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/offsetlog"
	"github.com/clockd/clockd/ordering"
)

// openOffsets opens the offset history (package offsetlog) in
// DataDir/offsets. A history from before tick numbers, DataDir/offsets.jsonl,
// is read first and removed by retention in its turn.
func (d *Daemon) openOffsets() error {
	d.offsetFill = newBackfiller(d, backfillKind[offsetlog.Tick]{what: "offset ticks", call: callOffsetsRead,
		decode: decodeOffsetsRead, seq: func(t offsetlog.Tick) uint64 { return t.Seq },
		size: func(t offsetlog.Tick) int { return 64 * len(t.Samples) }, filled: d.metrics.offsetsBackfilled,
		lost: d.metrics.offsetsUnrecoverable})
	var err error
	d.offsets, err = offsetlog.Open(offsetlog.Config{Dir: filepath.Join(d.cfg.DataDir, "offsets"),
		Legacy:   filepath.Join(d.cfg.DataDir, "offsets.jsonl"),
		MaxBytes: d.cfg.OffsetRetentionBytes, MaxAge: d.cfg.OffsetRetentionAge, Logger: d.log,
		OnGap: d.offsetFill.gapOpened})
	if err != nil {
		return fmt.Errorf("offset history: %w", err)
	}
	d.offsetFill.store = d.offsets
	d.closers = append(d.closers, d.offsets.Close)
	return nil
}

// recordOffsets records tick t's anchors in the offset history; it runs
// on the driver goroutine (ordering.Machine.OnTick). A history that
// cannot be written fails the host's health check, as the event store
// does: the samples would be lost once the log is compacted.
func (d *Daemon) recordOffsets(t ordering.Tick) {
	samples := make([]offsetlog.Sample, 0, len(t.Anchors))
	for _, a := range t.Anchors {
		host := a.Name
		if host == "" {
			host = PeerName(a.Host)
		}
		samples = append(samples, offsetlog.Sample{Host: host, RefUnixNano: a.RefNs, OffsetNanos: a.WallOffsetNs,
			ErrNanos: a.ErrNs})
	}
	if err := d.offsets.Record(offsetlog.Tick{Seq: t.Seq, Samples: samples}); err != nil {
		d.log.Error("offset history write failed", zap.Error(err))
		d.storeErr.Store(fmt.Errorf("offset history: %w", err))
	}
}

// beforeSnapshot is ordering.Machine.BeforeSnapshot: the event store and
// the offset history hold the only copy of what the log compacts behind
// the snapshot, so both are synced before it commits.
func (d *Daemon) beforeSnapshot() (wait func() error) {
	events := d.events.writer.startFlush()
	return func() error {
		return errors.Join(events(), d.offsets.Sync())
	}
}

func (s *orderingServer) Offsets(_ *clockdv1.OffsetsRequest, stream clockdv1.OrderingService_OffsetsServer) error {
	err := s.d.offsets.Each(func(o offsetlog.Sample) error {
		return stream.Send(&clockdv1.OffsetSample{Host: o.Host, RefUnixNano: o.RefUnixNano,
			OffsetNanos: o.OffsetNanos, ErrNanos: o.ErrNanos})
	})
	if errors.Is(err, offsetlog.ErrCorrupt) {
		return status.Error(codes.DataLoss, err.Error())
	}
	return err
}

// callOffsetsRead reads another member's offset history, to fill a gap in
// this one: uvarint first tick, uvarint last tick → the ticks it holds
// from first on (about readAnswerBytes of them at most): uvarint count,
// then each as uvarint tick, uvarint count of samples, and each sample as
// string host, varint reference time, varint offset, varint error bound.
const callOffsetsRead = "offsets.read"

// errOffsetsRead reports a malformed callOffsetsRead answer.
var errOffsetsRead = errors.New("offsets.read answer")

// serveOffsetsRead answers callOffsetsRead from this host's history.
func (d *Daemon) serveOffsetsRead(_ context.Context, _ consensus.NodeID, req []byte) ([]byte, error) {
	dec := wire.NewDecoder(req, errOffsetsRead)
	first, last := dec.Uvarint(), dec.Uvarint()
	if err := dec.Finish(); err != nil || first == 0 || last < first {
		return nil, status.Errorf(codes.InvalidArgument, "offsets.read of ticks %d..%d", first, last)
	}
	ticks, err := d.offsets.Read(first, last, readAnswerBytes)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	out := binary.AppendUvarint(nil, uint64(len(ticks)))
	for _, t := range ticks {
		out = binary.AppendUvarint(binary.AppendUvarint(out, t.Seq), uint64(len(t.Samples)))
		for _, s := range t.Samples {
			out = wire.AppendString(out, s.Host)
			out = binary.AppendVarint(binary.AppendVarint(binary.AppendVarint(out, s.RefUnixNano), s.OffsetNanos), s.ErrNanos)
		}
	}
	return out, nil
}

// decodeOffsetsRead decodes a callOffsetsRead answer.
func decodeOffsetsRead(b []byte) ([]offsetlog.Tick, error) {
	dec := wire.NewDecoder(b, errOffsetsRead)
	out := make([]offsetlog.Tick, dec.Count(2))
	for i := range out {
		out[i].Seq = dec.Uvarint()
		out[i].Samples = make([]offsetlog.Sample, dec.Count(4))
		for j := range out[i].Samples {
			s := &out[i].Samples[j]
			s.Tick, s.Host = out[i].Seq, dec.String()
			s.RefUnixNano, s.OffsetNanos, s.ErrNanos = dec.Varint(), dec.Varint(), dec.Varint()
		}
	}
	return out, dec.Finish()
}
