package daemon

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/wandist/wandist/wire"
)

// Frames appended to an outBuf, small and large, across chunk boundaries,
// reach the connection whole and in order, and its count of queued bytes is
// exact.
func TestOutBufChunks(t *testing.T) {
	var o outBuf
	var want bytes.Buffer
	add := func(m *wire.Deliver) {
		b := o.tail(len(m.Payload) + 64)
		n := len(b)
		b = m.AppendFrame(b)
		want.Write(b[n:])
		o.commit(b)
	}
	for i := range 3000 {
		size := 100 + i%300
		if i%1000 == 999 {
			size = 3 * outChunk // larger than a chunk
		}
		add(&wire.Deliver{Mailbox: uint64(i), Payload: bytes.Repeat([]byte{byte(i)}, size)})
		if o.n != want.Len() {
			t.Fatalf("after %d frames: %d bytes queued, want %d", i+1, o.n, want.Len())
		}
	}
	for i, c := range o.chunks { // pool chunks, or a large frame's own
		if len(c) > outChunk && len(c) < 3*outChunk {
			t.Fatalf("chunk %d holds %d bytes: it grew past %d", i, len(c), outChunk)
		}
	}
	chunks, n := o.take(nil)
	if n != want.Len() || o.n != 0 || len(o.chunks) != 0 {
		t.Fatalf("take: %d bytes, %d left, %d chunks left", n, o.n, len(o.chunks))
	}
	a, b := net.Pipe()
	got := make(chan []byte)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	var scratch net.Buffers
	if err := writeChunks(a, chunks, &scratch); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if g := <-got; !bytes.Equal(g, want.Bytes()) {
		t.Fatalf("the connection got %d bytes, not the %d appended in order", len(g), want.Len())
	}
	for i, c := range chunks {
		if c != nil {
			t.Fatalf("chunk %d not released after the write", i)
		}
	}
}
