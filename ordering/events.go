package ordering

import (
	"encoding/binary"
	"fmt"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/internal/wire"
)

// Events is one batch of trace events, stamped on their host, committed
// together. Apply numbers the new ones with global sequence numbers
// (GSNs) in batch order and drops the ones already committed: an event is
// known by (Host, Source, SourceSeq), and each source's SourceSeq only
// grows.
type Events struct {
	Events []ingest.Event
}

// EventsResult is what Apply returns for Events.
type EventsResult struct {
	// FirstGSN is the GSN of the first accepted event, 0 when none was.
	FirstGSN   uint64
	Accepted   int
	Duplicates int
}

// LogEvent is a committed event and its place in the total order.
type LogEvent struct {
	GSN   uint64
	Event ingest.Event
}

// EncodeEvents returns the batch as a log command.
func EncodeEvents(es []ingest.Event) []byte {
	b := []byte{byte(KindEvents), codecVersion}
	b = binary.AppendUvarint(b, uint64(len(es)))
	for i := range es {
		b = AppendEvent(b, &es[i])
	}
	return b
}

// AppendEvent encodes one event (also the event store's record format).
func AppendEvent(b []byte, e *ingest.Event) []byte {
	b = wire.AppendString(b, e.Host)
	b = wire.AppendString(b, e.Source)
	b = binary.AppendUvarint(b, e.SourceSeq)
	b = binary.AppendVarint(b, e.LocalNs)
	b = binary.AppendVarint(b, e.RefEarliest)
	b = binary.AppendVarint(b, e.RefLatest)
	b = wire.AppendString(b, e.Kind)
	b = wire.AppendString(b, e.Name)
	b = binary.AppendVarint(b, e.DurNs)
	b = binary.AppendUvarint(b, uint64(len(e.Attrs)))
	for _, a := range e.Attrs {
		b = wire.AppendString(b, a.Key)
		b = wire.AppendString(b, a.Value)
	}
	return b
}

// DecodeEvent decodes one event AppendEvent wrote, from d.
func DecodeEvent(d *wire.Decoder) ingest.Event {
	e := ingest.Event{Host: d.String(), Source: d.String(), SourceSeq: d.Uvarint(), LocalNs: d.Varint(),
		RefEarliest: d.Varint(), RefLatest: d.Varint(), Kind: d.String(), Name: d.String(), DurNs: d.Varint()}
	if n := d.Count(2); n > 0 {
		e.Attrs = make([]ingest.Attr, n)
		for i := range e.Attrs {
			e.Attrs[i] = ingest.Attr{Key: d.String(), Value: d.String()}
		}
	}
	return e
}

func decodeEvents(d *wire.Decoder) Events {
	n := d.Count(12)
	out := Events{Events: make([]ingest.Event, 0, n)}
	for range n {
		out.Events = append(out.Events, DecodeEvent(d))
	}
	return out
}

// sourceKey names a source across the cluster.
func sourceKey(e *ingest.Event) string { return e.Host + "\x00" + e.Source }

func (m *Machine) applyEvents(b Events) EventsResult {
	m.mu.Lock()
	if m.sources == nil {
		m.sources = map[string]uint64{}
	}
	var res EventsResult
	accepted := make([]LogEvent, 0, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		k := sourceKey(e)
		if e.SourceSeq <= m.sources[k] {
			res.Duplicates++
			continue
		}
		m.sources[k] = e.SourceSeq
		m.gsn++
		if res.FirstGSN == 0 {
			res.FirstGSN = m.gsn
		}
		accepted = append(accepted, LogEvent{GSN: m.gsn, Event: *e})
	}
	res.Accepted = len(accepted)
	m.mu.Unlock()
	if m.OnEvents != nil && len(accepted) > 0 {
		m.OnEvents(accepted)
	}
	return res
}

// LastGSN is the GSN of the last event committed.
func (m *Machine) LastGSN() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gsn
}

// SourceSeq is the last sequence number committed for a source.
func (m *Machine) SourceSeq(host, source string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sources[host+"\x00"+source]
}

func (r EventsResult) String() string {
	return fmt.Sprintf("first GSN %d, %d accepted, %d duplicates", r.FirstGSN, r.Accepted, r.Duplicates)
}
