package consensus

// slotLog holds an acceptor's records, indexed by slot. Slots start at 1;
// a record with Slot == 0 is a hole (nothing accepted there). Slots at or
// below base were compacted into a snapshot.
//
// Invariant: ents[i].Slot is 0 or base+i+1.
type slotLog struct {
	base uint64
	ents []Entry
}

// get returns the record of slot s, or a zero Entry.
func (l *slotLog) get(s uint64) Entry {
	if e := l.ref(s); e != nil {
		return *e
	}
	return Entry{}
}

// ref returns a pointer to the record of slot s, or nil if there is none.
// The pointer is valid until the next set or compact.
func (l *slotLog) ref(s uint64) *Entry {
	if s <= l.base || s > l.base+uint64(len(l.ents)) || l.ents[s-l.base-1].Slot == 0 {
		return nil
	}
	return &l.ents[s-l.base-1]
}

// set stores e; a slot at or below base is ignored.
func (l *slotLog) set(e Entry) {
	if e.Slot <= l.base {
		return
	}
	for l.base+uint64(len(l.ents)) < e.Slot {
		l.ents = append(l.ents, Entry{})
	}
	l.ents[e.Slot-l.base-1] = e
}

// first is the lowest slot that can hold a record.
func (l *slotLog) first() uint64 { return l.base + 1 }

// last is the highest slot with a record, or base if none.
func (l *slotLog) last() uint64 {
	for i := len(l.ents) - 1; i >= 0; i-- {
		if l.ents[i].Slot != 0 {
			return l.base + uint64(i+1)
		}
	}
	return l.base
}

// compact drops every record at or below upTo.
func (l *slotLog) compact(upTo uint64) {
	if upTo <= l.base {
		return
	}
	k := min(upTo-l.base, uint64(len(l.ents)))
	l.ents = append([]Entry(nil), l.ents[k:]...)
	l.base = upTo
}
