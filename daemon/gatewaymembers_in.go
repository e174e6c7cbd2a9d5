package daemon

import (
	"errors"
	"fmt"

	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// gatewaymembers_in.go: the membership of a remote cluster's nodes
// as this node receives it from its membership gateway
// (gatewaymembers.go). Each node's snapshot is taken within the budget of
// a peer's snapshot (max_snapshot_bytes, snapshot_timeout) and the import
// rules, as if that node sent it; the gateway's membership_rate paces the
// frames (control.go).

// onNodeMembers takes one frame of a snapshot of a node's membership
// (size: its body's bytes) and applies the snapshot once its last frame
// came. The frames of one node's snapshot come together: another
// NodeMembers or a NodeDelta between them is a protocol error.
func (l *link) onNodeMembers(m *wire.NodeMembers, size int, s *inSnapshot) error {
	d := l.p.d
	id, reason := l.checkNodeFrame(m.Cluster, m.Node)
	s.mu.Lock()
	defer s.mu.Unlock()
	if (s.in != nil || s.skip) && s.peer != id {
		return fmt.Errorf("NodeMembers of %s/%s within the NodeMembers of %s", m.Cluster, m.Node, s.peer)
	}
	if reason != "" {
		if s.in != nil {
			s.clearLocked(d)
		}
		s.peer, s.skip = id, m.More
		l.refuseNode(id, reason)
		return nil
	}
	if s.skip {
		s.skip = m.More
		return nil
	}
	if !l.takeSnapshotLocked(s, id, m.Members, size, m.More) {
		return nil
	}
	in := s.in
	s.clearLocked(d)
	err := d.groups.ApplyIncomingNewer(in, m.Incarnation, m.Version)
	switch {
	case errors.Is(err, groups.ErrNotNewer):
		d.fedBy(l, id) // reachable: the gateway follows it now
		d.metrics.nodeRefused.WithLabelValues(nodeRefusedOlder).Inc()
	case err != nil:
		d.metrics.membershipRefused.WithLabelValues(id.Cluster, id.Node, refusedStale).Inc()
		d.warnPeer(id, refusedStale, "membership snapshot through a gateway ignored", "gateway", l.p.nodeName(), "err", err)
	default:
		d.fedBy(l, id)
	}
	return nil
}

// onNodeDelta applies a membership change of a node forwarded by its
// gateway. After a gap in its versions this node subscribes again (a
// fresh snapshot of every node follows); the link stays.
func (l *link) onNodeDelta(m *wire.NodeDelta, s *inSnapshot) error {
	d := l.p.d
	s.mu.Lock()
	busy, of := s.in != nil || s.skip, s.peer
	s.mu.Unlock()
	if busy {
		return fmt.Errorf("NodeDelta of %s/%s within the NodeMembers of %s", m.Cluster, m.Node, of)
	}
	id, reason := l.checkNodeFrame(m.Cluster, m.Node)
	if reason != "" {
		l.refuseNode(id, reason)
		return nil
	}
	if err := d.applyDelta(id, &m.Delta); err != nil { // a gap
		l.refuseNode(id, nodeRefusedGap)
		d.subscribe(l, subscribeGap)
		return nil
	}
	d.fedBy(l, id)
	return nil
}
