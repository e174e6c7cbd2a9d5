package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// relay.go: a link to a node of another cluster that this node cannot
// dial is run through another node of that cluster (docs/wire-spec.md,
// "Relayed links"). The link is an ordinary one (TLS, handshake,
// positions, acks, resume: end to end), over a stream that the relay
// splices to a stream of its own link to the target. The relay sees only
// ciphertext.
//
//	dialer    connect (handshake.go) falls back to dialRelayed: a relay
//	          request on its link to the relay, then transport.ClientOver
//	relay     relayRequest: the checks, a relayed stream on its link to
//	          the target, splice
//	target    relayedIn: transport.ServerOver, then handleInbound

// maxRelays bounds the relays in progress on a node (streams it splices).
const maxRelays = 64

// Reasons a relay request or a relayed stream is refused.
const (
	relayNotOwnCluster  = "not_own_cluster" // the target is not of the relay's cluster
	relayNoLink         = "no_link"         // the relay has no direct link up to the target
	relayTooMany        = "too_many"        // maxRelays in progress
	relayBadRequest     = "bad_request"     // malformed, from the relay's own cluster, or over a relayed link
	relayHandshake      = "handshake"       // target: TLS over the relayed stream failed
	relayOriginMismatch = "origin_mismatch" // target: the TLS identity is not the origin the relay named
)

var relayReasons = []string{relayNotOwnCluster, relayNoLink, relayTooMany, relayBadRequest, relayHandshake, relayOriginMismatch}

// relayState is the daemon's relay bookkeeping.
type relayState struct {
	active atomic.Int64 // relays in progress (spliced streams pairs)

	mu      sync.Mutex    // guards changed
	changed chan struct{} // closed and replaced whenever a link comes up or goes down
}

// relayMetrics count relays (on the relay and on the target).
type relayMetrics struct {
	relayRefused *prometheus.CounterVec
	relayedBytes prometheus.Counter
}

func (m *metrics) addRelay() {
	m.relayRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_relay_refused_total",
		Help: "Relay requests this node refused as a relay, and relayed streams it refused as a target, by reason: not_own_cluster, no_link, too_many, bad_request, handshake, origin_mismatch."}, []string{"reason"})
	m.relayedBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_relayed_bytes_total",
		Help: "Bytes this node relayed between two other nodes, both ways."})
	for _, r := range relayReasons {
		m.relayRefused.WithLabelValues(r)
	}
	m.reg.MustRegister(m.relayRefused, m.relayedBytes)
}

// linkEvents returns a channel closed at the next link up or down.
func (d *Daemon) linkEvents() <-chan struct{} {
	d.relay.mu.Lock()
	defer d.relay.mu.Unlock()
	if d.relay.changed == nil {
		d.relay.changed = make(chan struct{})
	}
	return d.relay.changed
}

// linksChanged wakes the dial loops waiting for a relay (linkEvents).
func (d *Daemon) linksChanged() {
	d.relay.mu.Lock()
	defer d.relay.mu.Unlock()
	if d.relay.changed != nil {
		close(d.relay.changed)
		d.relay.changed = nil
	}
}

// relayed tells whether l runs over a relay.
func (l *link) relayed() bool { return l.conn.Transport() == transport.RelayName }

// relayFor returns the link through which p may be reached when it cannot
// be dialled: the direct up link to the node of p's cluster with the
// lowest name, other than p; nil if none, or if p is of this node's
// cluster.
func (d *Daemon) relayFor(p *peer) *link {
	if p.id.Cluster == d.cfg.Cluster {
		return nil
	}
	if d.gatewayCluster(p) != nil {
		return d.gatewayFor(p)
	}
	var best *link
	for _, q := range d.peerList() {
		if q == p || q.id.Cluster != p.id.Cluster || (best != nil && q.id.Node >= best.p.id.Node) {
			continue
		}
		if l := q.currentLink(); l != nil && !l.relayed() {
			best = l
		}
	}
	return best
}

// overlayOptions are the transport options of relayed connections.
func (d *Daemon) overlayOptions() transport.Options {
	o := d.transportOptions()
	o.Admit, o.ValidateSource = nil, nil
	return o
}

