package daemon

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
)

// TestAppendRefusals sends Appends that break the limits to a real
// OrderingService over gRPC, with the daemon's codec, and checks that
// each is refused with its status and a message that names what was
// wrong. Each is refused before it reaches the pipeline, which this
// server has none of.
func TestAppendRefusals(t *testing.T) {
	o := serveOrdering(t, &orderingServer{})

	ev := func(source string, seq uint64, name string) *clockdv1.Event {
		return &clockdv1.Event{Host: "h", Source: source, SourceSeq: seq, Name: name}
	}
	many := &clockdv1.AppendRequest{}
	for i := range maxAppendEvents + 1 {
		many.Events = append(many.Events, ev("s", uint64(i+1), ""))
	}
	for _, tc := range []struct {
		name string
		req  *clockdv1.AppendRequest
		code codes.Code
		msg  string
	}{
		{"too many events", many, codes.ResourceExhausted, "10001 events in one message, at most 10000"},
		{"event too large", &clockdv1.AppendRequest{Events: []*clockdv1.Event{
			ev("s", 1, "a"), ev("s", 2, strings.Repeat("x", maxEventBytes))}},
			codes.ResourceExhausted, "event 1 is 65578 bytes, at most 65536 (its name is 65536 bytes)"},
		{"attribute too large", &clockdv1.AppendRequest{Events: []*clockdv1.Event{{Host: "h", Source: "s", SourceSeq: 1,
			Attrs: []*clockdv1.Attr{{Key: "pad", Value: strings.Repeat("x", maxEventBytes)}}}}},
			codes.ResourceExhausted, `(its attribute "pad" is 65536 bytes)`},
		{"no source", &clockdv1.AppendRequest{Events: []*clockdv1.Event{ev("", 1, "a")}},
			codes.InvalidArgument, "event 0 has no source"},
		{"NUL in a host", &clockdv1.AppendRequest{Events: []*clockdv1.Event{
			ev("s", 1, "a"), {Host: "a\x00b", Source: "c", SourceSeq: 1}}},
			codes.InvalidArgument, `event 1: its host "a\x00b" holds a control character (0x00 at byte 1)`},
		{"newline in a source", &clockdv1.AppendRequest{Events: []*clockdv1.Event{{Host: "h", Source: "s\n", SourceSeq: 1}}},
			codes.InvalidArgument, `event 0: its source "s\n" holds a control character (0x0a at byte 1)`},
		{"escape in a kind", &clockdv1.AppendRequest{Events: []*clockdv1.Event{
			ev("s", 1, "a"), {Host: "h", Source: "s", SourceSeq: 2, Kind: "log\x1b[31m"}}},
			codes.InvalidArgument, `event 1: its kind "log\x1b[31m" holds a control character (0x1b at byte 3)`},
		{"sequence backwards", &clockdv1.AppendRequest{Events: []*clockdv1.Event{
			ev("s", 5, "a"), ev("t", 1, "b"), ev("s", 3, "c")}},
			codes.InvalidArgument, `event 2: source "s" seq 3 after 5 in this stream`},
		{"message over 4 MiB", &clockdv1.AppendRequest{Events: []*clockdv1.Event{
			ev("s", 1, strings.Repeat("x", 4<<20))}},
			codes.ResourceExhausted, "larger than max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := o.Append(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Send(tc.req) // a refusal may come before the send ends
			_, err = st.CloseAndRecv()
			if s, _ := status.FromError(err); s.Code() != tc.code || !strings.Contains(s.Message(), tc.msg) {
				t.Fatalf("got %v, want %v with %q", err, tc.code, tc.msg)
			}
		})
	}

	// A string that is not UTF-8 is refused as proto.Unmarshal refuses it.
	st, err := o.Append(context.Background(), grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	_ = st.SendMsg([]byte{0x0a, 0x04, 0x12, 0x02, 0xc3, 0x28}) // source "\xc3("
	var resp clockdv1.AppendResponse
	err = st.CloseSend()
	if err == nil {
		err = st.RecvMsg(&resp)
	}
	if s, _ := status.FromError(err); s.Code() != codes.Internal || !strings.Contains(s.Message(), "invalid UTF-8") {
		t.Fatalf("not UTF-8: got %v, want Internal naming invalid UTF-8", err)
	}
}

