package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

func (d *Daemon) listen(name, addr string) error {
	tr := d.transports[name]
	if tr == nil {
		return fmt.Errorf("listen %s: transport not available", name)
	}
	tc, err := auth.ServerTLSConfig(d.id, d.pins, []string{ALPN}, d.onReject)
	if err != nil {
		return err
	}
	ln, err := tr.Listen(addr, tc)
	if err != nil {
		return fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	d.listenMu.Lock()
	if d.listeners == nil {
		d.listeners = map[string]transport.Listener{}
	}
	d.listeners[name] = ln
	d.listenMu.Unlock()
	d.wg.Go(func() { d.acceptLoop(ln) })
	return nil
}

func (d *Daemon) acceptLoop(ln transport.Listener) {
	for {
		conn, err := ln.Accept(d.ctx)
		if err != nil {
			if d.ctx.Err() == nil && !errors.Is(err, transport.ErrClosed) {
				d.log.Warn("accept failed", "err", err)
			}
			return
		}
		d.wg.Go(func() { d.handleInbound(conn) })
	}
}

func (d *Daemon) clientTLS(p *peer) (*tls.Config, error) {
	return auth.ClientTLSConfig(d.id, d.pins, p.id, []string{ALPN}, d.onReject)
}

// dial gets a connection to the peer (connect) and runs the dialer's side
// of the handshake on it.
func (p *peer) dial(ctx context.Context) (*link, error) {
	conn, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	return p.handshake(ctx, conn)
}

// connect dials the peer; when that fails twice in a row (or the peer's
// address is not known) and the peer, of another cluster, can be reached
// through a node of its cluster this node has a link to (relayFor), it
// tries once through that node (relay.go). One failure is not enough: a
// node that has just started refuses handshakes from addresses it has not
// learned yet beyond link.handshake_rate_total, and a relayed link, once
// up, is kept until it ends.
//
// A peer last reached through a relay after its direct dial failed is
// tried through a relay first: behind a firewall that drops packets
// silently, a direct dial costs a whole handshake timeout each time.
func (p *peer) connect(ctx context.Context) (transport.Conn, error) {
	if p.d.onDemand(p) && p.d.gatewayCluster(p) != nil {
		via := p.d.relayFor(p)
		if via == nil {
			return nil, fmt.Errorf("%w: %s", errNoGateway, p.id.Cluster)
		}
		return p.dialRelayed(ctx, via)
	}
	if p.relayFirst.Load() {
		if via := p.d.relayFor(p); via != nil {
			if conn, err := p.dialRelayed(ctx, via); err == nil || ctx.Err() != nil {
				return conn, err
			}
		}
	}
	conn, err := p.dialDirect(ctx)
	if err == nil || ctx.Err() != nil {
		p.relayFirst.Store(false)
		p.directFails.Store(0)
		return conn, err
	}
	if p.directFails.Add(1) < 2 && !errors.Is(err, ErrNoAddress) {
		return nil, err
	}
	via := p.d.relayFor(p)
	if via == nil {
		return nil, err
	}
	conn, rerr := p.dialRelayed(ctx, via)
	if rerr != nil {
		return nil, fmt.Errorf("%w; and %w", err, rerr)
	}
	p.relayFirst.Store(true)
	return conn, nil
}

// dialDirect dials the peer's address: TLS (pinned or by its cluster's CA).
func (p *peer) dialDirect(ctx context.Context) (transport.Conn, error) {
	d := p.d
	hctx, cancel := context.WithTimeout(ctx, d.cfg.Link.HandshakeTimeout)
	defer cancel()
	tc, err := d.clientTLS(p)
	if err != nil {
		return nil, err
	}
	addr := p.address()
	if addr == "" {
		return nil, ErrNoAddress
	}
	conn, err := p.tr.Dial(hctx, addr, tc)
	if err != nil {
		return nil, err
	}
	d.admit.trust(conn.RemoteAddr())
	return conn, nil
}

// handshake runs the dialer's side of the handshake on conn: Hello,
// Welcome, Ready. It closes conn on failure.
func (p *peer) handshake(ctx context.Context, conn transport.Conn) (*link, error) {
	d := p.d
	hctx, cancel := context.WithTimeout(ctx, d.cfg.Link.HandshakeTimeout)
	defer cancel()
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
	if err := p.stillTrustedLocked(l); err != nil {
		p.mu.Unlock()
		l.cancel(err)
		return nil, err
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

// inbound is an accepted connection during the acceptor's side of the
// handshake. Owned by the goroutine running handleInbound.
type inbound struct {
	conn    transport.Conn
	claimed auth.PeerID // from the certificate
	ctl     transport.Stream
	r       *wire.Reader // reads ctl
	hello   wire.Hello
}

// handleInbound runs the acceptor's side of the handshake for one
// connection whose TLS handshake (and pin check) already passed: Hello,
// Welcome, Ready.
func (d *Daemon) handleInbound(conn transport.Conn) {
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	hctx, cancel := context.WithTimeout(d.ctx, d.cfg.Link.HandshakeTimeout)
	defer cancel()
	in := &inbound{conn: conn}
	p := d.readHello(hctx, in)
	if p == nil || !p.claimInbound(in) {
		return
	}
	ok = p.acceptInbound(in)
}

// readHello reads the dialer's Hello and returns the configured peer it
// comes from, or nil if the handshake ends here (refused with its reason,
// or logged).
func (d *Daemon) readHello(ctx context.Context, in *inbound) *peer {
	claimed, _, err := auth.PeerFromConnectionState(in.conn.ConnectionState())
	if err != nil {
		d.log.Warn("inbound link without identity", "remote", in.conn.RemoteAddr().String(), "err", err)
		return nil
	}
	in.claimed = claimed
	// The transport handed over this connection only once the pin check
	// passed: its address is a peer's.
	d.admit.trust(in.conn.RemoteAddr())
	if in.ctl, err = in.conn.AcceptStream(ctx); err != nil {
		d.log.Info("inbound link: no control stream", "peer", claimed.String(), "err", err)
		return nil
	}
	deadline, _ := ctx.Deadline()
	_ = in.ctl.SetDeadline(deadline)
	in.r = wire.NewReader(in.ctl, d.cfg.Link.MaxFrameSize)
	t, body, err := in.r.ReadFrame()
	if err != nil {
		d.log.Info("inbound link: bad hello", "peer", claimed.String(), "err", err)
		return nil
	}
	h := &in.hello
	if t == wire.TypeNodesRequest {
		d.answerNodes(in, body)
		return nil
	}
	if t != wire.TypeHello {
		d.refuseHello(in, fmt.Sprintf("expected Hello, got %v", t), "protocol")
		return nil
	}
	if err := h.DecodeBody(body); err != nil {
		d.refuseHello(in, err.Error(), "protocol")
		return nil
	}
	if h.Cluster != claimed.Cluster || h.Node != claimed.Node {
		d.refuseHello(in, fmt.Sprintf("hello names %s/%s but the certificate is %s", h.Cluster, h.Node, claimed), string(auth.ReasonNameMismatch))
		return nil
	}
	p := d.peer(claimed.Cluster, claimed.Node)
	if p == nil {
		p = d.adoptInbound(claimed)
	}
	if p == nil {
		d.refuseHello(in, fmt.Sprintf("%s is not a configured peer", claimed), string(auth.ReasonUnknownPeer))
		return nil
	}
	if p.cfg.Mode == "connect" {
		d.refuseHello(in, fmt.Sprintf("%s is configured connect-only on %s/%s: it dials, it does not accept", claimed, d.cfg.Cluster, d.cfg.Node), "mode")
		return nil
	}
	return p
}

// refuseHello answers a Hello with Welcome(Refused) and its reason, counted
// under label.
func (d *Daemon) refuseHello(in *inbound, reason, label string) {
	d.metrics.handshakeRejects.WithLabelValues(label).Inc()
	d.log.Warn("inbound link refused", "peer", in.claimed.String(), "remote", in.conn.RemoteAddr().String(), "reason", reason)
	w := &wire.Welcome{Status: wire.WelcomeRefused, Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: d.incarnation, Reason: reason}
	_, _ = in.ctl.Write(wire.AppendFrame(nil, w))
	linger(in.ctl)
}

// claimInbound resolves a simultaneous dial (the lower node name's own
// dial wins) and, if this inbound link goes on, counts it in pendingIn and
// aborts this node's dial in progress.
func (p *peer) claimInbound(in *inbound) bool {
	d := p.d
	self := d.cfg.Cluster + "/" + d.cfg.Node
	p.mu.Lock()
	if p.dialing && self < p.nodeName() {
		p.mu.Unlock()
		w := &wire.Welcome{Status: wire.WelcomeSimultaneous, Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: d.incarnation, Reason: "simultaneous dial; mine wins"}
		_, _ = in.ctl.Write(wire.AppendFrame(nil, w))
		linger(in.ctl)
		d.log.Debug("simultaneous dial resolved: mine wins", "peer", p.nodeName())
		return false
	}
	if p.dialing {
		p.abortDial = true
	}
	p.pendingIn++
	p.signalLocked()
	p.mu.Unlock()
	return true
}

// acceptInbound answers Welcome(OK) with this node's resume positions,
// waits for Ready, and installs and starts the link. It is false if the
// dialer gave up first; either way the claim of claimInbound is released.
func (p *peer) acceptInbound(in *inbound) bool {
	d := p.d
	installed := false
	defer func() {
		if !installed {
			p.mu.Lock()
			p.pendingIn--
			p.signalLocked()
			p.mu.Unlock()
		}
	}()
	h := &in.hello
	w := &wire.Welcome{Status: wire.WelcomeOK, Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: d.incarnation,
		MaxFrame: uint64(d.cfg.Link.MaxFrameSize), DurableID: d.durableID, Delivered: p.deliveredFor(h.Incarnation, h.DurableID)}
	if _, err := in.ctl.Write(wire.AppendFrame(nil, w)); err != nil {
		return false
	}
	t, body, err := in.r.ReadFrame()
	var ready wire.Ready
	if err != nil || t != wire.TypeReady || ready.DecodeBody(body) != nil {
		d.log.Debug("inbound link abandoned before ready", "peer", p.nodeName(), "type", t, "err", err)
		return false
	}
	_ = in.ctl.SetDeadline(time.Time{})
	p.resume(ready.Delivered)
	l := newLink(p, in.conn, in.ctl, in.r, false, h.Incarnation, h.MaxFrame)
	l.remoteDurable = h.DurableID
	p.mu.Lock()
	p.pendingIn--
	installed = true
	if err := p.stillTrustedLocked(l); err != nil {
		p.signalLocked()
		p.mu.Unlock()
		l.cancel(err)
		d.log.Warn("inbound link refused after its handshake", "peer", p.nodeName(), "err", err)
		return false
	}
	p.installLocked(l)
	p.mu.Unlock()
	l.start()
	return true
}

// linger waits (briefly) for the dialer to close after a refusal, so that
// closing the connection does not discard the answer before it is sent.
func linger(s transport.Stream) {
	_ = s.SetDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, s)
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
			p.d.warnPeer(p.id, "bad_resume", "peer's resume position is beyond what was sent", "lane", lane, "err", err)
			continue
		}
		if lane == buffer.LaneDurable && p.d.spool != nil {
			p.d.spool.Ack(p.nodeName(), pos)
		}
	}
}

