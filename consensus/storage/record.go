package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/clockd/clockd/consensus"
)

// keyHardState is the stable-store key of the encoded HardState.
var keyHardState = []byte("hardstate")

func appendHardState(dst []byte, hs consensus.HardState) []byte {
	dst = binary.AppendUvarint(dst, hs.Promised.Round)
	dst = binary.AppendUvarint(dst, uint64(hs.Promised.Node))
	return binary.AppendUvarint(dst, hs.Commit)
}

func decodeHardState(buf []byte) (consensus.HardState, error) {
	var hs consensus.HardState
	var v [3]uint64
	for i := range v {
		x, n := binary.Uvarint(buf)
		if n <= 0 {
			return hs, fmt.Errorf("%w: hardstate field %d: bad varint", ErrCorrupt, i)
		}
		v[i] = x
		buf = buf[n:]
	}
	if len(buf) != 0 {
		return hs, fmt.Errorf("%w: hardstate: %d trailing bytes", ErrCorrupt, len(buf))
	}
	hs.Promised = consensus.Ballot{Round: v[0], Node: consensus.NodeID(v[1])}
	hs.Commit = v[2]
	return hs, nil
}

// appendRecord appends the log record Data for e, saved when the node's
// Commit was commitHint.
func appendRecord(dst []byte, commitHint uint64, e *consensus.Entry) []byte {
	dst = binary.AppendUvarint(dst, commitHint)
	return consensus.AppendEntry(dst, e)
}

// decodeRecord decodes the Data of the record at index slot. The entry does
// not alias buf.
func decodeRecord(slot uint64, buf []byte) (commitHint uint64, e consensus.Entry, err error) {
	commitHint, n := binary.Uvarint(buf)
	if n <= 0 {
		return 0, e, fmt.Errorf("%w: commit hint: bad varint", ErrCorrupt)
	}
	e, err = consensus.DecodeEntry(buf[n:])
	if err != nil {
		return 0, e, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if e.Slot != slot {
		return 0, e, fmt.Errorf("%w: entry names slot %d", ErrCorrupt, e.Slot)
	}
	return commitHint, e, nil
}
