package wire

import (
	"bytes"
	"io"
	"testing"
)

// chunks is a reader that returns its chunks one per Read, as a socket
// returns what has arrived.
type chunks struct{ c [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.c[0])
	if n == len(c.c[0]) {
		c.c = c.c[1:]
	} else {
		c.c[0] = c.c[0][n:]
	}
	return n, nil
}

// A quiet stream holds the small buffer; a busy one grows to the large one
// and, once quiet again, lets it go.
func TestSourceGrowsAndShrinks(t *testing.T) {
	var in [][]byte
	var want []byte
	add := func(n int, b byte) {
		c := bytes.Repeat([]byte{b}, n)
		in = append(in, c)
		want = append(want, c...)
	}
	add(100, 'a') // quiet
	for range 10 {
		add(largeReadBuffer, 'b') // busy: every read fills the buffer
	}
	for range shrinkAfter + 2 {
		add(50, 'c') // quiet again
	}
	s := newSource(&chunks{c: in})
	var got []byte
	sizes := map[int]bool{}
	p := make([]byte, 1000)
	for {
		n, err := s.Read(p)
		got = append(got, p[:n]...)
		sizes[len(s.buf)] = true
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d (or content differs)", len(got), len(want))
	}
	if !sizes[smallReadBuffer] || !sizes[largeReadBuffer] {
		t.Fatalf("buffer sizes seen %v: want both %d and %d", sizes, smallReadBuffer, largeReadBuffer)
	}
	if len(s.buf) != smallReadBuffer {
		t.Fatalf("after %d quiet reads the buffer is %d bytes, want %d", shrinkAfter+2, len(s.buf), smallReadBuffer)
	}
}

// An idle stream after a few small frames holds no more than the small
// buffer (an idle link's memory).
func TestReaderIdleHoldsSmallBuffer(t *testing.T) {
	var stream []byte
	for i := range 5 {
		stream = AppendFrame(stream, &Ping{Echo: uint64(i)})
	}
	r := NewReader(bytes.NewReader(stream), 0)
	for range 5 {
		if _, _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	if got := cap(r.br.(*source).buf); got > smallReadBuffer {
		t.Fatalf("read buffer of %d bytes for an idle stream", got)
	}
}
