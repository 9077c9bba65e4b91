package consensus

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// codecMessages covers every message type and the shapes of entries. Empty
// command data is left out: it decodes as a non-nil empty slice.
var codecMessages = []struct {
	name string
	msg  Message
}{
	{"prepare", Message{Type: MsgPrepare, From: 1, To: 2, Ballot: Ballot{Round: 3, Node: 1}, Slot: 17}},
	{"promise", Message{Type: MsgPromise, From: 2, To: 1, Ballot: Ballot{Round: 3, Node: 1}, Slot: 17, Commit: 16,
		Entries: []Entry{
			{Slot: 17, Ballot: Ballot{Round: 2, Node: 3}, Value: Value{Cmds: []Command{{ID: 9, Data: []byte("x")}}}},
			{Slot: 18, Ballot: Ballot{Round: 2, Node: 3}},
		}}},
	{"reject", Message{Type: MsgReject, From: 3, To: 1, Ballot: Ballot{Round: 1 << 40, Node: 3}}},
	{"accept", Message{Type: MsgAccept, From: 1, To: 3, Ballot: Ballot{Round: 4, Node: 1}, Commit: 99,
		Entries: []Entry{{Slot: 100, Ballot: Ballot{Round: 4, Node: 1}, Value: Value{Cmds: []Command{
			{ID: 1, Data: []byte("set a=1")},
			{ID: 1<<64 - 1, Data: bytes.Repeat([]byte{0xab}, 300)},
		}}}}}},
	{"accepted", Message{Type: MsgAccepted, From: 3, To: 1, Ballot: Ballot{Round: 4, Node: 1}, Commit: 98,
		Entries: []Entry{{Slot: 100}, {Slot: 101}}}},
	{"heartbeat", Message{Type: MsgHeartbeat, From: 1, To: 2, Ballot: Ballot{Round: 4, Node: 1}, Commit: 1<<64 - 1}},
	{"heartbeat-resp", Message{Type: MsgHeartbeatResp, From: 2, To: 1, Ballot: Ballot{Round: 4, Node: 1}, Commit: 7}},
	{"learn", Message{Type: MsgLearn, From: 1, To: 2, Entries: []Entry{
		{Slot: 5, Ballot: Ballot{Round: 1, Node: 1}, Chosen: true, Value: Value{Cmds: []Command{{ID: 5, Data: []byte{0}}}}},
		{Slot: 6, Ballot: Ballot{Round: 1, Node: 1}, Chosen: true},
	}}},
	{"pre-check", Message{Type: MsgPreCheck, From: 2, To: 3, Ballot: Ballot{Round: 5, Node: 2}, Commit: 4}},
	{"pre-check-resp", Message{Type: MsgPreCheckResp, From: 3, To: 2, Ballot: Ballot{Round: 5, Node: 2}, Reject: true}},
	{"max ids", Message{Type: MsgHeartbeat, From: 1<<64 - 1, To: 1<<64 - 1, Slot: 1<<64 - 1}},
}

func TestCodecMessageRoundTrip(t *testing.T) {
	for _, tt := range codecMessages {
		t.Run(tt.name, func(t *testing.T) {
			buf := AppendMessage([]byte("prefix"), &tt.msg)
			if !bytes.HasPrefix(buf, []byte("prefix")) {
				t.Fatalf("AppendMessage lost the prefix")
			}
			got, err := DecodeMessage(buf[len("prefix"):])
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Errorf("decoded %+v, want %+v", got, tt.msg)
			}
		})
	}
}

func TestCodecEntryRoundTrip(t *testing.T) {
	entries := []Entry{
		{},
		{Slot: 1, Ballot: Ballot{Round: 1, Node: 2}, Chosen: true},
		{Slot: 1 << 50, Ballot: Ballot{Round: 7, Node: 1 << 60}, Value: Value{Cmds: []Command{
			{ID: 1, Data: []byte("a")}, {ID: 2, Data: bytes.Repeat([]byte("b"), 1000)},
		}}},
	}
	for _, e := range entries {
		got, err := DecodeEntry(AppendEntry(nil, &e))
		if err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("decoded %+v, want %+v", got, e)
		}
	}
}

