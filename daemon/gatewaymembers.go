package daemon

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/internal/wire"
)

// gatewaymembers.go: the group membership of a remote cluster (either
// topology: its on-demand nodes are not linked while idle)
// (topology.go) through one of its gateways (docs/wire-spec.md,
// "Membership through a gateway").
//
// This node (O) links directly to only a few nodes of such a cluster C,
// so it hears from most of C's nodes on no link of its own. For each such
// cluster it subscribes (MembersSubscribe) on one direct link up to a
// node G of C, its membership gateway. G answers with the view it holds
// of each of its cluster mates (NodeMembers), then forwards every change
// of them it applies (NodeDelta), under the export rules it has for O's
// cluster. O takes them under its own import rules and budget, as if they
// came from the nodes themselves. When that link goes down, the views it
// fed, of nodes O has no link up to, turn unreachable, and O subscribes
// on another link to C if one is up: its snapshots make them reachable
// again.
//
//	O side   gatewayMembersLoop (one goroutine): the choice of the
//	         membership gateway per cluster; onNodeMembers, onNodeDelta
//	G side   onMembersSubscribe; forwardDeltaLocked, forwardViewLocked,
//	         called by onDelta and onSnapshot (membership_in.go) for links
//	         from this node's own cluster

// Reasons a subscription is refused (G side).
const (
	subRefusedRelayed    = "relayed"     // over a relayed link
	subRefusedOwnCluster = "own_cluster" // from a node of this node's own cluster
)

var subRefusedReasons = []string{subRefusedRelayed, subRefusedOwnCluster}

// Reasons a NodeMembers or NodeDelta is refused (O side), and why this
// node subscribes.
const (
	nodeRefusedOwnCluster    = "own_cluster"    // about a node of this node's own cluster
	nodeRefusedForeign       = "foreign_node"   // about a node not of the sender's cluster
	nodeRefusedGateway       = "gateway_itself" // about the sender itself (its membership comes on its link)
	nodeRefusedBadName       = "bad_name"       // the node's name is not valid
	nodeRefusedNotSubscribed = "not_subscribed" // on a link this node did not subscribe on for that cluster
	nodeRefusedUnknown       = "unknown_node"   // about a node this node has no peer for, or one declared gone
	nodeRefusedOlder         = "older"          // a snapshot older than the view held (another source was ahead)
	nodeRefusedGap           = "version_gap"    // a delta after a gap in the versions: subscribed again

	subscribeChosen  = "chosen"       // a membership gateway chosen: the first, or after the last one's link went down
	subscribeGap     = "version_gap"  // again on the same link, after a gap
	subscribeUnknown = "unknown_node" // again, a node refused as unknown having become a peer
	subscribeResync  = "resync"       // again, the import or export rules changed (reload)
)

var nodeRefusedReasons = []string{nodeRefusedOwnCluster, nodeRefusedForeign, nodeRefusedGateway, nodeRefusedBadName,
	nodeRefusedNotSubscribed, nodeRefusedUnknown, nodeRefusedOlder, nodeRefusedGap}

var subscribeReasons = []string{subscribeChosen, subscribeGap, subscribeUnknown, subscribeResync}

// gatewayMembers is the daemon's state of membership through gateways.
type gatewayMembers struct {
	mu   sync.Mutex
	subs map[string]*memberSub // guarded by mu: per remote cluster, this node's subscription (O side)
	wake chan struct{}         // capacity 1, fixed after New: wakes gatewayMembersLoop (a node refused as unknown became a peer)

	// fwdMu orders the forwarding of cluster mates' membership with
	// subscriptions (G side): held while a cluster mate's snapshot or
	// delta is applied and forwarded, and while a subscription is
	// registered and its snapshots queued, so that a subscriber misses
	// none and gets none twice.
	fwdMu       sync.Mutex
	subscribers map[*link]struct{} // guarded by fwdMu: links of nodes of other clusters subscribed
}

// memberSub is this node's subscription for one cluster.
type memberSub struct {
	l      *link                // the membership gateway's link; fixed
	fed    map[auth.PeerID]bool // guarded by gatewayMembers.mu: nodes whose views came through l
	missed map[auth.PeerID]bool // guarded by gatewayMembers.mu: nodes refused as unknown on l
}

// gatewayMetrics count membership through gateways.
type gatewayMetrics struct {
	subscribeRefused *prometheus.CounterVec
	nodeRefused      *prometheus.CounterVec
	subscribes       *prometheus.CounterVec
	subscribers      prometheus.Gauge
}

