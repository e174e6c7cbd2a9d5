package daemon

import (
	"fmt"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/internal/wire"
)

// gatewayforward.go: the gateway's side of membership through a gateway
// (gatewaymembers.go). A node of another cluster subscribes on its direct
// link to this node; this node sends it the view it holds of each of its
// cluster mates (NodeMembers) and forwards each snapshot and delta it
// applies from them later, all under gatewayMembers.fwdMu so that the
// subscriber misses none and gets none twice. What it sends follows this
// node's export rules for the subscriber's cluster: in gateway mode a
// cluster's export rules must be the same on all its nodes.

// onMembersSubscribe serves a subscription of l's peer: only on a direct
// link from a node of another cluster (else refused and counted; the link
// goes on). A subscription again on the same link gets fresh snapshots.
func (l *link) onMembersSubscribe() {
	d := l.p.d
	switch {
	case l.relayed():
		l.refuseSubscribe(subRefusedRelayed, fmt.Errorf("over a %s link", l.conn.Transport()))
		return
	case l.p.id.Cluster == d.cfg.Cluster:
		l.refuseSubscribe(subRefusedOwnCluster, fmt.Errorf("from %s, of this node's cluster", l.p.nodeName()))
		return
	}
	d.gwm.fwdMu.Lock()
	defer d.gwm.fwdMu.Unlock()
	if d.gwm.subscribers == nil {
		d.gwm.subscribers = map[*link]struct{}{}
	}
	d.gwm.subscribers[l] = struct{}{}
	d.metrics.subscribers.Set(float64(len(d.gwm.subscribers)))
	for _, p := range d.peerList() {
		if p.id.Cluster == d.cfg.Cluster {
			l.sendNodeMembers(p.id)
		}
	}
}

// refuseSubscribe counts and (rate-limited) logs a refused subscription.
func (l *link) refuseSubscribe(reason string, err error) {
	d := l.p.d
	d.metrics.subscribeRefused.WithLabelValues(reason).Inc()
	d.warnPeer(l.p.id, "members_subscribe_"+reason, "membership subscription refused: only direct links from other clusters subscribe",
		"reason", reason, "err", err)
}

// dropSubscriber forgets l's subscription, if any, when l ends.
func (d *Daemon) dropSubscriber(l *link) {
	d.gwm.fwdMu.Lock()
	defer d.gwm.fwdMu.Unlock()
	if _, ok := d.gwm.subscribers[l]; ok {
		delete(d.gwm.subscribers, l)
		d.metrics.subscribers.Set(float64(len(d.gwm.subscribers)))
	}
}

// sendNodeMembers queues the view this node holds of id, a cluster mate,
// for l's peer (nothing if none is held), split to fit its frame limit.
func (l *link) sendNodeMembers(id auth.PeerID) {
	v, ok := l.p.d.groups.View(groupsID(id))
	if !ok {
		return
	}
	l.splitMembers(l.exportedMembers(v.Entries), func(part []wire.Member, more bool) {
		l.sendControl(&wire.NodeMembers{Cluster: id.Cluster, Node: id.Node, Incarnation: v.Incarnation, Version: v.Version, Members: part, More: more})
	})
}

// forwardViewLocked sends the view of cluster mate id to every subscriber
// (it changed whole: a snapshot). Called with fwdMu held.
func (d *Daemon) forwardViewLocked(id auth.PeerID) {
	for l := range d.gwm.subscribers {
		l.sendNodeMembers(id)
	}
}

// forwardDeltaLocked sends a delta of cluster mate id, just applied, to
// every subscriber: a change of a group not exported to its cluster as a
// Noop. Called with fwdMu held.
func (d *Daemon) forwardDeltaLocked(id auth.PeerID, m *wire.MembersDelta) {
	for l := range d.gwm.subscribers {
		fm := &wire.NodeDelta{Cluster: id.Cluster, Node: id.Node, Delta: *m}
		if m.Op != wire.OpNoop && !d.exported(m.Group, l.p.id.Cluster) {
			fm.Delta = wire.MembersDelta{Incarnation: m.Incarnation, Version: m.Version, Op: wire.OpNoop}
		}
		l.sendControl(fm)
	}
}
