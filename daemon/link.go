package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// Errors that end a link, reported as its cause.
var (
	ErrKeepaliveTimeout = errors.New("link: keepalive timeout (nothing received)")
	ErrControlOverflow  = errors.New("link: control queue over its bound")
	ErrProtocol         = errors.New("link: protocol violation")
	ErrGoAway           = errors.New("link: peer sent GoAway")
)

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
	// peerChain is the certificate chain the peer presented (leaf first),
	// peerCert its leaf, caVerified whether a cluster CA vouched for it
	// (no pins for its name): checked against revocations at reload and
	// against expiry by the janitor.
	peerChain  []*x509.Certificate
	peerCert   *x509.Certificate
	caVerified bool
	// remoteDurable is the peer's durable stream id (0: it has no spool).
	remoteDurable uint64
	maxFrame      int // largest frame the peer accepts
	since         time.Time
	gen           uint64 // queue generation for this link's data writers

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	lastRecv atomic.Int64 // unix nanos of the last frame received
	lastData atomic.Int64 // unix nanos of the last data frame received (or of the link's start), for closeIdle
	rtt      atomic.Int64 // nanoseconds, last measured

	cmu      sync.Mutex // guards cbuf, ackOut, ackSent and ackArmed
	cbuf     []byte     // control frames waiting for the control writer
	ackOut   [buffer.NumLanes]uint64
	ackSent  [buffer.NumLanes]uint64 // written by the control writer
	ackArmed bool                    // ackTimer runs for acks not yet sent
	ackTimer *time.Timer             // wakes the control writer ackDelay after a lone ack
	cwake    chan struct{}           // capacity 1

	goaway atomic.Bool // a GoAway was queued

	pm *pipeMux // the link's pipes (pipes.go)
}

func newLink(p *peer, conn transport.Conn, ctl transport.Stream, r *wire.Reader, dialer bool, remoteInc, maxFrame uint64) *link {
	l := &link{
		p: p, conn: conn, ctl: ctl, ctlR: r, dialer: dialer, remoteInc: remoteInc,
		maxFrame: int(min(maxFrame, uint64(p.d.cfg.Link.MaxFrameSize))),
		since:    p.d.now(),
		cwake:    make(chan struct{}, 1),
	}
	l.pm = newPipeMux(l)
	l.ackTimer = time.AfterFunc(time.Hour, l.wakeControl)
	l.ackTimer.Stop()
	if l.maxFrame <= 0 {
		l.maxFrame = p.d.cfg.Link.MaxFrameSize
	}
	cs := conn.ConnectionState()
	_, l.peerKey, _ = auth.PeerFromConnectionState(cs)
	l.peerChain = cs.PeerCertificates
	l.peerCert, l.caVerified = p.d.peerCertOf(cs.PeerCertificates)
	l.ctx, l.cancel = context.WithCancelCause(p.d.ctx)
	l.lastRecv.Store(time.Now().UnixNano())
	l.lastData.Store(l.lastRecv.Load())
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
	l.sendNodes()
	l.wg.Go(l.controlWriter)
	l.wg.Go(l.keepalive) // it starts the lanes' writers too
	l.wg.Go(l.acceptStreams)
	l.controlReader() // in this goroutine
	l.fail(io.EOF)
	l.conn.Close()
	l.pm.quit()
	l.wg.Wait()
	l.pm.end()
	l.ackTimer.Stop()
	d.linksMu.Lock()
	delete(d.upLinks, l)
	d.linksMu.Unlock()
	d.dropSubscriber(l)
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

func (l *link) rttValue() time.Duration { return time.Duration(l.rtt.Load()) }

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
