package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/wandist/wandist/internal/deadline"

	"github.com/wandist/wandist/internal/wire"
)

// pipes_conn.go: an endpoint pipe, the net.Conn that a relayed link's TLS
// and yamux run over (pipes.go multiplexes it on its link's pipes stream).

// Why an endpoint pipe ended, as its Read and Write report it.
var (
	errPipeLinkDown = errors.New("pipe: the link it runs on ended")
	errPipeOverflow = errors.New("pipe: receive buffer over its bound")
)

// pipeCloseError is a pipe closed by the other side or by a relay with a
// code other than PipeClosed.
type pipeCloseError struct {
	code   uint8
	reason string
}

func (e *pipeCloseError) Error() string {
	s := fmt.Sprintf("pipe closed: %s", pipeCodeName(e.code))
	if e.reason != "" {
		s += " (" + e.reason + ")"
	}
	return s
}

// pipeCodeName names a PipeClose code as the refusal reasons do.
func pipeCodeName(code uint8) string {
	switch code {
	case wire.PipeClosed:
		return "closed"
	case wire.PipeNotOwnCluster:
		return relayNotOwnCluster
	case wire.PipeNoLink:
		return relayNoLink
	case wire.PipeTooMany:
		return relayTooMany
	case wire.PipeBadRequest:
		return relayBadRequest
	case wire.PipeOverflow:
		return "overflow"
	case wire.PipeLinkDown:
		return "link_down"
	}
	return fmt.Sprintf("code %d", code)
}

// pipeConn is an endpoint pipe. Read takes what the peer's PipeData
// brought (a bounded buffer); Write splits into PipeData frames queued on
// the link's pipes stream (blocking while that queue is over its bound).
type pipeConn struct {
	m             *pipeMux
	id            uint64
	local, remote net.Addr
	rd, wd        *deadline.Deadline
	readable      chan struct{} // capacity 1: data or the end arrived
	done          chan struct{} // closed when the pipe ended, by either side or its link

	mu     sync.Mutex // guards buf, buffered, err, ended
	buf    [][]byte   // received, not yet read
	bufLen int        // bytes in buf
	err    error      // why the pipe ended: what Read returns once buf is empty
	ended  bool
}

func newPipeConn(m *pipeMux, id uint64, local, remote net.Addr) *pipeConn {
	return &pipeConn{m: m, id: id, local: local, remote: remote, rd: deadline.New(), wd: deadline.New(),
		readable: make(chan struct{}, 1), done: make(chan struct{})}
}

func (c *pipeConn) Read(b []byte) (int, error) {
	for {
		if c.rd.Passed() {
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		if c.bufLen > 0 {
			n := 0
			for n < len(b) && len(c.buf) > 0 {
				k := copy(b[n:], c.buf[0])
				n += k
				if c.buf[0] = c.buf[0][k:]; len(c.buf[0]) == 0 {
					c.buf[0] = nil
					c.buf = c.buf[1:]
				}
			}
			c.bufLen -= n
			c.mu.Unlock()
			return n, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		select {
		case <-c.readable:
		case <-c.done:
		case <-c.m.l.ctx.Done():
			return 0, errPipeLinkDown
		case <-c.rd.Wait():
		}
	}
}

func (c *pipeConn) Write(b []byte) (int, error) {
	n := 0
	chunk := c.m.chunk()
	for n < len(b) {
		if c.wd.Passed() {
			return n, os.ErrDeadlineExceeded
		}
		k := min(len(b)-n, chunk)
		if err := c.m.sendData(c.id, b[n:n+k], c.done, c.wd.Wait(), 0); err != nil {
			if errors.Is(err, errPipeGone) {
				err = c.endErr()
			}
			return n, err
		}
		n += k
	}
	return n, nil
}

// endErr is why the pipe ended, for a Write.
func (c *pipeConn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil || c.err == io.EOF {
		return net.ErrClosed
	}
	return c.err
}

// deliver takes a PipeData's bytes (copied) from the link's reader; false
// if they overflow the receive buffer (the pipe is then closed).
func (c *pipeConn) deliver(b []byte) bool {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return true
	}
	if c.bufLen+len(b) > c.m.lim().recvBytes {
		c.mu.Unlock()
		return false
	}
	if len(b) > 0 {
		c.buf = append(c.buf, append([]byte(nil), b...))
		c.bufLen += len(b)
	}
	c.mu.Unlock()
	select {
	case c.readable <- struct{}{}:
	default:
	}
	return true
}

// end ends the pipe once, with err for its Read (and Write): it leaves the
// link's table, and keep is false if buffered bytes go (the pipe was
// closed here or broken). It reports whether this call ended it.
func (c *pipeConn) end(err error, keep bool) bool {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return false
	}
	c.ended, c.err = true, err
	if !keep {
		c.buf, c.bufLen = nil, 0
	}
	c.mu.Unlock()
	close(c.done)
	c.m.remove(c.id, c)
	c.m.l.p.d.metrics.pipes.WithLabelValues(pipeRoleEndpoint).Dec()
	c.m.l.p.d.relay.endpoints.Add(-1)
	return true
}

// Close ends the pipe and tells the other side (PipeClose); idempotent.
func (c *pipeConn) Close() error {
	if c.end(net.ErrClosed, false) {
		c.m.sendClose(c.id, wire.PipeClosed, "")
	}
	return nil
}

// closedByPeer ends the pipe on the other side's PipeClose: what was
// received stays readable, then Read reports io.EOF (or the refusal).
func (c *pipeConn) closedByPeer(code uint8, reason string) {
	var err error = io.EOF
	if code != wire.PipeClosed {
		err = &pipeCloseError{code: code, reason: reason}
	}
	c.end(err, true)
}

// data takes a PipeData from the link's reader; past the receive bound
// the pipe is closed both ways, counted.
func (c *pipeConn) data(b []byte) {
	if c.deliver(b) {
		return
	}
	d := c.m.l.p.d
	d.metrics.pipeOverflow.WithLabelValues(pipeOverflowReceive).Inc()
	d.warnPeer(c.m.l.p.id, "pipe_overflow", "pipe closed: the peer sent past its windows", "pipe", c.id, "bound", c.m.lim().recvBytes)
	if c.end(errPipeOverflow, false) {
		c.m.sendClose(c.id, wire.PipeOverflow, "receive buffer over its bound")
	}
}

// linkDown ends the pipe with its link.
func (c *pipeConn) linkDown() { c.end(errPipeLinkDown, false) }

func (c *pipeConn) LocalAddr() net.Addr  { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr { return c.remote }

func (c *pipeConn) SetDeadline(t time.Time) error {
	c.rd.Set(t)
	c.wd.Set(t)
	return nil
}

func (c *pipeConn) SetReadDeadline(t time.Time) error  { c.rd.Set(t); return nil }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { c.wd.Set(t); return nil }
