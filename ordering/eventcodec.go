package ordering

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/internal/wire"
)

// The encodings of events.
//
// One event alone (AppendEvent), as the event store, the spool and an
// unsequenced Events command (KindEvents) hold it:
//
//	str host | str source | uvarint seq | varint localNs |
//	varint refEarliest | varint refLatest | str kind | tail
//	tail = str name | varint durNs | uvarint attrs | { str key | str value }*attrs
//
// str is a uvarint length and the bytes, varint is zig-zag.
//
// In a sequenced batch (KindEventBatch) each event is written against the
// one before it (the first against zero values and empty strings), since
// a batch's events mostly share their host, source, kind and reference
// interval, and their sequence numbers and times are close:
//
//	byte flags | [str host] | [str source] | [str kind] |
//	delta seq | delta localNs | [delta refEarliest | delta refLatest] | tail
//
// where flags has newHost, newSource, newKind and newRef set for the
// parts that follow because they differ, and a delta is the zig-zag varint
// of the difference, modulo 2^64.
//
// A compressed batch (KindEventBatchS2) has the same place, then the
// count and the events as above, compressed as one S2 block (s2.Encode),
// of at most maxDecodedBytes decompressed. Readers decompress it whole
// before reading; its Committed and the event store's block keep it
// compressed.

// The flags of an event in a sequenced batch.
const (
	newHost   = 1 << iota // host follows
	newSource             // source follows
	newKind               // kind follows
	newRef                // the reference interval's deltas follow
	allFlags  = newHost | newSource | newKind | newRef
)

// Smallest encodings of an event, to bound counts.
const (
	minEventBytes      = 12 // alone: 4 strings, 4 numbers, duration, attrs
	minBatchEventBytes = 6  // in a batch: flags, 2 deltas, name, duration, attrs
)

// EncodeEvents returns the batch as a log command. The command is kept
// in the consensus log for a while: it is allocated at its exact size.
func EncodeEvents(b *Events) []byte { return encodeEvents(b, false) }

// EncodeEventsS2 is EncodeEvents with a sequenced batch's events
// compressed (KindEventBatchS2); an unsequenced batch (Origin 0) is
// encoded as EncodeEvents does. Trace events compress well: names and
// attributes repeat from event to event. Every host must run a clockd
// that reads KindEventBatchS2 before any proposes it.
func EncodeEventsS2(b *Events) []byte { return encodeEvents(b, b.Origin != 0) }

func encodeEvents(b *Events, compress bool) []byte {
	size := 16
	for i := range b.Events {
		size += EncodedSize(&b.Events[i])
	}
	scratch, _ := encodeScratch.Get().(*[]byte)
	if scratch == nil {
		scratch = new([]byte)
	}
	out := slices.Grow((*scratch)[:0], size)
	if b.Origin == 0 {
		out = append(out, byte(KindEvents), codecVersion)
		out = binary.AppendUvarint(out, uint64(len(b.Events)))
		for i := range b.Events {
			out = AppendEvent(out, &b.Events[i])
		}
	} else {
		kind := KindEventBatch
		if compress {
			kind = KindEventBatchS2
		}
		out = append(out, byte(kind), codecVersion)
		out = binary.AppendUvarint(out, uint64(b.Origin))
		out = binary.AppendUvarint(out, b.Epoch)
		out = binary.AppendUvarint(out, b.Batch)
		head := len(out)
		out = binary.AppendUvarint(out, uint64(len(b.Events)))
		var prev ingest.Event
		for i := range b.Events {
			out = appendBatchEvent(out, &prev, &b.Events[i])
			prev = b.Events[i]
		}
		if compress {
			return compressBody(scratch, out, head)
		}
	}
	cmd := make([]byte, len(out))
	copy(cmd, out)
	putScratch(scratch, out)
	return cmd
}

// compressBody returns cmd, a command whose first head bytes are its
// kind, version and place, with the rest compressed, allocated at its
// exact size. cmd is *scratch grown, which it gives back to encodeScratch.
func compressBody(scratch *[]byte, cmd []byte, head int) []byte {
	zs, _ := encodeScratch.Get().(*[]byte)
	if zs == nil {
		zs = new([]byte)
	}
	z := slices.Grow((*zs)[:0], s2.MaxEncodedLen(len(cmd)-head))
	z = s2.Encode(z[:cap(z)], cmd[head:])
	out := make([]byte, head+len(z))
	copy(out, cmd[:head])
	copy(out[head:], z)
	putScratch(scratch, cmd)
	putScratch(zs, z[:cap(z)])
	return out
}