func TestCodecEmptyData(t *testing.T) {
	e := Entry{Slot: 1, Value: Value{Cmds: []Command{{ID: 1}, {ID: 2, Data: []byte{}}}}}
	got, err := DecodeEntry(AppendEntry(nil, &e))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Value.Cmds) != 2 || len(got.Value.Cmds[0].Data) != 0 || len(got.Value.Cmds[1].Data) != 0 {
		t.Errorf("decoded %+v, want two commands without data", got)
	}
}

func TestCodecDecodeMessageErrors(t *testing.T) {
	valid := AppendMessage(nil, &codecMessages[1].msg)
	withByte := func(i int, b byte) []byte {
		out := bytes.Clone(valid)
		out[i] = b
		return out
	}
	tests := []struct {
		name string
		buf  []byte
	}{
		{"empty", nil},
		{"version only", []byte{codecVersion}},
		{"wrong version", withByte(0, 2)},
		{"invalid type", withByte(1, byte(MsgInvalid))},
		{"unknown type", withByte(1, byte(msgTypeCount))},
		{"truncated", valid[:len(valid)-1]},
		{"trailing", append(bytes.Clone(valid), 0)},
		{"bad bool", AppendMessage(nil, &Message{Type: MsgPrepare})[:8:8]},
		{"varint overflow", append([]byte{codecVersion, byte(MsgPrepare)}, bytes.Repeat([]byte{0xff}, 10)...)},
		{"entry count past end", []byte{codecVersion, byte(MsgLearn), 1, 2, 0, 0, 0, 0, 0, 100}},
		{"entry shorter than its minimum", append(AppendMessage(nil, &Message{Type: MsgLearn}), 0)},
	}
	tests[7].buf = append(tests[7].buf, 2, 0) // reject = 2, no entries
	tests[10].buf[len(tests[10].buf)-2] = 1   // one entry, then only a zero byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := DecodeMessage(tt.buf); !errors.Is(err, ErrBadMessage) {
				t.Errorf("decode %x = %+v, %v; want %v", tt.buf, m, err, ErrBadMessage)
			}
		})
	}
}

func TestCodecDecodeEntryErrors(t *testing.T) {
	valid := AppendEntry(nil, &Entry{Slot: 1, Value: Value{Cmds: []Command{{ID: 1, Data: []byte("abc")}}}})
	for _, buf := range [][]byte{nil, valid[:len(valid)-1], append(bytes.Clone(valid), 0), {1, 1, 1, 3, 0}} {
		if e, err := DecodeEntry(buf); !errors.Is(err, ErrBadMessage) {
			t.Errorf("decode %x = %+v, %v; want %v", buf, e, err, ErrBadMessage)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, tt := range codecMessages {
		f.Add(AppendMessage(nil, &tt.msg))
	}
	f.Add([]byte{})
	f.Add([]byte{codecVersion, byte(MsgLearn), 1, 2, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{codecVersion, byte(MsgAccept), 0x80, 0x80, 0x00, 2, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		m, err := DecodeMessage(data)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap %v", err, ErrBadMessage)
			}
			return
		}
		enc := AppendMessage(nil, &m)
		if len(enc) > len(orig) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(orig), len(enc))
		}
		again, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("re-decode %x: %v", enc, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed\n%+v\ninto\n%+v", m, again)
		}
		if !bytes.Equal(data, orig) {
			t.Fatalf("decoding changed its input: %x became %x", orig, data)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	for _, tt := range codecMessages {
		for i := range tt.msg.Entries {
			f.Add(AppendEntry(nil, &tt.msg.Entries[i]))
		}
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 1, 1, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		e, err := DecodeEntry(data)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap %v", err, ErrBadMessage)
			}
			return
		}
		clear(data)
		enc := AppendEntry(nil, &e)
		if len(enc) > len(orig) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(orig), len(enc))
		}
		again, err := DecodeEntry(enc)
		if err != nil {
			t.Fatalf("re-decode %x: %v", enc, err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip changed\n%+v\ninto\n%+v", e, again)
		}
		if first, _ := DecodeEntry(orig); !reflect.DeepEqual(first, e) {
			t.Fatalf("entry aliases its input: %+v became %+v", first, e)
		}
	})
}
