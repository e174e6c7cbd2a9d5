package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/transport"
	"github.com/wandist/wandist/wire"
)

// Errors that end a link, reported as its cause.
var (
	ErrKeepaliveTimeout = errors.New("link: keepalive timeout (nothing received)")
	ErrControlOverflow  = errors.New("link: control queue over its bound")
	ErrProtocol         = errors.New("link: protocol violation")
	ErrGoAway           = errors.New("link: peer sent GoAway")
)

// maxControlBytes bounds a link's pending control frames (membership deltas,
// pongs, acks). Past it the link is reset: the next link's snapshot repairs
// whatever was not sent.
const maxControlBytes = 16 << 20

// maxSnapshotEntries bounds a membership snapshot from one peer.
const maxSnapshotEntries = 10_000_000

// maxBatch is how many messages a data writer takes from the queue per write.
const maxBatch = 1024

// link is one up connection to a peer. Its goroutines: the control reader,
// the control writer, one data writer per lane, the stream acceptor, one
// reader per data stream the peer opened, and the keepalive ticker. run
// starts them, waits for the first error, cancels the rest and waits.
type link struct {
	p         *peer
	conn      transport.Conn
	ctl       transport.Stream
	ctlR      *wire.Reader
	dialer    bool
	remoteInc uint64
	peerKey   ed25519.PublicKey // the key the peer presented
	// remoteDurable is the peer's durable stream id (0: it has no spool).
	remoteDurable uint64
	maxFrame      int // largest frame the peer accepts
	since         time.Time
	gen           uint64 // queue generation for this link's data writers

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	lastRecv atomic.Int64 // unix nanos of the last frame received
	rtt      atomic.Int64 // nanoseconds, last measured

	cmu      sync.Mutex // guards cbuf, ackOut, ackSent and ackArmed
	cbuf     []byte     // control frames waiting for the control writer
	ackOut   [buffer.NumLanes]uint64
	ackSent  [buffer.NumLanes]uint64 // written by the control writer
	ackArmed bool                    // ackTimer runs for acks not yet sent
	ackTimer *time.Timer             // wakes the control writer ackDelay after a lone ack
	cwake    chan struct{}           // capacity 1

	goaway atomic.Bool // a GoAway was queued
}

func newLink(p *peer, conn transport.Conn, ctl transport.Stream, r *wire.Reader, dialer bool, remoteInc, maxFrame uint64) *link {
	l := &link{
		p: p, conn: conn, ctl: ctl, ctlR: r, dialer: dialer, remoteInc: remoteInc,
		maxFrame: int(min(maxFrame, uint64(p.d.cfg.Link.MaxFrameSize))),
		since:    p.d.now(),
		cwake:    make(chan struct{}, 1),
	}
	l.ackTimer = time.AfterFunc(time.Hour, l.wakeControl)
	l.ackTimer.Stop()
	if l.maxFrame <= 0 {
		l.maxFrame = p.d.cfg.Link.MaxFrameSize
	}
	_, l.peerKey, _ = auth.PeerFromConnectionState(conn.ConnectionState())
	l.ctx, l.cancel = context.WithCancelCause(p.d.ctx)
	l.lastRecv.Store(time.Now().UnixNano())
	return l
}

// start launches the link's goroutines under the daemon's wait group.
func (l *link) start() {
	d := l.p.d
	d.wg.Go(l.run)
}

func (l *link) run() {
	d := l.p.d
	l.gen = l.p.queue.Rewind()
	l.sendSnapshot(true)
	l.wg.Go(l.controlWriter)
	l.wg.Go(l.keepalive) // it starts the lanes' writers too
	l.wg.Go(l.acceptStreams)
	l.controlReader() // in this goroutine
	l.fail(io.EOF)
	l.conn.Close()
	l.wg.Wait()
	l.ackTimer.Stop()
	d.linksMu.Lock()
	delete(d.upLinks, l)
	d.linksMu.Unlock()
	l.p.linkDown(l, context.Cause(l.ctx))
}

