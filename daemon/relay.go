package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// relay.go: a link to a node of another cluster that this node cannot
// dial is run through another node of that cluster (docs/wire-spec.md,
// "Relayed links"). The link is an ordinary one (TLS, handshake,
// positions, acks, resume: end to end), over a pipe (pipes.go) that the
// relay joins to a pipe of its own link to the target. The relay sees only
// ciphertext.
//
//	dialer    connect (handshake.go) falls back to dialRelayed: a pipe
//	          opened on its link to the relay, then transport.ClientOver
//	relay     relayOpen: the checks, a pipe on its link to the target,
//	          the two joined (relayPipe)
//	target    pipeIn: a pipe, transport.ServerOver, then handleInbound

// Reasons a pipe is refused (by the relay or by the target).
const (
	relayNotOwnCluster  = "not_own_cluster" // the target is not of the relay's cluster
	relayNoLink         = "no_link"         // the relay has no direct link up to the target
	relayTooMany        = "too_many"        // pipeLimits.maxPipes in progress
	relayBadRequest     = "bad_request"     // malformed, or from the wrong cluster
	relayHandshake      = "handshake"       // target: TLS over the pipe failed
	relayOriginMismatch = "origin_mismatch" // target: the TLS identity is not the origin the relay named
)

var relayReasons = []string{relayNotOwnCluster, relayNoLink, relayTooMany, relayBadRequest, relayHandshake, relayOriginMismatch}

// relayState is the daemon's relay bookkeeping.
type relayState struct {
	lim       pipeLimits   // set by New (tests change it before Start)
	active    atomic.Int64 // relayed pairs of pipes in progress
	endpoints atomic.Int64 // endpoint pipes in progress

	mu      sync.Mutex    // guards changed
	changed chan struct{} // closed and replaced whenever a link comes up or goes down
}

// relayMetrics count relays (on the relay and on the target).
type relayMetrics struct {
	relayRefused *prometheus.CounterVec
	relayedBytes prometheus.Counter
	pipes        *prometheus.GaugeVec   // by role
	pipeOverflow *prometheus.CounterVec // by reason
}

// Roles of a pipe (wandist_pipes) and reasons a pipe is closed for
// overflow (wandist_pipe_overflow_total).
const (
	pipeRoleEndpoint       = "endpoint"
	pipeRoleRelay          = "relay"
	pipeOverflowReceive    = "receive"     // an endpoint's receive buffer (the peer ignored its windows)
	pipeOverflowRelayQueue = "relay_queue" // a relay waited relayWait for room in a link's queue
)

func (m *metrics) addRelay() {
	m.relayRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_relay_refused_total",
		Help: "Pipes this node refused as a relay, and relayed pipes it refused as a target, by reason: not_own_cluster, no_link, too_many, bad_request, handshake, origin_mismatch."}, []string{"reason"})
	m.relayedBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_relayed_bytes_total",
		Help: "Bytes this node relayed between two other nodes, both ways."})
	m.pipes = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wandist_pipes",
		Help: "Pipes in progress on this node: role endpoint (a relayed link of this node), relay (pairs this node relays)."}, []string{"role"})
	m.pipeOverflow = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_pipe_overflow_total",
		Help: "Pipes closed for overflow, by reason: receive (an endpoint's receive buffer: the peer ignored its windows), relay_queue (this relay waited too long for room in a link's queue)."}, []string{"reason"})
	for _, r := range relayReasons {
		m.relayRefused.WithLabelValues(r)
	}
	for _, r := range []string{pipeRoleEndpoint, pipeRoleRelay} {
		m.pipes.WithLabelValues(r)
	}
	for _, r := range []string{pipeOverflowReceive, pipeOverflowRelayQueue} {
		m.pipeOverflow.WithLabelValues(r)
	}
	m.reg.MustRegister(m.relayRefused, m.relayedBytes, m.pipes, m.pipeOverflow)
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

// dialRelayed opens a pipe to p through via's peer, and runs the dialer's
// side of TLS and yamux over it.
func (p *peer) dialRelayed(ctx context.Context, via *link) (transport.Conn, error) {
	d := p.d
	hctx, cancel := context.WithTimeout(ctx, d.cfg.Link.HandshakeTimeout)
	defer cancel()
	tc, err := d.clientTLS(p)
	if err != nil {
		return nil, err
	}
	viaName := via.p.nodeName()
	local := transport.RelayAddr{Via: viaName, End: d.cfg.Cluster + "/" + d.cfg.Node}
	remote := transport.RelayAddr{Via: viaName, End: p.nodeName()}
	c, err := via.newEndpoint(func(id uint64) *pipeConn { return newPipeConn(via.pm, id, local, remote) }, p.id)
	if err != nil {
		return nil, fmt.Errorf("relay by %s: %w", viaName, err)
	}
	conn, err := transport.ClientOver(hctx, c, tc, d.overlayOptions())
	if err != nil {
		return nil, fmt.Errorf("relayed by %s: %w", viaName, err)
	}
	return conn, nil
}

