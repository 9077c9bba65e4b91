package consensus

import (
	"encoding/binary"
	"fmt"
)

// The wire and disk encoding of messages and entries: a version byte, then
// unsigned varints and length-prefixed byte strings. Every count and length
// is checked against the bytes that remain before anything is allocated, so
// hostile input cannot make the decoder allocate more than about 16 times
// its own size (the ratio of a decoded Command or Entry to its smallest
// encoding).

const codecVersion = 1

// AppendMessage appends the encoding of m to dst and returns the result.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = append(dst, codecVersion, byte(m.Type))
	dst = binary.AppendUvarint(dst, uint64(m.From))
	dst = binary.AppendUvarint(dst, uint64(m.To))
	dst = appendBallot(dst, m.Ballot)
	dst = binary.AppendUvarint(dst, m.Slot)
	dst = binary.AppendUvarint(dst, m.Last)
	dst = binary.AppendUvarint(dst, m.Commit)
	dst = appendBool(dst, m.Reject)
	dst = appendBool(dst, m.Force)
	dst = binary.AppendUvarint(dst, uint64(m.Leader))
	dst = binary.AppendUvarint(dst, uint64(len(m.Entries)))
	for i := range m.Entries {
		dst = AppendEntry(dst, &m.Entries[i])
	}
	return dst
}

// DecodeMessage decodes one message that fills buf exactly. The returned
// message does not alias buf.
func DecodeMessage(buf []byte) (Message, error) {
	d := decoder{buf: buf}
	var m Message
	if v := d.byte(); d.err != nil {
		return m, d.err
	} else if v != codecVersion {
		return m, fmt.Errorf("%w: codec version %d", ErrBadMessage, v)
	}
	m.Type = MsgType(d.byte())
	m.From = NodeID(d.uvarint())
	m.To = NodeID(d.uvarint())
	m.Ballot = d.ballot()
	m.Slot = d.uvarint()
	m.Last = d.uvarint()
	m.Commit = d.uvarint()
	m.Reject = d.bool()
	m.Force = d.bool()
	m.Leader = NodeID(d.uvarint())
	n := d.count(minEntryBytes)
	if n > 0 {
		m.Entries = make([]Entry, n)
		for i := range m.Entries {
			m.Entries[i] = d.entry()
		}
	}
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	if d.err == nil && (m.Type == MsgInvalid || m.Type >= msgTypeCount) {
		d.fail("unknown message type %d", uint8(m.Type))
	}
	return m, d.err
}

// AppendEntry appends the encoding of e to dst.
func AppendEntry(dst []byte, e *Entry) []byte {
	dst = binary.AppendUvarint(dst, e.Slot)
	dst = appendBallot(dst, e.Ballot)
	dst = appendBool(dst, e.Chosen)
	dst = binary.AppendUvarint(dst, uint64(len(e.Value.Cmds)))
	for _, c := range e.Value.Cmds {
		dst = binary.AppendUvarint(dst, c.ID)
		dst = binary.AppendUvarint(dst, uint64(len(c.Data)))
		dst = append(dst, c.Data...)
	}
	dst = appendBool(dst, e.Value.Conf != nil)
	if e.Value.Conf != nil {
		dst = AppendMembership(dst, e.Value.Conf)
	}
	return dst
}

// AppendMembership appends the encoding of m to dst.
func AppendMembership(dst []byte, m *Membership) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m.Members)))
	for _, mb := range m.Members {
		dst = binary.AppendUvarint(dst, uint64(mb.ID))
		dst = binary.AppendUvarint(dst, uint64(len(mb.Addr)))
		dst = append(dst, mb.Addr...)
		dst = appendBool(dst, mb.Learner)
		dst = appendBool(dst, mb.Promote)
	}
	return dst
}

// DecodeMembership decodes a membership that fills buf exactly.
func DecodeMembership(buf []byte) (Membership, error) {
	d := decoder{buf: buf}
	m := d.membership()
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	return m, d.err
}

const minMemberBytes = 4 // id, addr length, learner, promote

func (d *decoder) membership() Membership {
	var m Membership
	n := d.count(minMemberBytes)
	if n > 0 {
		m.Members = make([]Member, n)
		for i := range m.Members {
			mb := &m.Members[i]
			mb.ID = NodeID(d.uvarint())
			mb.Addr = string(d.bytes())
			mb.Learner = d.bool()
			mb.Promote = d.bool()
		}
	}
	return m
}

// DecodeEntry decodes one entry that fills buf exactly. The returned entry
// does not alias buf.
func DecodeEntry(buf []byte) (Entry, error) {
	d := decoder{buf: buf}
	e := d.entry()
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	return e, d.err
}

// Smallest encodings, used to bound counts read from the wire.
const (
	minEntryBytes = 6 // slot, round, node, chosen, command count, conf flag
	minCmdBytes   = 2 // id, length
)

func appendBallot(dst []byte, b Ballot) []byte {
	dst = binary.AppendUvarint(dst, b.Round)
	return binary.AppendUvarint(dst, uint64(b.Node))
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrBadMessage}, args...)...)
	}
	d.buf = nil
}

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail("truncated")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad bool")
	return false
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// count reads a element count and checks that the remaining input can hold
// that many elements of at least minBytes each.
func (d *decoder) count(minBytes int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.buf)/minBytes) {
		d.fail("count %d exceeds input", n)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail("length %d exceeds input", n)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]byte, n)
	copy(out, d.buf[:n])
	d.buf = d.buf[n:]
	return out
}

func (d *decoder) ballot() Ballot {
	return Ballot{Round: d.uvarint(), Node: NodeID(d.uvarint())}
}

func (d *decoder) entry() Entry {
	var e Entry
	e.Slot = d.uvarint()
	e.Ballot = d.ballot()
	e.Chosen = d.bool()
	n := d.count(minCmdBytes)
	if n > 0 {
		e.Value.Cmds = make([]Command, n)
		for i := range e.Value.Cmds {
			e.Value.Cmds[i].ID = d.uvarint()
			e.Value.Cmds[i].Data = d.bytes()
		}
	}
	if d.bool() {
		m := d.membership()
		e.Value.Conf = &m
	}
	return e
}
