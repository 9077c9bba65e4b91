package ordering

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering/runbook"
)

// Kind is the first byte of every command in the log.
type Kind byte

// The command kinds. The numbers are on disk: never reuse one.
const (
	KindTick      Kind = 1
	KindCeiling   Kind = 2
	KindVMFreeze  Kind = 3
	KindVMResume  Kind = 4
	KindVMRelease Kind = 5
	KindEvents    Kind = 6
	// KindEventBatch is an Events batch with its pipeline place.
	KindEventBatch Kind = 7
	// The run-book commands (package runbook).
	KindRunbookSubmit  Kind = 8
	KindRunbookStart   Kind = 9
	KindRunbookFinish  Kind = 10
	KindRunbookAbandon Kind = 11
	KindRunbookCancel  Kind = 12
	// KindEventBatchS2 is a KindEventBatch whose events are compressed
	// (S2, package github.com/klauspost/compress/s2).
	KindEventBatchS2 Kind = 13
)

// IsEvents reports whether k is a kind of Events command.
func (k Kind) IsEvents() bool {
	return k == KindEvents || k == KindEventBatch || k == KindEventBatchS2
}

// sequenced reports whether an Events command of kind k carries a
// pipeline place and encodes each event against the one before it.
func (k Kind) sequenced() bool { return k == KindEventBatch || k == KindEventBatchS2 }

// codecVersion is the second byte of every command.
const codecVersion = 1

// ErrCodec reports a command that does not decode.
var ErrCodec = errors.New("ordering: malformed command")

// Anchor ties one host's monotonic clock to the reference: when that host
// answered the leader's sample, its monotonic clock read MonoNs and the
// reference read RefNs, within ±ErrNs. It is only meaningful to the
// process that answered, which Incarnation names (a random number drawn
// at start-up): after a restart, the host waits for a new anchor.
type Anchor struct {
	Host        consensus.NodeID
	Incarnation uint64
	MonoNs      int64
	RefNs       int64
	ErrNs       int64
	// WallOffsetNs is the host's wall clock minus the reference, at the
	// sample.
	WallOffsetNs int64
	// Falseticker: the host's interval missed the agreed one.
	Falseticker bool
	// Name is the host's name as its traces carry it.
	Name string
}

// Tick is one committed reading of the reference clock. The leader
// proposes it; Seq is assigned on apply (the count of ticks so far), so
// every host numbers ticks alike whoever proposed them.
type Tick struct {
	Seq    uint64
	Leader consensus.NodeID
	// Support is how many hosts' intervals contain the agreed one, out of
	// Voters voting members when it was taken.
	Support, Voters int
	// Anchors has one entry per host that answered, the leader included.
	Anchors []Anchor
}

// Falsetickers lists the hosts the tick named as falsetickers.
func (t *Tick) Falsetickers() []consensus.NodeID {
	var out []consensus.NodeID
	for _, a := range t.Anchors {
		if a.Falseticker {
			out = append(out, a.Host)
		}
	}
	return out
}

// AnchorOf returns host's anchor, if the tick has one.
func (t *Tick) AnchorOf(host consensus.NodeID) (Anchor, bool) {
	for _, a := range t.Anchors {
		if a.Host == host {
			return a, true
		}
	}
	return Anchor{}, false
}

// Ceiling raises the timestamp oracle's window ceiling, in milliseconds
// of reference time. Apply keeps the maximum, and answers with the
// ceiling in force before this command.
type Ceiling struct {
	Ms uint64
}

// EncodeTick returns t as a log command.
func EncodeTick(t *Tick) []byte {
	b := []byte{byte(KindTick), codecVersion}
	b = binary.AppendUvarint(b, t.Seq)
	b = binary.AppendUvarint(b, uint64(t.Leader))
	b = binary.AppendUvarint(b, uint64(t.Support))
	b = binary.AppendUvarint(b, uint64(t.Voters))
	b = binary.AppendUvarint(b, uint64(len(t.Anchors)))
	for _, a := range t.Anchors {
		b = binary.AppendUvarint(b, uint64(a.Host))
		b = binary.AppendUvarint(b, a.Incarnation)
		b = binary.AppendVarint(b, a.MonoNs)
		b = binary.AppendVarint(b, a.RefNs)
		b = binary.AppendVarint(b, a.ErrNs)
		b = binary.AppendVarint(b, a.WallOffsetNs)
		b = wire.AppendBool(b, a.Falseticker)
		b = wire.AppendString(b, a.Name)
	}
	return b
}