// maxDecodedBytes bounds a compressed batch's events, decompressed.
const maxDecodedBytes = 64 << 20

// decompress returns the events of a KindEventBatchS2 body.
func decompress(body []byte) ([]byte, error) { return decompressInto(nil, body) }

// decompressInto is decompress into buf's array when it is large enough,
// else into a new one.
func decompressInto(buf, body []byte) ([]byte, error) {
	n, err := s2.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("%w: compressed events: %v", ErrCodec, err)
	}
	if n > maxDecodedBytes {
		return nil, fmt.Errorf("%w: compressed events of %d bytes, more than %d", ErrCodec, n, maxDecodedBytes)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	out, err := s2.Decode(buf[:n], body)
	if err != nil {
		return nil, fmt.Errorf("%w: compressed events: %v", ErrCodec, err)
	}
	return out, nil
}

// putScratch gives buf, the grown *scratch, back to encodeScratch unless
// it is over maxScratch.
func putScratch(scratch *[]byte, buf []byte) {
	if cap(buf) <= maxScratch {
		*scratch = buf
		encodeScratch.Put(scratch)
	}
}

// encodeScratch holds EncodeEvents' buffers, of up to maxScratch bytes.
var encodeScratch sync.Pool

const maxScratch = 4 << 20

// EncodedSize bounds the bytes AppendEvent writes for e, and so the bytes
// it takes in a batch.
func EncodedSize(e *ingest.Event) int {
	n := 5*binary.MaxVarintLen64 + 6 + len(e.Host) + len(e.Source) + len(e.Kind) + len(e.Name)
	for _, a := range e.Attrs {
		n += 4 + len(a.Key) + len(a.Value)
	}
	return n
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
	return appendTail(b, e)
}

func appendTail(b []byte, e *ingest.Event) []byte {
	b = wire.AppendString(b, e.Name)
	b = binary.AppendVarint(b, e.DurNs)
	b = binary.AppendUvarint(b, uint64(len(e.Attrs)))
	for _, a := range e.Attrs {
		b = wire.AppendString(b, a.Key)
		b = wire.AppendString(b, a.Value)
	}
	return b
}

