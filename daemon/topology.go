package daemon

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
)

// topology.go: how this node links to the nodes of a remote cluster
// (remotes[].topology; docs/scale.md).
//
// In both modes it keeps links at all times to remotes[].gateways (k) of
// the cluster's live nodes: those whose rendezvous score with this node is
// highest, so that the nodes of a cluster spread over the other cluster's
// nodes, and a node joining or leaving moves only the links it takes or
// gives back. Every other node of the cluster found by discovery is an
// on-demand peer: dialled only while a message waits for it, directly in
// mesh mode, and in gateway mode through one of the gateways over a
// relayed link (relay.go): an end-to-end link, so reliable and durable
// delivery keep their guarantees with one more hop. The dialling side
// closes an on-demand link that carried nothing for remotes[].idle_close.
// The group members of on-demand peers come through a gateway
// (gatewaymembers.go). A node configured in peers[] is always linked.

// errNoGateway is the dial of an on-demand peer while no gateway of its
// cluster is up.
var errNoGateway = errors.New("no link up to a gateway of cluster")

// errIdle ends a link that carried nothing for its cluster's idle_close.
var errIdle = errors.New("link idle: closed by the on-demand topology")

// maxDiscoveredGateway bounds the discovered peers of gateway-mode clusters
// (maxDiscovered bounds those of mesh-mode ones): an on-demand peer costs a
// buffer, not a link.
const maxDiscoveredGateway = 8192

// topologyState caches the gateways of each gateway-mode cluster.
type topologyState struct {
	mu       sync.Mutex
	gen      uint64                          // guarded by mu: bumped when a node is declared gone or alive again
	cacheGen [2]uint64                       // guarded by mu: (peersGen, gen) the cache was computed at
	gateways map[string]map[auth.PeerID]bool // guarded by mu: per cluster, its nodes this node links to directly
}

// topologyChanged is called when a node's gone state changes: the
// gateways are computed again, and the dial loops waiting for one wake.
func (d *Daemon) topologyChanged() {
	d.topo.mu.Lock()
	d.topo.gen++
	d.topo.mu.Unlock()
	d.linksChanged()
}

// gatewayCluster returns the remote cluster of p when it is in gateway mode.
func (d *Daemon) gatewayCluster(p *peer) *remoteCluster {
	if rc := d.disc.remotes[p.id.Cluster]; rc != nil && rc.topology == configs.TopologyGateway {
		return rc
	}
	return nil
}

// onDemand reports whether p is linked only while messages wait for it: a
// discovered node of a remote cluster (remotes[]), not one of its k
// gateways. In gateway mode its link is relayed through a gateway; in
// mesh mode it is dialled directly. A configured peer, and a node of this
// node's own cluster, is always linked.
func (d *Daemon) onDemand(p *peer) bool {
	return p.discovered && d.disc.remotes[p.id.Cluster] != nil && !d.isGateway(p.id)
}

// isGateway reports whether id is one of the k nodes of its remote
// cluster that this node keeps linked at all times: in gateway mode its
// only direct links there; in mesh mode those that carry the cluster's
// membership when no traffic does.
func (d *Daemon) isGateway(id auth.PeerID) bool {
	return d.gatewaysOf(id.Cluster)[id]
}

// gatewaysOf returns the gateways of cluster: the k live nodes with the
// highest rendezvous score. The map must not be modified.
func (d *Daemon) gatewaysOf(cluster string) map[auth.PeerID]bool {
	rc := d.disc.remotes[cluster]
	if rc == nil {
		return nil
	}
	d.topo.mu.Lock()
	defer d.topo.mu.Unlock()
	key := [2]uint64{d.peersGen.Load(), d.topo.gen}
	if d.topo.gateways == nil || d.topo.cacheGen != key {
		d.topo.gateways = map[string]map[auth.PeerID]bool{}
		d.topo.cacheGen = key
	}
	if g, ok := d.topo.gateways[cluster]; ok {
		return g
	}
	type scored struct {
		id    auth.PeerID
		score uint64
	}
	var nodes []scored
	for _, p := range d.peerList() {
		if p.id.Cluster == cluster && p.goneAt.Load() == 0 {
			nodes = append(nodes, scored{p.id, rendezvous(d.id.ID, p.id)})
		}
	}
	slices.SortFunc(nodes, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	g := map[auth.PeerID]bool{}
	for _, n := range nodes[:min(len(nodes), rc.gateways)] {
		g[n.id] = true
	}
	d.topo.gateways[cluster] = g
	return g
}

// rendezvous is the score of the pair (a, b): highest random weight
// hashing, the same on every node for the same pair.
func rendezvous(a, b auth.PeerID) uint64 {
	h := fnv.New64a()
	for _, s := range []string{a.Cluster, a.Node, b.Cluster, b.Node} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return mix64(h.Sum64())
}

// mix64 is splitmix64's finaliser: FNV's low bits alone spread poorly.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// gatewayFor returns the direct up link through which on-demand peer p is
// reached: of the links to nodes of p's cluster, the one whose node has
// the highest rendezvous score with p (so that the pipes to one node go
// through one gateway while it is up); nil if none is up.
func (d *Daemon) gatewayFor(p *peer) *link {
	var best *link
	var bestScore uint64
	for _, q := range d.peerList() {
		if q == p || q.id.Cluster != p.id.Cluster {
			continue
		}
		l := q.currentLink()
		if l == nil || l.relayed() {
			continue
		}
		if s := rendezvous(p.id, q.id); best == nil || s > bestScore {
			best, bestScore = l, s
		}
	}
	return best
}

// wantsLink reports whether on-demand peer p needs a link now: something
// waits for it.
func (p *peer) wantsLink() bool { return p.queue.Stats().Messages > 0 }

// demand returns channels that receive when a message is queued for p.
func (p *peer) demand() [3]<-chan struct{} {
	return [3]<-chan struct{}{p.queue.Notify(0), p.queue.Notify(1), p.queue.Notify(2)}
}

// closeIdle ends the links this node dialled to discovered nodes of
// remote clusters that are not (or no longer) gateways, once nothing waits for
// the node and no message came from it for the cluster's idle_close. Run
// by the janitor.
func (d *Daemon) closeIdle(p *peer) {
	now := time.Now() // the clock of link.lastData
	rc := d.disc.remotes[p.id.Cluster]
	if rc == nil || !p.discovered || rc.idleClose <= 0 || d.isGateway(p.id) {
		return
	}
	l := p.currentLink()
	if l == nil || !l.dialer || p.wantsLink() {
		return
	}
	if now.Sub(time.Unix(0, l.lastData.Load())) < rc.idleClose {
		return
	}
	d.metrics.linksClosed.WithLabelValues(closedIdle).Inc()
	l.goAway(wire.GoAwayNormal, "idle", errIdle)
}
