package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/transport"
	"github.com/wandist/wandist/wire"
)

// Link states shown by status.
const (
	StateUp         = "up"
	StateDown       = "down"
	StateConnecting = "connecting"
)

var (
	errSimultaneous = errors.New("simultaneous dial: the peer's own dial wins")
	errAborted      = errors.New("dial abandoned: an inbound link from the peer won")
	errReplaced     = errors.New("link replaced by a newer link to the same peer")
	errShutdown     = errors.New("node stopping")
)

// peer is one configured remote node: its buffer, its link (if up) and the
// state of the simultaneous-dial resolution.
type peer struct {
	d     *Daemon
	id    auth.PeerID
	cfg   configs.Peer // fixed, but for keys and buffer limits (Reload changes them under mu)
	ctx   context.Context
	stop  context.CancelFunc // ends the dial loop (set by startPeer)
	tr    transport.Transport
	queue *buffer.Queue

	mu        sync.Mutex    // guards the fields below
	link      *link         // the up link, or nil
	dialing   bool          // an outbound handshake is in progress
	abortDial bool          // an inbound link was accepted while dialing: the dial must not complete
	pendingIn int           // inbound handshakes answered WelcomeOK, waiting for Ready
	changed   chan struct{} // closed and replaced whenever link, dialing or pendingIn change
	state     string
	since     time.Time
	lastErr   string
	ups       uint64 // times a link came up

	simultaneous atomic.Uint64 // dials answered WelcomeSimultaneous
	blocked      atomic.Bool   // tests: the path to the peer is cut (no dial, inbound refused)
	duplicates   atomic.Uint64 // redelivered messages dropped as already delivered

	rates backlogRates
	alert backlogAlert // owned by the janitor

	durMu   sync.Mutex // orders durable Seq assignment with spool appends
	durNext uint64     // guarded by durMu: next durable Seq

	recvMu      sync.Mutex        // guards the receive positions below
	recvInc     uint64            // incarnation of the peer the reliable positions belong to
	delivered   [2]uint64         // lanes normal and high: highest Seq delivered from recvInc
	recvDurable map[uint64]uint64 // durable lane: highest Seq delivered, per durable stream id of the peer
}

func newPeer(d *Daemon, id auth.PeerID, cfg configs.Peer, tr transport.Transport, q *buffer.Queue) *peer {
	return &peer{d: d, id: id, cfg: cfg, tr: tr, queue: q, changed: make(chan struct{}), state: StateDown, since: d.now(),
		recvDurable: map[uint64]uint64{}}
}

func (p *peer) nodeName() string { return p.id.Cluster + "/" + p.id.Node }

// signalLocked wakes everyone waiting for a change of the peer's state.
func (p *peer) signalLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// busy returns whether no dial is needed now (a link is up, a handshake is
// in progress, or the path is blocked), and the channel closed at the next
// change.
func (p *peer) busy() (bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.link != nil || p.pendingIn > 0 || p.dialing || p.blocked.Load(), p.changed
}

// dialLoop keeps a link to the peer, dialling with exponential backoff and
// full jitter, until ctx ends.
func (p *peer) dialLoop(ctx context.Context) {
	lc := p.d.cfg.Link
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = lc.ReconnectMin
	bo.MaxInterval = lc.ReconnectMax
	bo.RandomizationFactor = 0 // full jitter is applied below
	bo.Multiplier = 2
	bo.Reset()
	if hold := p.d.holdDials; hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return
		}
	}
	for ctx.Err() == nil {
		if busy, ch := p.busy(); busy {
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return
			}
		}
		if !p.beginDial() {
			continue
		}
		l, err := p.dial(ctx)
		p.endDial()
		var wait time.Duration
		switch {
		case err == nil:
			select {
			case <-l.ctx.Done():
			case <-ctx.Done():
				return
			}
			// A link that stayed up through a keepalive period was healthy:
			// start the backoff over.
			if p.d.now().Sub(l.since) >= lc.KeepaliveTimeout {
				bo.Reset()
			}
			wait = fullJitter(lc.ReconnectMin)
		case errors.Is(err, errSimultaneous), errors.Is(err, errAborted):
			if errors.Is(err, errSimultaneous) {
				p.simultaneous.Add(1)
				p.mu.Lock()
				p.signalLocked()
				p.mu.Unlock()
			}
			// The peer's dial wins; give it a handshake's time to arrive.
			wait = lc.HandshakeTimeout
			_, ch := p.busy()
			select {
			case <-ch:
				continue
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return
			}
		default:
			if ctx.Err() != nil {
				return
			}
			p.setErr(err)
			p.d.log.Info("dial failed", "peer", p.nodeName(), "address", p.cfg.Address, "err", err)
			wait = fullJitter(bo.NextBackOff())
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// fullJitter returns a random duration in [0, d) ("full jitter"), at least 1ms.
func fullJitter(d time.Duration) time.Duration {
	if d <= time.Millisecond {
		return time.Millisecond
	}
	return time.Duration(rand.Int64N(int64(d)))
}

func (p *peer) beginDial() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != nil || p.pendingIn > 0 || p.dialing || p.blocked.Load() {
		return false
	}
	p.dialing, p.abortDial = true, false
	if p.state != StateUp {
		p.state = StateConnecting
	}
	p.signalLocked()
	return true
}

