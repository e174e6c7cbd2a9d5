package daemon

import (
	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// sendSnapshot queues a snapshot of this node's (exported) membership. The
// first one also registers the link for deltas, in the same step under the
// registry's lock, so no delta is missed or sent twice.
func (l *link) sendSnapshot(register bool) {
	d := l.p.d
	d.groups.Snapshot(func(version uint64, entries []groups.Entry) {
		l.splitMembers(l.exportedMembers(entries), func(part []wire.Member, more bool) {
			l.sendControl(&wire.MembersSnapshot{Incarnation: d.incarnation, Version: version, Members: part, More: more})
		})
		if register {
			d.linksMu.Lock()
			d.upLinks[l] = struct{}{}
			d.linksMu.Unlock()
		}
	})
}

// exportedMembers returns the entries of the groups exported to the
// cluster of l's peer.
func (l *link) exportedMembers(entries []groups.Entry) []wire.Member {
	d := l.p.d
	ms := make([]wire.Member, 0, len(entries))
	for _, e := range entries {
		if !d.exported(e.Group, l.p.id.Cluster) {
			continue
		}
		ms = append(ms, wire.Member{Group: e.Group, Mailbox: e.Mailbox, Count: uint64(e.Count),
			PartitionCount: e.Claim.N, Partitions: e.Claim.List()})
	}
	return ms
}

// splitMembers cuts ms in parts that each fit the peer's frame limit and
// calls emit with each, in order (more: it is not the last); once with
// none if ms is empty.
func (l *link) splitMembers(ms []wire.Member, emit func(part []wire.Member, more bool)) {
	limit := l.maxFrame / 2
	for {
		n, size := 0, 0
		for n < len(ms) && (n == 0 || size < limit) {
			size += len(ms[n].Group) + 24 + 3*len(ms[n].Partitions)
			n++
		}
		emit(ms[:n], n < len(ms))
		ms = ms[n:]
		if len(ms) == 0 {
			return
		}
	}
}

// sendDigest queues a digest of this node's membership as the peer sees it.
func (l *link) sendDigest() {
	d := l.p.d
	keep := func(g string) bool { return d.exported(g, l.p.id.Cluster) }
	d.groups.Digest(keep, func(version, hash uint64) {
		l.sendControl(&wire.Digest{Incarnation: d.incarnation, Version: version, Hash: hash})
	})
}

// publishDelta sends a local membership change to every up link. It runs
// under the registry's lock (see groups.New), which orders it with the
// snapshot each new link starts with.
func (d *Daemon) publishDelta(delta groups.Delta) {
	m := &wire.MembersDelta{Incarnation: d.incarnation, Version: delta.Version, Op: opToWire(delta.Op), Group: delta.Group, Mailbox: delta.Mailbox,
		PartitionCount: delta.Claim.N, Partitions: delta.Claim.List()}
	d.linksMu.Lock()
	defer d.linksMu.Unlock()
	for l := range d.upLinks {
		if !d.exported(delta.Group, l.p.id.Cluster) {
			// Not published to that cluster: it still needs the version,
			// or it would see a gap. An empty delta carries it.
			l.sendControl(&wire.MembersDelta{Incarnation: d.incarnation, Version: delta.Version, Op: wire.OpNoop})
			continue
		}
		l.sendControl(m)
	}
}

// exported reports whether group is published to peers of cluster under the
// export rules in force (they change with Reload).
func (d *Daemon) exported(group, cluster string) bool {
	return d.current.Load().Exported(group, cluster)
}

func groupsID(id auth.PeerID) groups.NodeID { return groups.NodeID{Cluster: id.Cluster, Node: id.Node} }
