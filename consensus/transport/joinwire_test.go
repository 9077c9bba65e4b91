package transport

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/clockd/clockd/consensus"
)

var joinRequests = []JoinRequest{
	{},
	{ID: 4, Addr: "127.0.0.1:7004", Name: "node-4"},
	{ID: ^consensus.NodeID(0), Addr: strings.Repeat("a", 300), Name: "ünïcode"},
}

var joinResponses = []JoinResponse{
	{},
	{Accepted: true, LeaderID: 1, LeaderAddr: "10.0.0.1:7000", Members: []Peer{
		{ID: 1, Addr: "10.0.0.1:7000", Name: "node-1"},
		{ID: 4},
		{ID: 1 << 40, Addr: "[::1]:7000", Name: strings.Repeat("n", 200)},
	}},
	{LeaderID: 3, Reason: "not the leader"},
}

func TestJoinCodecRoundTrip(t *testing.T) {
	for i, want := range joinRequests {
		got, err := decodeJoinRequest(appendJoinRequest(nil, &want))
		if err != nil || got != want {
			t.Errorf("request %d: decoded %+v, %v; want %+v", i, got, err, want)
		}
	}
	for i, want := range joinResponses {
		got, err := decodeJoinResponse(appendJoinResponse(nil, &want))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("response %d: decoded %+v, %v; want %+v", i, got, err, want)
		}
	}
}

func TestJoinCodecErrors(t *testing.T) {
	req := appendJoinRequest(nil, &joinRequests[1])
	resp := appendJoinResponse(nil, &joinResponses[1])
	tests := []struct {
		name   string
		buf    []byte
		decode func([]byte) error
		want   string
	}{
		{"request empty", nil, decodeReq, "empty"},
		{"request version", append([]byte{2}, req[1:]...), decodeReq, "codec version 2"},
		{"request truncated", req[:len(req)-1], decodeReq, "string of 6 bytes with 5 left"},
		{"request trailing", append(bytes.Clone(req), 0), decodeReq, "1 trailing bytes"},
		{"request bad uvarint", []byte{1, 0x80}, decodeReq, "bad uvarint"},
		{"response bool", []byte{1, 2}, decodeResp, "bool 2"},
		{"response huge count", []byte{1, 0, 0, 0, 0xff, 0xff, 0x03, 0, 0, 0}, decodeResp, "count 65535 with 3 bytes left"},
		{"response truncated", resp[:len(resp)-1], decodeResp, "bad uvarint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.buf)
			if !errors.Is(err, ErrBadJoin) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decode: %v, want %v containing %q", err, ErrBadJoin, tt.want)
			}
		})
	}
}

func decodeReq(b []byte) error {
	_, err := decodeJoinRequest(b)
	return err
}

func decodeResp(b []byte) error {
	_, err := decodeJoinResponse(b)
	return err
}

func FuzzDecodeJoinRequest(f *testing.F) {
	for i := range joinRequests {
		f.Add(appendJoinRequest(nil, &joinRequests[i]))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0x80, 0x80, 0x00, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		r, err := decodeJoinRequest(data)
		if err != nil {
			if !errors.Is(err, ErrBadJoin) {
				t.Fatalf("error %v does not wrap %v", err, ErrBadJoin)
			}
			return
		}
		clear(data) // the request must not alias its input
		enc := appendJoinRequest(nil, &r)
		if len(enc) > len(orig) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(orig), len(enc))
		}
		again, err := decodeJoinRequest(enc)
		if err != nil || again != r {
			t.Fatalf("re-decoded %+v, %v; want %+v", again, err, r)
		}
	})
}

func FuzzDecodeJoinResponse(f *testing.F) {
	for i := range joinResponses {
		f.Add(appendJoinResponse(nil, &joinResponses[i]))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0x80, 0x00, 0, 2, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		r, err := decodeJoinResponse(data)
		if err != nil {
			if !errors.Is(err, ErrBadJoin) {
				t.Fatalf("error %v does not wrap %v", err, ErrBadJoin)
			}
			return
		}
		clear(data)
		enc := appendJoinResponse(nil, &r)
		if len(enc) > len(orig) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(orig), len(enc))
		}
		again, err := decodeJoinResponse(enc)
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-decoded %+v, %v; want %+v", again, err, r)
		}
	})
}