func (p *peer) endDial() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dialing, p.abortDial = false, false
	if p.link == nil && p.state == StateConnecting {
		p.state = StateDown
	}
	p.signalLocked()
}

func (p *peer) setErr(err error) {
	p.mu.Lock()
	p.lastErr = err.Error()
	p.mu.Unlock()
}

// dial runs the dialer's side of the handshake: TLS (pinned), Hello,
// Welcome, Ready.
func (p *peer) dial(ctx context.Context) (*link, error) {
	d := p.d
	hctx, cancel := context.WithTimeout(ctx, d.cfg.Link.HandshakeTimeout)
	defer cancel()
	tc, err := d.clientTLS(p)
	if err != nil {
		return nil, err
	}
	conn, err := p.tr.Dial(hctx, p.cfg.Address, tc)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	ctl, err := conn.OpenStream(hctx)
	if err != nil {
		return nil, fmt.Errorf("open control stream: %w", err)
	}
	deadline, _ := hctx.Deadline()
	_ = ctl.SetDeadline(deadline)
	hello := &wire.Hello{Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: d.incarnation, MaxFrame: uint64(d.cfg.Link.MaxFrameSize), DurableID: d.durableID}
	if _, err := ctl.Write(wire.AppendFrame(nil, hello)); err != nil {
		return nil, fmt.Errorf("send hello: %w", err)
	}
	r := wire.NewReader(ctl, d.cfg.Link.MaxFrameSize)
	t, body, err := r.ReadFrame()
	if err != nil {
		return nil, fmt.Errorf("read welcome: %w", err)
	}
	if t != wire.TypeWelcome {
		return nil, fmt.Errorf("handshake: expected Welcome, got %v", t)
	}
	var w wire.Welcome
	if err := w.DecodeBody(body); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	switch w.Status {
	case wire.WelcomeOK:
	case wire.WelcomeSimultaneous:
		return nil, errSimultaneous
	default:
		return nil, fmt.Errorf("refused by peer: %s", w.Reason)
	}
	if w.Cluster != p.id.Cluster || w.Node != p.id.Node {
		d.metrics.handshakeRejects.WithLabelValues(string(auth.ReasonNameMismatch)).Inc()
		return nil, fmt.Errorf("handshake: peer's Welcome names %s/%s, its certificate %s", w.Cluster, w.Node, p.id)
	}
	l := newLink(p, conn, ctl, r, true, w.Incarnation, w.MaxFrame)
	l.remoteDurable = w.DurableID
	p.mu.Lock()
	if p.abortDial {
		p.mu.Unlock()
		return nil, errAborted
	}
	p.installLocked(l)
	p.mu.Unlock()
	p.resume(w.Delivered)
	_ = ctl.SetDeadline(time.Time{})
	ready := &wire.Ready{Delivered: p.deliveredFor(w.Incarnation, w.DurableID)}
	if _, err := ctl.Write(wire.AppendFrame(nil, ready)); err != nil {
		l.fail(fmt.Errorf("send ready: %w", err))
	}
	ok = true
	l.start()
	return l, nil
}

