package clockdv1

import (
	"math"

	"github.com/clockd/clockd/vclock"
)

// MaxTimestampBatch is the largest count one Timestamp call may ask for.
// It is far below 1<<TimestampLogicalBits, so one batch spans at most two
// milliseconds of physical time.
const MaxTimestampBatch = 65536

// TimestampLogicalBits is the width of a timestamp's logical counter: a
// timestamp is physical_ms<<TimestampLogicalBits | logical.
const TimestampLogicalBits = 18

// NewReading is r on the wire. Bounded is r.Bounded().
func NewReading(r vclock.Reading) *Reading {
	return &Reading{
		TimeUnixNano:     r.Time,
		EarliestUnixNano: r.Earliest,
		LatestUnixNano:   r.Latest,
		Status:           Status(r.Status),
		Bounded:          r.Bounded(),
	}
}

// VClock is x as a vclock.Reading. A reading whose Bounded is false reads
// as unbounded (Earliest = math.MinInt64, Latest = math.MaxInt64) whatever
// its earliest and latest fields hold: widening never claims more than the
// sender did. A nil x gives the zero Reading.
func (x *Reading) VClock() vclock.Reading {
	if x == nil {
		return vclock.Reading{}
	}
	r := vclock.Reading{
		Time:     x.TimeUnixNano,
		Earliest: x.EarliestUnixNano,
		Latest:   x.LatestUnixNano,
		Status:   vclock.Status(x.Status),
	}
	if !x.Bounded {
		r.Earliest, r.Latest = math.MinInt64, math.MaxInt64
	}
	return r
}
