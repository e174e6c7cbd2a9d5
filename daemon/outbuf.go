package daemon

import (
	"encoding/binary"
	"net"
	"sync"

	"github.com/wandist/wandist/internal/wire"
)

// outBuf holds the frames waiting for a local client's writer, in chunks of
// outChunk bytes taken from a pool, instead of one slice that grows by
// copying itself: a receiving daemon whose client reads slower than the
// link delivers holds megabytes here, and the growth copies (and the
// clearing of each new, larger slice) were a third of its CPU time.
// The writer hands the chunks to the connection in one writev and gives
// them back to the pool. Guarded by its client's omu.
type outBuf struct {
	chunks [][]byte
	n      int // bytes queued
	// batchAt is the offset in the last chunk of the DeliverBatch frame
	// that ends the buffer, -1 (or any value when there is no chunk) if
	// none: a plain delivery with its header extends it.
	batchAt int
	batch   wire.DeliverBatch // that frame's header
	batchN  int               // and its number of payloads
}

// outChunk is the size of an outBuf chunk; a frame larger than what is left
// of a chunk starts a new one, and a frame larger than a chunk gets one of
// its own size.
const outChunk = 64 << 10

var outChunks = sync.Pool{New: func() any { b := make([]byte, 0, outChunk); return &b }}

// tail returns the slice to append a frame of about size bytes to; pass the
// result of the append to commit.
func (o *outBuf) tail(size int) []byte {
	if k := len(o.chunks); k > 0 && cap(o.chunks[k-1])-len(o.chunks[k-1]) >= size {
		return o.chunks[k-1]
	}
	o.batchAt = -1 // the frame that ends the buffer is in another chunk
	var b []byte
	if size <= outChunk {
		b = (*outChunks.Get().(*[]byte))[:0]
	}
	o.chunks = append(o.chunks, b)
	return b
}

// commit records b, the slice tail returned with a frame appended (not a
// batch: appendDeliver extends batches).
func (o *outBuf) commit(b []byte) {
	last := &o.chunks[len(o.chunks)-1]
	o.n += len(b) - len(*last)
	*last = b
	o.batchAt = -1
}

// appendDeliver appends a frame for m and returns its size in bytes: a
// plain delivery with the header of the DeliverBatch frame that ends the
// buffer extends it (while it is under wire.MaxBatchBody and its chunk has
// room), another starts a batch; a delivery that cannot go in a batch
// goes alone, in a Deliver frame.
func (o *outBuf) appendDeliver(m *wire.Deliver) int {
	if !m.Batchable() {
		b := o.tail(len(m.Payload) + len(m.Group) + len(m.FromCluster) + len(m.FromNode) + 64)
		n := len(b)
		b = m.AppendFrame(b)
		o.commit(b)
		return len(b) - n
	}
	need := len(m.Payload) + binary.MaxVarintLen64
	if k := len(o.chunks); k > 0 && o.batchAt >= 0 {
		last := o.chunks[k-1]
		if cap(last)-len(last) >= need && len(last)-o.batchAt < wire.MaxBatchBody && o.batch.SameHeader(m, o.batchN) {
			b := wire.AppendBatchPayload(last, o.batchAt, m.Payload)
			o.chunks[k-1] = b
			o.n += len(b) - len(last)
			o.batchN++
			return len(b) - len(last)
		}
	}
	b := o.tail(need + len(m.Group) + len(m.FromCluster) + len(m.FromNode) + 64)
	n := len(b)
	o.batch = wire.DeliverBatchOf(m)
	b = o.batch.AppendFrame(b) // no payload yet
	b = wire.AppendBatchPayload(b, n, m.Payload)
	o.chunks[len(o.chunks)-1] = b
	o.n += len(b) - n
	o.batchAt = n
	o.batchN = 1
	return len(b) - n
}

// appendBytes appends frame, an encoded frame, and returns its size; a
// frame larger than a chunk becomes a chunk of its own, not copied.
func (o *outBuf) appendBytes(frame []byte) int {
	if len(frame) > outChunk {
		o.batchAt = -1
		o.chunks = append(o.chunks, frame)
		o.n += len(frame)
		return len(frame)
	}
	b := o.tail(len(frame))
	o.commit(append(b, frame...))
	return len(frame)
}

// take moves the queued chunks to dst and returns them with their length.
func (o *outBuf) take(dst [][]byte) ([][]byte, int) {
	dst = append(dst[:0], o.chunks...)
	o.batchAt = -1
	clear(o.chunks)
	o.chunks = o.chunks[:0]
	n := o.n
	o.n = 0
	return dst, n
}

// writeChunks writes chunks to conn in one writev (where conn has it), then
// gives the chunks back to the pool and clears chunks. scratch is reused for
// the writev's own bookkeeping.
func writeChunks(conn net.Conn, chunks [][]byte, scratch *net.Buffers) error {
	*scratch = append((*scratch)[:0], chunks...)
	_, err := scratch.WriteTo(conn)
	clear(*scratch)
	for i, b := range chunks {
		if cap(b) == outChunk {
			b = b[:0]
			outChunks.Put(&b)
		}
		chunks[i] = nil
	}
	return err
}

// drop removes the first n bytes of o's first chunk, written without the
// writer goroutine, and gives a chunk wholly written back to the pool.
func (o *outBuf) drop(n int) {
	o.batchAt = -1 // the frame may have been written in part
	b := o.chunks[0]
	o.n -= n
	if n < len(b) {
		o.chunks[0] = b[n:]
		return
	}
	if cap(b) == outChunk {
		b = b[:0]
		outChunks.Put(&b)
	}
	copy(o.chunks, o.chunks[1:])
	o.chunks[len(o.chunks)-1] = nil
	o.chunks = o.chunks[:len(o.chunks)-1]
}
