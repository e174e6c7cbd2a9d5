package daemon

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// The receiving side of membership: what a peer publishes is taken within
// its budget (groups.max_*_per_peer, max_snapshot_bytes, snapshot_timeout)
// and the import rules; what is refused is counted by reason in
// wandist_membership_refused_total and warned about at most once per 10 s
// per peer and reason (warnPeer).

// Reasons of refusal counted by the daemon itself (the registry's are
// groups.Reason).
const (
	refusedSnapshotBytes   = "snapshot_bytes"   // a snapshot over max_snapshot_bytes, discarded
	refusedSnapshotTimeout = "snapshot_timeout" // a snapshot not finished within snapshot_timeout, discarded
	refusedUnknownOp       = "unknown_op"       // a delta of an unknown operation (its version is taken)
	refusedStale           = "stale"            // a snapshot or delta of an older incarnation
)

// membershipPolicy is what the registry takes from peers under cfg: the
// budget, and the import rules in force (they change with Reload).
func (d *Daemon) membershipPolicy(g configs.Groups) groups.Policy {
	return groups.Policy{
		Limits: limitsOf(g),
		Imports: func(cluster, group string) bool {
			return d.current.Load().Imported(group, cluster)
		},
		OnRefuse: func(peer groups.NodeID, reason groups.Reason, group string) {
			d.refuseMembership(auth.PeerID{Cluster: peer.Cluster, Node: peer.Node}, reason.String(), group)
		},
	}
}

// limitsOf returns the per-peer budget of the groups section.
func limitsOf(g configs.Groups) groups.Limits {
	return groups.Limits{MaxMembers: g.MaxMembersPerPeer, MaxGroups: g.MaxGroupsPerPeer, MaxPartitions: g.MaxPartitionsPerPeer}
}

// refuseMembership counts and (rate-limited) logs one refusal of what peer
// published about group ("" if none).
func (d *Daemon) refuseMembership(peer auth.PeerID, reason, group string) {
	d.metrics.membershipRefused.WithLabelValues(peer.Cluster, peer.Node, reason).Inc()
	d.warnPeer(peer, reason, "membership from a peer refused (counted in wandist_membership_refused_total)",
		"group", abbrevGroup(group))
}

// abbrevGroup shortens a group name from a peer for a log line.
func abbrevGroup(g string) string {
	if len(g) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", g[:64], len(g))
	}
	return fmt.Sprintf("%q", g)
}

// inSnapshot is the membership snapshot a link is receiving from its peer,
// which may come in several frames: at most groups.max_snapshot_bytes of
// frames, its last within groups.snapshot_timeout of its first, or it is
// discarded (the previous view of the peer stays) and the rest of its
// frames are dropped.
type inSnapshot struct {
	mu    sync.Mutex
	peer  auth.PeerID      // guarded by mu: whose snapshot is in progress (or skipped)
	in    *groups.Incoming // guarded by mu; nil: no snapshot in progress
	bytes int64            // guarded by mu: body bytes of in's frames
	skip  bool             // guarded by mu: the snapshot in progress was discarded: its frames are dropped up to its last
	timer *time.Timer      // guarded by mu: discards in at the timeout
	gen   uint64           // guarded by mu: counts snapshots, so that a late timer leaves the next one alone
}

// onSnapshot takes one frame of a membership snapshot (size: its body's
// bytes) and applies the snapshot once its last frame came.
func (l *link) onSnapshot(m *wire.MembersSnapshot, size int, s *inSnapshot) error {
	d := l.p.d
	if m.Incarnation != l.remoteInc {
		return fmt.Errorf("membership snapshot of incarnation %x on a link with %x", m.Incarnation, l.remoteInc)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skip {
		s.skip = m.More
		return nil
	}
	if !l.takeSnapshotLocked(s, l.p.id, m.Members, size, m.More) {
		return nil
	}
	in := s.in
	s.clearLocked(d)
	if l.p.id.Cluster == d.cfg.Cluster {
		// A cluster mate's: forwarded to subscribers (gatewaymembers.go).
		d.gwm.fwdMu.Lock()
		defer d.gwm.fwdMu.Unlock()
	}
	if err := d.groups.ApplyIncoming(in, m.Incarnation, m.Version); err != nil {
		d.metrics.membershipRefused.WithLabelValues(l.p.id.Cluster, l.p.id.Node, refusedStale).Inc()
		d.warnPeer(l.p.id, refusedStale, "membership snapshot ignored", "err", err)
		return nil
	}
	if l.p.id.Cluster == d.cfg.Cluster {
		d.forwardViewLocked(l.p.id)
	}
	return nil
}

// takeSnapshotLocked takes one frame (size bytes) of a snapshot of peer's
// membership into s, starting one if none is in progress, within the
// budget. It reports whether the snapshot is whole (its last frame taken):
// it is in s.in.
func (l *link) takeSnapshotLocked(s *inSnapshot, peer auth.PeerID, ms []wire.Member, size int, more bool) bool {
	d := l.p.d
	if s.in == nil {
		s.peer = peer
		s.in = d.groups.NewIncoming(groupsID(peer))
		s.gen++
		gen := s.gen
		s.timer = time.AfterFunc(d.cfg.Groups.SnapshotTimeout, func() { l.snapshotTimedOut(s, gen) })
	}
	s.bytes += int64(size)
	d.metrics.snapshotBytes.Add(float64(size))
	if s.bytes > d.cfg.Groups.MaxSnapshotBytes {
		l.discardSnapshotLocked(s, refusedSnapshotBytes)
		s.skip = more
		return false
	}
	for _, e := range ms {
		c, err := groups.NewClaim(e.PartitionCount, e.Partitions)
		if err != nil {
			d.refuseMembership(peer, groups.RefusedBadEntry.String(), e.Group)
			continue
		}
		s.in.Add(groups.Entry{Group: e.Group, Mailbox: e.Mailbox, Count: int(min(e.Count, 1<<31)), Claim: c})
	}
	return !more
}

// snapshotTimedOut discards the snapshot gen if it is still in progress.
func (l *link) snapshotTimedOut(s *inSnapshot, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.in != nil && s.gen == gen {
		l.discardSnapshotLocked(s, refusedSnapshotTimeout)
		s.skip = true
	}
}

// discardSnapshotLocked drops the snapshot in progress, counted for reason.
func (l *link) discardSnapshotLocked(s *inSnapshot, reason string) {
	d := l.p.d
	members, bytes := s.in.Members(), s.bytes
	s.clearLocked(d)
	d.metrics.membershipRefused.WithLabelValues(s.peer.Cluster, s.peer.Node, reason).Inc()
	d.warnPeer(s.peer, reason, "membership snapshot from a peer discarded: over its budget; the previous view of the peer stays",
		"bytes", bytes, "members", members, "max_snapshot_bytes", d.cfg.Groups.MaxSnapshotBytes, "snapshot_timeout", d.cfg.Groups.SnapshotTimeout)
}

// clearLocked forgets the snapshot in progress, if any.
func (s *inSnapshot) clearLocked(d *Daemon) {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	d.metrics.snapshotBytes.Sub(float64(s.bytes))
	s.in, s.bytes = nil, 0
}

// end forgets the snapshot in progress when the link ends.
func (s *inSnapshot) end(d *Daemon) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked(d)
}

