package wire

import (
	"bytes"
	"io"
	"math/rand/v2"
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

// Frames that arrive whole are returned as slices of the read buffer;
// frames cut across reads take the copying path. Both return the same bytes
// and offsets, whatever the cut.
func TestReaderSlicesWholeFramesAndCopiesCutOnes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	var bodies [][]byte
	var offsets []int64
	for i := range 3000 {
		body := make([]byte, rng.IntN(300))
		for j := range body {
			body[j] = byte(i + j)
		}
		offsets = append(offsets, int64(len(stream)))
		var start int
		stream, start = beginFrame(stream, TypeData)
		stream = endFrame(append(stream, body...), start)
		bodies = append(bodies, body)
	}
	for _, maxChunk := range []int{1, 7, 100, 5000, len(stream)} {
		var in [][]byte
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(maxChunk))
			in = append(in, rest[:n])
			rest = rest[n:]
		}
		r := NewReader(&chunks{c: in}, 0)
		sliced := 0
		for i, want := range bodies {
			typ, body, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("chunks up to %d: frame %d: %v", maxChunk, i, err)
			}
			if typ != TypeData || !bytes.Equal(body, want) || r.FrameOffset() != offsets[i] {
				t.Fatalf("chunks up to %d: frame %d: type %v, %d bytes at %d, want %d bytes at %d",
					maxChunk, i, typ, len(body), r.FrameOffset(), len(want), offsets[i])
			}
			if len(body) > 0 && (cap(r.buf) == 0 || &body[0] != &r.buf[:1][0]) {
				sliced++ // not the Reader's own body buffer: the source's
			}
		}
		if _, _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("chunks up to %d: after the last frame: %v, want io.EOF", maxChunk, err)
		}
		switch {
		case maxChunk == 1 && sliced != 0:
			t.Errorf("one byte per read: %d frames sliced from the buffer, want 0", sliced)
		case maxChunk >= 5000 && sliced < len(bodies)*9/10:
			t.Errorf("chunks up to %d: %d of %d frames sliced from the buffer, want nearly all", maxChunk, sliced, len(bodies))
		}
	}
}
