package runbook

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/wire"
)

// The codec writes the bodies of the run-book commands and the state;
// package ordering frames them with its kind and version bytes. Decoders
// read from a wire.Decoder and leave the check of what is left over, and
// of the first failure, to the caller.

// AppendCommand appends the body of a Submit, Start, Finish, Abandon or
// Cancel.
func AppendCommand(b []byte, cmd any) []byte {
	switch c := cmd.(type) {
	case Submit:
		b = appendBook(b, &c.Book)
		return binary.AppendVarint(b, c.AtNs)
	case Start:
		b = appendPlace(b, c.Book, c.Step, c.Host)
		b = binary.AppendUvarint(b, c.Claim)
		return binary.AppendVarint(b, c.AtNs)
	case Finish:
		b = appendPlace(b, c.Book, c.Step, c.Host)
		b = binary.AppendUvarint(b, c.Token)
		b = binary.AppendVarint(b, int64(c.Exit))
		b = binary.AppendVarint(b, c.AtNs)
		b = wire.AppendString(b, c.Digest)
		return wire.AppendString(b, c.Output)
	case Abandon:
		b = appendPlace(b, c.Book, c.Step, c.Host)
		b = binary.AppendUvarint(b, c.Token)
		b = binary.AppendVarint(b, c.AtNs)
		return wire.AppendString(b, c.Reason)
	case Cancel:
		b = wire.AppendString(b, c.Book)
		return wire.AppendString(b, c.Reason)
	}
	panic("runbook: not a command")
}

func appendPlace(b []byte, book, step string, host consensus.NodeID) []byte {
	b = wire.AppendString(b, book)
	b = wire.AppendString(b, step)
	return binary.AppendUvarint(b, uint64(host))
}

// DecodeSubmit, DecodeStart, DecodeFinish, DecodeAbandon and DecodeCancel
// read what AppendCommand wrote.
func DecodeSubmit(d *wire.Decoder) Submit {
	return Submit{Book: decodeBook(d), AtNs: d.Varint()}
}

func DecodeStart(d *wire.Decoder) Start {
	c := Start{Book: d.String(), Step: d.String(), Host: consensus.NodeID(d.Uvarint())}
	c.Claim = d.Uvarint()
	c.AtNs = d.Varint()
	return c
}

func DecodeFinish(d *wire.Decoder) Finish {
	c := Finish{Book: d.String(), Step: d.String(), Host: consensus.NodeID(d.Uvarint())}
	c.Token = d.Uvarint()
	c.Exit = int(d.Varint())
	c.AtNs = d.Varint()
	c.Digest = d.String()
	c.Output = d.String()
	return c
}

func DecodeAbandon(d *wire.Decoder) Abandon {
	c := Abandon{Book: d.String(), Step: d.String(), Host: consensus.NodeID(d.Uvarint())}
	c.Token = d.Uvarint()
	c.AtNs = d.Varint()
	c.Reason = d.String()
	return c
}

func DecodeCancel(d *wire.Decoder) Cancel {
	return Cancel{Book: d.String(), Reason: d.String()}
}

func appendBook(b []byte, k *Book) []byte {
	b = wire.AppendString(b, k.ID)
	b = binary.AppendUvarint(b, uint64(len(k.Steps)))
	for _, s := range k.Steps {
		b = wire.AppendString(b, s.ID)
		b = binary.AppendUvarint(b, uint64(len(s.Hosts)))
		for _, h := range s.Hosts {
			b = binary.AppendUvarint(b, uint64(h))
		}
		b = appendStrings(b, s.Argv)
		b = appendStrings(b, s.DependsOn)
		b = binary.AppendVarint(b, int64(s.Timeout))
		b = binary.AppendVarint(b, int64(s.Retries))
		b = wire.AppendBool(b, s.Idempotent)
		b = wire.AppendString(b, s.MinVersion)
	}
	return b
}

func decodeBook(d *wire.Decoder) Book {
	k := Book{ID: d.String()}
	n := d.Count(6)
	if n > 0 {
		k.Steps = make([]Step, n)
	}
	for i := range k.Steps {
		s := &k.Steps[i]
		s.ID = d.String()
		if m := d.Count(1); m > 0 {
			s.Hosts = make([]consensus.NodeID, m)
			for j := range s.Hosts {
				s.Hosts[j] = consensus.NodeID(d.Uvarint())
			}
		}
		s.Argv = decodeStrings(d)
		s.DependsOn = decodeStrings(d)
		s.Timeout = time.Duration(d.Varint())
		s.Retries = int(d.Varint())
		s.Idempotent = d.Bool()
		s.MinVersion = d.String()
	}
	return k
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = wire.AppendString(b, s)
	}
	return b
}