// newEndpoint makes an endpoint pipe on l: opened by this node (PipeOpen
// naming open) if open is set, else entered under the ID the peer opened.
func (l *link) newEndpoint(mk func(id uint64) *pipeConn, open auth.PeerID, peerID ...uint64) (*pipeConn, error) {
	d := l.p.d
	if d.relay.endpoints.Add(1) > int64(d.relay.lim.maxPipes) {
		d.relay.endpoints.Add(-1)
		return nil, fmt.Errorf("%d pipes in progress", d.relay.lim.maxPipes)
	}
	var c *pipeConn
	ok := false
	if len(peerID) == 0 {
		_, _, ok = l.pm.add(func(id uint64) pipeEnd { c = mk(id); return c }, open.Cluster, open.Node)
	} else {
		c = mk(peerID[0])
		ok = l.pm.enter(peerID[0], c)
	}
	if !ok {
		d.relay.endpoints.Add(-1)
		return nil, errPipeLinkDown
	}
	d.metrics.pipes.WithLabelValues(pipeRoleEndpoint).Inc()
	return c, nil
}

// refusePipe closes a pipe the peer opened, counting and logging (once per
// peer and reason per interval) why.
func (l *link) refusePipe(id uint64, reason string, err error) {
	d := l.p.d
	code := map[string]uint8{relayNotOwnCluster: wire.PipeNotOwnCluster, relayNoLink: wire.PipeNoLink,
		relayTooMany: wire.PipeTooMany}[reason]
	if code == 0 {
		code = wire.PipeBadRequest
	}
	l.pm.sendClose(id, code, err.Error())
	d.metrics.relayRefused.WithLabelValues(reason).Inc()
	d.warnPeer(l.p.id, "relay_"+reason, "pipe refused", "reason", reason, "err", err)
}

// pipeOpened serves a PipeOpen of l's peer: from a node of another
// cluster, a request to relay to a node of this cluster (relayOpen); from
// a node of this cluster, a pipe it relays from a node of another
// (pipeIn). Pipes streams are not read on relayed links (receive.go).
func (l *link) pipeOpened(o *wire.PipeOpen) {
	d := l.p.d
	end := auth.PeerID{Cluster: o.Cluster, Node: o.Node}
	switch err := end.Validate(); {
	case err != nil:
		l.refusePipe(o.ID, relayBadRequest, err)
	case l.p.id.Cluster != d.cfg.Cluster:
		l.relayOpen(o.ID, end)
	default:
		l.pipeIn(o.ID, end)
	}
}

// relayOpen serves a relay request of l's peer (a node of another
// cluster) on its pipe id: the target must be of this node's cluster, with
// a direct link up. A pipe to it is then joined to id.
func (l *link) relayOpen(id uint64, target auth.PeerID) {
	d := l.p.d
	if target.Cluster != d.cfg.Cluster {
		l.refusePipe(id, relayNotOwnCluster, fmt.Errorf("target %s is not of cluster %s", target, d.cfg.Cluster))
		return
	}
	var to *link
	if p := d.peer(target.Cluster, target.Node); p != nil {
		to = p.currentLink()
	}
	if to == nil || to.relayed() {
		l.refusePipe(id, relayNoLink, fmt.Errorf("no direct link up to %s", target))
		return
	}
	if d.relay.active.Add(1) > int64(d.relay.lim.maxPipes) {
		d.relay.active.Add(-1)
		l.refusePipe(id, relayTooMany, fmt.Errorf("%d relayed pipes in progress", d.relay.lim.maxPipes))
		return
	}
	l.joinPipe(id, to)
}

