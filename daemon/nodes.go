package daemon

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/gossip"
	"github.com/wandist/wandist/internal/wire"
)

// nodes.go: this node's view of its own cluster, as it tells other
// clusters (Nodes), and what it does with theirs (applyNodes): a peer for
// each node alive, none for a node its cluster declared dead or left.

// ownNodes returns this node's cluster as it sees it: itself and every
// other node of its cluster it knows.
func (d *Daemon) ownNodes() *wire.Nodes {
	m := &wire.Nodes{Cluster: d.cfg.Cluster, Version: d.viewVersion.Load()}
	if g := d.gossip.Load(); g != nil {
		m.Nodes = gossipEntries(g.Members())
		return m
	}
	self := wire.NodeEntry{Node: d.cfg.Node}
	self.QUIC, self.TCP = d.ListenAddr("quic"), d.ListenAddr("tcp")
	m.Nodes = append(m.Nodes, self)
	for _, p := range d.peerList() {
		if p.id.Cluster != d.cfg.Cluster {
			continue
		}
		e := wire.NodeEntry{Node: p.id.Node}
		if addr := p.address(); p.cfg.Transport == configs.TransportTCP {
			e.TCP = addr
		} else {
			e.QUIC = addr
		}
		m.Nodes = append(m.Nodes, e)
	}
	return m
}

// viewChanged tells every up link to a remote cluster that this node's
// view of its cluster changed.
func (d *Daemon) viewChanged() {
	d.viewVersion.Add(1)
	d.linksMu.Lock()
	links := make([]*link, 0, len(d.upLinks))
	for l := range d.upLinks {
		links = append(links, l)
	}
	d.linksMu.Unlock()
	for _, l := range links {
		l.sendNodes()
	}
}

// sendNodes queues this node's view of its cluster on the link, if the
// link's peer is of another cluster.
func (l *link) sendNodes() {
	d := l.p.d
	if l.p.id.Cluster == d.cfg.Cluster {
		return
	}
	l.sendControl(d.ownNodes())
}

// onNodes takes a peer's view of its cluster.
func (l *link) onNodes(m *wire.Nodes) error {
	d := l.p.d
	if m.Cluster != l.p.id.Cluster {
		d.metrics.discoveryRefused.WithLabelValues("wrong_cluster").Inc()
		return fmt.Errorf("node list for cluster %q from a peer of %q", m.Cluster, l.p.id.Cluster)
	}
	if d.disc.remotes[m.Cluster] == nil {
		return nil // a cluster of configured peers only: nothing to discover
	}
	d.queueNodes(nodesUpdate{cluster: m.Cluster, from: l.p.id, fromHost: hostOf(l.conn.RemoteAddr()), nodes: m.Nodes})
	return nil
}

// answerNodes answers a probe (NodesRequest as the first frame) with this
// node's view of its cluster. The asker proved its identity in the TLS
// handshake, as any peer does.
func (d *Daemon) answerNodes(in *inbound, body []byte) {
	var req wire.NodesRequest
	if err := req.DecodeBody(body); err != nil {
		d.refuseHello(in, err.Error(), "protocol")
		return
	}
	if req.Cluster != in.claimed.Cluster || req.Node != in.claimed.Node {
		d.refuseHello(in, fmt.Sprintf("NodesRequest names %s/%s but the certificate is %s", req.Cluster, req.Node, in.claimed), string(auth.ReasonNameMismatch))
		return
	}
	d.metrics.discoveryAnswers.Inc()
	_, _ = in.ctl.Write(wire.AppendFrame(nil, d.ownNodes()))
	linger(in.ctl)
}

// applyNodes makes a peer of every node of u alive and not yet known, and
// takes every node u says is dead or left out (nodeGone). u is a remote
// cluster's list (a probe's or a link's) or gossip's view of this
// cluster (syncOwnCluster). It never touches a configured peer: discovery
// adds places to dial, not identities.
func (d *Daemon) applyNodes(u nodesUpdate) {
	rc := d.disc.remotes[u.cluster]
	if u.cluster == d.cfg.Cluster {
		rc = d.disc.own
	}
	if rc == nil {
		return
	}
	for _, e := range u.nodes {
		id := auth.PeerID{Cluster: u.cluster, Node: e.Node}
		if id == d.id.ID {
			continue
		}
		if err := id.Validate(); err != nil {
			d.refuseDiscovery("bad_name", u.from, "node list of %s names an invalid node: %v", u.from, err)
			continue
		}
		p := d.peer(id.Cluster, id.Node)
		if p != nil && !p.discovered {
			continue
		}
		if e.State != wire.NodeAlive {
			if p != nil {
				d.nodeGone(p, fmt.Sprintf("%s says it is %s", u.from, nodeState(e.State)))
			}
			continue
		}
		if p != nil && p.goneAt.Swap(0) != 0 {
			d.topologyChanged()
		}
		addr := dialAddr(e, rc.transport, u.fromHost)
		// The address of a node its cluster lists is as trusted as one
		// a config names: its handshakes skip the total rate (admit.go).
		d.admit.trustAddress(addr)
		switch {
		case p != nil:
			p.setAddress(addr)
		case d.discoveredCount(rc) >= d.discoveredBound(rc):
			d.refuseDiscovery("too_many_nodes", u.from, "node %s not added: %d discovered peers already", id, d.discoveredBound(rc))
		default:
			d.addDiscovered(rc, id, addr)
		}
	}
}

