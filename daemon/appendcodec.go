package daemon

import (
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clockd/clockd/ingest"
)

// appendCodec is the API server's codec: the standard protobuf codec,
// except that it decodes OrderingService.Append requests itself, into an
// appendMessage. Those carry thousands of small events each, and the
// generic decoder's cost is in allocating every event and every string,
// and then in converting the generated types: here the events of a
// message come in one allocation of ingest.Events, and every string is a
// piece of one copy of the message. What it accepts and what it refuses
// are proto.Unmarshal's; it keeps what the daemon reads of an Event and
// drops the rest (the reference interval, which the receiving host
// stamps, and unknown fields).
type appendCodec struct{ proto encoding.CodecV2 }

func newAppendCodec() appendCodec { return appendCodec{proto: encoding.GetCodecV2("proto")} }

func (c appendCodec) Name() string { return c.proto.Name() }

func (c appendCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c appendCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*appendMessage)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	// Materialize returns a new copy, which nothing else holds.
	return decodeAppendMessage(data.Materialize(), m)
}

// appendMessage is one clockdv1.AppendRequest as the Append handler
// reads it (stream.RecvMsg).
type appendMessage struct {
	events []ingest.Event
}

var errInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// decodeAppendMessage replaces m's events with those of the
// AppendRequest b holds. Their strings are pieces of b, which must not
// change afterwards.
func decodeAppendMessage(b []byte, m *appendMessage) error {
	n := 0 // events
	for off := 0; off < len(b); {
		// An event's tag, 0x0a, and its length are read inline, here and
		// below (a call costs more than the rest of the read); anything
		// else goes through nextField.
		if b[off] == 1<<3|byte(protowire.BytesType) {
			if v, k := uvarintAt(b, off+1); k > 0 && v <= uint64(len(b)-off-1-k) {
				n++
				off += 1 + k + int(v)
				continue
			}
		}
		f, err := nextField(b, off)
		if err != nil {
			return fmt.Errorf("proto: AppendRequest: %w", err)
		}
		if f.num == 1 && f.typ == protowire.BytesType {
			n++
		}
		off = f.end
	}
	s := unsafe.String(unsafe.SliceData(b), len(b))
	evs := make([]ingest.Event, n)
	var attrs []ingest.Attr   // the message's, shared by its events
	prev := new(ingest.Event) // none: no string is the same
	i := 0
	for off := 0; off < len(b); {
		var f field
		if b[off] == 1<<3|byte(protowire.BytesType) {
			if v, k := uvarintAt(b, off+1); k > 0 && v <= uint64(len(b)-off-1-k) {
				f = field{num: 1, typ: protowire.BytesType, at: off + 1 + k, end: off + 1 + k + int(v)}
			}
		}
		if f.num == 0 {
			f, _ = nextField(b, off) // checked above
		}
		if f.num == 1 && f.typ == protowire.BytesType {
			var err error
			if attrs, err = decodeEvent(b[f.at:f.end], s[f.at:f.end], &evs[i], prev, attrs); err != nil {
				return fmt.Errorf("proto: AppendRequest: %w", err)
			}
			prev = &evs[i]
			i++
		}
		off = f.end
	}
	m.events = evs
	return nil
}

// decodeEvent fills e from b, the encoding of one Event, whose bytes s
// holds too; prev is the event before it (or an empty one), whose
// strings e takes when its own are the same. Its attrs are appended to
// attrs, which it returns, and e.Attrs is their slice of it, capped so
// that an append to it copies.
//
// Every field of an Event has a number below 16, so its tag is one byte.
// The fields an encoder writes for every event (host, source, kind and
// name; sequence number, time and duration) are read inline here when
// their tag has the expected wire type and their value is whole; anything
// else (attrs, the reference interval, unknown fields, a field of another
// wire type, a longer tag, a truncated value) goes through nextField,
// which reads every field proto.Unmarshal does and refuses the rest.
func decodeEvent(b []byte, s string, e, prev *ingest.Event, attrs []ingest.Attr) ([]ingest.Attr, error) {
	first := len(attrs)
	for off := 0; off < len(b); {
		var err error
		end := -1
		switch b[off] {
		case 1<<3 | byte(protowire.BytesType):
			e.Host, end, err = readString(b, s, off+1, prev.Host)
		case 2<<3 | byte(protowire.BytesType):
			e.Source, end, err = readString(b, s, off+1, prev.Source)
		case 7<<3 | byte(protowire.BytesType):
			e.Kind, end, err = readString(b, s, off+1, prev.Kind)
		case 8<<3 | byte(protowire.BytesType):
			e.Name, end, err = readString(b, s, off+1, prev.Name)
		case 3<<3 | byte(protowire.VarintType):
			if v, n := uvarintAt(b, off+1); n > 0 {
				e.SourceSeq, end = v, off+1+n
			}
		case 4<<3 | byte(protowire.VarintType):
			if v, n := uvarintAt(b, off+1); n > 0 {
				e.LocalNs, end = int64(v), off+1+n
			}
		case 9<<3 | byte(protowire.VarintType):
			if v, n := uvarintAt(b, off+1); n > 0 {
				e.DurNs, end = int64(v), off+1+n
			}
		}
		if err != nil {
			return attrs, err
		}
		if end >= 0 {
			off = end
			continue
		}
		f, err := nextField(b, off)
		if err != nil {
			return attrs, err
		}
		off = f.end
		if f.num == 10 && f.typ == protowire.BytesType {
			var a ingest.Attr
			if err := decodeAttr(b[f.at:f.end], s[f.at:f.end], &a); err != nil {
				return attrs, err
			}
			attrs = append(attrs, a)
			continue
		}
		if err := setEventField(e, prev, f, b, s); err != nil {
			return attrs, err
		}
	}
	if len(attrs) > first {
		e.Attrs = attrs[first:len(attrs):len(attrs)]
	}
	return attrs, nil
}