// TestCheckAppend checks one stream's messages in turn: sequence numbers
// must grow per source across messages, and an event without a kind is
// a log line.
func TestCheckAppend(t *testing.T) {
	last := map[string]uint64{}
	first := []ingest.Event{{Host: "h", Source: "s", SourceSeq: 1}, {Host: "h", Source: "t", SourceSeq: 9, Kind: ingest.KindSpan}}
	if err := checkAppend(first, last); err != nil {
		t.Fatal(err)
	}
	if first[0].Kind != ingest.KindLog || first[1].Kind != ingest.KindSpan {
		t.Fatalf("kinds %q %q, want %q %q", first[0].Kind, first[1].Kind, ingest.KindLog, ingest.KindSpan)
	}
	// Another host's source of the same name has sequence numbers of its own.
	if err := checkAppend([]ingest.Event{{Host: "g", Source: "s", SourceSeq: 1}, {Host: "h", Source: "s", SourceSeq: 2}}, last); err != nil {
		t.Fatal(err)
	}
	err := checkAppend([]ingest.Event{{Host: "h", Source: "t", SourceSeq: 9}}, last)
	if s, _ := status.FromError(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), `source "t" seq 9 after 9`) {
		t.Fatalf("a repeated sequence number across messages: %v", err)
	}
	err = checkAppend([]ingest.Event{{Host: "h", Source: "u", SourceSeq: 1<<64 - 1}}, last)
	if s, _ := status.FromError(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), "the largest is 18446744073709551614") {
		t.Fatalf("the last sequence number: %v", err)
	}
	// Events without a sequence number are not checked for order.
	if err := checkAppend([]ingest.Event{{Host: "h", Source: "t"}, {Host: "h", Source: "t"}}, last); err != nil {
		t.Fatal(err)
	}
}

// rawCodec sends []byte messages as they are, to put bytes on the wire
// that a proto encoder would not write.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }

func (rawCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }

// TestAppendSpoolFull: with the cluster out of reach and the spool at its
// bound, an Append is refused with ResourceExhausted naming the bound,
// also when part of its message was spooled: the client must retry, and
// the events spooled then come back as duplicates.
func TestAppendSpoolFull(t *testing.T) {
	r := newRig(t, 3, t.TempDir(), &memEpochs{}, &ordering.Machine{})
	small, err := openSpool(filepath.Join(t.TempDir(), "spool"), 600)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	r.p.spool, r.spool = small, small
	r.d.events, r.d.cfg.SpoolMaxBytes = r.p, 600
	// Appends are stamped with the host's reading: an unsynchronized
	// host's, unbounded, will do.
	r.d.host, err = vclock.NewHost(vclock.HostConfig{ID: 1, Clock: vclock.SystemClock{},
		Source: vclock.WallSource{Clock: vclock.SystemClock{}},
		HWM:    vclock.FileHWM{Path: filepath.Join(t.TempDir(), "hwm")}})
	if err != nil {
		t.Fatal(err)
	}
	r.cluster.setDown(true)
	defer r.start()()

	o := serveOrdering(t, &orderingServer{d: r.d})
	appendN := func(from, n int) (*clockdv1.AppendResponse, error) {
		st, err := o.Append(context.Background())
		if err != nil {
			return nil, err
		}
		req := &clockdv1.AppendRequest{}
		for i := range n {
			req.Events = append(req.Events, &clockdv1.Event{Host: "h", Source: "s", SourceSeq: uint64(from + i),
				Name: fmt.Sprintf("event-%d", from+i)})
		}
		if err := st.Send(req); err != nil {
			return nil, err
		}
		return st.CloseAndRecv()
	}
	// The first spooled event opens the spool; then each message fills it
	// further until one does not fit whole.
	for from := 1; ; from += 5 {
		resp, err := appendN(from, 5)
		if err == nil {
			if resp.Spooled != 5 {
				t.Fatalf("append %d..%d: %v, want 5 spooled", from, from+4, resp)
			}
			continue
		}
		if s := status.Convert(err); s.Code() != codes.ResourceExhausted ||
			!strings.Contains(s.Message(), "the spool is full (spool_max_bytes 600)") {
			t.Fatalf("append %d..%d to a full spool: %v", from, from+4, err)
		}
		if small.Len() != from-1+int(spooledOf(err)) {
			t.Fatalf("the spool holds %d events, want %d", small.Len(), from-1+int(spooledOf(err)))
		}
		return
	}
}

// spooledOf reads "N of this message's" from a spool-full refusal.
func spooledOf(err error) int64 {
	msg := status.Convert(err).Message()
	_, rest, _ := strings.Cut(msg, "): ")
	n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
	return n
}

// serveOrdering serves s over gRPC on loopback, with the daemon's codec
// and message limit, until the test ends, and returns a client of it.
func serveOrdering(t *testing.T, s *orderingServer) clockdv1.OrderingServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(newAppendCodec()), grpc.MaxRecvMsgSize(4<<20))
	clockdv1.RegisterOrderingServiceServer(srv, s)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return clockdv1.NewOrderingServiceClient(conn)
}
