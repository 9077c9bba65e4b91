package vclock

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/internal/wire"
	"github.com/clockd/clockd/ordering"
)

// Sample is a host's answer to the leader's request for its time.
type Sample struct {
	// Incarnation names the answering process (random at start-up).
	Incarnation uint64
	// MonoNs is the host's monotonic clock when it read WallNs.
	MonoNs int64
	// WallNs is the host's estimate of UTC, and ErrNs its error bound:
	// upstream NTP's root distance where configured, else the configured
	// wall_error.
	WallNs, ErrNs int64
	// Name is the host's name as its traces carry it (host_name), so the
	// offset history can be matched to trace files.
	Name string
}

// ErrSampleCodec reports a sample that does not decode.
var ErrSampleCodec = errors.New("vclock: malformed sample")

const sampleVersion = 1

// AppendSample encodes s.
func AppendSample(b []byte, s Sample) []byte {
	b = append(b, sampleVersion)
	b = binary.AppendUvarint(b, s.Incarnation)
	b = binary.AppendVarint(b, s.MonoNs)
	b = binary.AppendVarint(b, s.WallNs)
	b = binary.AppendVarint(b, s.ErrNs)
	return wire.AppendString(b, s.Name)
}

// DecodeSample decodes what AppendSample wrote.
func DecodeSample(b []byte) (Sample, error) {
	d := wire.NewDecoder(b, ErrSampleCodec)
	d.Version(sampleVersion)
	s := Sample{Incarnation: d.Uvarint(), MonoNs: d.Varint(), WallNs: d.Varint(), ErrNs: d.Varint(), Name: d.String()}
	if err := d.Finish(); err != nil {
		return Sample{}, err
	}
	if s.ErrNs < 0 {
		return Sample{}, fmt.Errorf("%w: negative error %d", ErrSampleCodec, s.ErrNs)
	}
	return s, nil
}

// Exchange is the leader's record of one sample: it sent the request at
// SentNs and had the answer at RecvNs, on its own monotonic clock. For the
// leader's own sample both equal the sample's MonoNs.
type Exchange struct {
	Host           consensus.NodeID
	SentNs, RecvNs int64
	Sample         Sample
	// Voter: the host votes, so its interval counts toward the quorum.
	Voter bool
}

// TickInput is everything the leader knows when it builds a tick.
type TickInput struct {
	Leader consensus.NodeID
	// AtNs is the leader's monotonic time the intervals are moved to.
	AtNs      int64
	Exchanges []Exchange
	// Voters is the number of voting members; a majority of them must
	// support the result.
	Voters   int
	DriftPPM int64
	// Prior, when HasPrior, is what the leader already knew at AtNs: the
	// last tick's interval for its own clock, carried forward and widened
	// by drift (Host.Prior). The fresh agreement is narrowed to it, so the
	// reference tightens over time instead of jumping with whichever hosts
	// answered this round. Both contain the truth, so their intersection
	// does too.
	Prior    Interval
	HasPrior bool
	// MaxStepNs, when HasPrior and > 0, bounds how far the reference may
	// move from the prior's centre (where the last tick's reference has
	// come to) toward the fresh agreement's centre: the reference glides
	// instead of jumping as hosts come and go, and every host follows
	// the same path. It always stays inside the agreement, and the error
	// bound is its distance to the agreement's farther edge. The daemon
	// allows RefSlewPPM of the tick interval.
	MaxStepNs int64
}

// RefSlewPPM is the rate at which the daemon lets the committed reference
// move toward the centre of the hosts' agreement (TickInput.MaxStepNs).
const RefSlewPPM = 50

// BuildTick intersects the hosts' intervals and, when a majority of the
// voters agree, returns the tick to commit with an anchor for every host
// that answered.
//
// Each exchange gives an interval NTP-style: the host read its clock at
// some instant between SentNs and RecvNs, so at the midpoint its claim is
// WallNs ± (ErrNs + round trip/2). Moving it to AtNs adds the leader's
// elapsed monotonic time and widens it by max drift over that time.
func BuildTick(in TickInput) (ordering.Tick, Agreement, error) {
	ivs := make([]Interval, 0, len(in.Exchanges))
	for _, e := range in.Exchanges {
		if !e.Voter {
			continue
		}
		c, w := e.claim(in.AtNs, in.DriftPPM)
		ivs = append(ivs, Interval{Host: e.Host, Lo: c - w, Hi: c + w})
	}
	quorum := in.Voters/2 + 1
	agr, ok := Intersect(ivs, quorum)
	if !ok {
		return ordering.Tick{}, Agreement{}, fmt.Errorf("vclock: no %d of %d voters agree (%d answered)",
			quorum, in.Voters, len(ivs))
	}
	if in.HasPrior && in.Prior.Lo <= agr.Hi && agr.Lo <= in.Prior.Hi {
		agr.Lo, agr.Hi = max(agr.Lo, in.Prior.Lo), min(agr.Hi, in.Prior.Hi)
	}
	ref := agr.Lo + (agr.Hi-agr.Lo)/2
	if in.HasPrior && in.MaxStepNs > 0 {
		was := in.Prior.Lo + (in.Prior.Hi-in.Prior.Lo)/2
		ref = min(max(ref, was-in.MaxStepNs), was+in.MaxStepNs)
		ref = min(max(ref, agr.Lo), agr.Hi)
	}
	errNs := max(agr.Hi-ref, ref-agr.Lo)
	t := ordering.Tick{Leader: in.Leader, Support: len(agr.Support), Voters: in.Voters}
	for _, e := range in.Exchanges {
		half := (e.RecvNs - e.SentNs + 1) / 2
		mid := e.SentNs + (e.RecvNs-e.SentNs)/2
		age := in.AtNs - mid
		refAtHost := ref - age
		c, w := e.claim(in.AtNs, in.DriftPPM)
		t.Anchors = append(t.Anchors, ordering.Anchor{
			Host:         e.Host,
			Incarnation:  e.Sample.Incarnation,
			MonoNs:       e.Sample.MonoNs,
			RefNs:        refAtHost,
			ErrNs:        errNs + half + ppm(max(age, 0), in.DriftPPM),
			WallOffsetNs: e.Sample.WallNs - refAtHost,
			Name:         e.Sample.Name,
			Falseticker:  c-w > agr.Lo || c+w < agr.Hi,
		})
	}
	return t, agr, nil
}

// claim is the exchange's interval moved to atNs: centre and half-width.
func (e Exchange) claim(atNs, driftPPM int64) (centre, width int64) {
	half := (e.RecvNs - e.SentNs + 1) / 2
	mid := e.SentNs + (e.RecvNs-e.SentNs)/2
	age := max(atNs-mid, 0)
	return e.Sample.WallNs + age, e.Sample.ErrNs + half + ppm(age+half, driftPPM)
}