// deliveredFor returns, per lane, the highest Seq of the peer's incarnation
// inc and durable stream dur up to which every message is done here: what
// the peer may stop resending.
func (p *peer) deliveredFor(inc, dur uint64) []uint64 {
	p.recvMu.Lock()
	defer p.recvMu.Unlock()
	out := make([]uint64, buffer.NumLanes)
	if inc == p.recvInc {
		for lane := range p.recv {
			out[lane] = p.recv[lane].resumeFrom()
		}
	}
	if dur != 0 {
		out[buffer.LaneDurable] = p.recvDurable[dur]
	}
	return out
}

// stillTrustedLocked checks l's peer against the pinned keys and the
// revocations as they are now, under p.mu, before l is installed. The TLS
// handshake checked them as they were when it ran: a reload that unpinned
// the key or revoked the certificate meanwhile either finds l installed
// and closes it (reload, closeRevoked), or is seen here.
func (p *peer) stillTrustedLocked(l *link) error {
	if keys := p.cfg.PublicKeys; len(keys) > 0 && !keyPinned(l.peerKey, keys) {
		p.d.metrics.handshakeRejects.WithLabelValues(string(auth.ReasonUnpinnedKey)).Inc()
		return fmt.Errorf("%w: %s's key was unpinned during the handshake", auth.ErrRejected, p.nodeName())
	}
	if err := p.d.pins.Revoked(l.peerChain); err != nil {
		return fmt.Errorf("%w: %s's certificate was revoked during the handshake: %w", auth.ErrRejected, p.nodeName(), err)
	}
	return nil
}
