package consensus

import (
	"encoding/binary"

	"github.com/clockd/clockd/internal/wire"
)

// The wire and disk encoding of messages and entries: a version byte, then
// unsigned varints and length-prefixed byte strings (see internal/wire).
// Every count and length is checked against the bytes that remain before
// anything is allocated, so hostile input cannot make the decoder allocate
// more than about 16 times its own size (the ratio of a decoded Command or
// Entry to its smallest encoding).

const codecVersion = 1

// Smallest encodings, used to bound counts read from the wire.
const (
	minEntryBytes  = 6 // slot, round, node, chosen, command count, conf flag
	minCmdBytes    = 2 // id, length
	minMemberBytes = 4 // id, addr length, learner, promote
	minConfigBytes = 3 // slot, activation, member count
)

// AppendMessage appends the encoding of m to dst and returns the result.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = append(dst, codecVersion, byte(m.Type))
	dst = binary.AppendUvarint(dst, uint64(m.From))
	dst = binary.AppendUvarint(dst, uint64(m.To))
	dst = appendBallot(dst, m.Ballot)
	dst = binary.AppendUvarint(dst, m.Slot)
	dst = binary.AppendUvarint(dst, m.Last)
	dst = binary.AppendUvarint(dst, m.Commit)
	dst = wire.AppendBool(dst, m.Reject)
	dst = wire.AppendBool(dst, m.Force)
	dst = binary.AppendUvarint(dst, uint64(m.Leader))
	dst = binary.AppendUvarint(dst, uint64(len(m.Entries)))
	for i := range m.Entries {
		dst = AppendEntry(dst, &m.Entries[i])
	}
	return dst
}

// DecodeMessage decodes one message that fills buf exactly. The returned
// message's command data alias buf, which the caller must not change
// afterwards: a received message's entries are kept in the log, and
// copying them again costs more than the whole decode.
func DecodeMessage(buf []byte) (Message, error) {
	d := newDecoder(buf)
	d.shared = true
	var m Message
	d.Version(codecVersion)
	m.Type = MsgType(d.Byte())
	m.From = NodeID(d.Uvarint())
	m.To = NodeID(d.Uvarint())
	m.Ballot = d.ballot()
	m.Slot = d.Uvarint()
	m.Last = d.Uvarint()
	m.Commit = d.Uvarint()
	m.Reject = d.Bool()
	m.Force = d.Bool()
	m.Leader = NodeID(d.Uvarint())
	if n := d.Count(minEntryBytes); n > 0 {
		m.Entries = make([]Entry, n)
		for i := range m.Entries {
			m.Entries[i] = d.entry()
		}
	}
	if d.Finish() == nil && (m.Type == MsgInvalid || m.Type >= msgTypeCount) {
		d.Fail("unknown message type %d", uint8(m.Type))
	}
	return m, d.Err
}

// AppendEntry appends the encoding of e to dst.
func AppendEntry(dst []byte, e *Entry) []byte {
	dst = binary.AppendUvarint(dst, e.Slot)
	dst = appendBallot(dst, e.Ballot)
	dst = wire.AppendBool(dst, e.Chosen)
	dst = binary.AppendUvarint(dst, uint64(len(e.Value.Cmds)))
	for _, c := range e.Value.Cmds {
		dst = binary.AppendUvarint(dst, c.ID)
		dst = wire.AppendBytes(dst, c.Data)
	}
	dst = wire.AppendBool(dst, e.Value.Conf != nil)
	if e.Value.Conf != nil {
		dst = AppendMembership(dst, e.Value.Conf)
	}
	return dst
}

// DecodeEntry decodes one entry that fills buf exactly. The returned entry
// does not alias buf.
func DecodeEntry(buf []byte) (Entry, error) {
	d := newDecoder(buf)
	e := d.entry()
	return e, d.Finish()
}

// AppendMembership appends the encoding of m to dst.
func AppendMembership(dst []byte, m *Membership) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m.Members)))
	for _, mb := range m.Members {
		dst = binary.AppendUvarint(dst, uint64(mb.ID))
		dst = wire.AppendString(dst, mb.Addr)
		dst = wire.AppendBool(dst, mb.Learner)
		dst = wire.AppendBool(dst, mb.Promote)
	}
	return dst
}

// DecodeMembership decodes a membership that fills buf exactly.
func DecodeMembership(buf []byte) (Membership, error) {
	d := newDecoder(buf)
	m := d.membership()
	return m, d.Finish()
}

// AppendConfigs appends the encoding of cs to dst.
func AppendConfigs(dst []byte, cs []ConfigState) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(cs)))
	for i := range cs {
		dst = binary.AppendUvarint(dst, cs[i].Slot)
		dst = binary.AppendUvarint(dst, cs[i].Activation)
		dst = AppendMembership(dst, &cs[i].Membership)
	}
	return dst
}

// DecodeConfigs decodes configurations that fill buf exactly.
func DecodeConfigs(buf []byte) ([]ConfigState, error) {
	d := newDecoder(buf)
	var out []ConfigState
	for range d.Count(minConfigBytes) {
		c := ConfigState{Slot: d.Uvarint(), Activation: d.Uvarint()}
		c.Membership = d.membership()
		out = append(out, c)
	}
	return out, d.Finish()
}

func appendBallot(dst []byte, b Ballot) []byte {
	dst = binary.AppendUvarint(dst, b.Round)
	return binary.AppendUvarint(dst, uint64(b.Node))
}

// decoder adds the consensus types to the wire primitives.
type decoder struct {
	wire.Decoder
	shared bool // command data alias the buffer (DecodeMessage)
}

func newDecoder(buf []byte) *decoder { return &decoder{Decoder: wire.NewDecoder(buf, ErrBadMessage)} }

func (d *decoder) ballot() Ballot {
	return Ballot{Round: d.Uvarint(), Node: NodeID(d.Uvarint())}
}

func (d *decoder) entry() Entry {
	var e Entry
	e.Slot = d.Uvarint()
	e.Ballot = d.ballot()
	e.Chosen = d.Bool()
	if n := d.Count(minCmdBytes); n > 0 {
		e.Value.Cmds = make([]Command, n)
		for i := range e.Value.Cmds {
			e.Value.Cmds[i].ID = d.Uvarint()
			if d.shared {
				e.Value.Cmds[i].Data = d.Shared()
			} else {
				e.Value.Cmds[i].Data = d.Bytes()
			}
		}
	}
	if d.Bool() {
		m := d.membership()
		e.Value.Conf = &m
	}
	return e
}

func (d *decoder) membership() Membership {
	var m Membership
	if n := d.Count(minMemberBytes); n > 0 {
		m.Members = make([]Member, n)
		for i := range m.Members {
			mb := &m.Members[i]
			mb.ID = NodeID(d.Uvarint())
			mb.Addr = d.String()
			mb.Learner = d.Bool()
			mb.Promote = d.Bool()
		}
	}
	return m
}
