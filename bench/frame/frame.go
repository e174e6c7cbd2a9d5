// Package frame is the raw relay chain's framing: the same 8-byte header as
// wandist's wire frames (version, type, two reserved bytes, a 4-byte
// big-endian body length) and a body, read and written through buffers,
// with no acknowledgements.
package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of a frame header.
const HeaderSize = 8

// MaxBody bounds a frame's body.
const MaxBody = 16 << 20

const (
	version  = 1
	typeData = 1
)

// ErrBadFrame is returned for a frame with a wrong version or a body over MaxBody.
var ErrBadFrame = errors.New("bad frame")

// Append appends body as one frame to dst.
func Append(dst, body []byte) []byte {
	dst = append(dst, version, typeData, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// Write writes body as one frame to w.
func Write(w *bufio.Writer, body []byte) error {
	var h [HeaderSize]byte
	h[0], h[1] = version, typeData
	binary.BigEndian.PutUint32(h[4:], uint32(len(body)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// Reader reads frames.
type Reader struct {
	r   *bufio.Reader
	buf []byte
}

// NewReader reads frames from r through a buffer of size bytes.
func NewReader(r io.Reader, size int) *Reader { return &Reader{r: bufio.NewReaderSize(r, size)} }

// Buffered is how many bytes are read from the connection but not yet returned.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// Read returns the next frame's body; it is valid until the next Read.
func (r *Reader) Read() ([]byte, error) {
	var h [HeaderSize]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[4:])
	if h[0] != version || n > MaxBody {
		return nil, fmt.Errorf("%w: version %d, body %d bytes (max %d)", ErrBadFrame, h[0], n, MaxBody)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return r.buf, nil
}

// Forward copies frames from r to w one by one (each is parsed, as a relay
// hop would), flushing w whenever r has nothing more buffered. It returns
// when reading or writing fails (io.EOF at a clean end).
func Forward(w *bufio.Writer, r *Reader) error {
	for {
		b, err := r.Read()
		if err != nil {
			if ferr := w.Flush(); ferr != nil && err == io.EOF {
				return ferr
			}
			return err
		}
		if err := Write(w, b); err != nil {
			return err
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}