func (m *metrics) addGatewayMembers() {
	m.subscribeRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_members_subscribe_refused_total",
		Help: "MembersSubscribe requests this node refused as a gateway, by reason: relayed, own_cluster."}, []string{"reason"})
	m.nodeRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_node_members_refused_total",
		Help: "NodeMembers and NodeDelta frames this node refused from a gateway, by reason: own_cluster, foreign_node, gateway_itself, bad_name, not_subscribed, unknown_node, older, version_gap."}, []string{"reason"})
	m.subscribes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_members_subscribes_total",
		Help: "MembersSubscribe requests this node sent to a gateway, by reason: chosen, version_gap, unknown_node, resync."}, []string{"reason"})
	m.subscribers = prometheus.NewGauge(prometheus.GaugeOpts{Name: "wandist_members_subscribers",
		Help: "Links of nodes of other clusters subscribed to this node's cluster's membership."})
	for _, r := range subRefusedReasons {
		m.subscribeRefused.WithLabelValues(r)
	}
	for _, r := range nodeRefusedReasons {
		m.nodeRefused.WithLabelValues(r)
	}
	for _, r := range subscribeReasons {
		m.subscribes.WithLabelValues(r)
	}
	m.reg.MustRegister(m.subscribeRefused, m.nodeRefused, m.subscribes, m.subscribers)
}

// startGatewayMembers starts gatewayMembersLoop if there are remote
// clusters (remotes[]): in either topology their on-demand nodes' members
// come through a gateway.
func (d *Daemon) startGatewayMembers() {
	if len(d.disc.remotes) > 0 {
		d.wg.Go(d.gatewayMembersLoop)
	}
}

// gatewayMembersLoop chooses, at every link up or down, the membership
// gateway of each remote cluster, until the daemon stops.
func (d *Daemon) gatewayMembersLoop() {
	for {
		ev := d.linkEvents() // before looking at the links: no event is missed
		for name := range d.disc.remotes {
			d.chooseMemberGateway(name)
		}
		select {
		case <-ev:
		case <-d.gwm.wake:
		case <-d.ctx.Done():
			return
		}
	}
}

// chooseMemberGateway keeps the subscription for cluster while its link is
// up (subscribing again on it if a node it refused as unknown is a peer
// now); else it marks the views it fed unreachable and subscribes on the
// best link up to the cluster, if any.
func (d *Daemon) chooseMemberGateway(cluster string) {
	d.gwm.mu.Lock()
	sub := d.gwm.subs[cluster]
	if sub != nil && sub.l.ctx.Err() == nil {
		again := d.missedFoundLocked(sub)
		d.gwm.mu.Unlock()
		if again {
			d.subscribe(sub.l, subscribeUnknown)
		}
		return
	}
	d.gwm.mu.Unlock()
	if sub != nil {
		d.memberGatewayLost(sub)
	}
	l := d.memberGatewayFor(cluster)
	d.gwm.mu.Lock()
	if l == nil {
		delete(d.gwm.subs, cluster)
	} else {
		if d.gwm.subs == nil {
			d.gwm.subs = map[string]*memberSub{}
		}
		d.gwm.subs[cluster] = &memberSub{l: l, fed: map[auth.PeerID]bool{}, missed: map[auth.PeerID]bool{}}
	}
	d.gwm.mu.Unlock()
	if l != nil {
		d.subscribe(l, subscribeChosen)
	}
}

// missedFoundLocked reports whether a node sub refused as unknown is a
// live peer now (and forgets the nodes refused).
func (d *Daemon) missedFoundLocked(sub *memberSub) bool {
	for id := range sub.missed {
		if p := d.peer(id.Cluster, id.Node); p != nil && p.goneAt.Load() == 0 {
			clear(sub.missed)
			return true
		}
	}
	return false
}

// subscribe asks l's peer for its cluster's membership.
func (d *Daemon) subscribe(l *link, reason string) {
	d.metrics.subscribes.WithLabelValues(reason).Inc()
	d.log.Debug("membership: subscribing through a gateway", "gateway", l.p.nodeName(), "reason", reason)
	l.sendControl(&wire.MembersSubscribe{})
}