// appendBatchEvent encodes e against prev, the event before it.
func appendBatchEvent(b []byte, prev, e *ingest.Event) []byte {
	var flags byte
	if e.Host != prev.Host {
		flags |= newHost
	}
	if e.Source != prev.Source {
		flags |= newSource
	}
	if e.Kind != prev.Kind {
		flags |= newKind
	}
	if e.RefEarliest != prev.RefEarliest || e.RefLatest != prev.RefLatest {
		flags |= newRef
	}
	b = append(b, flags)
	if flags&newHost != 0 {
		b = wire.AppendString(b, e.Host)
	}
	if flags&newSource != 0 {
		b = wire.AppendString(b, e.Source)
	}
	if flags&newKind != 0 {
		b = wire.AppendString(b, e.Kind)
	}
	b = binary.AppendVarint(b, int64(e.SourceSeq-prev.SourceSeq))
	b = binary.AppendVarint(b, int64(uint64(e.LocalNs)-uint64(prev.LocalNs)))
	if flags&newRef != 0 {
		b = binary.AppendVarint(b, int64(uint64(e.RefEarliest)-uint64(prev.RefEarliest)))
		b = binary.AppendVarint(b, int64(uint64(e.RefLatest)-uint64(prev.RefLatest)))
	}
	return appendTail(b, e)
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

// decodeEvents decodes an Events command after its kind and version byte.
func decodeEvents(kind Kind, buf []byte) (Events, error) {
	b, body, err := decodeEventsPlace(kind, buf)
	if err != nil {
		return b, err
	}
	r, err := newBatchReader(kind, body)
	if err != nil {
		return b, err
	}
	b.Events = make([]ingest.Event, 0, r.n)
	for r.next() {
		b.Events = append(b.Events, r.cur.event())
	}
	return b, r.finish()
}

// decodeEventsPlace reads an Events command's place in its pipeline (none
// for KindEvents) from buf, what follows the kind and version bytes, and
// returns the rest.
func decodeEventsPlace(kind Kind, buf []byte) (Events, []byte, error) {
	var b Events
	if !kind.sequenced() {
		return b, buf, nil
	}
	var place [3]uint64
	for i := range place {
		v, k := binary.Uvarint(buf)
		if k <= 0 {
			return b, nil, fmt.Errorf("%w: bad uvarint", ErrCodec)
		}
		place[i], buf = v, buf[k:]
	}
	b.Origin, b.Epoch, b.Batch = consensus.NodeID(place[0]), place[1], place[2]
	if b.Origin == 0 || b.Epoch == 0 || b.Batch == 0 {
		return b, nil, fmt.Errorf("%w: event batch %d/%d of node %d", ErrCodec, b.Epoch, b.Batch, b.Origin)
	}
	return b, buf, nil
}

// eventParts is one event as a batchReader reads it, aliasing the
// command: the parts of AppendEvent's encoding.
type eventParts struct {
	host, source, kind []byte
	seq                uint64
	localNs            int64
	refEarliest        int64
	refLatest          int64
	tail               []byte // name, duration and attributes
	whole              []byte // the event alone, when the command holds it so
}

// appendTo appends the event as AppendEvent encodes it.
func (p *eventParts) appendTo(b []byte) []byte {
	if p.whole != nil {
		return append(b, p.whole...)
	}
	b = binary.AppendUvarint(b, uint64(len(p.host)))
	b = append(b, p.host...)
	b = binary.AppendUvarint(b, uint64(len(p.source)))
	b = append(b, p.source...)
	b = binary.AppendUvarint(b, p.seq)
	b = binary.AppendVarint(b, p.localNs)
	b = binary.AppendVarint(b, p.refEarliest)
	b = binary.AppendVarint(b, p.refLatest)
	b = binary.AppendUvarint(b, uint64(len(p.kind)))
	b = append(b, p.kind...)
	return append(b, p.tail...)
}

func (p *eventParts) event() ingest.Event {
	e := ingest.Event{Host: string(p.host), Source: string(p.source), SourceSeq: p.seq, LocalNs: p.localNs,
		RefEarliest: p.refEarliest, RefLatest: p.refLatest, Kind: string(p.kind)}
	d := wire.NewDecoder(p.tail, ErrCodec)
	e.Name, e.DurNs = d.String(), d.Varint()
	if n := d.Count(2); n > 0 {
		e.Attrs = make([]ingest.Attr, n)
		for i := range e.Attrs {
			e.Attrs[i] = ingest.Attr{Key: d.String(), Value: d.String()}
		}
	}
	return e // the tail was checked when read
}

// batchReader reads the events of an Events command in order, checking
// each as it goes.
type batchReader struct {
	batch bool   // the sequenced form, each event against the one before
	b     []byte // what is left
	n, i  int    // events in all, and read
	cur   eventParts
	err   error
}

func newBatchReader(kind Kind, body []byte) (batchReader, error) {
	r := batchReader{batch: kind.sequenced()}
	if kind == KindEventBatchS2 {
		var err error
		if body, err = decompress(body); err != nil {
			return r, err
		}
	}
	n, k := binary.Uvarint(body)
	if k <= 0 {
		return r, fmt.Errorf("%w: bad uvarint", ErrCodec)
	}
	r.b = body[k:]
	minBytes := minEventBytes
	if r.batch {
		minBytes = minBatchEventBytes
	}
	if n > uint64(len(r.b)/minBytes) {
		return r, fmt.Errorf("%w: count %d with %d bytes left", ErrCodec, n, len(r.b))
	}
	r.n = int(n)
	return r, nil
}

// next reads the next event into cur; false at the end or on a failure.
func (r *batchReader) next() bool {
	if r.err != nil || r.i == r.n {
		return false
	}
	start := r.b
	var ok bool
	if r.batch {
		ok = r.readBatchEvent()
	} else {
		ok = r.readEvent()
		r.cur.whole = start[:len(start)-len(r.b)]
	}
	if !ok {
		r.err = fmt.Errorf("%w: event %d of %d is malformed", ErrCodec, r.i, r.n)
		return false
	}
	r.i++
	return true
}

// finish reports a failure, or input left after the last event.
func (r *batchReader) finish() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrCodec, len(r.b))
	}
	return r.err
}

