package wire

import "io"

// Read buffer sizes of a Reader: an idle or lightly used stream holds a
// small buffer, one that keeps filling it switches to a large one, and
// goes back after a run of small reads, letting the large one go. A link
// has several streams and a node many links: 64 KiB per idle stream was
// most of an idle link's memory.
const (
	smallReadBuffer = 4 << 10
	largeReadBuffer = 64 << 10
	// shrinkAfter is how many reads in a row that fit the small buffer
	// make a source drop its large one.
	shrinkAfter = 32
)

// source is the buffered byte source of a Reader: like a bufio.Reader whose
// buffer grows and shrinks with the traffic.
type source struct {
	rd    io.Reader
	buf   []byte // buffered bytes are buf[r:w]
	r, w  int
	small []byte // the small buffer, kept once allocated
	quiet int    // reads in a row that returned less than smallReadBuffer
}

func newSource(rd io.Reader) *source { return &source{rd: rd} }

// reset makes s read from rd, dropping what it buffered.
func (s *source) reset(rd io.Reader) { s.rd, s.r, s.w = rd, 0, 0 }

// Read reads into p like bufio.Reader.Read: from the buffer if it holds
// bytes, else with one read of the underlying reader.
func (s *source) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.r == s.w {
		if len(p) >= largeReadBuffer {
			// A large read goes straight into p: no copy.
			return s.rd.Read(p)
		}
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.r:s.w])
	s.r += n
	return n, nil
}

// fill reads once into an empty buffer, choosing its size first.
func (s *source) fill() error {
	switch {
	case s.buf == nil || (len(s.buf) == largeReadBuffer && s.quiet >= shrinkAfter):
		if s.small == nil {
			s.small = make([]byte, smallReadBuffer)
		}
		s.buf = s.small
	case len(s.buf) == smallReadBuffer && s.quiet == 0 && s.w == smallReadBuffer:
		// The last read filled the small buffer: more is coming.
		s.buf = make([]byte, largeReadBuffer)
	}
	s.r, s.w = 0, 0
	for {
		n, err := s.rd.Read(s.buf)
		if n < 0 || n > len(s.buf) {
			return io.ErrNoProgress
		}
		if n > 0 {
			s.w = n
			if n < smallReadBuffer {
				s.quiet++
			} else {
				s.quiet = 0
			}
			return nil // an error comes again with the next read
		}
		if err != nil {
			return err
		}
	}
}