// onDelta applies a membership change of the peer. A gap in its versions
// resets the link: the next one starts with a snapshot.
func (l *link) onDelta(m *wire.MembersDelta) error {
	d := l.p.d
	if l.p.id.Cluster != d.cfg.Cluster {
		return d.applyDelta(l.p.id, m)
	}
	// A cluster mate's: forwarded to the nodes of other clusters
	// subscribed to this node (gatewaymembers.go), in order.
	d.gwm.fwdMu.Lock()
	defer d.gwm.fwdMu.Unlock()
	inc, version, ok := d.groups.ViewVersion(groupsID(l.p.id))
	if err := d.applyDelta(l.p.id, m); err != nil {
		return err
	}
	if ok && inc == m.Incarnation && version+1 == m.Version {
		d.forwardDeltaLocked(l.p.id, m)
	}
	return nil
}

// applyDelta applies a membership change of node id. Only a gap in its
// versions is returned: the rest is counted.
func (d *Daemon) applyDelta(id auth.PeerID, m *wire.MembersDelta) error {
	c, err := groups.NewClaim(m.PartitionCount, m.Partitions)
	op := opFromWire(m.Op)
	if err != nil && op == groups.OpJoin {
		// Refused, but its version is taken: a join without members.
		d.refuseMembership(id, groups.RefusedBadEntry.String(), m.Group)
		op, c = groups.OpNoop, groups.Claim{}
	}
	err = d.groups.ApplyDelta(groupsID(id), m.Incarnation, groups.Delta{Version: m.Version, Op: op, Group: m.Group, Mailbox: m.Mailbox, Claim: c})
	switch {
	case errors.Is(err, groups.ErrVersionGap):
		return err
	case errors.Is(err, groups.ErrUnknownOp):
		d.metrics.membershipRefused.WithLabelValues(id.Cluster, id.Node, refusedUnknownOp).Inc()
		d.warnPeer(id, refusedUnknownOp, "membership delta of an unknown operation ignored", "op", m.Op)
	case err != nil:
		d.metrics.membershipRefused.WithLabelValues(id.Cluster, id.Node, refusedStale).Inc()
		d.warnPeer(id, refusedStale, "membership delta ignored", "err", err)
	}
	return nil
}

// onDigest compares the peer's digest of its membership with this node's
// view of it, and asks for a snapshot when they differ. The hash of a view
// this node took only in part (refused members) cannot match: then only
// the incarnation and version are compared.
func (l *link) onDigest(m *wire.Digest) {
	d := l.p.d
	v, ok := d.groups.ViewDigest(groupsID(l.p.id))
	if !ok || v.Incarnation != m.Incarnation || v.Version != m.Version || (!v.Partial && v.Hash != m.Hash) {
		d.metrics.protocolErrors.WithLabelValues("digest_mismatch").Inc()
		d.warnPeer(l.p.id, "digest_mismatch", "membership view diverged from the peer's digest: asking for a snapshot",
			"version", v.Version, "peer_version", m.Version)
		l.sendControl(&wire.Resync{Incarnation: m.Incarnation})
	}
}

// resyncAll asks every up link's peer for a fresh snapshot (the import
// rules changed: what was refused may be taken now, and the reverse).
func (d *Daemon) resyncAll() {
	d.linksMu.Lock()
	for l := range d.upLinks {
		l.sendControl(&wire.Resync{Incarnation: l.remoteInc})
	}
	d.linksMu.Unlock()
	d.resubscribeAll() // the views that come through gateways too
}