func (r *batchReader) readEvent() bool {
	c := &r.cur
	var ok1, ok2, ok3 bool
	c.host, ok1 = r.str()
	c.source, ok2 = r.str()
	c.seq, ok3 = r.uvarint()
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	var ok [3]bool
	c.localNs, ok[0] = r.varint()
	c.refEarliest, ok[1] = r.varint()
	c.refLatest, ok[2] = r.varint()
	if !ok[0] || !ok[1] || !ok[2] {
		return false
	}
	if c.kind, ok1 = r.str(); !ok1 {
		return false
	}
	return r.readTail()
}

func (r *batchReader) readBatchEvent() bool {
	c := &r.cur
	c.whole = nil
	if len(r.b) == 0 || r.b[0]&^allFlags != 0 {
		return false
	}
	flags := r.b[0]
	r.b = r.b[1:]
	ok := true
	if flags&newHost != 0 {
		c.host, ok = r.str()
	}
	if ok && flags&newSource != 0 {
		c.source, ok = r.str()
	}
	if ok && flags&newKind != 0 {
		c.kind, ok = r.str()
	}
	var d [4]int64
	nd := 2
	if flags&newRef != 0 {
		nd = 4
	}
	for i := 0; ok && i < nd; i++ {
		d[i], ok = r.varint()
	}
	if !ok {
		return false
	}
	c.seq += uint64(d[0])
	c.localNs = int64(uint64(c.localNs) + uint64(d[1]))
	c.refEarliest = int64(uint64(c.refEarliest) + uint64(d[2]))
	c.refLatest = int64(uint64(c.refLatest) + uint64(d[3]))
	return r.readTail()
}

// readTail reads the name, duration and attributes into cur.tail.
func (r *batchReader) readTail() bool {
	start := r.b
	if _, ok := r.str(); !ok {
		return false
	}
	if _, ok := r.varint(); !ok {
		return false
	}
	attrs, ok := r.uvarint()
	if !ok || attrs > uint64(len(r.b)/2) {
		return false
	}
	for i := uint64(0); i < 2*attrs; i++ {
		if _, ok := r.str(); !ok {
			return false
		}
	}
	r.cur.tail = start[:len(start)-len(r.b)]
	return true
}

// The readers below take a one-byte varint, the common case (lengths
// and deltas below 128, small counts), without a call.

func (r *batchReader) str() ([]byte, bool) {
	n, ok := r.uvarint()
	if !ok || n > uint64(len(r.b)) {
		return nil, false
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s, true
}

func (r *batchReader) uvarint() (uint64, bool) {
	if len(r.b) > 0 && r.b[0] < 0x80 {
		v := uint64(r.b[0])
		r.b = r.b[1:]
		return v, true
	}
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		return 0, false
	}
	r.b = r.b[k:]
	return v, true
}

// varint reads a zig-zag varint, as binary.Varint does.
func (r *batchReader) varint() (int64, bool) {
	u, ok := r.uvarint()
	return int64(u>>1) ^ -int64(u&1), ok
}

// Committed is a run of newly committed events: the ones Apply took from
// one command, with consecutive GSNs from First, in command order. Its
// bytes alias the command (or, from ParseBlock, the block).
type Committed struct {
	First uint64
	Len   int
	kind  Kind
	body  []byte // the command's events, checked
	dups  []int  // the batch indexes Apply dropped as duplicates, ascending
}

// walk calls fn with every committed event's GSN and parts.
func (c Committed) walk(fn func(gsn uint64, p *eventParts)) error {
	r, err := newBatchReader(c.kind, c.body)
	if err != nil {
		return err
	}
	gsn, d := c.First, 0
	for i := 0; r.next(); i++ {
		if d < len(c.dups) && c.dups[d] == i {
			d++
			continue
		}
		fn(gsn, &r.cur)
		gsn++
	}
	return r.finish()
}