func decodeStrings(d *wire.Decoder) []string {
	n := d.Count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.String()
	}
	return out
}

// AppendState appends the whole state, as a snapshot keeps it.
func (s *State) AppendState(b []byte) []byte {
	b = binary.AppendUvarint(b, s.seq)
	b = binary.AppendUvarint(b, s.tokens)
	b = binary.AppendUvarint(b, uint64(len(s.entries)))
	for _, e := range s.entries {
		b = binary.AppendUvarint(b, e.Seq)
		b = appendBook(b, &e.Book)
		b = binary.AppendVarint(b, e.SubmittedNs)
		b = wire.AppendBool(b, e.Cancelled)
		for _, runs := range e.Runs { // one per step, one Run per host: counts the book gives
			for _, r := range runs {
				b = appendRun(b, &r)
			}
		}
	}
	return b
}

func appendRun(b []byte, r *Run) []byte {
	b = append(b, byte(r.State))
	b = binary.AppendUvarint(b, uint64(r.Attempts))
	b = binary.AppendUvarint(b, uint64(r.Failures))
	b = binary.AppendUvarint(b, r.Token)
	b = binary.AppendUvarint(b, r.Claim)
	b = binary.AppendVarint(b, r.StartNs)
	b = binary.AppendVarint(b, r.EndNs)
	b = binary.AppendVarint(b, int64(r.Exit))
	b = wire.AppendString(b, r.Digest)
	b = wire.AppendString(b, r.Output)
	return wire.AppendString(b, r.Reason)
}

// DecodeState reads what AppendState wrote.
func DecodeState(d *wire.Decoder) State {
	s := State{seq: d.Uvarint(), tokens: d.Uvarint(), byID: map[string]*Entry{}}
	for n := d.Count(8); n > 0 && d.Err == nil; n-- {
		e := &Entry{Seq: d.Uvarint(), Book: decodeBook(d)}
		e.SubmittedNs = d.Varint()
		e.Cancelled = d.Bool()
		e.Runs = make([][]Run, len(e.Book.Steps))
		for i, st := range e.Book.Steps {
			e.Runs[i] = make([]Run, len(st.Hosts))
			for j, h := range st.Hosts {
				e.Runs[i][j] = decodeRun(d, h)
			}
		}
		if d.Err == nil {
			if err := e.Book.Validate(); err != nil {
				d.Fail("%v", err)
			}
		}
		if d.Err == nil && s.byID[e.Book.ID] != nil {
			d.Fail("run-book %q twice", e.Book.ID)
		}
		if d.Err == nil && (e.Seq > s.seq || slices.ContainsFunc(e.Runs, func(rs []Run) bool {
			return slices.ContainsFunc(rs, func(r Run) bool { return r.State > Skipped || r.Token > s.tokens })
		})) {
			d.Fail("run-book %q: a sequence number, token or run state out of range", e.Book.ID)
		}
		s.entries = append(s.entries, e)
		s.byID[e.Book.ID] = e
	}
	return s
}

func decodeRun(d *wire.Decoder, host consensus.NodeID) Run {
	r := Run{Host: host, State: RunState(d.Byte())}
	r.Attempts = int(d.Uvarint())
	r.Failures = int(d.Uvarint())
	r.Token = d.Uvarint()
	r.Claim = d.Uvarint()
	r.StartNs = d.Varint()
	r.EndNs = d.Varint()
	r.Exit = int(d.Varint())
	r.Digest = d.String()
	r.Output = d.String()
	r.Reason = d.String()
	return r
}

// EncodeResult and DecodeResult carry a Result between hosts.
func EncodeResult(r Result) []byte {
	b := binary.AppendUvarint(nil, r.Token)
	b = append(b, byte(r.Code))
	return wire.AppendString(b, r.Msg)
}

func DecodeResult(b []byte, sentinel error) (Result, error) {
	d := wire.NewDecoder(b, sentinel)
	r := Result{Token: d.Uvarint(), Code: ErrorCode(d.Byte()), Msg: d.String()}
	return r, d.Finish()
}
