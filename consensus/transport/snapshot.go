package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/clockd/clockd/consensus"
)

// snapshotSizeKey carries the snapshot's size in bytes in the request
// metadata, so that the receiver can refuse a snapshot over its limit
// before a byte moves and can tell a complete transfer from a cut one.
const snapshotSizeKey = "clockd-snapshot-bytes"

// progressBytes is how often a snapshot transfer logs its progress.
const progressBytes = 64 << 20

// ErrSnapshotTooLarge reports a snapshot over Config.MaxSnapshotBytes.
var ErrSnapshotTooLarge = errors.New("transport: snapshot too large")

// SendSnapshot streams size bytes read from r to peer to, whose
// Config.OnSnapshot receives them, and returns nil once to has accepted
// them. It reads exactly size bytes and fails if r ends sooner.
//
// It dials to whichever id is lower, on a connection of its own, so a
// large transfer does not hold up the peer's message stream. Canceling ctx,
// RemovePeer(to) or Close abort the transfer. An error from to's
// OnSnapshot comes back in the returned error's text (a gRPC status,
// codes.Aborted unless OnSnapshot returned a status itself).
func (t *Transport) SendSnapshot(ctx context.Context, to consensus.NodeID, r io.Reader, size int64) error {
	if err := t.sendSnapshot(ctx, to, r, size); err != nil {
		return fmt.Errorf("transport: send snapshot to %d: %w", to, err)
	}
	return nil
}

func (t *Transport) sendSnapshot(ctx context.Context, to consensus.NodeID, r io.Reader, size int64) error {
	p := t.peer(to)
	switch {
	case size < 0:
		return fmt.Errorf("negative size %d", size)
	case size > t.cfg.MaxSnapshotBytes:
		return fmt.Errorf("%w: %d bytes, MaxSnapshotBytes is %d", ErrSnapshotTooLarge, size, t.cfg.MaxSnapshotBytes)
	case p == nil:
		return ErrUnknownPeer
	case t.isClosed():
		return ErrClosed
	}
	addr, _ := p.address()
	if addr == "" {
		return errors.New("peer address unknown")
	}
	conn, err := t.newConn(p, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(p.ctx, func() { cancel(t.abortCause(to)) })()
	ctx = metadata.AppendToOutgoingContext(ctx, nodeIDKey, idString(t.cfg.ID),
		snapshotSizeKey, strconv.FormatInt(size, 10))
	fields := []zap.Field{zap.Uint64("peer-id", uint64(to)), zap.Int64("snapshot-bytes", size)}
	timeout := func() { cancel(fmt.Errorf("%w: no answer in %v", errNotAccepted, acceptTimeout)) }
	cs, err := openStream(ctx, timeout, conn, snapshotDesc, snapshotMethod, p)
	if err == nil {
		t.log.Info("snapshot send started", fields...)
		err = t.sendChunks(cs, p, r, size)
	}
	if err != nil && ctx.Err() != nil {
		// gRPC reports a canceled call as a bare status; the cause, the
		// caller's or abortCause, says more.
		err = context.Cause(ctx)
	}
	if err != nil {
		t.log.Warn("snapshot send failed", append(fields, zap.Error(err))...)
		return err
	}
	t.log.Info("snapshot sent", fields...)
	return nil
}

// abortCause is why a snapshot to peer to stopped when its context ended.
func (t *Transport) abortCause(to consensus.NodeID) error {
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	return fmt.Errorf("%w: %d was removed", ErrUnknownPeer, to)
}

// sendChunks sends size bytes of r on cs and waits for the receiver's
// verdict.
func (t *Transport) sendChunks(cs grpc.ClientStream, p *peer, r io.Reader, size int64) error {
	prog := progress{log: t.log, msg: "snapshot sending", peer: p.id, total: size}
	for prog.done < size {
		// A fresh buffer for every chunk: SendMsg may still hold the last.
		buf := make([]byte, min(int64(t.cfg.SnapshotChunkBytes), size-prog.done))
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read snapshot at byte %d of %d: %w", prog.done, size, err)
		}
		if err := cs.SendMsg(&frame{buf: buf}); errors.Is(err, io.EOF) {
			// The receiver ended the call early; RecvMsg has its verdict.
			return cs.RecvMsg(&frame{})
		} else if err != nil {
			return err
		}
		prog.add(len(buf))
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	return cs.RecvMsg(&frame{})
}

// serveSnapshot receives one snapshot from an authenticated peer. Unlike
// a message stream it may come from either side of the dial rule.
func (t *Transport) serveSnapshot(ss grpc.ServerStream) error {
	ctx := ss.Context()
	p, err := t.admit(ctx, "snapshot refused", false)
	if err != nil {
		return err
	}
	// A transfer does not hold up RemovePeer, which could wait for as
	// long as the sender stalls; the reader checks p.ctx at every chunk.
	p.wg.Done()
	if t.cfg.OnSnapshot == nil {
		return status.Errorf(codes.Unimplemented, "node %d takes no snapshots", t.cfg.ID)
	}
	size, err := t.snapshotSize(ctx)
	if err != nil {
		t.log.Warn("snapshot refused", zap.Uint64("peer-id", uint64(p.id)), zap.Error(err))
		return err
	}
	if err := ss.SendHeader(metadata.Pairs(nodeIDKey, idString(t.cfg.ID))); err != nil {
		return err
	}
	fields := []zap.Field{zap.Uint64("peer-id", uint64(p.id)), zap.Int64("snapshot-bytes", size)}
	t.log.Info("snapshot receive started", fields...)
	rd := &snapshotReader{st: ss, peer: p, size: size,
		prog: progress{log: t.log, msg: "snapshot receiving", peer: p.id, total: size}}
	if err := t.cfg.OnSnapshot(p.id, rd); err != nil {
		err = handlerStatus("snapshot handler", err)
		t.log.Warn("snapshot receive failed", append(fields, zap.Error(err))...)
		return err
	}
	if err := rd.failure(); err != nil {
		t.log.Warn("snapshot receive failed", append(fields, zap.Error(err))...)
		return err
	}
	t.log.Info("snapshot received", append(fields, zap.Int64("received-bytes", rd.got))...)
	return ss.SendMsg(&frame{})
}

// snapshotSize reads and checks the size the sender declared.
func (t *Transport) snapshotSize(ctx context.Context) (int64, error) {
	vals := metadata.ValueFromIncomingContext(ctx, snapshotSizeKey)
	if len(vals) != 1 {
		return 0, status.Errorf(codes.InvalidArgument, "want one %s, got %d", snapshotSizeKey, len(vals))
	}
	n, err := strconv.ParseInt(vals[0], 10, 64)
	switch {
	case err != nil || n < 0:
		return 0, status.Errorf(codes.InvalidArgument, "malformed %s %.20q", snapshotSizeKey, vals[0])
	case n > t.cfg.MaxSnapshotBytes:
		return 0, status.Errorf(codes.ResourceExhausted, "snapshot of %d bytes exceeds MaxSnapshotBytes %d",
			n, t.cfg.MaxSnapshotBytes)
	}
	return n, nil
}

// handlerStatus turns an error from OnSnapshot or OnJoin into the status
// the caller gets. A status the handler chose keeps its code.
func handlerStatus(what string, err error) error {
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	return status.Errorf(codes.Aborted, "%s: %v", what, err)
}

// snapshotReader is the io.Reader OnSnapshot gets: the chunks of one
// snapshot stream, in order.
//
// Invariant: got <= size <= Config.MaxSnapshotBytes.
type snapshotReader struct {
	st    grpc.ServerStream
	peer  *peer
	size  int64  // bytes the sender declared
	got   int64  // bytes received
	chunk []byte // the unread rest of the last chunk
	err   error  // sticky; io.EOF once every declared byte arrived
	prog  progress
}

func (r *snapshotReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for len(r.chunk) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.next()
	}
	n := copy(b, r.chunk)
	r.chunk = r.chunk[n:]
	return n, nil
}