// readString reads the length-delimited value at b[i:] as a string of s
// (which holds b's bytes), checked as checkString does; end is where it
// ends, -1 (with no error) when b does not hold a whole one there.
func readString(b []byte, s string, i int, was string) (v string, end int, err error) {
	n, k := uvarintAt(b, i)
	if k <= 0 || n > uint64(len(b)-i-k) {
		return "", -1, nil
	}
	at := i + k
	end = at + int(n)
	switch same, err := checkString(b[at:end], was); {
	case err != nil:
		return "", -1, err
	case same:
		return was, end, nil
	}
	return s[at:end], end, nil
}

// checkString reports whether the string field v is was, the event
// before's, which is valid UTF-8 already (events of one source repeat
// their host, source and kind); if not, it checks v.
func checkString(v []byte, was string) (same bool, err error) {
	if string(v) == was {
		return true, nil
	}
	if !utf8.Valid(v) {
		return false, errInvalidUTF8
	}
	return false, nil
}

// uvarintAt reads the varint at b[i:]; n <= 0 when it is not one.
func uvarintAt(b []byte, i int) (v uint64, n int) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), 1
	}
	if i >= len(b) {
		return 0, 0
	}
	return protowire.ConsumeVarint(b[i:])
}

// setEventField stores the field f of b (and s) in e, if the daemon
// reads it, but for attrs (decodeEvent); strings checked against prev's
// (checkString).
func setEventField(e, prev *ingest.Event, f field, b []byte, s string) error {
	switch f.typ {
	case protowire.VarintType:
		switch f.num {
		case 3:
			e.SourceSeq = f.varint
		case 4:
			e.LocalNs = int64(f.varint)
		case 9:
			e.DurNs = int64(f.varint)
		}
	case protowire.BytesType:
		var dst, was *string
		switch f.num {
		case 1:
			dst, was = &e.Host, &prev.Host
		case 2:
			dst, was = &e.Source, &prev.Source
		case 7:
			dst, was = &e.Kind, &prev.Kind
		case 8:
			dst, was = &e.Name, &prev.Name
		default:
			return nil
		}
		switch same, err := checkString(b[f.at:f.end], *was); {
		case err != nil:
			return err
		case same:
			*dst = *was
		default:
			*dst = s[f.at:f.end]
		}
	}
	return nil
}

func decodeAttr(b []byte, s string, a *ingest.Attr) error {
	for off := 0; off < len(b); {
		f, err := nextField(b, off)
		if err != nil {
			return err
		}
		off = f.end
		if f.typ != protowire.BytesType || (f.num != 1 && f.num != 2) {
			continue
		}
		if !utf8.Valid(b[f.at:f.end]) {
			return errInvalidUTF8
		}
		if f.num == 1 {
			a.Key = s[f.at:f.end]
		} else {
			a.Value = s[f.at:f.end]
		}
	}
	return nil
}

// field is one field of a message: its number and wire type, where its
// value starts (a length-delimited field's contents) and ends, and a
// varint's value.
type field struct {
	num     protowire.Number
	typ     protowire.Type
	at, end int
	varint  uint64
}

// nextField reads the field at off in b.
func nextField(b []byte, off int) (field, error) {
	num, typ, k := protowire.ConsumeTag(b[off:])
	if k < 0 {
		return field{}, protowire.ParseError(k)
	}
	if num > protowire.MaxValidNumber {
		return field{}, errors.New("invalid field number")
	}
	f := field{num: num, typ: typ, at: off + k}
	var m int
	switch typ {
	case protowire.VarintType:
		f.varint, m = protowire.ConsumeVarint(b[f.at:])
	case protowire.BytesType:
		var v []byte
		v, m = protowire.ConsumeBytes(b[f.at:])
		if m >= 0 {
			f.at += m - len(v)
		}
	default:
		m = protowire.ConsumeFieldValue(num, typ, b[f.at:])
	}
	if m < 0 {
		return field{}, protowire.ParseError(m)
	}
	f.end = off + k + m
	return f, nil
}
