package daemon

import (
	"net"
	"sync"
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
	var b []byte
	if size <= outChunk {
		b = (*outChunks.Get().(*[]byte))[:0]
	}
	o.chunks = append(o.chunks, b)
	return b
}

// commit records b, the slice tail returned with a frame appended.
func (o *outBuf) commit(b []byte) {
	last := &o.chunks[len(o.chunks)-1]
	o.n += len(b) - len(*last)
	*last = b
}

// take moves the queued chunks to dst and returns them with their length.
func (o *outBuf) take(dst [][]byte) ([][]byte, int) {
	dst = append(dst[:0], o.chunks...)
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
