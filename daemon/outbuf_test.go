package daemon

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/wandist/wandist/internal/wire"
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

// Deliveries appended with appendDeliver, interleaved with other frames,
// partial writes (drop) and takes, read back as the same deliveries in
// order: plain runs with one header packed in DeliverBatch frames, the
// rest in Deliver frames.
func TestOutBufDeliverBatches(t *testing.T) {
	var o outBuf
	var want []wire.Deliver
	var stream []byte
	flush := func(keep int) { // write out all but keep bytes of the first chunk
		for len(o.chunks) > 0 {
			c := o.chunks[0]
			n := len(c)
			if len(o.chunks) == 1 && keep > 0 && keep < n {
				n -= keep
			}
			stream = append(stream, c[:n]...)
			o.drop(n)
			if n < len(c) {
				return
			}
		}
	}
	batches := 0
	seq := uint64(0)
	for i := range 5000 {
		d := wire.Deliver{Mailbox: uint64(i / 700), FromCluster: "c", FromNode: "n", From: 3, Group: "g", Payload: bytes.Repeat([]byte{byte(i)}, i%200)}
		if i >= 2000 && i < 4000 { // reliable: consecutive Seqs batch, a gap starts a batch
			seq++
			if i%53 == 0 {
				seq++
			}
			d.Stream, d.Seq, d.Floor, d.Flags = 9, seq, seq/2, wire.FlagHigh
		}
		switch {
		case i%97 == 0:
			d.Corr = 5 // a request: alone
		case i%89 == 0:
			d.Group = "other" // another header
		case i%1500 == 0:
			d.Payload = bytes.Repeat([]byte{1}, 2*outChunk) // larger than a chunk
		}
		n := o.n
		if got := o.appendDeliver(&d); got != o.n-n {
			t.Fatalf("delivery %d: appendDeliver says %d bytes, the buffer grew by %d", i, got, o.n-n)
		}
		want = append(want, d)
		switch {
		case i%501 == 0:
			flush(0)
		case i%733 == 0:
			flush(17) // the batch that ends the buffer was written in part
		case i%900 == 0:
			chunks, _ := o.take(nil)
			for _, c := range chunks {
				stream = append(stream, c...)
			}
		case i%611 == 0:
			o.commit(wire.AppendFrame(o.tail(64), &wire.Result{Req: uint64(i)}))
			want = append(want, wire.Deliver{Corr: ^uint64(0), Mailbox: uint64(i)}) // marks the Result
		}
	}
	flush(0)
	r := wire.NewReader(bytes.NewReader(stream), 1<<30)
	var got []wire.Deliver
	for {
		m, err := r.ReadMessage()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d deliveries: %v", len(got), err)
		}
		switch m := m.(type) {
		case *wire.Deliver: // payloads alias the Reader's buffer: copied
			m.Payload = bytes.Clone(m.Payload)
			got = append(got, *m)
		case *wire.DeliverBatch:
			batches++
			i := 0
			for p := range m.Payloads.All() {
				got = append(got, m.Deliver(i, bytes.Clone(p)))
				i++
			}
		case *wire.Result:
			got = append(got, wire.Deliver{Corr: ^uint64(0), Mailbox: m.Req})
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read %d deliveries, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Seq != w.Seq || g.Stream != w.Stream || g.Flags != w.Flags || g.Floor > w.Floor {
			t.Fatalf("delivery %d: got stream %d seq %d flags %x floor %d; want stream %d seq %d flags %x floor <= %d",
				i, g.Stream, g.Seq, g.Flags, g.Floor, w.Stream, w.Seq, w.Flags, w.Floor)
		}
		if g.Mailbox != w.Mailbox || g.Group != w.Group || g.Corr != w.Corr || g.From != w.From || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("delivery %d: got mailbox %d group %q corr %d, %d bytes; want mailbox %d group %q corr %d, %d bytes",
				i, g.Mailbox, g.Group, g.Corr, len(g.Payload), w.Mailbox, w.Group, w.Corr, len(w.Payload))
		}
	}
	if batches == 0 || batches > len(want)/10 {
		t.Fatalf("%d batch frames for %d deliveries: plain runs were not packed", batches, len(want))
	}
}