// fail ends the link; the first cause wins.
func (l *link) fail(err error) {
	l.cancel(err)
	unblock(l.ctl)
	l.conn.Close()
}

// unblock makes a stream's pending and later Reads and Writes fail at once.
// A deadline, not Close: closing a QUIC stream does not release a Write
// blocked on flow control.
func unblock(s transport.Stream) { _ = s.SetDeadline(time.Unix(1, 0)) }

// goAwayWait bounds how long a GoAway waits for the control writer.
const goAwayWait = 250 * time.Millisecond

// goAway queues a GoAway telling the peer why the link ends, and ends the
// link once the control writer has written it (or after goAwayWait). It does
// not block. The returned channel is closed when the link's context is done.
func (l *link) goAway(code uint8, reason string, cause error) <-chan struct{} {
	if l.goaway.Swap(true) {
		return l.ctx.Done()
	}
	l.cmu.Lock()
	l.cbuf = wire.AppendFrame(l.cbuf, &wire.GoAway{Code: code, Reason: reason})
	l.cmu.Unlock()
	l.wakeControl()
	l.p.d.wg.Go(func() {
		// Wait for the peer to close on receipt of the GoAway: closing
		// first could discard the frame (QUIC drops unsent stream data).
		t := time.NewTimer(goAwayWait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-l.ctx.Done():
		}
		l.fail(cause)
	})
	return l.ctx.Done()
}

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
	ackEvery = 512
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
				out = wire.AppendFrame(out, &wire.Ack{Lane: uint8(lane), Incarnation: stream, Seq: l.ackOut[lane]})
			}
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

// keepalive pings the peer, fails the link when nothing has come for
// link.keepalive_timeout, sends membership digests, and starts each lane's
// writer once the lane first has a message to send. It never blocks on I/O
// (a blocked write must not stop a dead link from being noticed).
//
// "Nothing has come" means neither a frame read by this link nor a byte
// read by the transport (Conn.BytesReceived). Frames alone are not enough:
// over TCP a ping travels behind every byte sent before it on the one
// ordered connection, and a lane this node does not read (its mailbox's
// client is full under local.inbox_full: hold) lets the peer fill that
// lane's stream window, up to 16 MiB a lane, in front of the ping. A slow
// receiver then reads the ping late although the peer never went quiet.
//
// A lane's writer, and its stream, exist only from the lane's first message
// on: an idle link holds a control stream and three goroutines instead of
// four streams and nine (the peer's stream readers included).
func (l *link) keepalive() {
	lc := l.p.d.cfg.Link
	t := time.NewTicker(lc.KeepaliveInterval)
	defer t.Stop()
	dt := time.NewTicker(l.p.d.digestInterval)
	defer dt.Stop()
	q := l.p.queue
	var idle [buffer.NumLanes]<-chan struct{} // nil once the lane's writer runs
	var _ = [1]struct{}{}[buffer.NumLanes-3]  // the select below has a case per lane
	for lane := range idle {
		idle[lane] = q.Notify(lane)
	}
	var heardBytes uint64            // the transport's count at the last tick
	heardAt := time.Now().UnixNano() // when that count last moved
	start := func(lane int) {
		// The wake-up is consumed here; the writer looks at the queue
		// before it first waits, so it misses nothing.
		if q.Ready(l.gen, lane) {
			idle[lane] = nil
			l.wg.Go(func() { l.dataWriter(lane) })
		}
	}
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-idle[buffer.LaneNormal]:
			start(buffer.LaneNormal)
		case <-idle[buffer.LaneHigh]:
			start(buffer.LaneHigh)
		case <-idle[buffer.LaneDurable]:
			start(buffer.LaneDurable)
		case <-dt.C:
			l.sendDigest()
		case now := <-t.C:
			if n := l.conn.BytesReceived(); n != heardBytes {
				heardBytes, heardAt = n, now.UnixNano()
			}
			if now.Sub(time.Unix(0, max(heardAt, l.lastRecv.Load()))) > lc.KeepaliveTimeout {
				l.fail(fmt.Errorf("%w for %v", ErrKeepaliveTimeout, lc.KeepaliveTimeout))
				return
			}
			l.sendControl(&wire.Ping{Echo: uint64(time.Since(pingBase))})
		}
	}
}

