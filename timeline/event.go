package timeline

import (
	"unsafe"

	"github.com/clockd/clockd/ingest"
)

// Event is an ingest.Event placed on the timeline.
type Event struct {
	ingest.Event
	// TimeNs is the event's place on the timeline, ns since the Unix
	// epoch: reference time when Corrected, else the host's local time
	// (LocalNs), or for an event without a timestamp the time of the
	// event before it in its input (see doc.go).
	TimeNs int64
	// Corrected tells that TimeNs is on the reference clock: the host's
	// offset was applied, or the event was stamped by the cluster.
	Corrected bool
	// GSN is the event's global sequence number in the cluster log; 0 for
	// events merged from files.
	GSN uint64
	// LateNs > 0 marks a late event: its TimeNs is this many ns before
	// the latest TimeNs of the events before it in its input.
	LateNs int64
	// Issue says why the event is inconsistent; "" when it is not. An
	// event with several issues carries the first found.
	Issue Issue
	// Input is the index of the Merge input the event came from.
	Input int
}

// Issue names a kind of inconsistent event.
type Issue string

// The issues Merge and the log readers report. Each is counted in the
// Summary; the event itself is still emitted.
const (
	// IssueNoTimestamp: the event carries no time (Untimed, and no
	// reference stamp). It keeps its place in its input.
	IssueNoTimestamp Issue = "no-timestamp"
	// IssueNoOffsets: offsets were given but none for the event's host,
	// so TimeNs is its uncorrected local time.
	IssueNoOffsets Issue = "no-offsets"
	// IssueCorrectionOverflow: the event's corrected time would be
	// beyond int64's range of ns (its local time is within its host's
	// offset of the year 1677 or 2262), so TimeNs is its uncorrected
	// local time.
	IssueCorrectionOverflow Issue = "correction-overflow"
	// IssueEndWithoutBegin: a KindEnd with no open KindBegin of the same
	// host and source before it.
	IssueEndWithoutBegin Issue = "end-without-begin"
	// IssueBeginWithoutEnd: a KindBegin still open when its input ended.
	// It is reported once per host and source, with the count.
	IssueBeginWithoutEnd Issue = "begin-without-end"
	// IssueNegativeDuration: a KindSpan with DurNs < 0.
	IssueNegativeDuration Issue = "negative-duration"
	// IssueFlowWithoutID: a KindFlowStart or KindFlowEnd with no flow_id
	// attribute.
	IssueFlowWithoutID Issue = "flow-without-id"
	// IssueUnknownKind: a Kind that is none of ingest's Kind constants.
	IssueUnknownKind Issue = "unknown-kind"
)

// issues lists every Issue in the order summaries print them.
var issues = []Issue{IssueNoTimestamp, IssueNoOffsets, IssueCorrectionOverflow, IssueEndWithoutBegin,
	IssueBeginWithoutEnd, IssueNegativeDuration, IssueFlowWithoutID, IssueUnknownKind}

// checker finds the issues of one stream of events in its own order:
// those that depend on the event alone, and unmatched begin/end pairs,
// which it tracks per host and source.
type checker struct {
	// open holds the SourceSeqs of the KindBegin events not yet ended,
	// innermost last, per host and source. Invariant: no slice is empty.
	open map[hostSource][]uint64
}

type hostSource struct{ host, source string }

// check returns the first issue of ev ("" for none), given the events of
// the stream before it.
func (c *checker) check(ev *Event) Issue {
	var first Issue
	note := func(i Issue) {
		if first == "" {
			first = i
		}
	}
	switch ev.Kind {
	case ingest.KindLog, ingest.KindInstant, ingest.KindCounter:
	case ingest.KindSpan:
		if ev.DurNs < 0 {
			note(IssueNegativeDuration)
		}
	case ingest.KindBegin:
		c.begin(ev)
	case ingest.KindEnd:
		if !c.end(ev) {
			note(IssueEndWithoutBegin)
		}
	case ingest.KindFlowStart, ingest.KindFlowEnd:
		if _, ok := ev.Attr("flow_id"); !ok {
			note(IssueFlowWithoutID)
		}
	default:
		note(IssueUnknownKind)
	}
	return first
}

func (c *checker) begin(ev *Event) {
	if c.open == nil {
		c.open = make(map[hostSource][]uint64)
	}
	k := hostSource{ev.Host, ev.Source}
	c.open[k] = append(c.open[k], ev.SourceSeq)
}

// end closes the innermost open begin of ev's host and source; false
// when there is none.
func (c *checker) end(ev *Event) bool {
	k := hostSource{ev.Host, ev.Source}
	stack := c.open[k]
	switch len(stack) {
	case 0:
		return false
	case 1:
		delete(c.open, k)
	default:
		c.open[k] = stack[:len(stack)-1]
	}
	return true
}

// unclosed reports the begins still open, sorted by host and source.
func (c *checker) unclosed(input string) []Inconsistency {
	var out []Inconsistency
	for k, stack := range c.open {
		out = append(out, Inconsistency{Issue: IssueBeginWithoutEnd, Input: input, Host: k.host, Source: k.source,
			Seq: stack[len(stack)-1], Count: int64(len(stack))})
	}
	sortInconsistencies(out)
	return out
}

// same is a == b, without a call when both are the same string in
// memory, as the hosts and keys of a parser's events often are.
func same(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}