// dialRelayed asks via's peer to relay a stream to p, and runs the
// dialer's side of TLS and yamux over it.
func (p *peer) dialRelayed(ctx context.Context, via *link) (transport.Conn, error) {
	d := p.d
	hctx, cancel := context.WithTimeout(ctx, d.cfg.Link.HandshakeTimeout)
	defer cancel()
	tc, err := d.clientTLS(p)
	if err != nil {
		return nil, err
	}
	s, err := via.conn.OpenStream(hctx)
	if err != nil {
		return nil, fmt.Errorf("open relay stream: %w", err)
	}
	b := wire.AppendFrame(nil, &wire.StreamInit{Kind: wire.StreamRelayRequest})
	b = wire.AppendFrame(b, &wire.Relay{Cluster: p.id.Cluster, Node: p.id.Node})
	if _, err := s.Write(b); err != nil {
		s.Close()
		return nil, fmt.Errorf("send relay request: %w", err)
	}
	viaName := via.p.nodeName()
	rc := newRelayConn(via, s, transport.RelayAddr{Via: viaName, End: d.cfg.Cluster + "/" + d.cfg.Node}, transport.RelayAddr{Via: viaName, End: p.nodeName()})
	conn, err := transport.ClientOver(hctx, rc, tc, d.overlayOptions())
	if err != nil {
		return nil, fmt.Errorf("relayed by %s: %w", viaName, err)
	}
	return conn, nil
}

// relayConn is a stream of a link used as the byte stream of a relayed
// connection: it fails at once when its link ends.
type relayConn struct {
	net.Conn
	stop func() bool
}

func newRelayConn(l *link, s transport.Stream, local, remote net.Addr) *relayConn {
	return &relayConn{Conn: transport.StreamConn(s, local, remote), stop: context.AfterFunc(l.ctx, func() { unblock(s) })}
}

func (c *relayConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// readRelay reads the Relay frame that follows a relay stream's
// StreamInit, without reading ahead (the bytes after it are TLS's).
func readRelay(s transport.Stream) (wire.Relay, error) {
	var m wire.Relay
	t, body, err := readFrameExact(s)
	if err == nil && t != wire.TypeRelay {
		err = fmt.Errorf("expected Relay, got %v", t)
	}
	if err == nil {
		err = m.DecodeBody(body)
	}
	if err == nil {
		err = auth.PeerID{Cluster: m.Cluster, Node: m.Node}.Validate()
	}
	return m, err
}

// refuseRelay closes a relay stream, counting and logging (once per peer
// and reason per interval) why.
func (l *link) refuseRelay(s transport.Stream, reason string, err error) {
	d := l.p.d
	s.Close()
	d.metrics.relayRefused.WithLabelValues(reason).Inc()
	d.warnPeer(l.p.id, "relay_"+reason, "relay stream refused", "reason", reason, "err", err)
}

// relayRequest serves a relay request of l's peer (a node of another
// cluster): the target must be of this node's cluster, with a direct link
// up. The stream is then spliced to a new stream on that link.
func (l *link) relayRequest(s transport.Stream) {
	d := l.p.d
	m, err := readRelay(s)
	switch {
	case err != nil:
		l.refuseRelay(s, relayBadRequest, err)
		return
	case l.p.id.Cluster == d.cfg.Cluster || l.relayed():
		l.refuseRelay(s, relayBadRequest, fmt.Errorf("relay request from %s over a %s link: only direct links from other clusters are relayed", l.p.nodeName(), l.conn.Transport()))
		return
	case m.Cluster != d.cfg.Cluster:
		l.refuseRelay(s, relayNotOwnCluster, fmt.Errorf("target %s/%s is not of cluster %s", m.Cluster, m.Node, d.cfg.Cluster))
		return
	}
	var to *link
	if p := d.peer(m.Cluster, m.Node); p != nil {
		to = p.currentLink()
	}
	if to == nil || to.relayed() {
		l.refuseRelay(s, relayNoLink, fmt.Errorf("no direct link up to %s/%s", m.Cluster, m.Node))
		return
	}
	if d.relay.active.Add(1) > maxRelays {
		d.relay.active.Add(-1)
		l.refuseRelay(s, relayTooMany, fmt.Errorf("%d relays in progress", maxRelays))
		return
	}
	out, err := l.openRelayed(to)
	if err != nil {
		d.relay.active.Add(-1)
		l.refuseRelay(s, relayNoLink, err)
		return
	}
	d.splice(l, to, s, out)
}

// openRelayed opens a stream to to's peer for l's peer.
func (l *link) openRelayed(to *link) (transport.Stream, error) {
	ctx, cancel := context.WithTimeout(to.ctx, l.p.d.cfg.Link.HandshakeTimeout)
	defer cancel()
	out, err := to.conn.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("open a stream to %s: %w", to.p.nodeName(), err)
	}
	b := wire.AppendFrame(nil, &wire.StreamInit{Kind: wire.StreamRelayed})
	b = wire.AppendFrame(b, &wire.Relay{Cluster: l.p.id.Cluster, Node: l.p.id.Node})
	_ = out.SetDeadline(time.Now().Add(l.p.d.cfg.Link.HandshakeTimeout))
	if _, err := out.Write(b); err != nil {
		out.Close()
		return nil, fmt.Errorf("write to %s: %w", to.p.nodeName(), err)
	}
	_ = out.SetDeadline(time.Time{})
	return out, nil
}