// joinPipe joins l's pipe id to a new pipe on to, for l's peer (counted in
// relay.active by the caller).
func (l *link) joinPipe(id uint64, to *link) {
	d := l.p.d
	r := &relayPipe{d: d}
	r.half[0] = relayHalf{r: r, m: l.pm, id: id}
	if !l.pm.enter(id, &r.half[0]) {
		d.relay.active.Add(-1)
		return // l ended
	}
	d.metrics.pipes.WithLabelValues(pipeRoleRelay).Inc()
	_, _, ok := to.pm.add(func(bid uint64) pipeEnd {
		r.half[1] = relayHalf{r: r, m: to.pm, id: bid, side: 1}
		return &r.half[1]
	}, l.p.id.Cluster, l.p.id.Node)
	if !ok {
		r.end(wire.PipeNoLink, "the link to the target ended", 1)
		d.metrics.relayRefused.WithLabelValues(relayNoLink).Inc()
	}
}

// relayPipe is a pair of pipes this node joins: half 0 on the origin's
// link, half 1 on the target's.
type relayPipe struct {
	d    *Daemon
	half [2]relayHalf
	done atomic.Bool
}

// relayHalf is one pipe of a relayPipe, in its link's table.
type relayHalf struct {
	r    *relayPipe
	m    *pipeMux
	id   uint64
	side int
}

// end closes the pair once: both halves leave their tables, and each side
// but from (-1: none) gets a PipeClose.
func (r *relayPipe) end(code uint8, reason string, from int) {
	if r.done.Swap(true) {
		return
	}
	for i := range r.half {
		h := &r.half[i]
		if h.m == nil {
			continue // never entered
		}
		h.m.remove(h.id, h)
		if i != from {
			h.m.sendClose(h.id, code, reason)
		}
	}
	r.d.relay.active.Add(-1)
	r.d.metrics.pipes.WithLabelValues(pipeRoleRelay).Dec()
}

// data forwards a PipeData to the other half, waiting at most relayWait
// for room in its link's queue: then the pair is closed, counted. (The
// wait holds this link's reader: all its pipes wait.)
func (h *relayHalf) data(b []byte) {
	o := &h.r.half[1-h.side]
	d := h.r.d
	chunk := o.m.chunk()
	for len(b) > 0 {
		k := min(len(b), chunk)
		switch err := o.m.sendData(o.id, b[:k], nil, nil, d.relay.lim.relayWait); {
		case err == nil:
			d.metrics.relayedBytes.Add(float64(k))
			b = b[k:]
		case errors.Is(err, errPipeWait):
			d.metrics.pipeOverflow.WithLabelValues(pipeOverflowRelayQueue).Inc()
			d.warnPeer(o.m.l.p.id, "pipe_relay_queue", "relayed pipe closed: the link's queue stayed full", "wait", d.relay.lim.relayWait)
			h.r.end(wire.PipeOverflow, "the relay's queue stayed full", -1)
			return
		default: // the other half or its link is gone
			h.r.end(wire.PipeLinkDown, "", 1-h.side)
			return
		}
	}
}

func (h *relayHalf) closedByPeer(code uint8, reason string) { h.r.end(code, reason, h.side) }

func (h *relayHalf) linkDown() { h.r.end(wire.PipeLinkDown, "", h.side) }

// pipeIn takes a pipe that l's peer, a node of this node's cluster,
// relays from origin, a node of another cluster: the acceptor's side of
// TLS over it, then the usual inbound handshake, in a goroutine of the
// daemon.
func (l *link) pipeIn(id uint64, origin auth.PeerID) {
	d := l.p.d
	if origin.Cluster == d.cfg.Cluster {
		l.refusePipe(id, relayBadRequest, fmt.Errorf("pipe from %s for %s: only nodes of other clusters are relayed to this node", l.p.nodeName(), origin))
		return
	}
	via := l.p.nodeName()
	local := transport.RelayAddr{Via: via, End: d.cfg.Cluster + "/" + d.cfg.Node}
	remote := transport.RelayAddr{Via: via, End: origin.String()}
	c, err := l.newEndpoint(func(id uint64) *pipeConn { return newPipeConn(l.pm, id, local, remote) }, auth.PeerID{}, id)
	switch {
	case errors.Is(err, errPipeLinkDown):
		return
	case err != nil:
		l.refusePipe(id, relayTooMany, err)
		return
	}
	d.wg.Go(func() { l.acceptRelayed(c, origin) })
}

func (l *link) acceptRelayed(c *pipeConn, origin auth.PeerID) {
	d := l.p.d
	via := l.p.nodeName()
	tc, err := auth.ServerTLSConfig(d.id, d.pins, []string{ALPN}, d.onReject)
	if err != nil {
		c.Close()
		d.log.Warn("relayed link: no server TLS config", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.Link.HandshakeTimeout)
	conn, err := transport.ServerOver(ctx, c, tc, d.overlayOptions())
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