// pingBase is the monotonic origin of Ping.Echo values.
var pingBase = time.Now()

func (l *link) rttValue() time.Duration { return time.Duration(l.rtt.Load()) }

func (l *link) controlReader() {
	d := l.p.d
	peerID := groupsID(l.p.id)
	var snap []groups.Entry // a snapshot arriving in several frames
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
		m, err := wire.Decode(t, body)
		if err != nil {
			l.protocolError(err)
			return
		}
		switch m := m.(type) {
		case *wire.Ping:
			l.sendControl(&wire.Pong{Echo: m.Echo})
		case *wire.Pong:
			if m.Echo != 0 {
				rtt := time.Since(pingBase) - time.Duration(m.Echo)
				if rtt >= 0 {
					l.rtt.Store(int64(rtt))
					d.groups.SetRTT(peerID, rtt)
					d.metrics.rtt.WithLabelValues(l.p.id.Cluster, l.p.id.Node).Set(rtt.Seconds())
				}
			}
		case *wire.MembersSnapshot:
			if m.Incarnation != l.remoteInc {
				l.protocolError(fmt.Errorf("membership snapshot of incarnation %x on a link with %x", m.Incarnation, l.remoteInc))
				return
			}
			if len(snap) > maxSnapshotEntries {
				l.protocolError(fmt.Errorf("membership snapshot of more than %d entries", maxSnapshotEntries))
				return
			}
			for _, e := range m.Members {
				snap = append(snap, groups.Entry{Group: e.Group, Mailbox: e.Mailbox, Count: int(min(e.Count, 1<<31)),
					Claim: groups.Claim{N: e.PartitionCount, Partitions: e.Partitions}})
			}
			if m.More {
				continue
			}
			es := snap
			snap = nil
			if err := d.groups.ApplySnapshot(peerID, m.Incarnation, m.Version, es); err != nil {
				d.log.Warn("membership snapshot ignored", "peer", l.p.nodeName(), "err", err)
			}
		case *wire.MembersDelta:
			err := d.groups.ApplyDelta(peerID, m.Incarnation, groups.Delta{Version: m.Version, Op: groups.Op(m.Op), Group: m.Group, Mailbox: m.Mailbox,
				Claim: groups.Claim{N: m.PartitionCount, Partitions: m.Partitions}})
			if errors.Is(err, groups.ErrVersionGap) {
				// Reset the link: the next one starts with a snapshot.
				l.protocolError(err)
				return
			} else if err != nil {
				d.log.Warn("membership delta ignored", "peer", l.p.nodeName(), "err", err)
			}
		case *wire.Ack:
			if int(m.Lane) >= buffer.NumLanes {
				l.protocolError(fmt.Errorf("ack for lane %d", m.Lane))
				return
			}
			want := d.incarnation
			if m.Lane == buffer.LaneDurable {
				want = d.durableID
			}
			if m.Incarnation != want {
				continue // an ack for an earlier run (or spool) of this node
			}
			if err := l.p.queue.Ack(int(m.Lane), m.Seq); err != nil {
				d.metrics.protocolErrors.WithLabelValues("bad_ack").Inc()
				d.log.Warn("bad ack from peer", "peer", l.p.nodeName(), "err", err)
				continue
			}
			if m.Lane == buffer.LaneDurable && d.spool != nil {
				d.spool.Ack(l.p.nodeName(), m.Seq)
			}
		case *wire.Digest:
			inc, ver, hash, ok := d.groups.ViewDigest(peerID)
			if !ok || inc != m.Incarnation || ver != m.Version || hash != m.Hash {
				d.metrics.protocolErrors.WithLabelValues("digest_mismatch").Inc()
				d.log.Warn("membership view diverged from the peer's digest: asking for a snapshot", "peer", l.p.nodeName(),
					"version", ver, "peer_version", m.Version)
				l.sendControl(&wire.Resync{Incarnation: m.Incarnation})
			}
		case *wire.Resync:
			if m.Incarnation == d.incarnation {
				l.sendSnapshot(false)
			}
		case *wire.GoAway:
			d.log.Info("peer closes link", "peer", l.p.nodeName(), "code", m.Code, "reason", m.Reason)
			if m.Code == wire.GoAwayShutdown {
				// The node is leaving: its members go now, not after the
				// unreachable grace.
				d.groups.ForgetPeer(peerID)
			}
			l.fail(fmt.Errorf("%w (code %d): %s", ErrGoAway, m.Code, m.Reason))
			return
		default:
			l.protocolError(fmt.Errorf("unexpected %v on the control stream", t))
			return
		}
	}
}

