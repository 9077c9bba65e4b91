package driver

import (
	"fmt"

	"github.com/clockd/clockd/consensus"
)

// The persister writes Readies in the background, so the driver goroutine
// keeps stepping messages and proposals while a write is in flight.
// Readies that queue up during one fsync are written together in the next
// (group commit). Jobs run in order; a Ready's Messages are sent only
// once its write is durable, and the driver is then told, in order.

// persistJob is one unit of background storage work: a Ready to write, or
// a compaction (run after every write queued before it).
type persistJob struct {
	rd      *consensus.Ready
	compact uint64 // with rd == nil: compact the log up to this slot
}

// maxMergedReadies bounds how many queued Readies one write merges.
const maxMergedReadies = 64

func (r *Replica) persistLoop() {
	defer close(r.persistDone)
	for {
		var batch []*consensus.Ready
		select {
		case <-r.persistStop:
			return
		case j := <-r.persistQ:
			if j.rd == nil {
				if err := r.store.Compact(j.compact); err != nil {
					r.persistFailed(fmt.Errorf("driver: compact storage to %d: %w", j.compact, err))
					return
				}
				continue
			}
			batch = append(batch, j.rd)
		}
		batch, next := r.gather(batch)
		if err := r.writeBatch(batch); err != nil {
			r.persistFailed(err)
			return
		}
		if next != nil {
			if err := r.store.Compact(next.compact); err != nil {
				r.persistFailed(fmt.Errorf("driver: compact storage to %d: %w", next.compact, err))
				return
			}
		}
	}
}

// gather adds the Readies already queued to batch, stopping at a
// compaction, which it returns to run after the batch.
func (r *Replica) gather(batch []*consensus.Ready) ([]*consensus.Ready, *persistJob) {
	for len(batch) < maxMergedReadies {
		select {
		case j := <-r.persistQ:
			if j.rd == nil {
				return batch, &j
			}
			batch = append(batch, j.rd)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// writeBatch makes every Ready in batch durable with one write, then sends
// their messages and hands them back to the driver goroutine, in order.
func (r *Replica) writeBatch(batch []*consensus.Ready) error {
	var ents []consensus.Entry
	hsChanged := false
	for _, rd := range batch {
		ents = append(ents, rd.Entries...)
		hsChanged = hsChanged || rd.HardStateChanged
	}
	last := batch[len(batch)-1]
	if hsChanged || len(ents) > 0 {
		if err := r.store.Save(last.HardState, hsChanged, ents); err != nil {
			return fmt.Errorf("driver: storage: %w", err)
		}
	}
	for _, rd := range batch {
		if len(rd.Messages) > 0 {
			r.tr.Send(rd.Messages)
		}
		select {
		case r.persisted <- rd:
		case <-r.persistStop:
			return nil
		}
	}
	return nil
}

func (r *Replica) persistFailed(err error) {
	select {
	case r.persistErr <- err:
	case <-r.persistStop:
	}
}
