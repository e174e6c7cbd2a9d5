package transport

import (
	"net"
	"sync"
)

// batchConn is the connection under a link's TLS. While a batch is open
// (begin to flush), the TLS records written to it are collected, and flush
// hands them to the kernel in one write: one system call per yamux frame
// instead of one per 16 KiB record.
//
// Writes outside a batch (the handshake, an alert, a key update answered
// by the reading side) go straight through, but never ahead of a batch
// being flushed: TLS records must reach the peer in the order they were
// sealed.
type batchConn struct {
	net.Conn

	mu  sync.Mutex // guards on and buf, and is held across the writes to Conn
	on  bool       // a batch is open
	buf []byte     // the open batch's records
}

// maxKeptBatch bounds the buffer a batchConn keeps between batches.
const maxKeptBatch = 256 << 10

func (c *batchConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on {
		c.buf = append(c.buf, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// begin opens a batch.
func (c *batchConn) begin() {
	c.mu.Lock()
	c.on = true
	c.mu.Unlock()
}

// flush writes the batch's records and closes it.
func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	if cap(c.buf) > maxKeptBatch {
		c.buf = nil
	}
	return err
}
