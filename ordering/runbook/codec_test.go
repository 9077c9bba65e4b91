package runbook_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/ordering/runbook"
)

// sampleCommands holds one command of each kind with every field set, and
// some at the ends of their ranges.
func sampleCommands() []any {
	b := validBook()
	b.Steps[0].Timeout = runbook.MaxTimeout
	b.Steps[2].Retries = runbook.MaxRetries
	b.Steps[2].Hosts = hosts(1, 1<<35, math.MaxUint64)
	b.Steps[1].MinVersion = "v1.4.0-rc.1"
	return []any{
		runbook.Submit{Book: b, AtNs: 1_700_000_000_000_000_000},
		runbook.Submit{Book: oneStep("x", 7), AtNs: -1},
		runbook.Start{Book: "upgrade", Step: "drain", Host: 1, Claim: math.MaxUint64, AtNs: math.MinInt64},
		runbook.Start{},
		runbook.Finish{Book: "upgrade", Step: "drain", Host: 3, Token: 1 << 50, Exit: -1, AtNs: math.MaxInt64,
			Digest: strings.Repeat("f", runbook.MaxDigestLen), Output: "ünïcode\x00and bytes\xff"},
		runbook.Finish{Book: "b", Step: "s", Host: 2, Token: 9, Exit: 255},
		runbook.Abandon{Book: "upgrade", Step: "drain", Host: 1, Token: 4, AtNs: 77, Reason: "host 1 restarted"},
		runbook.Cancel{Book: "upgrade", Reason: "operator"},
		runbook.Cancel{Book: "upgrade"},
	}
}

// TestCommandsRoundTrip: every command comes back from the log as it
// went in; cut short anywhere, or with a byte more, or with another
// version, it does not decode.
func TestCommandsRoundTrip(t *testing.T) {
	kinds := map[reflect.Type]ordering.Kind{
		reflect.TypeFor[runbook.Submit]():  ordering.KindRunbookSubmit,
		reflect.TypeFor[runbook.Start]():   ordering.KindRunbookStart,
		reflect.TypeFor[runbook.Finish]():  ordering.KindRunbookFinish,
		reflect.TypeFor[runbook.Abandon](): ordering.KindRunbookAbandon,
		reflect.TypeFor[runbook.Cancel]():  ordering.KindRunbookCancel,
	}
	for _, cmd := range sampleCommands() {
		enc := ordering.EncodeRunbook(cmd)
		k, v, err := ordering.Decode(enc)
		if err != nil || k != kinds[reflect.TypeOf(cmd)] || !reflect.DeepEqual(v, cmd) {
			t.Fatalf("%+v came back as kind %d, %+v, %v", cmd, k, v, err)
		}
		for n := range len(enc) {
			if _, _, err := ordering.Decode(enc[:n]); !errors.Is(err, ordering.ErrCodec) {
				t.Fatalf("%T cut to %d of %d bytes: %v", cmd, n, len(enc), err)
			}
		}
		if _, _, err := ordering.Decode(append(enc, 0)); !errors.Is(err, ordering.ErrCodec) ||
			!strings.Contains(err.Error(), "1 trailing bytes") {
			t.Fatalf("%T with a trailing byte: %v", cmd, err)
		}
		other := bytes.Clone(enc)
		other[1] = 2
		if _, _, err := ordering.Decode(other); !errors.Is(err, ordering.ErrCodec) {
			t.Fatalf("%T under codec version 2: %v", cmd, err)
		}
	}
}

// TestEncodeRunbookRefusesOtherValues: only the five commands encode.
func TestEncodeRunbookRefusesOtherValues(t *testing.T) {
	for _, v := range []any{runbook.Book{}, &runbook.Cancel{}, nil} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("EncodeRunbook(%T) did not panic", v)
				}
			}()
			ordering.EncodeRunbook(v)
		}()
	}
}

// rawEntry is an entry as a snapshot holds it, written below by hand.
type rawEntry struct {
	seq       uint64
	book      runbook.Book
	atNs      int64
	cancelled bool
	runs      []rawRun // in Step.Hosts order, step after step
}

type rawRun struct {
	state                  byte
	attempts, failures     uint64
	token, claim           uint64
	startNs, endNs, exit   int64
	digest, output, reason string
}

// rawState writes the layout AppendState writes: the last sequence
// number and token given, then each entry, with its runs.
func rawState(seq, tokens uint64, entries ...rawEntry) []byte {
	b := binary.AppendUvarint(nil, seq)
	b = binary.AppendUvarint(b, tokens)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = binary.AppendUvarint(b, e.seq)
		// A Submit's body is the book, then the time: as an entry starts.
		b = runbook.AppendCommand(b, runbook.Submit{Book: e.book, AtNs: e.atNs})
		b = wire.AppendBool(b, e.cancelled)
		for _, r := range e.runs {
			b = append(b, r.state)
			b = binary.AppendUvarint(b, r.attempts)
			b = binary.AppendUvarint(b, r.failures)
			b = binary.AppendUvarint(b, r.token)
			b = binary.AppendUvarint(b, r.claim)
			b = binary.AppendVarint(b, r.startNs)
			b = binary.AppendVarint(b, r.endNs)
			b = binary.AppendVarint(b, r.exit)
			b = wire.AppendString(b, r.digest)
			b = wire.AppendString(b, r.output)
			b = wire.AppendString(b, r.reason)
		}
	}
	return b
}

