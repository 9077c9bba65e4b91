package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc/mem"
)

// A frame is the payload of one gRPC message on a peer stream:
//
//	uvarint(count) { uvarint(len) consensus.AppendMessage bytes }*count
//
// count is at least one. Frames never exceed Config.MaxFrameBytes.

// ErrBadFrame reports a frame whose layout is broken.
var ErrBadFrame = errors.New("transport: malformed frame")

// frame is what the gRPC codec carries: one frame's bytes.
//
// A sent frame's buf must not be modified after SendMsg, which may hand it
// to the HTTP/2 writer without copying. A received frame's buf is owned by
// the receiver.
type frame struct {
	buf []byte
	// pooled marks a frame whose buf nothing else holds, built by a
	// frameBuilder: the codec gives buf to gRPC with framePool, which it
	// is put back into once written.
	pooled bool
}

// codecName is the gRPC content-subtype of peer streams.
const codecName = "clockd-frame"

// frameCodec moves frames through gRPC without any further encoding.
type frameCodec struct{}

func (frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("transport: codec cannot marshal %T", v)
	}
	if f.pooled {
		return mem.BufferSlice{mem.NewBuffer(&f.buf, &framePool)}, nil
	}
	return mem.BufferSlice{mem.SliceBuffer(f.buf)}, nil
}

func (frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("transport: codec cannot unmarshal into %T", v)
	}
	f.buf = data.Materialize()
	return nil
}

func (frameCodec) Name() string { return codecName }

// frameBuilder packs encoded messages into frames of at most max bytes,
// in buffers from framePool.
//
// Invariant: body is empty, or starts with binary.MaxVarintLen64 reserved
// bytes, where take writes the count right-aligned, so a frame is never
// copied.
type frameBuilder struct {
	max   int
	body  []byte
	count int
}

func newFrameBuilder(maxBytes int) *frameBuilder {
	return &frameBuilder{max: maxBytes}
}

// fits reports whether a message of n bytes can join the current frame.
func (b *frameBuilder) fits(n int) bool {
	return max(len(b.body), binary.MaxVarintLen64)+uvarintLen(uint64(n))+n <= b.max
}

// fitsAlone reports whether a message of n bytes fits in an empty frame.
func fitsAlone(maxBytes, n int) bool {
	return binary.MaxVarintLen64+uvarintLen(uint64(n))+n <= maxBytes
}

// reserve makes room at once, in an empty frame, for about n bytes of
// messages (those waiting to be packed), up to the frame's limit, so that
// a large frame is not built by doubling. A frame already begun keeps its
// room.
func (b *frameBuilder) reserve(n int) {
	if b.count == 0 && n > 0 {
		n += n/64 + binary.MaxVarintLen64 // the messages' length prefixes, roughly
		b.grow(max(0, min(n, b.max-binary.MaxVarintLen64)))
	}
}

// grow makes room for n more bytes: a buffer from framePool for a frame
// not begun, else a larger one when the room is short.
func (b *frameBuilder) grow(n int) {
	if b.body == nil {
		b.body = (*framePool.Get(binary.MaxVarintLen64 + n))[:binary.MaxVarintLen64]
		return
	}
	b.body = slices.Grow(b.body, n)
}

func (b *frameBuilder) add(msg []byte) {
	b.grow(binary.MaxVarintLen64 + len(msg)) // at once, not by doubling
	b.body = binary.AppendUvarint(b.body, uint64(len(msg)))
	b.body = append(b.body, msg...)
	b.count++
}

// take returns the packed frame and its message count, and starts anew.
func (b *frameBuilder) take() (*frame, int) {
	if b.body == nil {
		b.grow(0)
	}
	var head [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(head[:], uint64(b.count))
	start := binary.MaxVarintLen64 - k
	copy(b.body[start:], head[:k])
	f, n := &frame{buf: b.body[start:], pooled: true}, b.count
	b.body, b.count = nil, 0
	return f, n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// walkFrame calls fn, if not nil, with each message of buf in order. It
// checks the whole layout first, so fn sees nothing from a broken frame.
// The slices passed to fn alias buf.
func walkFrame(buf []byte, fn func(msg []byte)) error {
	if err := scanFrame(buf, nil); err != nil {
		return err
	}
	if fn == nil {
		return nil
	}
	return scanFrame(buf, fn)
}

func scanFrame(buf []byte, fn func(msg []byte)) error {
	count, k := binary.Uvarint(buf)
	if k <= 0 {
		return fmt.Errorf("%w: bad message count", ErrBadFrame)
	}
	buf = buf[k:]
	if count == 0 {
		return fmt.Errorf("%w: no messages", ErrBadFrame)
	}
	for i := uint64(0); i < count; i++ {
		n, k := binary.Uvarint(buf)
		if k <= 0 {
			return fmt.Errorf("%w: bad length of message %d", ErrBadFrame, i)
		}
		buf = buf[k:]
		if n > uint64(len(buf)) {
			return fmt.Errorf("%w: message %d length %d exceeds the %d bytes left", ErrBadFrame, i, n, len(buf))
		}
		if fn != nil {
			fn(buf[:n:n])
		}
		buf = buf[n:]
	}
	if len(buf) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(buf))
	}
	return nil
}
