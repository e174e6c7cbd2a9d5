package wire

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Field encoders. Every body is a sequence of fields in struct order:
// uint8 as one byte, uint64 as a minimal unsigned LEB128 varint, strings and
// byte slices as a varint length followed by the bytes, lists as a varint
// count followed by the elements.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// decoder reads the fields of one body. After the first failure every method
// returns a zero value and err keeps the first error, so message decoders
// read all their fields and check err once at the end. It allocates only to
// build an error.
type decoder struct {
	body []byte
	off  int
	t    Type   // message being decoded, for error messages
	list string // list being decoded ("" if none), for error messages
	idx  int    // index of the list element being decoded
	err  error
}

func newDecoder(t Type, body []byte) decoder {
	return decoder{body: body, t: t}
}

// left returns the number of bytes not yet decoded.
func (d *decoder) left() int { return len(d.body) - d.off }

// fail records a malformed field, unless an error is already recorded.
func (d *decoder) fail(field, format string, args ...any) {
	if d.err != nil {
		return
	}
	name := d.t.String()
	if d.list != "" {
		name += "." + d.list + "[" + strconv.Itoa(d.idx) + "]"
	}
	if field != "" {
		name += "." + field
	}
	d.err = &FrameError{
		Offset: -1,
		Type:   d.t,
		Reason: name + ": " + fmt.Sprintf(format, args...),
		Err:    ErrMalformed,
	}
}

func (d *decoder) u8(field string) uint8 {
	if d.err != nil {
		return 0
	}
	if d.left() < 1 {
		d.fail(field, "missing: body ends after %d bytes", len(d.body))
		return 0
	}
	v := d.body[d.off]
	d.off++
	return v
}

func (d *decoder) uvarint(field string) uint64 {
	// Fast path, small enough to inline: most varints of a frame (flags,
	// lengths, small ids) are one byte. It does not look at d.err: after an
	// error the fields decoded are thrown away, and the first error stays.
	if i := d.off; i < len(d.body) {
		if b := d.body[i]; b < 0x80 {
			d.off = i + 1
			return uint64(b)
		}
	}
	return d.uvarintSlow(field)
}

func (d *decoder) uvarintSlow(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.body[d.off:])
	switch {
	case n == 0:
		if d.left() == 0 {
			d.fail(field, "missing: body ends after %d bytes", len(d.body))
		} else {
			d.fail(field, "truncated varint at body offset %d", d.off)
		}
		return 0
	case n < 0:
		d.fail(field, "varint overflows 64 bits at body offset %d", d.off)
		return 0
	case n > 1 && d.body[d.off+n-1] == 0:
		d.fail(field, "non-minimal varint at body offset %d", d.off)
		return 0
	}
	d.off += n
	return v
}

// length reads a length or count prefix and checks that at least
// length*minSize bytes follow it.
func (d *decoder) length(field string, minSize int) int {
	n := d.uvarint(field)
	if d.err != nil {
		return 0
	}
	if left := d.left(); n > uint64(left)/uint64(minSize) {
		if minSize == 1 {
			d.fail(field, "length %d beyond end of body (%d bytes left)", n, left)
		} else {
			d.fail(field, "count %d beyond end of body (%d bytes left, %d needed per element)", n, left, minSize)
		}
		return 0
	}
	return int(n)
}

// bytes returns the next length-prefixed bytes, aliasing the body; nil if
// empty.
func (d *decoder) bytes(field string) []byte {
	n := d.length(field, 1)
	if n == 0 {
		return nil
	}
	b := d.body[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

// str returns the next length-prefixed string, copied out of the body.
func (d *decoder) str(field string) string {
	return string(d.bytes(field))
}

// strReuse is str, but returns old instead of a new copy when the bytes
// equal it, which avoids an allocation when a decoded struct is reused.
func (d *decoder) strReuse(field, old string) string {
	b := d.bytes(field)
	if string(b) == old {
		return old
	}
	return string(b)
}

// finish checks that the whole body was decoded and returns the first error.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.body) {
		d.list = ""
		d.fail("", "%d trailing bytes after the last field", d.left())
	}
	return d.err
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// maxPositions bounds a list of per-lane positions.
const maxPositions = 16

func appendUvarints(b []byte, vs []uint64) []byte {
	b = appendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = appendUvarint(b, v)
	}
	return b
}

// uvarints decodes a list of at most maxPositions varints.
func (d *decoder) uvarints(field string) []uint64 { return d.uvarintList(field, maxPositions) }

// MaxPartitions bounds a partitioned group's number of partitions, and so
// the length of a partition list.
const MaxPartitions = 1 << 16

func appendPartitions(b []byte, ps []uint64) []byte { return appendUvarints(b, ps) }

// partitions decodes a partition list of at most MaxPartitions entries.
func (d *decoder) partitions(field string) []uint64 { return d.uvarintList(field, MaxPartitions) }

// uvarintList decodes a list of at most max varints, each at least one byte
// (the count is checked against the body before allocating).
func (d *decoder) uvarintList(field string, max int) []uint64 {
	n := d.length(field, 1)
	if n > max {
		d.fail(field, "%d entries, at most %d allowed", n, max)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = d.uvarint(field)
	}
	return out
}