// sampleEntries are what TestStateLayout's commands leave.
func sampleEntries() []rawEntry {
	return []rawEntry{
		{seq: 1, book: oneStep("a", 1, 2), atNs: 5, runs: []rawRun{
			{state: byte(runbook.Succeeded), attempts: 1, token: 1, claim: 7, startNs: 10, endNs: 20,
				digest: "d1", output: "out"},
			{state: byte(runbook.Running), attempts: 1, token: 2, claim: 9, startNs: 30},
		}},
		{seq: 2, book: oneStep("b", 1), atNs: -6, cancelled: true, runs: []rawRun{
			{state: byte(runbook.Skipped), reason: "run-book cancelled: why"},
		}},
	}
}

// TestStateLayout pins the snapshot's layout: it is on disk.
func TestStateLayout(t *testing.T) {
	var s runbook.State
	if got, want := s.AppendState(nil), []byte{0, 0, 0}; !bytes.Equal(got, want) {
		t.Fatalf("the empty state is %x, want %x", got, want)
	}
	apply(t, &s, runbook.Submit{Book: oneStep("a", 1, 2), AtNs: 5})
	apply(t, &s, runbook.Submit{Book: oneStep("b", 1), AtNs: -6})
	apply(t, &s, runbook.Start{Book: "a", Step: "only", Host: 1, Claim: 7, AtNs: 10})
	apply(t, &s, runbook.Finish{Book: "a", Step: "only", Host: 1, Token: 1, AtNs: 20, Digest: "d1", Output: "out"})
	apply(t, &s, runbook.Start{Book: "a", Step: "only", Host: 2, Claim: 9, AtNs: 30})
	apply(t, &s, runbook.Cancel{Book: "b", Reason: "why"})
	want := rawState(2, 2, sampleEntries()...)
	if got := s.AppendState(nil); !bytes.Equal(got, want) {
		t.Fatalf("state written as\n%x, want\n%x", got, want)
	}
	d, err := decodeState(want)
	if err != nil || !reflect.DeepEqual(d.Entries(), s.Entries()) {
		t.Fatalf("decoded %+v, %v; want %+v", d.Entries(), err, s.Entries())
	}
	// The decoded state goes on from the last sequence number and token.
	apply(t, &d, runbook.Submit{Book: oneStep("c", 3)})
	if tok := apply(t, &d, runbook.Start{Book: "c", Step: "only", Host: 3, Claim: 1}); tok != 3 {
		t.Fatalf("the decoded state granted token %d, want 3", tok)
	}
	if e, _ := d.Entry("c"); e.Seq != 3 {
		t.Fatalf("the decoded state gave book c seq %d, want 3", e.Seq)
	}
}

// TestDecodeStateRefuses: a state that could not have been written does
// not decode, and says why.
func TestDecodeStateRefuses(t *testing.T) {
	twice := sampleEntries()
	twice[1].book.ID = "a"
	badState := sampleEntries()
	badState[0].runs[1].state = 6
	valid := rawState(2, 2, sampleEntries()...)
	cases := []struct {
		name string
		raw  []byte
		want string
	}{
		{"a book twice", rawState(2, 2, twice...), `run-book "a" twice`},
		{"a run state past skipped", rawState(2, 2, badState...), `run-book "a": a sequence number, token or run state out of range`},
		{"a token past the last given", rawState(2, 1, sampleEntries()...), `run-book "a": a sequence number, token`},
		{"a sequence number past the last given", rawState(1, 2, sampleEntries()...), `run-book "b": a sequence number`},
		{"more books than bytes", []byte{0, 0, 5}, "count 5 with 0 bytes left"},
		{"a trailing byte", append(bytes.Clone(valid), 0), "1 trailing bytes"},
	}
	for n := range len(valid) {
		cases = append(cases, struct {
			name string
			raw  []byte
			want string
		}{"cut short", valid[:n], ""})
	}
	for _, c := range cases {
		_, err := decodeState(c.raw)
		if !errors.Is(err, errCodec) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s (%x): %v, want an error saying %q", c.name, c.raw, err, c.want)
		}
	}
}

func TestResultRoundTrip(t *testing.T) {
	for _, r := range []runbook.Result{
		{},
		{Token: math.MaxUint64},
		{Code: runbook.FailedPrecondition, Msg: `step "drain" of run-book "upgrade" waits for step "fetch"`},
		{Code: runbook.InvalidArgument, Msg: strings.Repeat("m", 300)},
	} {
		enc := runbook.EncodeResult(r)
		got, err := runbook.DecodeResult(enc, errCodec)
		if err != nil || got != r {
			t.Fatalf("%+v came back as %+v, %v", r, got, err)
		}
		for n := range len(enc) {
			if _, err := runbook.DecodeResult(enc[:n], errCodec); !errors.Is(err, errCodec) {
				t.Fatalf("%+v cut to %d bytes: %v", r, n, err)
			}
		}
		if _, err := runbook.DecodeResult(append(enc, 1), errCodec); !errors.Is(err, errCodec) {
			t.Fatalf("%+v with a trailing byte: %v", r, err)
		}
	}
	err := runbook.Result{Code: runbook.NotFound, Msg: `no run-book "x"`}.Err()
	var e *runbook.Error
	if !errors.As(err, &e) || e.Code != runbook.NotFound || err.Error() != `run-book: no run-book "x"` {
		t.Fatalf("Err() = %v", err)
	}
}
