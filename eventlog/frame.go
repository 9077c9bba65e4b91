package eventlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The record framing of the event store's segments, which the daemon's
// spool shares:
//
//	uvarint length | CRC-32C of the payload (4 bytes, little-endian) | payload

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxFrame bounds one payload.
const maxFrame = 64 << 20

// AppendFrame appends payload, framed, to dst.
func AppendFrame(dst, payload []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// appendFrameHead appends the head of the frame whose payload is a then
// b (its length and CRC), for writing a and b after it without copying
// them together.
func appendFrameHead(dst, a, b []byte) []byte {
	crc := crc32.Update(crc32.Update(0, castagnoli, a), castagnoli, b)
	dst = binary.AppendUvarint(dst, uint64(len(a)+len(b)))
	return binary.LittleEndian.AppendUint32(dst, crc)
}

// ReadFrame reads one framed payload and the frame's size on disk. At a
// clean end it returns io.EOF; a torn or damaged frame is another error.
func ReadFrame(r *bufio.Reader) ([]byte, int, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, err
	}
	if n == 0 || n > maxFrame {
		return nil, 0, fmt.Errorf("record length %d", n)
	}
	buf := make([]byte, 4+n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, 0, fmt.Errorf("truncated record: %w", err)
	}
	payload := buf[4:]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(buf) {
		return nil, 0, errors.New("checksum mismatch")
	}
	var lenBuf [binary.MaxVarintLen64]byte
	return payload, binary.PutUvarint(lenBuf[:], n) + 4 + int(n), nil
}
