package daemon

import "errors"

// A local client confirms the deliveries it took, cumulatively, in
// DeliverAck frames (a count of deliveries on the connection). A reliable
// message from another node is marked done (recvlane.go), and so
// acknowledged to its sender, only then: a crash of this daemon before the
// confirmation loses nothing that the sender does not still hold.
//
// Until confirmed, a delivery counts against the client's bound
// (local.client_buffer), written or not: a client that stops reading, or
// stops confirming, fills its bound, and what comes for it then waits
// (local.inbox_full).

// pendingConfirm is a delivery waiting for its client's confirmation.
type pendingConfirm struct {
	at  uint64 // the client's delivery count once this one was queued
	end uint64 // the byte offset of its frame's end (localClient.appended)
	ref confirmRef
}

// errClientLost resets a link whose messages a client took with it.
var errClientLost = errors.New("a local client went away with reliable messages it had not confirmed: the sender resends them")

// errBadConfirm is a client's DeliverAck past what it was given.
var errBadConfirm = errors.New("DeliverAck counts more deliveries than were made")

// trackLocked records a delivery just appended (its frame began at offset
// before and ends at c.appended); ref, if not nil, is done once the client
// confirms it. Called under omu.
func (c *localClient) trackLocked(ref *confirmRef, before uint64) {
	c.delivs++
	if ref == nil {
		return
	}
	if len(c.confirms) == c.confirmHead {
		// Bytes before this delivery need no confirmation.
		c.confirmedAt = max(c.confirmedAt, before)
	}
	c.confirms = append(c.confirms, pendingConfirm{at: c.delivs, end: c.appended, ref: *ref})
}

// pendingLocked returns the bytes queued or unconfirmed for the client: what
// counts against its bound.
func (c *localClient) pendingLocked() int {
	if len(c.confirms) == c.confirmHead {
		return c.out.n
	}
	return max(c.out.n, int(c.appended-c.confirmedAt))
}

// onDeliverAck takes a client's confirmation of its first n deliveries.
func (c *localClient) onDeliverAck(n uint64) error {
	c.omu.Lock()
	if n > c.delivs {
		c.omu.Unlock()
		return errBadConfirm
	}
	// confirms[c.confirmHead:] wait; the confirmed ones are taken off the
	// front by moving the head (no copy of what still waits, which under
	// load is every delivery queued for the client), and the slice is
	// compacted once the head passes half of it.
	q := c.confirms[c.confirmHead:]
	i := 0
	for i < len(q) && q[i].at <= n {
		i++
	}
	if i > 0 {
		c.confirmedAt = q[i-1].end
		c.done1 = append(c.done1[:0], q[:i]...)
		c.confirmHead += i
		switch {
		case c.confirmHead == len(c.confirms):
			c.confirms, c.confirmHead = c.confirms[:0], 0
			if cap(c.confirms) > 1<<16 {
				c.confirms = nil
			}
		case c.confirmHead > len(c.confirms)/2:
			k := copy(c.confirms, c.confirms[c.confirmHead:])
			clear(c.confirms[k:])
			c.confirms, c.confirmHead = c.confirms[:k], 0
		}
		if c.room != nil {
			close(c.room)
			c.room = nil
		}
	}
	c.omu.Unlock()
	completeConfirms(c.done1[:i])
	clear(c.done1)
	return nil
}

// completeConfirms marks confirmed messages done, a run of one peer lane
// at a time.
func completeConfirms(done []pendingConfirm) {
	for len(done) > 0 {
		r := done[0].ref
		n := 1
		for n < len(done) && done[n].ref.p == r.p && done[n].ref.inc == r.inc && done[n].ref.lane == r.lane {
			n++
		}
		r.p.completeReliable(r.inc, int(r.lane), done[:n])
		done = done[n:]
	}
}

// loseConfirms hands back, at the end of the client's connection, the
// reliable messages it never confirmed: their senders resend them.
func (c *localClient) loseConfirms() {
	c.omu.Lock()
	lost := c.confirms[c.confirmHead:]
	c.confirms, c.confirmHead = nil, 0
	c.omu.Unlock()
	if len(lost) == 0 {
		return
	}
	c.d.metrics.unconfirmed.Add(float64(len(lost)))
	byPeer := map[*peer][]confirmRef{}
	for _, pc := range lost {
		byPeer[pc.ref.p] = append(byPeer[pc.ref.p], pc.ref)
	}
	for p, refs := range byPeer {
		p.loseReliable(refs)
	}
}