// Each calls fn with every event's GSN and its encoding in AppendEvent's
// format; the slice is valid only during the call.
func (c Committed) Each(fn func(gsn uint64, event []byte)) {
	var buf []byte
	err := c.walk(func(gsn uint64, p *eventParts) {
		if p.whole != nil {
			fn(gsn, p.whole)
			return
		}
		buf = p.appendTo(buf[:0])
		fn(gsn, buf)
	})
	if err != nil {
		panic(fmt.Sprintf("ordering: committed events %d.. no longer decode: %v", c.First, err))
	}
}

// Events decodes the events.
func (c Committed) Events() []LogEvent {
	out := make([]LogEvent, 0, c.Len)
	if err := c.walk(func(gsn uint64, p *eventParts) {
		out = append(out, LogEvent{GSN: gsn, Event: p.event()})
	}); err != nil {
		panic(fmt.Sprintf("ordering: committed events %d.. no longer decode: %v", c.First, err))
	}
	return out
}

// A block is a Committed kept as it is, in the event store:
//
//	uvarint first | uvarint len | byte kind | uvarint dups |
//	{ uvarint gap to the duplicate before (the first: its index) }*dups |
//	the command's events

// AppendBlockHead appends the block's head; the block is the head, then
// BlockBody.
func (c Committed) AppendBlockHead(b []byte) []byte {
	b = binary.AppendUvarint(b, c.First)
	b = binary.AppendUvarint(b, uint64(c.Len))
	b = append(b, byte(c.kind))
	b = binary.AppendUvarint(b, uint64(len(c.dups)))
	prev := 0
	for _, d := range c.dups {
		b = binary.AppendUvarint(b, uint64(d-prev))
		prev = d
	}
	return b
}

// BlockBody is the rest of the block after its head.
func (c Committed) BlockBody() []byte { return c.body }

// BlockSpan reads a block's first GSN and length, without checking it.
func BlockSpan(block []byte) (first uint64, n int, err error) {
	first, k := binary.Uvarint(block)
	if k <= 0 {
		return 0, 0, fmt.Errorf("%w: block head", ErrCodec)
	}
	l, m := binary.Uvarint(block[k:])
	if m <= 0 || l > uint64(len(block)) || first == 0 {
		return 0, 0, fmt.Errorf("%w: block head", ErrCodec)
	}
	return first, int(l), nil
}

// ParseBlock reads a block that AppendBlockHead and BlockBody wrote,
// checking all of it. The result aliases block, but for a compressed
// one's, whose events it holds decompressed (decompressed once, to check
// them, for every reader after).
func ParseBlock(block []byte) (Committed, error) {
	var c Committed
	first, n, err := BlockSpan(block)
	if err != nil {
		return c, err
	}
	c.First, c.Len = first, n
	r := batchReader{b: block}
	r.uvarint()
	r.uvarint()
	if len(r.b) == 0 || !Kind(r.b[0]).IsEvents() {
		return c, fmt.Errorf("%w: block of kind %v", ErrCodec, r.b)
	}
	c.kind, r.b = Kind(r.b[0]), r.b[1:]
	dups, ok := r.uvarint()
	if !ok || dups > uint64(len(r.b)) {
		return c, fmt.Errorf("%w: block's duplicates", ErrCodec)
	}
	if dups > 0 {
		c.dups = make([]int, dups)
	}
	at := 0
	for i := range c.dups {
		gap, ok := r.uvarint()
		if !ok || (i > 0 && gap == 0) || gap > uint64(len(block)) {
			return c, fmt.Errorf("%w: block's duplicates", ErrCodec)
		}
		at += int(gap)
		c.dups[i] = at
	}
	c.body = r.b
	if c.kind == KindEventBatchS2 {
		if c.body, err = decompress(c.body); err != nil {
			return c, err
		}
		c.kind = KindEventBatch
	}
	all, err := newBatchReader(c.kind, c.body)
	if err != nil {
		return c, err
	}
	for all.next() {
	}
	if err := all.finish(); err != nil {
		return c, err
	}
	if len(c.dups) > 0 && c.dups[len(c.dups)-1] >= all.n || all.n-len(c.dups) != c.Len || c.Len == 0 {
		return c, fmt.Errorf("%w: block of %d events, %d duplicates, %d committed", ErrCodec, all.n, len(c.dups), c.Len)
	}
	return c, nil
}
