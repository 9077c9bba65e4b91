package consensus

// slotLog holds an acceptor's records, indexed by slot. Slots start at 1; a
// record with Slot == 0 is a hole (nothing accepted there).
//
// Invariant: ents[i].Slot is 0 or i+1.
type slotLog struct {
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
// The pointer is valid until the next set.
func (l *slotLog) ref(s uint64) *Entry {
	if s == 0 || s > uint64(len(l.ents)) || l.ents[s-1].Slot == 0 {
		return nil
	}
	return &l.ents[s-1]
}

func (l *slotLog) set(e Entry) {
	for uint64(len(l.ents)) < e.Slot {
		l.ents = append(l.ents, Entry{})
	}
	l.ents[e.Slot-1] = e
}

// last is the highest slot with a record, 0 if none.
func (l *slotLog) last() uint64 {
	for i := len(l.ents) - 1; i >= 0; i-- {
		if l.ents[i].Slot != 0 {
			return uint64(i + 1)
		}
	}
	return 0
}
