package kvtest_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/clockd/clockd/consensus/driver"
	"github.com/clockd/clockd/consensus/kvtest"
)

var _ driver.StateMachine = (*kvtest.KV)(nil)

func TestApply(t *testing.T) {
	put := func(client, seq uint64, k, v string) kvtest.Command {
		return kvtest.Command{Op: kvtest.OpPut, Client: client, Seq: seq, Key: k, Value: v}
	}
	app := func(client, seq uint64, k, v string) kvtest.Command {
		return kvtest.Command{Op: kvtest.OpAppend, Client: client, Seq: seq, Key: k, Value: v}
	}
	cas := func(client, seq uint64, k, old, v string) kvtest.Command {
		return kvtest.Command{Op: kvtest.OpCAS, Client: client, Seq: seq, Key: k, Old: old, Value: v}
	}
	type step struct {
		cmd  kvtest.Command
		want any // kvtest.Result or an error Apply returns
	}
	tests := []struct {
		name  string
		steps []step
		state map[string]string
	}{
		{
			name: "put append cas",
			steps: []step{
				{put(1, 1, "k", "a"), kvtest.Result{Prev: "", OK: true}},
				{app(1, 2, "k", "b"), kvtest.Result{Prev: "a", OK: true}},
				{cas(1, 3, "k", "x", "c"), kvtest.Result{Prev: "ab", OK: false}},
				{cas(1, 4, "k", "ab", "c"), kvtest.Result{Prev: "ab", OK: true}},
				{app(2, 1, "j", "z"), kvtest.Result{Prev: "", OK: true}},
			},
			state: map[string]string{"k": "c", "j": "z"},
		},
		{
			name: "retry of the latest op returns its result and changes nothing",
			steps: []step{
				{app(1, 1, "k", "a"), kvtest.Result{Prev: "", OK: true}},
				{app(2, 1, "k", "b"), kvtest.Result{Prev: "a", OK: true}},
				{app(1, 1, "k", "a"), kvtest.Result{Prev: "", OK: true}},
			},
			state: map[string]string{"k": "ab"},
		},
		{
			name: "late copy of an abandoned op is ignored",
			steps: []step{
				{put(1, 2, "k", "new"), kvtest.Result{Prev: "", OK: true}},
				{put(1, 1, "k", "old"), kvtest.ErrStale},
			},
			state: map[string]string{"k": "new"},
		},
		{
			name: "seq 0 is never deduplicated",
			steps: []step{
				{app(1, 0, "k", "a"), kvtest.Result{Prev: "", OK: true}},
				{app(1, 0, "k", "a"), kvtest.Result{Prev: "a", OK: true}},
			},
			state: map[string]string{"k": "aa"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := kvtest.New()
			for i, s := range tt.steps {
				got := kv.Apply(uint64(i+1), s.cmd.Encode())
				if err, ok := s.want.(error); ok {
					if gotErr, _ := got.(error); !errors.Is(gotErr, err) {
						t.Fatalf("step %d %+v: got %v, want %v", i, s.cmd, got, err)
					}
					continue
				}
				if got != s.want {
					t.Fatalf("step %d %+v: got %+v, want %+v", i, s.cmd, got, s.want)
				}
			}
			if got := kv.Dump(); !reflect.DeepEqual(got, tt.state) {
				t.Fatalf("state %v, want %v", got, tt.state)
			}
			if applied, _ := kv.Applied(); applied != uint64(len(tt.steps)) {
				t.Fatalf("applied %d, want %d", applied, len(tt.steps))
			}
		})
	}
}

func TestApplyMalformed(t *testing.T) {
	kv := kvtest.New()
	for _, b := range [][]byte{nil, {0}, {9, 1, 1, 0, 0, 0}, {byte(kvtest.OpPut), 1}, {byte(kvtest.OpPut), 1, 1, 5, 'a'}} {
		if err, _ := kv.Apply(1, b).(error); !errors.Is(err, kvtest.ErrMalformed) {
			t.Errorf("Apply(%v) = %v, want ErrMalformed", b, err)
		}
	}
	if got := kv.Dump(); len(got) != 0 {
		t.Errorf("malformed commands changed the state: %v", got)
	}
}

func TestSnapshotRestore(t *testing.T) {
	src := kvtest.New()
	src.Apply(1, kvtest.Command{Op: kvtest.OpPut, Client: 1, Seq: 1, Key: "k", Value: "v"}.Encode())
	src.Apply(2, kvtest.Command{Op: kvtest.OpAppend, Client: 2, Seq: 7, Key: "j", Value: "\x00\xff"}.Encode())
	var buf bytes.Buffer
	if err := src.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}

	dst := kvtest.New()
	dst.Apply(1, kvtest.Command{Op: kvtest.OpPut, Key: "gone", Value: "x"}.Encode())
	if err := dst.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got, want := dst.Dump(), src.Dump(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %v, want %v", got, want)
	}
	if applied, _ := dst.Applied(); applied != 2 {
		t.Fatalf("restored applied slot %d, want 2", applied)
	}
	// The sessions came along: a retry is still recognised.
	retry := kvtest.Command{Op: kvtest.OpAppend, Client: 2, Seq: 7, Key: "j", Value: "\x00\xff"}
	if got := dst.Apply(3, retry.Encode()); got != (kvtest.Result{Prev: "", OK: true}) {
		t.Fatalf("retry after restore: %+v", got)
	}
	if got := dst.Get("j"); got != "\x00\xff" {
		t.Fatalf("retry after restore applied twice: %q", got)
	}

	if err := dst.Restore(bytes.NewReader([]byte("garbage"))); err == nil {
		t.Fatal("restore of garbage succeeded")
	}
	if got := dst.Get("k"); got != "v" {
		t.Fatalf("failed restore changed the state: k=%q", got)
	}
}

func TestRestoreWakesWaiters(t *testing.T) {
	kv := kvtest.New()
	_, changed := kv.Applied()
	var buf bytes.Buffer
	if err := kvtest.New().Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if err := kv.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Restore did not signal a change")
	}
}

func FuzzCommandRoundTrip(f *testing.F) {
	f.Add([]byte(kvtest.Command{Op: kvtest.OpCAS, Client: 3, Seq: 9, Key: "k", Old: "o", Value: "n"}.Encode()))
	f.Add([]byte{byte(kvtest.OpPut), 0, 0, 0, 0, 0})
	f.Add([]byte{byte(kvtest.OpAppend), 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := kvtest.DecodeCommand(b)
		if err != nil {
			return
		}
		again, err := kvtest.DecodeCommand(c.Encode())
		if err != nil {
			t.Fatalf("re-decode of %+v: %v", c, err)
		}
		if again != c {
			t.Fatalf("round trip %+v -> %+v", c, again)
		}
	})
}