// splice copies a to b and b to a, in two goroutines of the daemon, until
// either side or either link ends; then it closes both streams.
func (d *Daemon) splice(la, lb *link, a, b transport.Stream) {
	var once sync.Once
	end := func() {
		once.Do(func() {
			unblock(a)
			unblock(b)
			a.Close()
			b.Close()
			d.relay.active.Add(-1)
		})
	}
	stopA := context.AfterFunc(la.ctx, end)
	stopB := context.AfterFunc(lb.ctx, end)
	var left atomic.Int32
	left.Store(2)
	copyThen := func(dst io.Writer, src io.Reader) {
		d.copyRelay(dst, src)
		end()
		if left.Add(-1) == 0 {
			stopA()
			stopB()
		}
	}
	d.wg.Go(func() { copyThen(b, a) })
	d.wg.Go(func() { copyThen(a, b) })
}

// copyRelay copies src to dst, counting the bytes.
func (d *Daemon) copyRelay(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			d.metrics.relayedBytes.Add(float64(n))
		}
		if err != nil {
			return
		}
	}
}

// relayedIn takes a relayed stream that l's peer, a node of this node's
// cluster, opened for a node of another cluster: the acceptor's side of
// TLS over it, then the usual inbound handshake, in a goroutine of the
// daemon.
func (l *link) relayedIn(s transport.Stream) {
	d := l.p.d
	m, err := readRelay(s)
	switch {
	case err != nil:
		l.refuseRelay(s, relayBadRequest, err)
		return
	case l.p.id.Cluster != d.cfg.Cluster || l.relayed() || m.Cluster == d.cfg.Cluster:
		l.refuseRelay(s, relayBadRequest, fmt.Errorf("relayed stream from %s over a %s link for %s/%s: only nodes of this cluster relay, on direct links, for other clusters", l.p.nodeName(), l.conn.Transport(), m.Cluster, m.Node))
		return
	}
	origin := auth.PeerID{Cluster: m.Cluster, Node: m.Node}
	d.wg.Go(func() { l.acceptRelayed(s, origin) })
}

func (l *link) acceptRelayed(s transport.Stream, origin auth.PeerID) {
	d := l.p.d
	via := l.p.nodeName()
	rc := newRelayConn(l, s, transport.RelayAddr{Via: via, End: d.cfg.Cluster + "/" + d.cfg.Node}, transport.RelayAddr{Via: via, End: origin.String()})
	tc, err := auth.ServerTLSConfig(d.id, d.pins, []string{ALPN}, d.onReject)
	if err != nil {
		rc.Close()
		d.log.Warn("relayed link: no server TLS config", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.Link.HandshakeTimeout)
	conn, err := transport.ServerOver(ctx, rc, tc, d.overlayOptions())
	cancel()
	if err != nil {
		d.metrics.relayRefused.WithLabelValues(relayHandshake).Inc()
		d.warnPeer(origin, "relay_handshake", "relayed link: handshake failed", "via", via, "err", err)
		return
	}
	if claimed, _, err := auth.PeerFromConnectionState(conn.ConnectionState()); err != nil || claimed != origin {
		conn.Close()
		d.metrics.relayRefused.WithLabelValues(relayOriginMismatch).Inc()
		d.warnPeer(origin, "relay_origin", "relayed link: the TLS identity is not the origin the relay named", "via", via, "claimed", claimed.String(), "err", err)
		return
	}
	d.handleInbound(conn)
}

// readFrameExact reads one small frame from r without reading past it.
func readFrameExact(r io.Reader) (wire.Type, []byte, error) {
	buf := make([]byte, wire.HeaderSize, wire.HeaderSize+64)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(buf[4:wire.HeaderSize]))
	if n > maxInitFrame {
		return 0, nil, &wire.FrameError{Type: wire.Type(buf[1]), Reason: fmt.Sprintf("%d bytes where at most %d are expected", n, maxInitFrame), Err: wire.ErrFrameTooLarge}
	}
	buf = append(buf, make([]byte, n)...)
	if _, err := io.ReadFull(r, buf[wire.HeaderSize:]); err != nil {
		return 0, nil, err
	}
	return wire.NewReader(bytes.NewReader(buf), maxInitFrame).ReadFrame() // checks the header
}

// maxInitFrame bounds the body of a StreamInit or Relay frame.
const maxInitFrame = 1024
