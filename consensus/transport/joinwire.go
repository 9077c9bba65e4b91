package transport

import (
	"encoding/binary"
	"errors"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/wire"
)

// Join's request and response are encoded by hand, like frames and like
// consensus messages: a version byte, then unsigned varints and
// length-prefixed strings (see internal/wire).
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
	d := wire.NewDecoder(buf, ErrBadJoin)
	d.Version(joinCodecVersion)
	p := decodePeer(&d)
	return JoinRequest{ID: p.ID, Addr: p.Addr, Name: p.Name}, d.Finish()
}

func appendJoinResponse(dst []byte, r *JoinResponse) []byte {
	dst = append(dst, joinCodecVersion)
	dst = wire.AppendBool(dst, r.Accepted)
	dst = binary.AppendUvarint(dst, uint64(r.LeaderID))
	dst = wire.AppendString(dst, r.LeaderAddr)
	dst = binary.AppendUvarint(dst, uint64(len(r.Members)))
	for _, p := range r.Members {
		dst = appendPeer(dst, p)
	}
	return wire.AppendString(dst, r.Reason)
}

// decodeJoinResponse decodes a response that fills buf exactly. The result
// does not alias buf; Members is nil when empty.
func decodeJoinResponse(buf []byte) (JoinResponse, error) {
	d := wire.NewDecoder(buf, ErrBadJoin)
	var r JoinResponse
	d.Version(joinCodecVersion)
	r.Accepted = d.Bool()
	r.LeaderID = consensus.NodeID(d.Uvarint())
	r.LeaderAddr = d.String()
	if n := d.Count(minPeerBytes); n > 0 {
		r.Members = make([]Peer, n)
		for i := range r.Members {
			r.Members[i] = decodePeer(&d)
		}
	}
	r.Reason = d.String()
	return r, d.Finish()
}

func appendPeer(dst []byte, p Peer) []byte {
	dst = binary.AppendUvarint(dst, uint64(p.ID))
	dst = wire.AppendString(dst, p.Addr)
	return wire.AppendString(dst, p.Name)
}

func decodePeer(d *wire.Decoder) Peer {
	return Peer{ID: consensus.NodeID(d.Uvarint()), Addr: d.String(), Name: d.String()}
}
