package daemon

import "maps"

// What a receiving node knows of one reliable lane (normal or high) from
// one peer incarnation. A message is acknowledged to the sender only once
// it is done here: its local client confirmed it (DeliverAck), or it was
// dealt with otherwise (dropped for a counted reason, expired). Messages
// are done out of order (two clients confirm at their own pace, a held
// message waits for its member), so the cumulative Ack carries the highest
// Seq below which every message is done: the base.
//
//	Seq <= base           done; a resend is a duplicate
//	base < Seq <= hw      accepted: done (in done), or with a client or
//	                      held (a resend is a duplicate), or lost with a
//	                      client that went away (in lost: a resend is
//	                      delivered again)
//	Seq > hw              new
//
// The sender resends from base+1 after every reconnect (the base is the
// resume position this node gives in the handshake), so a lost message
// comes again once its link is reset (loseConfirms does that).
type recvLane struct {
	known bool   // base was set: the first Seq after a reset was seen
	base  uint64 // every Seq <= base is done
	hw    uint64 // highest Seq accepted
	done  map[uint64]struct{}
	lost  map[uint64]struct{}
}

// maxRecvGap bounds the Seqs a lane marks done one by one when the sender
// skips them (it never skips but for what it dropped unsent, e.g.
// discarded by a reload), and maxDoneSeqs the Seqs a lane keeps done above
// its base. Past either, the lane starts over at the new Seq, as it does
// when nothing is outstanding: what was accepted below it counts as done.
// So a peer that skips Seqs costs at most maxDoneSeqs entries per lane.
const (
	maxRecvGap  = 1 << 16
	maxDoneSeqs = 1 << 18
)

// accept reports whether seq is to be delivered (false: a duplicate).
func (r *recvLane) accept(seq uint64) bool {
	if !r.known {
		r.known, r.base, r.hw = true, seq-1, seq-1
	}
	switch {
	case seq <= r.base:
		return false
	case seq <= r.hw:
		if _, ok := r.lost[seq]; ok {
			delete(r.lost, seq)
			return true
		}
		return false
	}
	if gap := seq - r.hw - 1; gap > 0 {
		// What the sender no longer had (discarded) is done here.
		if r.hw == r.base || gap > maxRecvGap || uint64(len(r.done))+gap > maxDoneSeqs {
			r.base = max(r.base, seq-1)
			clear(r.done)
		} else {
			for s := r.hw + 1; s < seq; s++ {
				r.markDone(s)
			}
		}
	}
	r.hw = seq
	return true
}

// complete marks seq done and reports whether the base moved.
func (r *recvLane) complete(seq uint64) bool {
	if seq <= r.base || seq > r.hw {
		return false // a lane reset since: not this run's
	}
	return r.markDone(seq)
}

func (r *recvLane) markDone(seq uint64) bool {
	if seq != r.base+1 {
		if r.done == nil {
			r.done = map[uint64]struct{}{}
		}
		r.done[seq] = struct{}{}
		return false
	}
	r.base++
	for len(r.done) > 0 {
		if _, ok := r.done[r.base+1]; !ok {
			break
		}
		delete(r.done, r.base+1)
		r.base++
	}
	return true
}

// lose records that seq, accepted, was not delivered after all.
func (r *recvLane) lose(seq uint64) {
	if seq <= r.base || seq > r.hw {
		return
	}
	if r.lost == nil {
		r.lost = map[uint64]struct{}{}
	}
	r.lost[seq] = struct{}{}
}

// clone returns a copy of r that shares nothing with it.
func (r *recvLane) clone() recvLane {
	c := *r
	c.done, c.lost = maps.Clone(r.done), maps.Clone(r.lost)
	return c
}

// resumeFrom is the position this node gives in a handshake: the sender
// acknowledges up to it and resends the rest.
func (r *recvLane) resumeFrom() uint64 { return r.base }

// confirmRef names one reliable message a local client was given, to be
// marked done once the client confirms it.
type confirmRef struct {
	p    *peer
	inc  uint64 // the sender's incarnation
	lane uint8
	seq  uint64
}

// completeReliable marks reliable messages of one lane of incarnation inc
// done and, if the lane's base moved, acknowledges it on the peer's link.
func (p *peer) completeReliable(inc uint64, lane int, done []pendingConfirm) {
	if cur := p.d.peer(p.id.Cluster, p.id.Node); cur != nil && cur != p {
		p = cur // a reload replaced the peer entry; its receive state moved with it
	}
	moved := false
	p.recvMu.Lock()
	if inc == p.recvInc {
		for _, pc := range done {
			if p.recv[lane].complete(pc.ref.seq) {
				moved = true
			}
		}
	}
	base := p.recv[lane].base
	p.recvMu.Unlock()
	if !moved {
		return
	}
	if l := p.currentLink(); l != nil && l.remoteInc == inc {
		l.ackLater(lane, base)
	}
	// else: the next handshake's resume position carries it
}

// completeOne marks one reliable message done (dealt with here without its
// client: dropped for a counted reason, or expired).
func (p *peer) completeOne(inc uint64, lane int, seq uint64) {
	p.completeReliable(inc, lane, []pendingConfirm{{ref: confirmRef{seq: seq}}})
}

// loseReliable records reliable messages given to a client that went away
// before confirming them, and resets the peer's link so that the sender
// resends them (from the lane's base).
func (p *peer) loseReliable(refs []confirmRef) {
	p.recvMu.Lock()
	for _, r := range refs {
		if r.inc == p.recvInc {
			p.recv[r.lane].lose(r.seq)
		}
	}
	p.recvMu.Unlock()
	if p.d.closing.Load() {
		return // the node stops: its links end with GoAway, and the sender keeps what was not done
	}
	if l := p.currentLink(); l != nil {
		l.fail(errClientLost)
	}
}

// reportUndeliverable counts messages of the peer that came for an address
// whose mailbox is gone; the control writer tells the peer (Undeliverable).
func (p *peer) reportUndeliverable(n uint64) {
	if p.undelivOut.Add(n) != n {
		return // a report is pending: the writer takes this with it
	}
	if l := p.currentLink(); l != nil {
		l.wakeControl()
	}
}
