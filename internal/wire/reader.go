package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// growStep is the least a Reader's body buffer grows by while a large body
// arrives.
const growStep = 64 << 10

// Reader reads frames from a stream. It is not safe for concurrent use.
type Reader struct {
	br       io.Reader // a *bufio.Reader given to NewReader, else a *source
	maxBody  int
	buf      []byte // body buffer, reused across frames
	hdr      [HeaderSize]byte
	off      int64 // bytes consumed from br
	frameOff int64 // offset of the last frame's header
	err      error // sticky error
}

// NewReader returns a Reader reading frames from r and rejecting bodies
// longer than maxBody bytes (DefaultMaxBody if maxBody <= 0). Unless r is
// already a *bufio.Reader, it is buffered by a buffer of 4 KiB that grows to
// 64 KiB while the stream is busy.
func NewReader(r io.Reader, maxBody int) *Reader {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if uint64(maxBody) >= maxLength {
		maxBody = maxLength - 1
	}
	var br io.Reader
	if b, ok := r.(*bufio.Reader); ok {
		br = b
	} else {
		br = newSource(r)
	}
	return &Reader{br: br, maxBody: maxBody, frameOff: -1}
}

// Buffered returns how many bytes the Reader holds that no ReadFrame has
// returned yet: at 0, the next ReadFrame waits for the stream.
func (r *Reader) Buffered() int {
	switch b := r.br.(type) {
	case *source:
		return b.w - b.r
	case *bufio.Reader:
		return b.Buffered()
	}
	return 0
}

// Offset returns the number of bytes consumed from the stream so far.
func (r *Reader) Offset() int64 { return r.off }

// FrameOffset returns the stream offset of the header of the frame last
// returned (or rejected) by ReadFrame, -1 before the first one. Use it to fill
// in FrameError.Offset for an error returned by a DecodeBody.
func (r *Reader) FrameOffset() int64 { return r.frameOff }

// ReadFrame reads the next frame and returns its type and body. The body is
// valid only until the next call: the Reader reuses its buffer.
//
// It returns io.EOF if the stream ends cleanly between two frames and
// io.ErrUnexpectedEOF if it ends inside one. A header with a bad version,
// nonzero flags or a body length over the limit yields a *FrameError
// (wrapping ErrBadVersion, ErrBadFlags or ErrFrameTooLarge), returned
// before anything is allocated for the body. The frame type is not checked
// here: Decode rejects undefined types. After an error, every later call
// returns the same error.
func (r *Reader) ReadFrame() (Type, []byte, error) {
	if r.err != nil {
		return 0, nil, r.err
	}
	t, body, err := r.readFrame()
	if err != nil {
		r.err = err
		return 0, nil, err
	}
	return t, body, nil
}

func (r *Reader) readFrame() (Type, []byte, error) {
	r.frameOff = r.off
	if s, ok := r.br.(*source); ok {
		if t, body, ok := r.sliceFrame(s); ok {
			return t, body, nil
		}
	}
	n, err := io.ReadFull(r.br, r.hdr[:])
	r.off += int64(n)
	if err != nil {
		return 0, nil, err // io.EOF only if no byte was read
	}
	t := Type(r.hdr[1])
	if v := r.hdr[0]; v != Version {
		return t, nil, r.headerError(t, ErrBadVersion, fmt.Sprintf("version %d, want %d", v, Version))
	}
	if f := binary.BigEndian.Uint16(r.hdr[2:4]); f != 0 {
		return t, nil, r.headerError(t, ErrBadFlags, fmt.Sprintf("flags %#04x, want 0", f))
	}
	length := binary.BigEndian.Uint32(r.hdr[4:8])
	if uint64(length) > uint64(r.maxBody) {
		return t, nil, r.headerError(t, ErrFrameTooLarge,
			fmt.Sprintf("body length %d exceeds limit %d", length, r.maxBody))
	}
	body, err := r.readBody(int(length))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return t, body, nil
}

// sliceFrame is readFrame's fast path: when the whole frame is already in
// the source's buffer and its header is good, the body is returned as a
// slice of that buffer (no copy), valid until the next read like any body.
// Otherwise it consumes nothing and returns false, and readFrame takes the
// general path (which also reports any error in the header).
func (r *Reader) sliceFrame(s *source) (Type, []byte, bool) {
	b := s.buf[s.r:s.w]
	if len(b) < HeaderSize || b[0] != Version || b[2] != 0 || b[3] != 0 {
		return 0, nil, false
	}
	length := binary.BigEndian.Uint32(b[4:8])
	if uint64(length) > uint64(r.maxBody) || uint64(length) > uint64(len(b)-HeaderSize) {
		return 0, nil, false
	}
	n := HeaderSize + int(length)
	s.r += n
	r.off += int64(n)
	return Type(b[1]), b[HeaderSize:n:n], true
}

func (r *Reader) headerError(t Type, sentinel error, reason string) error {
	return &FrameError{Offset: r.frameOff, Type: t, Reason: reason, Err: sentinel}
}

// readBody reads n <= maxBody bytes into the reused buffer. When the buffer
// is too small it grows as the bytes arrive rather than all at once, so a
// peer announcing a large body without sending it makes us hold little.
func (r *Reader) readBody(n int) ([]byte, error) {
	if n <= cap(r.buf) {
		b := r.buf[:n]
		m, err := io.ReadFull(r.br, b)
		r.off += int64(m)
		return b, err
	}
	b := r.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			c := max(2*cap(b), growStep)
			c = min(c, n)
			nb := make([]byte, len(b), c)
			copy(nb, b)
			b = nb
			r.buf = nb
		}
		m, err := io.ReadFull(r.br, b[len(b):cap(b)])
		r.off += int64(m)
		b = b[:len(b)+m]
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// ReadMessage reads the next frame and decodes it with Decode. Errors are
// those of ReadFrame and Decode; a decoding *FrameError carries the frame's
// stream offset. Payloads alias the Reader's buffer and are valid only until
// the next read.
func (r *Reader) ReadMessage() (Message, error) {
	t, body, err := r.ReadFrame()
	if err != nil {
		return nil, err
	}
	m, err := Decode(t, body)
	if err != nil {
		var fe *FrameError
		if errors.As(err, &fe) && fe.Offset < 0 {
			fe.Offset = r.frameOff
		}
		return nil, err
	}
	return m, nil
}
