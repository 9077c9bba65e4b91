package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/clockd/clockd/consensus"
)

func TestWalkFrame(t *testing.T) {
	msgs := [][]byte{{1}, bytes.Repeat([]byte{2}, 300), {}, {3, 4}}
	var got [][]byte
	if err := walkFrame(frameOf(msgs...).buf, func(m []byte) { got = append(got, bytes.Clone(m)) }); err != nil {
		t.Fatalf("walk: %v", err)
	}
	if !reflect.DeepEqual(got, msgs) {
		t.Errorf("walked %q, want %q", got, msgs)
	}
}

func TestWalkFrameErrors(t *testing.T) {
	good := frameOf([]byte{9, 9, 9}).buf
	tests := []struct {
		name string
		buf  []byte
	}{
		{"empty", nil},
		{"zero count", []byte{0}},
		{"bad count varint", bytes.Repeat([]byte{0x80}, 11)},
		{"count past end", []byte{2, 1, 9}},
		{"bad length varint", []byte{1, 0x80}},
		{"length past end", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"huge count", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := walkFrame(tt.buf, func([]byte) { calls++ })
			if !errors.Is(err, ErrBadFrame) || calls != 0 {
				t.Errorf("walk: %v after %d calls, want %v and none", err, calls, ErrBadFrame)
			}
		})
	}
}

// recordingStream keeps what is sent on it.
type recordingStream struct{ sent [][]byte }

func (r *recordingStream) Context() context.Context { return context.Background() }
func (r *recordingStream) RecvMsg(any) error        { return errors.New("not receiving") }
func (r *recordingStream) SendMsg(m any) error {
	r.sent = append(r.sent, m.(*frame).buf)
	return nil
}

func TestPackAndSendFillsFrames(t *testing.T) {
	const maxBytes = 4096
	tr, err := New(Config{ID: 1, Listen: "127.0.0.1:0", Insecure: true, MaxFrameBytes: maxBytes,
		Peers: []Peer{{ID: 2}}}, func(consensus.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	p := tr.peer(2)
	var want [][]byte
	var msgs []consensus.Message
	for seq := range uint64(500) {
		m := testMessage(1, 2, seq)
		msgs = append(msgs, m)
		want = append(want, encode(m))
		p.queue <- encode(m)
	}
	rs := &recordingStream{}
	s := &session{peer: p, stream: rs}
	b := newFrameBuilder(maxBytes)
	b.add(<-p.queue)
	if !tr.packAndSend(s, b) {
		t.Fatal("packAndSend failed")
	}

	var got [][]byte
	for i, f := range rs.sent {
		if len(f) > maxBytes {
			t.Errorf("frame %d has %d bytes, max %d", i, len(f), maxBytes)
		}
		if i > 0 {
			// The previous frame was full: this frame's first message did not fit.
			prev := rs.sent[i-1]
			_, countLen := binary.Uvarint(prev)
			next := want[len(got)]
			if binary.MaxVarintLen64+len(prev)-countLen+uvarintLen(uint64(len(next)))+len(next) <= maxBytes {
				t.Errorf("frame %d was sent with room for the next message", i-1)
			}
		}
		if err := walkFrame(f, func(m []byte) { got = append(got, m) }); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("frames carry %d messages, not the %d queued in order", len(got), len(want))
	}
	if n := uint64(len(rs.sent)); n < minFrames(msgs, maxBytes) {
		t.Errorf("%d frames, fewer than the %d possible", n, minFrames(msgs, maxBytes))
	}
	if st := tr.Stats(); st.Sent != 500 || st.Frames != uint64(len(rs.sent)) {
		t.Errorf("stats %+v", st)
	}
}

func TestFitsAlone(t *testing.T) {
	b := newFrameBuilder(MinMaxFrameBytes)
	n := MinMaxFrameBytes - 10 - 2 // reserved count, two-byte length
	if !fitsAlone(MinMaxFrameBytes, n) || fitsAlone(MinMaxFrameBytes, n+1) {
		t.Fatalf("fitsAlone boundary is not at %d", n)
	}
	b.add(make([]byte, n))
	if f, _ := b.take(); len(f.buf) > MinMaxFrameBytes {
		t.Errorf("frame of %d bytes exceeds %d", len(f.buf), MinMaxFrameBytes)
	}
}

// TestFrameReserve: reserving for the messages waiting builds the frame in
// one allocation, never beyond the frame's limit, and changes no byte of it.
func TestFrameReserve(t *testing.T) {
	msgs := make([][]byte, 40)
	total := 0
	for i := range msgs {
		msgs[i] = bytes.Repeat([]byte{byte(i)}, 1000+i)
		total += len(msgs[i])
	}
	plain, reserved := newFrameBuilder(1<<20), newFrameBuilder(1<<20)
	reserved.reserve(total)
	room := cap(reserved.body)
	for _, m := range msgs {
		plain.add(m)
		reserved.reserve(total) // a frame already begun keeps its room
		reserved.add(m)
	}
	if cap(reserved.body) != room {
		t.Errorf("frame grew from %d to %d bytes of room for %d bytes of messages", room, cap(reserved.body), total)
	}
	p, _ := plain.take()
	r, _ := reserved.take()
	if !bytes.Equal(p.buf, r.buf) {
		t.Error("reserved frame differs from the plain one")
	}
	// Room comes from framePool in classes of sizes: no more than the
	// class of a whole frame.
	small := newFrameBuilder(8000)
	small.reserve(1 << 20)
	if want := minPooled<<class(8000) + pooledSlack; cap(small.body) > want {
		t.Errorf("reserve went past the frame's limit: %d bytes of room, want at most %d", cap(small.body), want)
	}
}
