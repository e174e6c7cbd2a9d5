package daemon

import (
	"context"
	"net"

	"github.com/wandist/wandist/internal/sockio"
	"github.com/wandist/wandist/internal/wire"
)

// waiter is a callback to run once the connection has written the bytes up
// to offset at.
type waiter struct {
	at uint64
	fn func()
}

// appendLocked appends a frame to out and returns the offset of its end.
func (c *localClient) appendLocked(m wire.Message) uint64 {
	b := c.out.tail(512) // control frames: small
	n := len(b)
	b = wire.AppendFrame(b, m)
	c.out.commit(b)
	c.appended += uint64(len(b) - n)
	return c.appended
}

// writer owns the connection's writes: it drains out and writes it at
// once, then runs the waiters whose bytes are now written. Waiters of bytes
// never written (the connection ended) are never run.
func (c *localClient) writer() {
	defer close(c.wdone)
	var chunks [][]byte
	var scratch net.Buffers
	var ready []waiter
	for {
		select {
		case <-c.owake:
		case <-c.done:
			return
		}
		c.omu.Lock()
		var n int
		chunks, n = c.out.take(chunks)
		c.writing = n > 0
		c.omu.Unlock()
		if n > 0 { // else: woken for waiters of bytes written at once
			if err := writeChunks(c.conn, chunks, &scratch); err != nil {
				c.conn.Close()
				return
			}
		}
		c.omu.Lock()
		c.writing = false
		c.written += uint64(n)
		if c.room != nil && n > 0 {
			close(c.room)
			c.room = nil
		}
		i := 0
		for i < len(c.waiters) && c.waiters[i].at <= c.written {
			i++
		}
		ready = append(ready[:0], c.waiters[:i]...)
		c.waiters = c.waiters[i:]
		c.omu.Unlock()
		for _, w := range ready {
			w.fn()
		}
		clear(ready)
	}
}

// Answers (Results, Opened, MembersList) count against local.client_buffer
// as deliveries do. The reader goroutine answers a request only once the
// bytes queued for the client and not yet written to it are within the
// bound (awaitRoom); until then it reads no more of the client's requests.
// A client that asks without reading so fills its own socket, not the
// daemon's heap, and loses nothing it was answered. An answer larger than
// the bound on its own (a group's member list) is refused instead
// (answerBytes). The bytes held for a client stay within the bound plus
// one frame (or twice the bound, for deliveries forced in by waitRoom).

// reply queues m, the answer to the request the reader goroutine is
// handling, once the client's buffer has room.
func (c *localClient) reply(m wire.Message) {
	if !c.awaitRoom() {
		return
	}
	c.replyNow(m)
}

// replyNow queues m without waiting: for answers that come from another
// goroutine than the reader (durable sends), one per request read, so
// bounded by the reads awaitRoom holds back.
func (c *localClient) replyNow(m wire.Message) {
	c.omu.Lock()
	if !c.closed {
		c.appendLocked(m)
	}
	c.omu.Unlock()
	c.wakeWriter()
}

// unwrittenLocked returns the bytes queued for the client and not yet
// written to its connection, whether the writer took them or not.
func (c *localClient) unwrittenLocked() int { return int(c.appended - c.written) }

// awaitRoom waits, on the reader goroutine, until the client's unwritten
// bytes are within local.client_buffer. It is false if the connection
// ended first.
func (c *localClient) awaitRoom() bool {
	limit := c.d.cfg.Local.ClientBuffer
	c.omu.Lock()
	defer c.omu.Unlock()
	if c.closed || c.unwrittenLocked() <= limit {
		return !c.closed
	}
	c.d.metrics.localWaits.Inc()
	for !c.closed && c.unwrittenLocked() > limit {
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.omu.Unlock()
		select {
		case <-room:
		case <-c.wdone: // the writer failed: nothing more will be written
			c.omu.Lock()
			return false
		}
		c.omu.Lock()
	}
	return !c.closed
}

// answerBytes queues frame, the encoded answer to request req, once the
// client's buffer has room; an answer larger than local.client_buffer (or
// than the SDK reads in a frame) is refused with a Result saying so, and
// counted (answer_too_large).
func (c *localClient) answerBytes(req uint64, frame []byte, what string) {
	if !c.awaitRoom() {
		return
	}
	if limit := min(c.d.cfg.Local.ClientBuffer, maxAnswer); len(frame) > limit {
		c.srv.reject("answer_too_large", "local client request refused: answer over local.client_buffer", "client", c.name, "bytes", len(frame))
		c.answer(req, refuse(errTooLarge, "answer of %d bytes (%s) would exceed local.client_buffer (%d bytes; at most %d per answer): raise local.client_buffer, or ask for less",
			len(frame), what, c.d.cfg.Local.ClientBuffer, maxAnswer))
		return
	}
	c.omu.Lock()
	if !c.closed {
		c.appended += uint64(c.out.appendBytes(frame))
	}
	c.omu.Unlock()
	c.wakeWriter()
}