// handleInbound runs the acceptor's side of the handshake for one
// connection whose TLS handshake (and pin check) already passed.
func (d *Daemon) handleInbound(conn transport.Conn) {
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	hctx, cancel := context.WithTimeout(d.ctx, d.cfg.Link.HandshakeTimeout)
	defer cancel()
	claimed, _, err := auth.PeerFromConnectionState(conn.ConnectionState())
	if err != nil {
		d.log.Warn("inbound link without identity", "remote", conn.RemoteAddr().String(), "err", err)
		return
	}
	ctl, err := conn.AcceptStream(hctx)
	if err != nil {
		d.log.Info("inbound link: no control stream", "peer", claimed.String(), "err", err)
		return
	}
	deadline, _ := hctx.Deadline()
	_ = ctl.SetDeadline(deadline)
	r := wire.NewReader(ctl, d.cfg.Link.MaxFrameSize)
	t, body, err := r.ReadFrame()
	if err != nil {
		d.log.Info("inbound link: bad hello", "peer", claimed.String(), "err", err)
		return
	}
	refuse := func(reason string, label string) {
		d.metrics.handshakeRejects.WithLabelValues(label).Inc()
		d.log.Warn("inbound link refused", "peer", claimed.String(), "remote", conn.RemoteAddr().String(), "reason", reason)
		w := &wire.Welcome{Status: wire.WelcomeRefused, Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: d.incarnation, Reason: reason}
		_, _ = ctl.Write(wire.AppendFrame(nil, w))
		linger(ctl)
	}
	if t != wire.TypeHello {
		refuse(fmt.Sprintf("expected Hello, got %v", t), "protocol")
		return
	}
	var h wire.Hello
	if err := h.DecodeBody(body); err != nil {
		refuse(err.Error(), "protocol")
		return
	}
	if h.Cluster != claimed.Cluster || h.Node != claimed.Node {
		refuse(fmt.Sprintf("hello names %s/%s but the certificate is %s", h.Cluster, h.Node, claimed), string(auth.ReasonNameMismatch))
		return
	}
	p := d.peer(claimed.Cluster, claimed.Node)
	if p == nil {
		refuse(fmt.Sprintf("%s is not a configured peer", claimed), string(auth.ReasonUnknownPeer))
		return
	}
	if p.blocked.Load() {
		return // a simulated partition: the packets never arrive
	}
	if p.cfg.Mode == "connect" {
		refuse(fmt.Sprintf("%s is configured connect-only on %s/%s: it dials, it does not accept", claimed, d.cfg.Cluster, d.cfg.Node), "mode")
		return
	}
	self := d.cfg.Cluster + "/" + d.cfg.Node
	p.mu.Lock()
	if p.dialing && self < p.nodeName() {
		p.mu.Unlock()
		w := &wire.Welcome{Status: wire.WelcomeSimultaneous, Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: d.incarnation, Reason: "simultaneous dial; mine wins"}
		_, _ = ctl.Write(wire.AppendFrame(nil, w))
		linger(ctl)
		d.log.Debug("simultaneous dial resolved: mine wins", "peer", p.nodeName())
		return
	}
	if p.dialing {
		p.abortDial = true
	}
	p.pendingIn++
	p.signalLocked()
	p.mu.Unlock()
	installed := false
	defer func() {
		if !installed {
			p.mu.Lock()
			p.pendingIn--
			p.signalLocked()
			p.mu.Unlock()
		}
	}()
	w := &wire.Welcome{Status: wire.WelcomeOK, Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: d.incarnation,
		MaxFrame: uint64(d.cfg.Link.MaxFrameSize), DurableID: d.durableID, Delivered: p.deliveredFor(h.Incarnation, h.DurableID)}
	if _, err := ctl.Write(wire.AppendFrame(nil, w)); err != nil {
		return
	}
	t, body, err = r.ReadFrame()
	var ready wire.Ready
	if err != nil || t != wire.TypeReady || ready.DecodeBody(body) != nil {
		d.log.Debug("inbound link abandoned before ready", "peer", p.nodeName(), "type", t, "err", err)
		return
	}
	_ = ctl.SetDeadline(time.Time{})
	p.resume(ready.Delivered)
	l := newLink(p, conn, ctl, r, false, h.Incarnation, h.MaxFrame)
	l.remoteDurable = h.DurableID
	p.mu.Lock()
	p.pendingIn--
	installed = true
	p.installLocked(l)
	p.mu.Unlock()
	ok = true
	l.start()
}

// linger waits (briefly) for the dialer to close after a refusal, so that
// closing the connection does not discard the answer before it is sent.
func linger(s transport.Stream) {
	_ = s.SetDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, s)
}

