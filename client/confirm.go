package client

import (
	"time"

	"github.com/wandist/wandist/internal/wire"
)

// The client confirms what it took, cumulatively (DeliverAck), once
// confirmEvery deliveries or confirmBytes of delivery frames wait for it,
// or defaultConfirmDelay after the reader last found nothing more to read: one
// small frame per burst, not per read of the socket (a confirmation costs a
// write here, and a read, a wake-up and, for reliable messages, a share of
// an ack on the link in the daemon). The byte bound keeps what waits for a
// confirmation small against the daemon's bound for the client
// (local.client_buffer). A frame written at once (a Call's request, a
// Reply) takes the confirmation due along in the same write, so
// request-reply traffic confirms without writes of its own.
const (
	confirmEvery        = 2048
	confirmBytes        = 1 << 20
	defaultConfirmDelay = 5 * time.Millisecond
)

// confirm confirms the deliveries taken, now or on the timer. Called by the
// reader after every delivery frame (r: its reader; n: the frame's body
// bytes), and when it starts (nil, 0).
func (c *Client) confirm(r *wire.Reader, n int) {
	taken := c.taken.Load()
	c.wmu.Lock()
	c.unconfirmedBytes += n
	switch {
	case taken-c.acked >= confirmEvery || c.unconfirmedBytes >= confirmBytes:
		c.sendConfirmLocked(taken)
	case taken != c.acked && (r == nil || r.Buffered() == 0) && !c.confirmArmed:
		c.confirmArmed = true
		if c.confirmTimer == nil {
			c.confirmTimer = time.AfterFunc(c.confirmDelay, c.confirmLater)
		} else {
			c.confirmTimer.Reset(c.confirmDelay)
		}
	}
	c.wmu.Unlock()
}

// confirmLater is the timer's confirmation of what the reader took.
func (c *Client) confirmLater() {
	c.wmu.Lock()
	c.confirmArmed = false
	if taken := c.taken.Load(); taken != c.acked {
		c.sendConfirmLocked(taken)
	}
	c.wmu.Unlock()
}

// sendConfirmLocked queues a DeliverAck for the first taken deliveries of
// the current connection. Called under wmu.
func (c *Client) sendConfirmLocked(taken uint64) {
	if !c.appendConfirmLocked(taken) {
		return
	}
	c.batchAt = -1
	select {
	case c.wwake <- struct{}{}:
	default:
	}
}

// appendConfirmLocked appends a DeliverAck for the first taken deliveries to
// the write buffer, if they are not confirmed yet, and reports whether it
// did. Called under wmu.
func (c *Client) appendConfirmLocked(taken uint64) bool {
	if taken <= c.acked || !c.up || c.closed {
		return false // (not up: the connection is gone, and with it what it confirms)
	}
	c.acked = taken
	c.unconfirmedBytes = 0
	c.wbuf = wire.AppendFrame(c.wbuf, &wire.DeliverAck{Count: taken})
	return true
}

// confirmAlongLocked confirms what the reader took in the frame just
// queued to be written at once, if anything waits for a confirmation: the
// timer then finds nothing to send. Called under wmu.
func (c *Client) confirmAlongLocked() { c.appendConfirmLocked(c.taken.Load()) }
