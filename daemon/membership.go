package daemon

import (
	"errors"
	"fmt"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// maxSnapshotEntries bounds a membership snapshot from one peer.
const maxSnapshotEntries = 10_000_000

// sendSnapshot queues a snapshot of this node's (exported) membership. The
// first one also registers the link for deltas, in the same step under the
// registry's lock, so no delta is missed or sent twice.
func (l *link) sendSnapshot(register bool) {
	d := l.p.d
	d.groups.Snapshot(func(version uint64, entries []groups.Entry) {
		ms := make([]wire.Member, 0, len(entries))
		for _, e := range entries {
			if !d.exported(e.Group, l.p.id.Cluster) {
				continue
			}
			ms = append(ms, wire.Member{Group: e.Group, Mailbox: e.Mailbox, Count: uint64(e.Count),
				PartitionCount: e.Claim.N, Partitions: e.Claim.Partitions})
		}
		// Split so that every frame fits the peer's frame limit.
		limit := l.maxFrame / 2
		for {
			n, size := 0, 0
			for n < len(ms) && (n == 0 || size < limit) {
				size += len(ms[n].Group) + 24 + 3*len(ms[n].Partitions)
				n++
			}
			l.sendControl(&wire.MembersSnapshot{Incarnation: d.incarnation, Version: version, Members: ms[:n], More: n < len(ms)})
			ms = ms[n:]
			if len(ms) == 0 {
				break
			}
		}
		if register {
			d.linksMu.Lock()
			d.upLinks[l] = struct{}{}
			d.linksMu.Unlock()
		}
	})
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
		PartitionCount: delta.Claim.N, Partitions: delta.Claim.Partitions}
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

// onSnapshot collects a membership snapshot frame in snap and applies the
// snapshot once its last frame came.
func (l *link) onSnapshot(m *wire.MembersSnapshot, snap *[]groups.Entry) error {
	d := l.p.d
	if m.Incarnation != l.remoteInc {
		return fmt.Errorf("membership snapshot of incarnation %x on a link with %x", m.Incarnation, l.remoteInc)
	}
	if len(*snap) > maxSnapshotEntries {
		return fmt.Errorf("membership snapshot of more than %d entries", maxSnapshotEntries)
	}
	for _, e := range m.Members {
		*snap = append(*snap, groups.Entry{Group: e.Group, Mailbox: e.Mailbox, Count: int(min(e.Count, 1<<31)),
			Claim: groups.Claim{N: e.PartitionCount, Partitions: e.Partitions}})
	}
	if m.More {
		return nil
	}
	es := *snap
	*snap = nil
	if err := d.groups.ApplySnapshot(groupsID(l.p.id), m.Incarnation, m.Version, es); err != nil {
		d.log.Warn("membership snapshot ignored", "peer", l.p.nodeName(), "err", err)
	}
	return nil
}

// onDelta applies a membership change of the peer. A gap in its versions
// resets the link: the next one starts with a snapshot.
func (l *link) onDelta(m *wire.MembersDelta) error {
	d := l.p.d
	err := d.groups.ApplyDelta(groupsID(l.p.id), m.Incarnation, groups.Delta{Version: m.Version, Op: opFromWire(m.Op), Group: m.Group, Mailbox: m.Mailbox,
		Claim: groups.Claim{N: m.PartitionCount, Partitions: m.Partitions}})
	if errors.Is(err, groups.ErrVersionGap) {
		return err
	} else if err != nil {
		d.log.Warn("membership delta ignored", "peer", l.p.nodeName(), "err", err)
	}
	return nil
}

// onDigest compares the peer's digest of its membership with this node's
// view of it, and asks for a snapshot when they differ.
func (l *link) onDigest(m *wire.Digest) {
	d := l.p.d
	inc, ver, hash, ok := d.groups.ViewDigest(groupsID(l.p.id))
	if !ok || inc != m.Incarnation || ver != m.Version || hash != m.Hash {
		d.metrics.protocolErrors.WithLabelValues("digest_mismatch").Inc()
		d.log.Warn("membership view diverged from the peer's digest: asking for a snapshot", "peer", l.p.nodeName(),
			"version", ver, "peer_version", m.Version)
		l.sendControl(&wire.Resync{Incarnation: m.Incarnation})
	}
}