// installLocked makes l the peer's up link, replacing (and closing) any
// older one.
func (p *peer) installLocked(l *link) {
	old := p.link
	p.link = l
	p.state, p.since, p.lastErr = StateUp, p.d.now(), ""
	p.ups++
	p.signalLocked()
	if old != nil {
		old.goAway(wire.GoAwayReplaced, "replaced by a newer link", errReplaced)
	}
	if p.ups > 1 {
		p.d.metrics.reconnects.WithLabelValues(p.id.Cluster, p.id.Node).Inc()
	}
	p.d.metrics.linkUp.WithLabelValues(p.id.Cluster, p.id.Node).Set(1)
	p.d.log.Info("link up", "peer", p.nodeName(), "transport", l.conn.Transport(), "remote", l.conn.RemoteAddr().String(), "dialer", l.dialer)
}

// linkDown is called by a link once all its goroutines ended.
func (p *peer) linkDown(l *link, cause error) {
	p.mu.Lock()
	current := p.link == l
	if current {
		p.link = nil
		p.state, p.since = StateDown, p.d.now()
		if cause != nil {
			p.lastErr = cause.Error()
		}
		p.signalLocked()
	}
	p.mu.Unlock()
	if !current {
		return
	}
	p.d.metrics.linkUp.WithLabelValues(p.id.Cluster, p.id.Node).Set(0)
	p.d.groups.PeerDown(groupsID(p.id), p.d.now())
	p.d.log.Info("link down", "peer", p.nodeName(), "cause", fmt.Sprint(cause))
}

// closeLink says GoAway(Shutdown) on the up link and waits until it ended.
func (p *peer) closeLink() {
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l != nil {
		<-l.goAway(wire.GoAwayShutdown, "node stopping", errShutdown)
	}
}

// acceptDelivery checks a received sequence number against the delivered
// position of the lane and advances it; false means a duplicate. stream is
// the sender's incarnation (normal and high lanes) or its durable stream id
// (durable lane). deliver runs under the lock so that two links racing
// during a replacement cannot reorder deliveries.
func (p *peer) acceptDelivery(stream uint64, lane int, seq uint64, deliver func()) bool {
	p.recvMu.Lock()
	defer p.recvMu.Unlock()
	if seq == 0 { // at-most-once
		deliver()
		return true
	}
	if lane == buffer.LaneDurable {
		if seq <= p.recvDurable[stream] {
			return false
		}
		p.recvDurable[stream] = seq
		deliver()
		return true
	}
	if stream != p.recvInc {
		p.recvInc = stream
		p.delivered = [2]uint64{}
	}
	if seq <= p.delivered[lane] {
		return false
	}
	p.delivered[lane] = seq
	deliver()
	return true
}

// deliveredFor returns, per lane, the highest Seq delivered from the peer's
// incarnation inc and durable stream dur: what the peer may stop resending.
func (p *peer) deliveredFor(inc, dur uint64) []uint64 {
	p.recvMu.Lock()
	defer p.recvMu.Unlock()
	out := make([]uint64, buffer.NumLanes)
	if inc == p.recvInc {
		copy(out, p.delivered[:])
	}
	if dur != 0 {
		out[buffer.LaneDurable] = p.recvDurable[dur]
	}
	return out
}

// resume applies the peer's delivered positions (from Welcome or Ready) to
// the outbound buffer before the link resends: what the peer already has is
// acked, not sent again. A position beyond what this node ever sent means the
// peer's state does not belong to this node's streams: logged and counted.
func (p *peer) resume(delivered []uint64) {
	for lane, pos := range delivered {
		if lane >= buffer.NumLanes || pos == 0 {
			continue
		}
		if err := p.queue.Ack(lane, pos); err != nil {
			p.d.metrics.protocolErrors.WithLabelValues("bad_resume").Inc()
			p.d.log.Warn("peer's resume position is beyond what was sent", "peer", p.nodeName(), "lane", lane, "err", err)
			continue
		}
		if lane == buffer.LaneDurable && p.d.spool != nil {
			p.d.spool.Ack(p.nodeName(), pos)
		}
	}
}

// snapshot of the peer for status.
type peerStatus struct {
	state, lastErr, transport, remote string
	since                             time.Time
	rtt                               time.Duration
}

func (p *peer) status() peerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := peerStatus{state: p.state, since: p.since, lastErr: p.lastErr, transport: p.cfg.Transport}
	if p.link != nil {
		s.rtt = p.link.rttValue()
		s.remote = p.link.conn.RemoteAddr().String()
		s.transport = p.link.conn.Transport() // an accepted link may use another transport than the one configured for dialling
	}
	return s
}

// currentLink returns the up link, or nil.
func (p *peer) currentLink() *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.link
}