// maxAnswer bounds one answer frame: the largest frame the SDK reads.
const maxAnswer = 64 << 20

func (c *localClient) wakeWriter() {
	select {
	case c.owake <- struct{}{}:
	default:
	}
}

// writeNowLocked writes what out holds at once, if the writer goroutine is
// idle, as far as the socket takes it without blocking, and reports whether
// out is empty then. Waiters whose bytes went are left for the writer to
// run: a caller with waiters wakes it.
func (c *localClient) writeNowLocked() bool {
	if c.raw == nil || c.writing || c.closed {
		return c.out.n == 0 && len(c.waiters) == 0
	}
	for len(c.out.chunks) > 0 {
		b := c.out.chunks[0]
		if len(b) == 0 {
			c.out.drop(0)
			continue
		}
		n := sockio.TryWrite(c.raw, b)
		if n == 0 {
			return false
		}
		c.out.drop(n)
		c.written += uint64(n)
		if c.room != nil {
			close(c.room)
			c.room = nil
		}
	}
	return len(c.waiters) == 0
}

// event queues a watch event. Past the client's buffer bound it queues, once,
// an overflow event instead (the client must list the members again); it
// reports false for an event it dropped. Runs under the registry lock.
func (c *localClient) event(ev *wire.WatchEvent, overflowed *bool) bool {
	c.omu.Lock()
	if c.closed {
		c.omu.Unlock()
		return true
	}
	if c.unwrittenLocked() > c.d.cfg.Local.ClientBuffer {
		if !*overflowed {
			*overflowed = true
			c.appendLocked(&wire.WatchEvent{Watch: ev.Watch, Op: wire.OpOverflow})
		}
		c.omu.Unlock()
		return false
	}
	*overflowed = false
	c.appendLocked(ev)
	c.omu.Unlock()
	select {
	case c.owake <- struct{}{}:
	default:
	}
	return true
}

// answer sends the Result of request req: its outcome err (nil: done)
// mapped by statusOf. Called by the reader goroutine (reply).
func (c *localClient) answer(req uint64, err error) {
	st, msg := statusOf(err)
	c.reply(&wire.Result{Req: req, Status: st, Message: msg})
}

// answerLater is answer for another goroutine than the reader (replyNow).
func (c *localClient) answerLater(req uint64, err error) {
	st, msg := statusOf(err)
	c.replyNow(&wire.Result{Req: req, Status: st, Message: msg})
}

// deliver queues m for the client; it is false if the client is gone, or if
// its pending bytes (queued, or written and not confirmed) are over
// local.client_buffer and force is not set. force is for a caller that
// waited for room first (waitRoom): the buffer may then pass its bound by
// a message per waiting link lane, and never by more than the bound again
// (past that, even a forced delivery is refused).
//
// written, if not nil, runs once the frame is written to the connection;
// ref, if not nil, is marked done once the client confirms the delivery.
//
// now says the caller has nothing more to deliver for the moment (the end
// of what its link stream had buffered): the frame, and whatever is queued
// with it, is then written at once if the socket takes it without
// blocking and the writer is idle. Otherwise the writer is woken, and
// takes the frames of a burst together.
func (c *localClient) deliver(m *wire.Deliver, written func(), ref *confirmRef, force, now bool) bool {
	limit := c.d.cfg.Local.ClientBuffer
	if force {
		limit *= 2
	}
	c.omu.Lock()
	if c.closed || c.pendingLocked() > limit {
		c.omu.Unlock()
		return false
	}
	before := c.appended
	if c.noHeaders && len(m.Headers) > 0 {
		c.appended += uint64(c.out.appendDeliver(withoutHeaders(m)))
	} else {
		c.appended += uint64(c.out.appendDeliver(m)) // not appendLocked: m stays off the heap
	}
	c.trackLocked(ref, before)
	if written != nil {
		c.waiters = append(c.waiters, waiter{at: c.appended, fn: written})
	}
	done := now && c.writeNowLocked()
	c.omu.Unlock()
	if !done {
		c.wakeWriter()
	}
	return true
}

// waitRoom waits until the client's pending bytes are within local.client_buffer,
// or the client is gone. It is false if ctx ended first.
func (c *localClient) waitRoom(ctx context.Context) bool {
	c.omu.Lock()
	for !c.closed && c.pendingLocked() > c.d.cfg.Local.ClientBuffer {
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.omu.Unlock()
		select {
		case <-room:
		case <-c.done:
		case <-ctx.Done():
			return false
		}
		c.omu.Lock()
	}
	c.omu.Unlock()
	return true
}

// withoutHeaders returns a copy of m without its headers, for a client of
// the local protocol's version 2.
func withoutHeaders(m *wire.Deliver) *wire.Deliver {
	cp := *m
	cp.Headers = nil
	return &cp
}
