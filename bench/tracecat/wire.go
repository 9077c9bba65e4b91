package main

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
)

// The log part's clients share the machine with the three nodes they
// measure, so their load should cost little: a 1,000-event Append
// marshalled by protobuf's reflection costs the client about as much CPU
// as the proto decoding costs the leader. A client therefore keeps its
// request in its wire encoding and, for each Append, writes only what
// changes, each event's sequence number and time, between the bytes
// that do not. The bytes are those proto.Marshal writes for the same
// AppendRequest (TestWireAppendMatchesProto); the server decodes them as
// any other.

// wireAppend is an AppendRequest of n events of one source, host
// "bench", kind "log" and the name logEventName gives each sequence
// number, in its wire encoding.
type wireAppend struct {
	n int
	// head is each event's fields before source_seq (host, source);
	// tails[i] those after local_unix_nano (kind, name) of the events
	// named logNames()[i], shared by every wireAppend.
	head  []byte
	tails [][]byte
	buf   []byte // the encoded request, valid after fill
}

// logTails are the encoded kind and name of each of logNames.
var logTails = sync.OnceValue(func() [][]byte {
	names := logNames()
	tails := make([][]byte, len(names))
	size := 0
	for _, name := range names {
		size += 2 + protowire.SizeBytes(len("log")) + protowire.SizeBytes(len(name))
	}
	all := make([]byte, 0, size) // one array, in order, for the cache
	for i, name := range names {
		start := len(all)
		all = protowire.AppendTag(all, 7, protowire.BytesType) // kind
		all = protowire.AppendString(all, "log")
		all = protowire.AppendTag(all, 8, protowire.BytesType) // name
		all = protowire.AppendString(all, name)
		tails[i] = all[start:len(all):len(all)]
	}
	return tails
})

func newWireAppend(source string, n int) *wireAppend {
	w := &wireAppend{n: n}
	w.head = protowire.AppendTag(w.head, 1, protowire.BytesType) // host
	w.head = protowire.AppendString(w.head, "bench")
	w.head = protowire.AppendTag(w.head, 2, protowire.BytesType) // source
	w.head = protowire.AppendString(w.head, source)
	w.tails = logTails()
	return w
}

// fill encodes the request: event i gets the sequence number *seq+i+1 of
// its source and the time now+i nanoseconds; *seq advances by n.
func (w *wireAppend) fill(seq *uint64, now int64) {
	b := w.buf[:0]
	for i := range w.n {
		*seq++
		t := uint64(now + int64(i))
		tail := w.tails[logNameIndex(*seq)]
		size := len(w.head) + 1 + protowire.SizeVarint(*seq) + 1 + protowire.SizeVarint(t) + len(tail)
		b = protowire.AppendTag(b, 1, protowire.BytesType) // AppendRequest.events
		b = protowire.AppendVarint(b, uint64(size))
		b = append(b, w.head...)
		b = append(b, 3<<3|byte(protowire.VarintType)) // source_seq
		b = protowire.AppendVarint(b, *seq)
		b = append(b, 4<<3|byte(protowire.VarintType)) // local_unix_nano
		b = protowire.AppendVarint(b, t)
		b = append(b, tail...)
	}
	w.buf = b
}

// wireCodec sends a *wireAppend's bytes as they are and marshals and
// unmarshals anything else as protobuf. Its name is protobuf's, so the
// server reads the request with its usual codec.
type wireCodec struct{}

func (wireCodec) Name() string { return "proto" }

func (wireCodec) Marshal(v any) ([]byte, error) {
	if w, ok := v.(*wireAppend); ok {
		return w.buf, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("wire codec: cannot marshal %T", v)
	}
	return proto.Marshal(m)
}

func (wireCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("wire codec: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, m)
}

// appendOnce sends w's request as one Append stream and returns the
// answer. w's bytes must stay as they are until it returns.
func appendOnce(ctx context.Context, o clockdv1.OrderingServiceClient, w *wireAppend) (*clockdv1.AppendResponse, error) {
	st, err := o.Append(ctx, grpc.ForceCodec(wireCodec{}))
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(w); err != nil {
		return nil, err
	}
	return st.CloseAndRecv()
}
