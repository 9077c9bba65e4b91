package ingest

import (
	"errors"
	"fmt"
	"io"
)

// Event is one trace event, whatever format it came from.
type Event struct {
	// Source names the stream the event came from on its host: a file, a
	// journald unit, a tracer's CPU, a service. Events of one source keep
	// their order.
	Source string
	// SourceSeq numbers the events of one source from 1, in the order the
	// source produced them (parsers: line order).
	SourceSeq uint64
	// Host is the machine that produced the event.
	Host string
	// LocalNs is the event's time as its host's clock read it, ns since
	// the Unix epoch. 0 is a time like any other (a Chrome trace's first
	// ts, 1970-01-01T00:00:00Z): only Untimed says there is none.
	LocalNs int64
	// Untimed is true when the input carries no time for the event (a
	// syslog NILVALUE timestamp, a Chrome metadata event without ts, JSON
	// lines read without a time mapping); LocalNs is then 0. The event
	// log does not carry it: the events it holds are timed by
	// RefEarliest and RefLatest.
	Untimed bool
	// RefEarliest and RefLatest bound the event's time on the cluster's
	// reference clock, once stamped (0 before).
	RefEarliest, RefLatest int64
	// Kind is what the event is: KindLog, KindSpan, KindBegin, KindEnd,
	// KindInstant, KindCounter, KindFlowStart, KindFlowEnd.
	Kind string
	// Name is the message, span name or function.
	Name string
	// DurNs is a span's duration (KindSpan), else 0.
	DurNs int64
	// Attrs are the remaining fields, in the input's order. Well-known keys:
	// "pid", "tid", "cpu", "level", "trace_id", "span_id", "parent_span_id",
	// "flow_id" (links events into a causal flow), "category".
	Attrs []Attr
}

// Attr is one key/value field of an Event.
type Attr struct {
	Key, Value string
}

// Attr returns the value of key, if present.
func (e *Event) Attr(key string) (string, bool) {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// The event kinds.
const (
	KindLog       = "log"
	KindSpan      = "span"  // a complete span: LocalNs is its start, DurNs its length
	KindBegin     = "begin" // the start of a span closed by a later KindEnd
	KindEnd       = "end"
	KindInstant   = "instant"
	KindCounter   = "counter"
	KindFlowStart = "flow-start" // the cause end of a causal link (Attr flow_id)
	KindFlowEnd   = "flow-end"   // its effect end
)

// Parser reads events from one input, streaming. Next returns io.EOF after
// the last event. A malformed record is reported to Options.OnError and
// skipped, unless Options.Strict, when Next returns its *LineError.
type Parser interface {
	Next() (Event, error)
}

// Options configure every parser.
type Options struct {
	// File names the input in errors and is the default Source.
	File string
	// Host is the events' host when the input does not name one.
	Host string
	// Strict makes the first malformed record fatal.
	Strict bool
	// OnError receives every malformed record that was skipped. Nil
	// ignores them (they are still counted by Errors).
	OnError func(*LineError)
	// MaxLineBytes bounds one record (a line, or a journald entry); longer
	// ones are malformed. Default 1 MiB.
	MaxLineBytes int
}

// DefaultMaxLineBytes bounds one record by default.
const DefaultMaxLineBytes = 1 << 20

// LineError is one malformed record: where, and why.
type LineError struct {
	File string
	Line int // 1-based line (first line of the record)
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ErrMalformed is wrapped by every LineError's Err.
var ErrMalformed = errors.New("malformed record")

// ErrUnknownFormat: Detect found no format it knows.
var ErrUnknownFormat = errors.New("ingest: unknown format")

// Counter counts what a parser skipped; parsers embed one.
type Counter struct{ skipped int }

// Errors is how many malformed records were skipped.
func (c *Counter) Errors() int { return c.skipped }

// Report handles one malformed record under opts: it fails in strict mode
// and otherwise counts it and passes it to OnError.
func (c *Counter) Report(opts *Options, line int, err error) error {
	le := &LineError{File: opts.File, Line: line, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	if opts.Strict {
		return le
	}
	c.skipped++
	if opts.OnError != nil {
		opts.OnError(le)
	}
	return nil
}

// ReadAll drains p.
func ReadAll(p Parser) ([]Event, error) {
	var out []Event
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}