// dialAddr is e's address on transport, an unspecified host replaced with
// the host the list came from.
func dialAddr(e wire.NodeEntry, transport, fromHost string) string {
	addr := e.QUIC
	if transport == configs.TransportTCP {
		addr = e.TCP
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip, err := netip.ParseAddr(host); (err == nil && ip.IsUnspecified()) || host == "" {
		if fromHost == "" {
			return ""
		}
		return net.JoinHostPort(fromHost, port)
	}
	return addr
}

func nodeState(s uint8) string {
	return [...]string{"alive", "dead", "left"}[min(int(s), 2)]
}

// discoveredCount returns the number of discovered peers of clusters in
// rc's topology: gateway mode, or mesh mode (this node's cluster
// included).
func (d *Daemon) discoveredCount(rc *remoteCluster) int {
	n := 0
	for _, p := range d.peerList() {
		if p.discovered && (d.gatewayCluster(p) != nil) == (rc.topology == configs.TopologyGateway) {
			n++
		}
	}
	return n
}

// discoveredBound is the bound of discoveredCount(rc).
func (d *Daemon) discoveredBound(rc *remoteCluster) int {
	if rc.topology == configs.TopologyGateway {
		return maxDiscoveredGateway
	}
	return maxDiscovered
}

// addDiscovered adds a peer for a node of rc found by discovery (addr ""
// when it linked to this node first), taking over the buffer and
// positions of its earlier self if discovery removed it before.
func (d *Daemon) addDiscovered(rc *remoteCluster, id auth.PeerID, addr string) *peer {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if p := d.peer(id.Cluster, id.Node); p != nil {
		return p
	}
	pc := configs.Peer{Cluster: id.Cluster, Node: id.Node, Address: addr, Transport: rc.transport, Mode: configs.ModeBoth, Buffer: rc.buffer}
	if rc.mode == configs.ModeConnect || rc.mode == configs.ModeAccept {
		pc.Mode = rc.mode
	}
	prev := d.retired[id]
	delete(d.retired, id)
	p := d.addPeer(pc, prev, true)
	d.metrics.discovered.WithLabelValues(id.Cluster).Inc()
	d.viewChangedIf(id.Cluster == d.cfg.Cluster)
	d.gatewayNodeAdded(id)
	return p
}

// removeDiscovered removes a discovered peer whose cluster declared it dead
// or left: its members leave every view, and the peer is remembered
// (retired) so that, should the node come back, it goes on from the same
// sequence numbers.
func (d *Daemon) removeDiscovered(p *peer, why string) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.peer(p.id.Cluster, p.id.Node) != p {
		return
	}
	d.removePeer(p, why)
	// A send that found the peer just before it went may have queued a
	// message since nothing waited: routed as if sent a moment later, to
	// its group's member now, or discarded and counted.
	if p.queue.Stats().Messages > 0 {
		d.rerouteGone(p, d.now())
	}
	if d.retired == nil {
		d.retired = map[auth.PeerID]*peer{}
	}
	d.retired[p.id] = p
	d.metrics.discovered.WithLabelValues(p.id.Cluster).Dec()
	d.metrics.discoveryRemoved.WithLabelValues(p.id.Cluster).Inc()
	d.viewChangedIf(p.id.Cluster == d.cfg.Cluster)
}

func (d *Daemon) viewChangedIf(own bool) {
	if own {
		d.viewChanged()
	}
}

// gossipEntries are gossip's members as node list entries.
func gossipEntries(ms []gossip.Member) []wire.NodeEntry {
	out := make([]wire.NodeEntry, 0, len(ms))
	for _, m := range ms {
		out = append(out, wire.NodeEntry{Node: m.Node, State: gossipState(m.State), QUIC: m.Meta.QUIC, TCP: m.Meta.TCP})
	}
	return out
}

func gossipState(s gossip.State) uint8 {
	switch s {
	case gossip.StateDead:
		return wire.NodeDead
	case gossip.StateLeft:
		return wire.NodeLeft
	}
	return wire.NodeAlive
}

// syncOwnCluster makes a peer of every other node of this node's cluster
// that gossip shows alive (groups span the cluster over these links), and
// removes the discovered peer of a node gossip declared dead or that left.
func (d *Daemon) syncOwnCluster(ms []gossip.Member) {
	if d.disc.own == nil {
		return
	}
	d.applyNodes(nodesUpdate{cluster: d.cfg.Cluster, from: d.id.ID, nodes: gossipEntries(ms)})
}

// adoptInbound makes a peer for a node that linked to this node, proved by
// its cluster's CA, and that no config names: a node of a remote cluster
// discovery has not listed yet, or of this node's cluster that gossip has
// not shown yet. nil if its cluster is neither.
func (d *Daemon) adoptInbound(id auth.PeerID) *peer {
	rc := d.disc.remotes[id.Cluster]
	if id.Cluster == d.cfg.Cluster {
		rc = d.disc.own
	}
	if rc == nil || d.discoveredCount(rc) >= d.discoveredBound(rc) {
		return nil
	}
	return d.addDiscovered(rc, id, "")
}