func decodeTick(d *wire.Decoder) Tick {
	var t Tick
	t.Seq = d.Uvarint()
	t.Leader = consensus.NodeID(d.Uvarint())
	t.Support = int(d.Uvarint())
	t.Voters = int(d.Uvarint())
	n := d.Count(7)
	if n > 0 {
		t.Anchors = make([]Anchor, n)
	}
	for i := range t.Anchors {
		a := &t.Anchors[i]
		a.Host = consensus.NodeID(d.Uvarint())
		a.Incarnation = d.Uvarint()
		a.MonoNs = d.Varint()
		a.RefNs = d.Varint()
		a.ErrNs = d.Varint()
		a.WallOffsetNs = d.Varint()
		a.Falseticker = d.Bool()
		a.Name = d.String()
		if d.Err == nil && a.ErrNs < 0 {
			d.Fail("anchor of host %d has negative error %d", a.Host, a.ErrNs)
		}
	}
	return t
}

// EncodeCeiling returns c as a log command.
func EncodeCeiling(c Ceiling) []byte {
	b := []byte{byte(KindCeiling), codecVersion}
	return binary.AppendUvarint(b, c.Ms)
}

// EncodeRunbook returns a run-book command (runbook.Submit, Start,
// Finish, Abandon or Cancel) as a log command.
func EncodeRunbook(cmd any) []byte {
	var k Kind
	switch cmd.(type) {
	case runbook.Submit:
		k = KindRunbookSubmit
	case runbook.Start:
		k = KindRunbookStart
	case runbook.Finish:
		k = KindRunbookFinish
	case runbook.Abandon:
		k = KindRunbookAbandon
	case runbook.Cancel:
		k = KindRunbookCancel
	default:
		panic(fmt.Sprintf("ordering: %T is not a run-book command", cmd))
	}
	return runbook.AppendCommand([]byte{byte(k), codecVersion}, cmd)
}

// Decode splits a command into its kind and decoded value: a Tick, a
// Ceiling, a VMFreeze, a VMResume, a VMRelease, Events, or a run-book
// command.
func Decode(cmd []byte) (Kind, any, error) {
	if len(cmd) == 0 {
		return 0, nil, fmt.Errorf("%w: empty", ErrCodec)
	}
	k := Kind(cmd[0])
	d := wire.NewDecoder(cmd[1:], ErrCodec)
	d.Version(codecVersion)
	var v any
	switch k {
	case KindTick:
		v = decodeTick(&d)
	case KindCeiling:
		v = Ceiling{Ms: d.Uvarint()}
	case KindVMFreeze:
		v = decodeVMFreeze(&d)
	case KindVMResume:
		v = decodeVMResume(&d)
	case KindVMRelease:
		v = decodeVMRelease(&d)
	case KindRunbookSubmit:
		v = runbook.DecodeSubmit(&d)
	case KindRunbookStart:
		v = runbook.DecodeStart(&d)
	case KindRunbookFinish:
		v = runbook.DecodeFinish(&d)
	case KindRunbookAbandon:
		v = runbook.DecodeAbandon(&d)
	case KindRunbookCancel:
		v = runbook.DecodeCancel(&d)
	case KindEvents, KindEventBatch, KindEventBatchS2:
		if d.Err != nil {
			return k, nil, d.Err
		}
		b, err := decodeEvents(k, cmd[2:]) // past the version Version checked
		if err != nil {
			return k, nil, err
		}
		return k, b, nil
	default:
		return k, nil, fmt.Errorf("%w: unknown kind %d", ErrCodec, k)
	}
	if err := d.Finish(); err != nil {
		return k, nil, err
	}
	return k, v, nil
}
