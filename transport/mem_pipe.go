package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/wandist/wandist/internal/deadline"
)

// memPipeBuffer is how many bytes a mem connection buffers per direction.
const memPipeBuffer = 256 << 10

// newMemPipe returns the two ends of an in-memory, full-duplex connection.
//
// Unlike net.Pipe, writes are buffered (up to memPipeBuffer bytes per
// direction) like a socket's: with net.Pipe's synchronous writes, two TLS
// peers that both write at once (a client sending an alert while the server
// still writes its flight) deadlock until a timeout.
func newMemPipe(a, b memAddr) (*memPipeConn, *memPipeConn) {
	ab, ba := newPipeBuffer(), newPipeBuffer()
	ca := &memPipeConn{rb: ba, wb: ab, local: a, remote: b, done: make(chan struct{})}
	cb := &memPipeConn{rb: ab, wb: ba, local: b, remote: a, done: make(chan struct{})}
	ca.rd, ca.wd = deadline.New(), deadline.New()
	cb.rd, cb.wd = deadline.New(), deadline.New()
	return ca, cb
}

// pipeBuffer carries one direction.
type pipeBuffer struct {
	mu      sync.Mutex
	data    []byte
	closed  bool          // an end closed: writes fail, reads drain then EOF
	dataCh  chan struct{} // poked when data arrives or on close
	spaceCh chan struct{} // poked when data is consumed or on close
}

func newPipeBuffer() *pipeBuffer {
	return &pipeBuffer{dataCh: make(chan struct{}, 1), spaceCh: make(chan struct{}, 1)}
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (p *pipeBuffer) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	poke(p.dataCh)
	poke(p.spaceCh)
}

// memPipeConn is one end of a mem pipe; it is a net.Conn.
type memPipeConn struct {
	rb, wb        *pipeBuffer
	rd, wd        *deadline.Deadline
	local, remote memAddr
	once          sync.Once
	done          chan struct{} // closed by Close
}

func (c *memPipeConn) Read(b []byte) (int, error) {
	for {
		select {
		case <-c.done:
			return 0, io.ErrClosedPipe
		case <-c.rd.Wait():
			return 0, os.ErrDeadlineExceeded
		default:
		}
		c.rb.mu.Lock()
		if len(c.rb.data) > 0 {
			n := copy(b, c.rb.data)
			c.rb.data = c.rb.data[n:]
			more := len(c.rb.data) > 0
			if !more {
				c.rb.data = nil
			}
			c.rb.mu.Unlock()
			poke(c.rb.spaceCh)
			if more {
				poke(c.rb.dataCh) // for concurrent readers
			}
			return n, nil
		}
		closed := c.rb.closed
		c.rb.mu.Unlock()
		if closed {
			return 0, io.EOF
		}
		select {
		case <-c.rb.dataCh:
		case <-c.done:
		case <-c.rd.Wait():
		}
	}
}

func (c *memPipeConn) Write(b []byte) (int, error) {
	total := 0
	for total < len(b) {
		select {
		case <-c.done:
			return total, io.ErrClosedPipe
		case <-c.wd.Wait():
			return total, os.ErrDeadlineExceeded
		default:
		}
		c.wb.mu.Lock()
		if c.wb.closed {
			c.wb.mu.Unlock()
			return total, io.ErrClosedPipe
		}
		if space := memPipeBuffer - len(c.wb.data); space > 0 {
			n := min(space, len(b)-total)
			c.wb.data = append(c.wb.data, b[total:total+n]...)
			total += n
			c.wb.mu.Unlock()
			poke(c.wb.dataCh)
			continue
		}
		c.wb.mu.Unlock()
		select {
		case <-c.wb.spaceCh:
		case <-c.done:
		case <-c.wd.Wait():
		}
	}
	return total, nil
}

// Close closes both directions: the peer reads what was written, then
// io.EOF; its writes fail.
func (c *memPipeConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.rb.close()
		c.wb.close()
	})
	return nil
}

func (c *memPipeConn) LocalAddr() net.Addr  { return c.local }
func (c *memPipeConn) RemoteAddr() net.Addr { return c.remote }

func (c *memPipeConn) SetDeadline(t time.Time) error {
	c.rd.Set(t)
	c.wd.Set(t)
	return nil
}
func (c *memPipeConn) SetReadDeadline(t time.Time) error  { c.rd.Set(t); return nil }
func (c *memPipeConn) SetWriteDeadline(t time.Time) error { c.wd.Set(t); return nil }
