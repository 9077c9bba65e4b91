package transport

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/clockd/clockd/consensus"
)

// Join's request and response are encoded by hand, like frames and like
// consensus messages: a version byte, then unsigned varints and
// length-prefixed strings.
//
//	JoinRequest:  version uvarint(ID) str(Addr) str(Name)
//	JoinResponse: version bool(Accepted) uvarint(LeaderID) str(LeaderAddr)
//	              uvarint(count) { uvarint(ID) str(Addr) str(Name) }*count
//	              str(Reason)
//	str:          uvarint(len) bytes
//	bool:         one byte, 0 or 1
//
// Counts and lengths are checked against the bytes that remain before
// anything is allocated, so a decoded message takes at most about 14 times
// the memory of its input (a 40-byte Peer per three input bytes).

const joinCodecVersion = 1

// minPeerBytes is the smallest encoding of a Peer: an id and two empty
// strings.
const minPeerBytes = 3

// ErrBadJoin reports a Join request or response that does not decode.
var ErrBadJoin = errors.New("transport: malformed join message")

func appendJoinRequest(dst []byte, r *JoinRequest) []byte {
	dst = append(dst, joinCodecVersion)
	return appendPeer(dst, Peer{ID: r.ID, Addr: r.Addr, Name: r.Name})
}

// decodeJoinRequest decodes a request that fills buf exactly. The result
// does not alias buf.
func decodeJoinRequest(buf []byte) (JoinRequest, error) {
	d := joinDecoder{buf: buf}
	d.version()
	p := d.peer()
	return JoinRequest{ID: p.ID, Addr: p.Addr, Name: p.Name}, d.finish()
}

func appendJoinResponse(dst []byte, r *JoinResponse) []byte {
	dst = append(dst, joinCodecVersion)
	if r.Accepted {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(r.LeaderID))
	dst = appendString(dst, r.LeaderAddr)
	dst = binary.AppendUvarint(dst, uint64(len(r.Members)))
	for _, p := range r.Members {
		dst = appendPeer(dst, p)
	}
	return appendString(dst, r.Reason)
}

// decodeJoinResponse decodes a response that fills buf exactly. The result
// does not alias buf; Members is nil when empty.
func decodeJoinResponse(buf []byte) (JoinResponse, error) {
	d := joinDecoder{buf: buf}
	var r JoinResponse
	d.version()
	r.Accepted = d.bool()
	r.LeaderID = consensus.NodeID(d.uvarint())
	r.LeaderAddr = d.string()
	if n := d.count(minPeerBytes); n > 0 {
		r.Members = make([]Peer, n)
		for i := range r.Members {
			r.Members[i] = d.peer()
		}
	}
	r.Reason = d.string()
	return r, d.finish()
}

func appendPeer(dst []byte, p Peer) []byte {
	dst = binary.AppendUvarint(dst, uint64(p.ID))
	dst = appendString(dst, p.Addr)
	return appendString(dst, p.Name)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// joinDecoder reads from buf. After the first failure err is set, buf is
// empty and every read returns a zero value.
type joinDecoder struct {
	buf []byte
	err error
}

func (d *joinDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrBadJoin}, args...)...)
	}
	d.buf = nil
}

func (d *joinDecoder) version() {
	if len(d.buf) == 0 {
		d.fail("empty")
		return
	}
	if v := d.buf[0]; v != joinCodecVersion {
		d.fail("codec version %d", v)
		return
	}
	d.buf = d.buf[1:]
}

func (d *joinDecoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.buf)
	if k <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.buf = d.buf[k:]
	return v
}

func (d *joinDecoder) bool() bool {
	if len(d.buf) == 0 {
		d.fail("bool past the end")
		return false
	}
	b := d.buf[0]
	if b > 1 {
		d.fail("bool %d", b)
		return false
	}
	d.buf = d.buf[1:]
	return b == 1
}

func (d *joinDecoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail("string of %d bytes with %d left", n, len(d.buf))
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

// count reads a count of items that take at least minBytes each.
func (d *joinDecoder) count(minBytes int) int {
	n := d.uvarint()
	if n > uint64(len(d.buf)/minBytes) {
		d.fail("count %d with %d bytes left", n, len(d.buf))
		return 0
	}
	return int(n)
}

func (d *joinDecoder) peer() Peer {
	var p Peer
	p.ID = consensus.NodeID(d.uvarint())
	p.Addr = d.string()
	p.Name = d.string()
	return p
}

func (d *joinDecoder) finish() error {
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	return d.err
}
