package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/internal/wire"
)

// maxControlBytes bounds a link's pending control frames (membership deltas,
// pongs, acks). Past it the link is reset: the next link's snapshot repairs
// whatever was not sent.
const maxControlBytes = 16 << 20

// sendControl queues a control frame for the control writer; it never blocks.
func (l *link) sendControl(m wire.Message) {
	l.cmu.Lock()
	l.cbuf = wire.AppendFrame(l.cbuf, m)
	over := len(l.cbuf) > maxControlBytes
	l.cmu.Unlock()
	if over {
		l.fail(ErrControlOverflow)
		return
	}
	l.wakeControl()
}

func (l *link) wakeControl() {
	select {
	case l.cwake <- struct{}{}:
	default:
	}
}

// Acks are delayed, as TCP delays its own: an ack frees the sender's buffer
// and spool, nothing waits on it, and one per message cost a wake-up and a
// write on this side and a read on the other, per message, at low rates.
const (
	// ackDelay is the longest an ack waits for more messages to cover (or
	// for another control frame to ride with).
	ackDelay = 10 * time.Millisecond
	// ackEvery is how many messages of a lane an ack waits for at most.
	ackEvery = 4096
)

// ackLater records that everything up to seq on lane was received; the
// control writer sends one cumulative Ack per lane per flush: once ackEvery
// messages of the lane wait for it, after ackDelay, or with the next
// control frame, whichever is first.
func (l *link) ackLater(lane int, seq uint64) {
	l.cmu.Lock()
	if seq > l.ackOut[lane] {
		l.ackOut[lane] = seq
	}
	now := l.ackOut[lane]-l.ackSent[lane] >= ackEvery
	arm := !now && !l.ackArmed
	if arm {
		l.ackArmed = true
	}
	l.cmu.Unlock()
	switch {
	case now:
		l.wakeControl()
	case arm:
		l.ackTimer.Reset(ackDelay)
	}
}

func (l *link) controlWriter() {
	var out []byte
	for {
		select {
		case <-l.cwake:
		case <-l.ctx.Done():
			return
		}
		l.cmu.Lock()
		// Acks first: a GoAway among the control frames ends the link at
		// the peer, and an ack behind it would be lost (the messages it
		// covers would come again).
		out = out[:0]
		l.ackArmed = false // the timer may still fire: a wake-up with nothing to do
		for lane := range buffer.NumLanes {
			if l.ackOut[lane] > l.ackSent[lane] {
				l.ackSent[lane] = l.ackOut[lane]
				stream := l.remoteInc
				if lane == buffer.LaneDurable {
					stream = l.remoteDurable
				}
				out = wire.AppendFrame(out, &wire.Ack{Lane: laneToWire(lane), Incarnation: stream, Seq: l.ackOut[lane]})
			}
		}
		if n := l.p.undelivOut.Swap(0); n > 0 {
			out = wire.AppendFrame(out, &wire.Undeliverable{Count: n})
		}
		if len(out) == 0 {
			out, l.cbuf = l.cbuf, out // no copy
		} else {
			out = append(out, l.cbuf...)
			l.cbuf = l.cbuf[:0]
		}
		l.cmu.Unlock()
		if len(out) == 0 {
			continue
		}
		if _, err := l.ctl.Write(out); err != nil {
			l.fail(fmt.Errorf("control write: %w", err))
			return
		}
		if cap(out) > 1<<20 {
			out = nil // don't keep a burst's buffer forever
		}
	}
}

// ctlIn is what the control reader collects across frames: the peer's
// membership snapshot, and a node's (NodeMembers, gatewaymembers_in.go),
// each arriving in several frames.
type ctlIn struct {
	snap, node inSnapshot
}

func (l *link) controlReader() {
	in := &ctlIn{}
	defer in.snap.end(l.p.d)
	defer in.node.end(l.p.d)
	for {
		t, body, err := l.ctlR.ReadFrame()
		if err != nil {
			var fe *wire.FrameError
			if errors.As(err, &fe) && l.ctx.Err() == nil {
				l.protocolError(err)
				return
			}
			l.fail(fmt.Errorf("control read: %w", err))
			return
		}
		l.lastRecv.Store(time.Now().UnixNano())
		if err := l.throttleMembership(t, len(body)); err != nil {
			return // the link ended while waiting
		}
		m, err := wire.Decode(t, body)
		if err == nil {
			err = l.onControl(m, len(body), in)
		}
		switch {
		case errors.Is(err, errLinkEnded):
			return
		case err != nil:
			l.protocolError(err)
			return
		}
	}
}

// resyncCost is what a Resync counts against groups.membership_rate: it
// makes this node send a whole snapshot. membershipBurst is the rate's
// burst (or link.max_frame_size, if larger): a snapshot of 100,000 members
// takes a few MB.
const (
	resyncCost      = 1 << 20
	membershipBurst = 8 << 20
)