// sendSnapshot queues a snapshot of this node's (exported) membership. The
// first one also registers the link for deltas, in the same step under the
// registry's lock, so no delta is missed or sent twice.
func (l *link) sendSnapshot(register bool) {
	d := l.p.d
	d.groups.Snapshot(func(version uint64, entries []groups.Entry) {
		ms := make([]wire.Member, 0, len(entries))
		for _, e := range entries {
			if !d.exported(e.Group, l.p.id.Cluster) {
				continue
			}
			ms = append(ms, wire.Member{Group: e.Group, Mailbox: e.Mailbox, Count: uint64(e.Count),
				PartitionCount: e.Claim.N, Partitions: e.Claim.Partitions})
		}
		// Split so that every frame fits the peer's frame limit.
		limit := l.maxFrame / 2
		for {
			n, size := 0, 0
			for n < len(ms) && (n == 0 || size < limit) {
				size += len(ms[n].Group) + 24 + 3*len(ms[n].Partitions)
				n++
			}
			l.sendControl(&wire.MembersSnapshot{Incarnation: d.incarnation, Version: version, Members: ms[:n], More: n < len(ms)})
			ms = ms[n:]
			if len(ms) == 0 {
				break
			}
		}
		if register {
			d.linksMu.Lock()
			d.upLinks[l] = struct{}{}
			d.linksMu.Unlock()
		}
	})
}

// sendDigest queues a digest of this node's membership as the peer sees it.
func (l *link) sendDigest() {
	d := l.p.d
	keep := func(g string) bool { return d.exported(g, l.p.id.Cluster) }
	d.groups.Digest(keep, func(version, hash uint64) {
		l.sendControl(&wire.Digest{Incarnation: d.incarnation, Version: version, Hash: hash})
	})
}

func (l *link) protocolError(err error) {
	d := l.p.d
	d.metrics.protocolErrors.WithLabelValues("frame").Inc()
	d.log.Warn("protocol error on link", "peer", l.p.nodeName(), "err", err)
	l.goAway(wire.GoAwayProtocol, err.Error(), fmt.Errorf("%w: %v", ErrProtocol, err))
}

// acceptStreams accepts the peer's data streams and runs a reader for each.
func (l *link) acceptStreams() {
	for {
		s, err := l.conn.AcceptStream(l.ctx)
		if err != nil {
			l.fail(fmt.Errorf("accept stream: %w", err))
			return
		}
		l.wg.Go(func() { l.dataReader(s) })
	}
}

func groupsID(id auth.PeerID) groups.NodeID { return groups.NodeID{Cluster: id.Cluster, Node: id.Node} }

// maxKeptWriteBuffer bounds the write buffer a lane writer keeps between
// writes (see the client package's constant of the same name; a local
// client's writer uses pooled chunks, outBuf).
const maxKeptWriteBuffer = 16 << 20
