package daemon

import (
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/gossip"
	"github.com/wandist/wandist/groups"
)

// maxGossipKeyFile bounds gossip.secret_file (32 bytes, or their base64).
const maxGossipKeyFile = 4 << 10

// ClusterMember is one node of this node's cluster in Status.
type ClusterMember struct {
	Node  string    `json:"node"`
	State string    `json:"state"` // alive, dead or left
	Since time.Time `json:"since"`
	QUIC  string    `json:"quic,omitempty"`
	TCP   string    `json:"tcp,omitempty"`
	// Gossip is its gossip address.
	Gossip string `json:"gossip"`
}

// gossipMetrics are the metrics of in-cluster membership.
type gossipMetrics struct {
	members *prometheus.GaugeVec   // by state
	refused *prometheus.CounterVec // by reason
}

var gossipStates = []gossip.State{gossip.StateAlive, gossip.StateDead, gossip.StateLeft}

func newGossipMetrics(reg *prometheus.Registry) gossipMetrics {
	m := gossipMetrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wandist_gossip_members",
			Help: "Nodes of this node's cluster known by gossip (itself included), by state."}, []string{"state"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_gossip_refused_total",
			Help: "Gossip refused, by reason: cluster (another cluster's node), meta (undecodable), name (a live node's name from another address), key (not sealed with the cluster's key), join_rate (new nodes past the rate)."}, []string{"reason"}),
	}
	reg.MustRegister(m.members, m.refused)
	for _, s := range gossipStates {
		m.members.WithLabelValues(string(s))
	}
	for _, r := range gossip.RefusalReasons {
		m.refused.WithLabelValues(r)
	}
	return m
}

// startGossip joins this node's cluster (gossip.bind set), announcing the
// bound link listeners, and watches it. Called by Start once they listen.
func (d *Daemon) startGossip() error {
	gc := d.cfg.Gossip
	if gc.Bind == "" {
		return nil
	}
	b, err := auth.ReadSecretFile(gc.SecretFile, maxGossipKeyFile)
	if err != nil {
		return fmt.Errorf("gossip.secret_file: %w", err)
	}
	key, err := gossip.ParseKey(b)
	if err != nil {
		return fmt.Errorf("gossip.secret_file %s: %w", gc.SecretFile, err)
	}
	host := ""
	for _, a := range []string{gc.Advertise, gc.Bind} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && !unspecified(h) {
			host = h
			break
		}
	}
	g, err := gossip.Start(d.ctx, gossip.Config{
		Cluster: d.cfg.Cluster, Node: d.cfg.Node, Bind: gc.Bind, Advertise: gc.Advertise, Seeds: gc.Seeds,
		SecretKey: key, Profile: gc.Profile, Logger: d.log,
		Meta: gossip.Meta{QUIC: dialable(d.ListenAddr("quic"), host), TCP: dialable(d.ListenAddr("tcp"), host),
			Incarnation: d.incarnation},
		OnRefused: func(reason string) { d.metrics.gossip.refused.WithLabelValues(reason).Inc() },
		Tune:      d.gossipTune,
	})
	if err != nil {
		return err
	}
	d.gossip.Store(g)
	d.wg.Go(func() { d.watchCluster(g) })
	return nil
}

func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// dialable is a bound listener address with an unspecified host (0.0.0.0,
// ::) replaced by host, the gossip address's, when there is one.
func dialable(addr, host string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil || host == "" || !unspecified(h) {
		return addr
	}
	return net.JoinHostPort(host, p)
}

// watchCluster follows the cluster's changes: a node declared dead or that
// left takes its group members out of this node's views at once (a node
// that comes back publishes them again when its link comes up, in the
// snapshot that starts every link), and the members gauge follows.
func (d *Daemon) watchCluster(g *gossip.Gossip) {
	gone := map[string]bool{} // nodes whose members were dropped, until they are alive again
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-g.Changed():
		}
		counts := map[gossip.State]int{}
		for _, m := range g.Members() {
			counts[m.State]++
			if m.Node == d.cfg.Node {
				continue
			}
			switch {
			case m.State == gossip.StateAlive:
				delete(gone, m.Node)
			case !gone[m.Node]:
				gone[m.Node] = true
				d.groups.ForgetPeer(groups.NodeID{Cluster: d.cfg.Cluster, Node: m.Node})
				d.log.Info("cluster node gone: its members leave the views", "peer", d.cfg.Cluster+"/"+m.Node, "state", m.State)
			}
		}
		for _, s := range gossipStates {
			d.metrics.gossip.members.WithLabelValues(string(s)).Set(float64(counts[s]))
		}
		d.syncOwnCluster(g.Members())
		d.viewChanged()
	}
}

// ClusterView is this node's view of its own cluster by gossip, itself
// included, sorted by name; nil without gossip.bind.
func (d *Daemon) ClusterView() []gossip.Member {
	if g := d.gossip.Load(); g != nil {
		return g.Members()
	}
	return nil
}

// clusterStatus is ClusterView for Status.
func (d *Daemon) clusterStatus() []ClusterMember {
	var out []ClusterMember
	for _, m := range d.ClusterView() {
		out = append(out, ClusterMember{Node: m.Node, State: string(m.State), Since: m.Since,
			QUIC: m.Meta.QUIC, TCP: m.Meta.TCP, Gossip: m.Addr})
	}
	return out
}

// closeGossip leaves the cluster (Close).
func (d *Daemon) closeGossip() {
	if g := d.gossip.Load(); g != nil {
		if err := g.Close(); err != nil {
			d.log.Warn("gossip close", "err", err)
		}
	}
}