// next receives one chunk into r.chunk.
func (r *snapshotReader) next() error {
	if r.peer.ctx.Err() != nil {
		return status.Errorf(codes.Aborted, "transfer from node %d aborted: peer removed or transport closed", r.peer.id)
	}
	var f frame
	err := r.st.RecvMsg(&f)
	switch {
	case errors.Is(err, io.EOF) && r.got < r.size:
		return status.Errorf(codes.DataLoss, "snapshot ended after %d of %d bytes", r.got, r.size)
	case errors.Is(err, io.EOF):
		return io.EOF
	case err != nil:
		return err
	case len(f.buf) == 0:
		return status.Error(codes.InvalidArgument, "empty snapshot chunk")
	case int64(len(f.buf)) > r.size-r.got:
		return status.Errorf(codes.InvalidArgument, "snapshot exceeds its declared %d bytes", r.size)
	}
	r.got += int64(len(f.buf))
	r.chunk = f.buf
	r.prog.add(len(f.buf))
	return nil
}

// failure is the error that ended the stream, nil if none did.
func (r *snapshotReader) failure() error {
	if r.err == io.EOF {
		return nil
	}
	return r.err
}

// progress logs a transfer at every progressBytes boundary it crosses.
type progress struct {
	log   *zap.Logger
	msg   string
	peer  consensus.NodeID
	total int64
	done  int64
}

func (p *progress) add(n int) {
	before := p.done
	p.done += int64(n)
	if p.done/progressBytes != before/progressBytes {
		p.log.Info(p.msg, zap.Uint64("peer-id", uint64(p.peer)), zap.Int64("done-bytes", p.done),
			zap.Int64("snapshot-bytes", p.total))
	}
}