// throttleMembership waits, before a membership frame of size bytes (of
// type t) is handled, until the peer's groups.membership_rate allows it:
// a peer flooding membership is read no faster, and its flow control
// pushes back. Other frames pass at once. It fails only when the link
// ends meanwhile.
func (l *link) throttleMembership(t wire.Type, size int) error {
	cost := size
	switch t {
	case wire.TypeMembersSnapshot, wire.TypeMembersDelta, wire.TypeNodeMembers, wire.TypeNodeDelta:
	case wire.TypeResync, wire.TypeMembersSubscribe:
		cost = resyncCost
	default:
		return nil
	}
	lim := l.p.membershipIn
	cost = min(cost, lim.Burst())
	if lim.AllowN(time.Now(), cost) {
		return nil
	}
	l.p.d.metrics.membershipThrottled.WithLabelValues(l.p.id.Cluster, l.p.id.Node).Inc()
	return lim.WaitN(l.ctx, cost)
}

// errLinkEnded is onControl's answer for a frame that ended the link
// (GoAway): the reader stops without a protocol error.
var errLinkEnded = errors.New("link ended by the peer")

// onControl handles one frame read on the control stream (size: its
// body's bytes); in collects the membership snapshots that arrive in
// several frames. An error is a
// protocol violation that ends the link (errLinkEnded: the link ended
// already).
func (l *link) onControl(m wire.Message, size int, in *ctlIn) error {
	switch m := m.(type) {
	case *wire.Ping:
		l.sendControl(&wire.Pong{Echo: m.Echo})
	case *wire.Pong:
		l.onPong(m)
	case *wire.MembersSnapshot:
		return l.onSnapshot(m, size, &in.snap)
	case *wire.MembersDelta:
		return l.onDelta(m)
	case *wire.MembersSubscribe:
		l.onMembersSubscribe()
	case *wire.NodeMembers:
		return l.onNodeMembers(m, size, &in.node)
	case *wire.NodeDelta:
		return l.onNodeDelta(m, &in.node)
	case *wire.Digest:
		l.onDigest(m)
	case *wire.Resync:
		if m.Incarnation == l.p.d.incarnation {
			l.sendSnapshot(false)
		}
	case *wire.Ack:
		return l.onAck(m)
	case *wire.Undeliverable:
		l.p.undeliv.Add(m.Count)
		l.p.d.metrics.undeliverable.WithLabelValues(l.p.id.Cluster, l.p.id.Node).Add(float64(m.Count))
	case *wire.Nodes:
		return l.onNodes(m)
	case *wire.GoAway:
		l.onGoAway(m)
		return errLinkEnded
	default:
		return fmt.Errorf("unexpected %v on the control stream", m.Type())
	}
	return nil
}

// onPong takes the round-trip time from a Pong to one of this link's Pings.
func (l *link) onPong(m *wire.Pong) {
	if m.Echo == 0 {
		return
	}
	rtt := time.Since(pingBase) - time.Duration(m.Echo)
	if rtt < 0 {
		return
	}
	d := l.p.d
	l.rtt.Store(int64(rtt))
	d.groups.SetRTT(groupsID(l.p.id), rtt)
	d.metrics.rtt.WithLabelValues(l.p.id.Cluster, l.p.id.Node).Set(rtt.Seconds())
}

// onAck frees what the peer acknowledged from the peer's buffer (and, on
// the durable lane, from the spool). An ack for an earlier run of this
// node is ignored; one beyond what was sent is counted and logged.
func (l *link) onAck(m *wire.Ack) error {
	d := l.p.d
	lane, ok := laneFromWire(m.Lane)
	if !ok {
		return fmt.Errorf("ack for lane %d", m.Lane)
	}
	want := d.incarnation
	if lane == buffer.LaneDurable {
		want = d.durableID
	}
	if m.Incarnation != want {
		return nil // an ack for an earlier run (or spool) of this node
	}
	if err := l.p.queue.Ack(lane, m.Seq); err != nil {
		d.metrics.protocolErrors.WithLabelValues("bad_ack").Inc()
		d.warnPeer(l.p.id, "bad_ack", "bad ack from peer (counted in wandist_protocol_errors_total{kind=\"bad_ack\"})", "err", err)
		return nil
	}
	if lane == buffer.LaneDurable && d.spool != nil {
		d.spool.Ack(l.p.nodeName(), m.Seq)
	}
	return nil
}

// onGoAway ends the link the peer closes. A node that is leaving takes its
// members with it now (a node that is only unreachable keeps them).
func (l *link) onGoAway(m *wire.GoAway) {
	d := l.p.d
	d.log.Info("peer closes link", "peer", l.p.nodeName(), "code", m.Code, "reason", m.Reason)
	if m.Code == wire.GoAwayShutdown {
		d.groups.ForgetPeer(groupsID(l.p.id))
	}
	l.fail(fmt.Errorf("%w (code %d): %s", ErrGoAway, m.Code, m.Reason))
}

func (l *link) protocolError(err error) {
	d := l.p.d
	d.metrics.protocolErrors.WithLabelValues("frame").Inc()
	d.log.Warn("protocol error on link", "peer", l.p.nodeName(), "err", err)
	l.goAway(wire.GoAwayProtocol, err.Error(), fmt.Errorf("%w: %v", ErrProtocol, err))
}

// pingBase is the monotonic origin of Ping.Echo values.
var pingBase = time.Now()