// resubscribeAll subscribes again on every membership gateway's link, for
// fresh snapshots of every node.
func (d *Daemon) resubscribeAll() {
	d.gwm.mu.Lock()
	var ls []*link
	for _, sub := range d.gwm.subs {
		ls = append(ls, sub.l)
	}
	d.gwm.mu.Unlock()
	for _, l := range ls {
		d.subscribe(l, subscribeResync)
	}
}

// memberGatewayLost marks unreachable the views sub fed of nodes this node
// has no link up to (their members stay, as those of any peer whose link
// went down).
func (d *Daemon) memberGatewayLost(sub *memberSub) {
	d.gwm.mu.Lock()
	fed := make([]auth.PeerID, 0, len(sub.fed))
	for id := range sub.fed {
		fed = append(fed, id)
	}
	d.gwm.mu.Unlock()
	for _, id := range fed {
		if p := d.peer(id.Cluster, id.Node); p == nil || p.currentLink() == nil {
			d.groups.PeerDown(groupsID(id))
		}
	}
}

// memberGatewayFor returns the direct up link to a node of cluster to
// subscribe on: one to a gateway (topology.go) if any, of those the one
// whose node has the highest rendezvous score with this node; nil if none
// is up.
func (d *Daemon) memberGatewayFor(cluster string) *link {
	var best *link
	var bestGW bool
	var bestScore uint64
	for _, q := range d.peerList() {
		if q.id.Cluster != cluster {
			continue
		}
		l := q.currentLink()
		if l == nil || l.relayed() || l.ctx.Err() != nil {
			continue
		}
		gw, s := d.isGateway(q.id), rendezvous(d.id.ID, q.id)
		if best == nil || (gw && !bestGW) || (gw == bestGW && s > bestScore) {
			best, bestGW, bestScore = l, gw, s
		}
	}
	return best
}

// membersViaGateway reports whether id's view is fed by an up membership
// gateway link: its members stay reachable when its own link goes down.
func (d *Daemon) membersViaGateway(id auth.PeerID) bool {
	d.gwm.mu.Lock()
	defer d.gwm.mu.Unlock()
	sub := d.gwm.subs[id.Cluster]
	return sub != nil && sub.l.ctx.Err() == nil && sub.fed[id]
}

// gatewayNodeAdded wakes gatewayMembersLoop if id, a new peer, was refused
// as unknown on a subscription.
func (d *Daemon) gatewayNodeAdded(id auth.PeerID) {
	d.gwm.mu.Lock()
	sub := d.gwm.subs[id.Cluster]
	missed := sub != nil && sub.missed[id]
	d.gwm.mu.Unlock()
	if missed {
		select {
		case d.gwm.wake <- struct{}{}:
		default:
		}
	}
}

// checkNodeFrame checks a NodeMembers or NodeDelta from l's peer about
// cluster/node: it returns the node, and the reason of its refusal ("" if
// taken).
func (l *link) checkNodeFrame(cluster, node string) (auth.PeerID, string) {
	d := l.p.d
	id := auth.PeerID{Cluster: cluster, Node: node}
	switch {
	case cluster == d.cfg.Cluster:
		return id, nodeRefusedOwnCluster
	case cluster != l.p.id.Cluster:
		return id, nodeRefusedForeign
	case id == l.p.id:
		return id, nodeRefusedGateway
	case id.Validate() != nil:
		return id, nodeRefusedBadName
	}
	d.gwm.mu.Lock()
	defer d.gwm.mu.Unlock()
	sub := d.gwm.subs[cluster]
	if sub == nil || sub.l != l {
		return id, nodeRefusedNotSubscribed
	}
	if p := d.peer(cluster, node); p == nil || p.goneAt.Load() != 0 {
		sub.missed[id] = true
		return id, nodeRefusedUnknown
	}
	return id, ""
}

// refuseNode counts and (rate-limited) logs a refused NodeMembers or
// NodeDelta about id.
func (l *link) refuseNode(id auth.PeerID, reason string) {
	d := l.p.d
	d.metrics.nodeRefused.WithLabelValues(reason).Inc()
	d.warnPeer(l.p.id, "node_members_"+reason, "membership of a node through a gateway refused (counted in wandist_node_members_refused_total)",
		"reason", reason, "node", fmt.Sprintf("%.300q", id.String()))
}

// fedBy records that id's view came through l.
func (d *Daemon) fedBy(l *link, id auth.PeerID) {
	d.gwm.mu.Lock()
	defer d.gwm.mu.Unlock()
	if sub := d.gwm.subs[id.Cluster]; sub != nil && sub.l == l {
		sub.fed[id] = true
	}
}
