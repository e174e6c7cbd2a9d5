// Package payload builds the benchmark's messages and accounts for them at
// the receiver: every payload carries a sequence number, its intended send
// time and a CRC of its body, so a Checker can count what was delivered,
// lost, duplicated, out of order, corrupted or unexpected.
package payload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// HeaderSize is the smallest payload: sequence number (8 bytes), intended
// send time in Unix nanoseconds (8) and the CRC-32C of the rest (4).
const HeaderSize = 20

var table = crc32.MakeTable(crc32.Castagnoli)

// ErrTooSmall is returned for a payload size below HeaderSize.
var ErrTooSmall = errors.New("payload smaller than its header")

// ErrCorrupt is returned by Parse for a payload whose body does not match its CRC.
var ErrCorrupt = errors.New("payload corrupted")

// Builder makes payloads of one size; the body is a fixed pattern, so its CRC
// is computed once.
type Builder struct {
	size int
	body []byte
	crc  uint32
}

// NewBuilder returns a Builder of payloads of size bytes.
func NewBuilder(size int) (*Builder, error) {
	if size < HeaderSize {
		return nil, fmt.Errorf("payload size %d: %w (%d bytes)", size, ErrTooSmall, HeaderSize)
	}
	body := make([]byte, size-HeaderSize)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	return &Builder{size: size, body: body, crc: crc32.Checksum(body, table)}, nil
}

// Size is the payload size in bytes.
func (b *Builder) Size() int { return b.size }

// Append appends the payload of sequence number seq with intended send time at to dst.
func (b *Builder) Append(dst []byte, seq uint64, at time.Time) []byte {
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(at.UnixNano()))
	dst = binary.BigEndian.AppendUint32(dst, b.crc)
	return append(dst, b.body...)
}

// Header is what a payload says about itself.
type Header struct {
	Seq uint64
	At  time.Time // intended send time
}

// Parse reads p's header and checks its body against the CRC.
func Parse(p []byte) (Header, error) {
	if len(p) < HeaderSize {
		return Header{}, fmt.Errorf("payload of %d bytes: %w (%d bytes)", len(p), ErrTooSmall, HeaderSize)
	}
	h := Header{Seq: binary.BigEndian.Uint64(p), At: time.Unix(0, int64(binary.BigEndian.Uint64(p[8:])))}
	if crc32.Checksum(p[HeaderSize:], table) != binary.BigEndian.Uint32(p[16:]) {
		return h, fmt.Errorf("payload seq %d: %w", h.Seq, ErrCorrupt)
	}
	return h, nil
}
