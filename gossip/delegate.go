package gossip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// errRefused is what the delegates return to memberlist to refuse a node.
var errRefused = errors.New("refused")

// delegate is memberlist's view of a Gossip: the node's meta, the
// admission of nodes (alive, merge) and the events that change Members.
// memberlist calls it with its own lock held: it must not call memberlist.
type delegate struct{ g *Gossip }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
)

// NodeMeta is this node's Meta, encoded (validated at Start: it fits).
func (d *delegate) NodeMeta(limit int) []byte {
	b := *d.g.meta.Load()
	if len(b) > limit {
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// admit checks the meta of a node announced alive: it must decode and
// name this cluster.
func (d *delegate) admit(n *memberlist.Node) (Meta, error) {
	m, err := DecodeMeta(n.Meta)
	if err != nil {
		d.g.logs.refusal(RefusedMeta, "gossip: refused a node whose meta does not decode", "node", n.Name, "addr", n.Address(), "err", err)
		return m, fmt.Errorf("%w: node %q: %v", errRefused, n.Name, err)
	}
	if m.Cluster != d.g.cfg.Cluster {
		d.g.logs.refusal(RefusedCluster, "gossip: refused a node of another cluster", "node", n.Name, "addr", n.Address(), "cluster", m.Cluster)
		return m, fmt.Errorf("%w: node %q is of cluster %q, not %q", errRefused, n.Name, m.Cluster, d.g.cfg.Cluster)
	}
	return m, nil
}

// NotifyAlive admits a node announced alive: its meta, and for a node not
// known yet, the rate of new nodes.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	if _, err := d.admit(n); err != nil {
		return err
	}
	if n.Name == d.g.cfg.Node {
		return nil
	}
	d.g.mu.Lock()
	_, known := d.g.members[n.Name]
	d.g.mu.Unlock()
	if !known && !d.g.joins.Allow() {
		d.g.logs.refusal(RefusedJoinRate, "gossip: refused a new node past the join rate", "node", n.Name, "addr", n.Address())
		return fmt.Errorf("%w: node %q: new nodes past the join rate", errRefused, n.Name)
	}
	return nil
}

// NotifyMerge refuses a push/pull that brings a node of another cluster.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if _, err := d.admit(n); err != nil {
			return err
		}
	}
	return nil
}

// NotifyConflict: a node claims the name of a live node at another address.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.g.logs.refusal(RefusedName, "gossip: refused a node claiming a live node's name",
		"node", existing.Name, "addr", existing.Address(), "claimed_from", other.Address())
}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.set(n, StateAlive) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.set(n, StateAlive) }

// NotifyLeave: n is dead, or left (memberlist's event does not say which,
// n.State is not kept up to date: a node says Leaving in its meta first).
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	st := StateDead
	if m, err := DecodeMeta(n.Meta); err == nil && m.Leaving {
		st = StateLeft
	}
	d.set(n, st)
}

// set records n in state st, and forgets the nodes dead or left for
// longer than memberlist remembers them.
func (d *delegate) set(n *memberlist.Node, st State) {
	meta, _ := DecodeMeta(n.Meta) // admitted: it decodes
	now := time.Now()
	g := d.g
	g.mu.Lock()
	m := g.members[n.Name]
	if m == nil {
		m = &Member{Node: n.Name}
		g.members[n.Name] = m
	}
	if m.State != st || m.Since.IsZero() {
		m.State, m.Since = st, now
	}
	m.Addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	if len(n.Meta) > 0 {
		m.Meta = meta
	}
	for name, o := range g.members {
		if (o.State == StateDead || o.State == StateLeft) && now.Sub(o.Since) > g.forgetAfter {
			delete(g.members, name)
		}
	}
	g.mu.Unlock()
	g.signal()
}
