package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/clockd/clockd/consensus"
)

// Stable-store keys. Each value is sealed with a checksum (see appendSum).
var (
	// keyHardState holds the encoded HardState.
	keyHardState = []byte("hardstate")
	// keyCompacted holds the compaction floor: every slot <= it was deleted
	// by Compact and is covered by a snapshot.
	keyCompacted = []byte("compacted")
	// keyLayout holds the layout of the log bucket, layoutParts.
	keyLayout = []byte("layout")
)

// layoutParts is the log bucket's layout: each record in parts of at
// most partBytes, under the keys logKey(slot, 0), logKey(slot, 1), ...
const layoutParts = 2

// A log key holds the slot in its high bits and the part in the low
// partBits: logKey(slot, part) = slot<<partBits | part. Keys sort by slot,
// then part, so a slot's parts are adjacent and a key range covers whole
// slots.
const (
	partBits = 16
	maxSlot  = 1<<(64-partBits) - 1
	maxParts = 1 << partBits
)

// partBytes bounds the Data of one part. bolt keeps at least two values
// in a leaf page and writes the whole leaf again whenever a key is added
// to it, so a record of a few hundred KiB stored whole is written again
// by the next Saves too (4.6 times its size in all, for 300 KiB records).
// In parts of partBytes a Save writes again at most a few parts of the
// record before it.
//
// A part is a little under 32 KiB so that it stays within 32 KiB as
// stored. raft-boltdb encodes each raft.Log with msgpack (at most 77
// bytes around Data) into a buffer that doubles as it fills: for a part
// of exactly 32 KiB the buffer grew to 64 KiB. And bolt's leaves of
// parts (two values each, mostly) have a 16-byte page header and 24
// bytes of element and key per value: two parts of exactly 32 KiB took
// 17 pages, two of partBytes take 16 (TestPartFitsInPages). In all,
// raft-boltdb allocated 5.8 times the bytes of an eight-part record to
// store it, and 3.7 times with the slack.
const partBytes = 32<<10 - partSlack

// partSlack is what partBytes leaves of 32 KiB for the framing above.
const partSlack = 128

// logKey is the log-bucket key (raft.Log Index) of part of slot's record.
func logKey(slot uint64, part int) uint64 { return slot<<partBits | uint64(part) }

// appendLayout appends the sealed value of keyLayout.
func appendLayout(dst []byte) []byte {
	start := len(dst)
	dst = binary.AppendUvarint(dst, layoutParts)
	return appendSum(dst, dst[start:])
}

// sumBytes is the length of the CRC-32C trailer on every stored value.
const sumBytes = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendSum appends the big-endian CRC-32C of body to dst. body is usually
// the tail of dst; it is read before dst is grown.
func appendSum(dst, body []byte) []byte {
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(body, castagnoli))
}

// openSum checks the CRC-32C trailer of a stored value and returns the body
// before it, aliasing buf.
func openSum(buf []byte) ([]byte, error) {
	if len(buf) < sumBytes {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the checksum", ErrCorrupt, len(buf))
	}
	body, trailer := buf[:len(buf)-sumBytes], buf[len(buf)-sumBytes:]
	stored := binary.BigEndian.Uint32(trailer)
	if computed := crc32.Checksum(body, castagnoli); computed != stored {
		return nil, fmt.Errorf("%w: checksum mismatch: stored %08x, computed %08x", ErrCorrupt, stored, computed)
	}
	return body, nil
}

// appendHardState appends the sealed value of keyHardState.
func appendHardState(dst []byte, hs consensus.HardState) []byte {
	start := len(dst)
	dst = binary.AppendUvarint(dst, hs.Promised.Round)
	dst = binary.AppendUvarint(dst, uint64(hs.Promised.Node))
	dst = binary.AppendUvarint(dst, hs.Commit)
	return appendSum(dst, dst[start:])
}

func decodeHardState(buf []byte) (consensus.HardState, error) {
	var hs consensus.HardState
	body, err := openSum(buf)
	if err != nil {
		return hs, err
	}
	var v [3]uint64
	if err := decodeUvarints(body, v[:]); err != nil {
		return hs, err
	}
	hs.Promised = consensus.Ballot{Round: v[0], Node: consensus.NodeID(v[1])}
	hs.Commit = v[2]
	return hs, nil
}

// appendCompacted appends the sealed value of keyCompacted.
func appendCompacted(dst []byte, floor uint64) []byte {
	start := len(dst)
	dst = binary.AppendUvarint(dst, floor)
	return appendSum(dst, dst[start:])
}

func decodeCompacted(buf []byte) (uint64, error) {
	body, err := openSum(buf)
	if err != nil {
		return 0, err
	}
	var v [1]uint64
	if err := decodeUvarints(body, v[:]); err != nil {
		return 0, err
	}
	return v[0], nil
}

// decodeUvarints fills v from body, which must hold exactly len(v) uvarints.
func decodeUvarints(body []byte, v []uint64) error {
	for i := range v {
		x, n := binary.Uvarint(body)
		if n <= 0 {
			return fmt.Errorf("%w: field %d: bad varint", ErrCorrupt, i)
		}
		v[i] = x
		body = body[n:]
	}
	if len(body) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(body))
	}
	return nil
}

// appendRecord appends the sealed log record Data for e, saved when the
// node's Commit was commitHint.
func appendRecord(dst []byte, commitHint uint64, e *consensus.Entry) []byte {
	start := len(dst)
	dst = binary.AppendUvarint(dst, commitHint)
	dst = consensus.AppendEntry(dst, e)
	return appendSum(dst, dst[start:])
}

// decodeRecord checks and decodes the Data of the record at index slot. The
// entry does not alias buf.
func decodeRecord(slot uint64, buf []byte) (commitHint uint64, e consensus.Entry, err error) {
	body, err := openSum(buf)
	if err != nil {
		return 0, e, err
	}
	commitHint, n := binary.Uvarint(body)
	if n <= 0 {
		return 0, e, fmt.Errorf("%w: commit hint: bad varint", ErrCorrupt)
	}
	e, err = consensus.DecodeEntry(body[n:])
	if err != nil {
		return 0, e, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if e.Slot != slot {
		return 0, e, fmt.Errorf("%w: entry names slot %d", ErrCorrupt, e.Slot)
	}
	return commitHint, e, nil
}
