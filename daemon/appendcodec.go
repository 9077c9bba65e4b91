package daemon

import (
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clockd/clockd/api/clockdv1"
)

// appendCodec is the API server's codec: the standard protobuf codec,
// except that it decodes OrderingService.Append requests itself. Those
// carry thousands of small events each, and the generic decoder's cost is
// in allocating every event and every string: here the events of a
// message come in one allocation, and every string is a piece of one copy
// of the message. What it accepts and what it refuses are proto.Unmarshal's,
// except that unknown fields are dropped rather than kept.
type appendCodec struct{ proto encoding.CodecV2 }

func newAppendCodec() appendCodec { return appendCodec{proto: encoding.GetCodecV2("proto")} }

func (c appendCodec) Name() string { return c.proto.Name() }

func (c appendCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c appendCodec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*clockdv1.AppendRequest)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	// Materialize returns a new copy, which nothing else holds.
	return decodeAppendRequest(data.Materialize(), req)
}

var errInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// decodeAppendRequest replaces req with the message b holds. The events'
// strings are pieces of b, which must not change afterwards.
func decodeAppendRequest(b []byte, req *clockdv1.AppendRequest) error {
	n := 0 // events
	for off := 0; off < len(b); {
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
	evs := make([]clockdv1.Event, n)
	req.Reset()
	req.Events = make([]*clockdv1.Event, 0, n)
	for off := 0; off < len(b); {
		f, _ := nextField(b, off) // checked above
		if f.num == 1 && f.typ == protowire.BytesType {
			e := &evs[len(req.Events)]
			req.Events = append(req.Events, e)
			if err := decodeEvent(b[f.at:f.end], s[f.at:f.end], e); err != nil {
				return fmt.Errorf("proto: AppendRequest: %w", err)
			}
		}
		off = f.end
	}
	return nil
}

// decodeEvent fills e from b, the encoding of one Event, whose bytes s
// holds too. Every field of an Event has a number below 16, so its tag is
// one byte: fields of that shape are read inline here, and anything else
// (a longer tag, another wire type, a truncated value) goes through
// nextField, which reads every field proto.Unmarshal does and refuses the
// rest.
func decodeEvent(b []byte, s string, e *clockdv1.Event) error {
	for off := 0; off < len(b); {
		tag := b[off]
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		var f field
		if tag < 0x80 && num != 0 && (typ == protowire.VarintType || typ == protowire.BytesType) {
			v, n := uvarintAt(b, off+1)
			switch {
			case n <= 0:
			case typ == protowire.VarintType:
				f = field{num: num, typ: typ, at: off + 1, end: off + 1 + n, varint: v}
			case v <= uint64(len(b)-off-1-n):
				at := off + 1 + n
				f = field{num: num, typ: typ, at: at, end: at + int(v)}
			}
		}
		if f.num == 0 {
			var err error
			if f, err = nextField(b, off); err != nil {
				return err
			}
		}
		off = f.end
		if err := setEventField(e, f, b, s); err != nil {
			return err
		}
	}
	return nil
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

// setEventField stores the field f of b (and s) in e.
func setEventField(e *clockdv1.Event, f field, b []byte, s string) error {
	switch f.typ {
	case protowire.VarintType:
		switch f.num {
		case 3:
			e.SourceSeq = f.varint
		case 4:
			e.LocalUnixNano = int64(f.varint)
		case 5:
			e.RefEarliestUnixNano = int64(f.varint)
		case 6:
			e.RefLatestUnixNano = int64(f.varint)
		case 9:
			e.DurNanos = int64(f.varint)
		}
	case protowire.BytesType:
		var dst *string
		switch f.num {
		case 1:
			dst = &e.Host
		case 2:
			dst = &e.Source
		case 7:
			dst = &e.Kind
		case 8:
			dst = &e.Name
		case 10:
			a := &clockdv1.Attr{}
			if err := decodeAttr(b[f.at:f.end], s[f.at:f.end], a); err != nil {
				return err
			}
			e.Attrs = append(e.Attrs, a)
			return nil
		default:
			return nil
		}
		if !utf8.Valid(b[f.at:f.end]) {
			return errInvalidUTF8
		}
		*dst = s[f.at:f.end]
	}
	return nil
}

func decodeAttr(b []byte, s string, a *clockdv1.Attr) error {
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
