package daemon

import (
	"crypto/tls"

	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
)

// discover.go: remote clusters found from seeds (config remotes[]).
//
// While no link to a remote cluster is up, the node asks the cluster's
// seeds, one after the other, for its nodes: a connection of its own whose
// first frame is NodesRequest instead of Hello, answered with Nodes, then
// closed (probe). Every node listed becomes a peer: an address learned so
// is only a place to dial, and the handshake proves who is there against
// the cluster's CA. Over every up link each side sends the nodes of its
// own cluster (Nodes, nodes.go), at once and again whenever its view
// changes, so the lists stay current as nodes join, die and leave. The
// discovery worker applies what arrives, one update at a time, off the
// links' readers (adding a peer may wait for the link of its earlier
// self to end).

// remoteCluster is one configured remote cluster; fixed after New.
type remoteCluster struct {
	name      string
	seeds     []string
	transport string
	mode      string
	buffer    configs.Buffer
	topology  string        // remotes[].topology (topology.go)
	gateways  int           // remotes[].gateways
	idleClose time.Duration // remotes[].idle_close
}

// nodesUpdate is a list of a cluster's nodes to apply: from a probe or a
// link, whose remote host stands in for an unspecified listen host.
type nodesUpdate struct {
	cluster  string
	from     auth.PeerID
	fromHost string
	nodes    []wire.NodeEntry
}

// discovery is the daemon's state of remote clusters and discovered
// peers.
type discovery struct {
	remotes map[string]*remoteCluster // by cluster name; fixed after New
	// own is this node's cluster, whose nodes gossip finds (nodes.go:
	// syncOwnCluster); nil without gossip.bind. Fixed after New.
	own *remoteCluster

	mu      sync.Mutex
	pending map[auth.PeerID]nodesUpdate // guarded by mu: the newest list from each sender, not yet applied
	wake    chan struct{}               // capacity 1: pending has entries
}

// maxDiscovered bounds the peers discovery makes (mesh mode links to each
// of them): past it, more nodes are refused and counted. docs/scale.md
// says why 256: where a full mesh stops being sensible.
const maxDiscovered = 256

// ErrNoAddress is a dial of a discovered peer whose address is not known
// yet (it linked to this node first).
var ErrNoAddress = errors.New("no address known for the peer yet")

func (d *Daemon) initDiscovery(c *configs.Config) {
	d.disc.remotes = map[string]*remoteCluster{}
	d.disc.pending = map[auth.PeerID]nodesUpdate{}
	d.disc.wake = make(chan struct{}, 1)
	if c.Gossip.Bind != "" {
		tr := configs.TransportQUIC
		if c.Listen.QUIC == "" {
			tr = configs.TransportTCP
		}
		d.disc.own = &remoteCluster{name: c.Cluster, transport: tr, buffer: c.Buffer}
	}
	for _, r := range c.Remotes {
		d.metrics.initRemote(r.Cluster)
		tr := r.Transport
		if tr == "" {
			tr = configs.TransportQUIC
		}
		d.disc.remotes[r.Cluster] = &remoteCluster{name: r.Cluster, seeds: r.Seeds, transport: tr, mode: r.Mode, buffer: r.Buffer,
			topology: r.Topology, gateways: max(r.Gateways, 1), idleClose: r.IdleClose}
	}
}

// startDiscovery starts the discovery worker and a seed loop per remote
// cluster.
func (d *Daemon) startDiscovery() {
	d.wg.Go(d.discoveryWorker)
	for _, rc := range d.disc.remotes {
		d.wg.Go(func() { d.seedLoop(rc) })
	}
}

// queueNodes hands a list of nodes to the discovery worker; a newer list
// from the same sender replaces one not yet applied.
func (d *Daemon) queueNodes(u nodesUpdate) {
	d.disc.mu.Lock()
	d.disc.pending[u.from] = u
	d.disc.mu.Unlock()
	select {
	case d.disc.wake <- struct{}{}:
	default:
	}
}

func (d *Daemon) discoveryWorker() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.disc.wake:
		}
		d.disc.mu.Lock()
		batch := d.disc.pending
		d.disc.pending = map[auth.PeerID]nodesUpdate{}
		d.disc.mu.Unlock()
		for _, u := range batch {
			if d.ctx.Err() != nil {
				return
			}
			d.applyNodes(u)
		}
	}
}

// clusterLinked reports whether a link to a node of cluster is up.
func (d *Daemon) clusterLinked(cluster string) bool {
	for _, p := range d.peerList() {
		if p.id.Cluster == cluster && p.currentLink() != nil {
			return true
		}
	}
	return false
}

// seedLoop asks rc's seeds for its nodes whenever no link to rc is up,
// with the link backoff between failed rounds.
func (d *Daemon) seedLoop(rc *remoteCluster) {
	lc := d.cfg.Link
	rd := newRedial(lc.ReconnectMin, lc.ReconnectMax)
	for d.ctx.Err() == nil {
		wait := time.Second
		if !d.clusterLinked(rc.name) {
			if err := d.probeSeeds(d.ctx, rc); err != nil {
				if d.ctx.Err() != nil {
					return
				}
				d.warnPeer(auth.PeerID{Cluster: rc.name}, "seeds", "no seed of the remote cluster answered", "err", err)
				wait = rd.afterFailure()
			} else {
				rd.linkWasUp()
				// Give the peers just made a dial's time before asking again.
				wait = max(lc.HandshakeTimeout, time.Second)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
			return
		}
	}
}

// probeSeeds resolves rc's seeds (a name to every address it has) and
// probes them in turn until one answers.
func (d *Daemon) probeSeeds(ctx context.Context, rc *remoteCluster) error {
	var errs []error
	for _, addr := range resolveSeeds(ctx, d.lookupHost, rc.seeds, &errs) {
		u, err := d.probe(ctx, rc, addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("seed %s: %w", addr, err))
			continue
		}
		d.metrics.discoveryProbes.WithLabelValues(rc.name, "answered").Inc()
		d.queueNodes(u)
		return nil
	}
	if len(errs) == 0 {
		return errors.New("no seed address")
	}
	return errors.Join(errs...)
}

// resolveSeeds returns the addresses of seeds: an IP literal as it is, a
// name as every address it resolves to now (a headless service's pods).
func resolveSeeds(ctx context.Context, lookup func(context.Context, string) ([]string, error), seeds []string, errs *[]error) []string {
	var out []string
	for _, s := range seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("seed %q: %w", s, err))
			continue
		}
		if _, err := netip.ParseAddr(host); err == nil {
			out = append(out, s)
			continue
		}
		ips, err := lookup(ctx, host)
		if err != nil {
			// Not resolvable here: the transport may still know it (an
			// in-memory one does); its dial says what is wrong if not.
			*errs = append(*errs, fmt.Errorf("seed %q: %w", s, err))
			out = append(out, s)
			continue
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	return out
}

// probe asks the seed at addr for rc's nodes on a connection of its own.
func (d *Daemon) probe(ctx context.Context, rc *remoteCluster, addr string) (nodesUpdate, error) {
	hctx, cancel := context.WithTimeout(ctx, d.cfg.Link.HandshakeTimeout)
	defer cancel()
	tr := d.transports[rc.transport]
	if tr == nil {
		return nodesUpdate{}, fmt.Errorf("transport %q not available", rc.transport)
	}
	tc, err := d.seedTLS(rc.name)
	if err != nil {
		return nodesUpdate{}, err
	}
	conn, err := tr.Dial(hctx, addr, tc)
	if err != nil {
		d.metrics.discoveryProbes.WithLabelValues(rc.name, "failed").Inc()
		return nodesUpdate{}, err
	}
	defer conn.Close()
	claimed, _, err := auth.PeerFromConnectionState(conn.ConnectionState())
	if err != nil {
		return nodesUpdate{}, err
	}
	ctl, err := conn.OpenStream(hctx)
	if err != nil {
		return nodesUpdate{}, fmt.Errorf("open control stream: %w", err)
	}
	deadline, _ := hctx.Deadline()
	_ = ctl.SetDeadline(deadline)
	req := &wire.NodesRequest{Cluster: d.cfg.Cluster, Node: d.cfg.Node}
	if _, err := ctl.Write(wire.AppendFrame(nil, req)); err != nil {
		return nodesUpdate{}, fmt.Errorf("send NodesRequest: %w", err)
	}
	m, err := wire.NewReader(ctl, d.cfg.Link.MaxFrameSize).ReadMessage()
	if err != nil {
		return nodesUpdate{}, fmt.Errorf("read Nodes: %w", err)
	}
	switch m := m.(type) {
	case *wire.Nodes:
		if m.Cluster != rc.name || claimed.Cluster != rc.name {
			d.refuseDiscovery("wrong_cluster", claimed, "seed of %s answered with the nodes of %s (its certificate: %s)", rc.name, m.Cluster, claimed)
			return nodesUpdate{}, fmt.Errorf("seed answered for cluster %q, want %q", m.Cluster, rc.name)
		}
		return nodesUpdate{cluster: rc.name, from: claimed, fromHost: hostOf(conn.RemoteAddr()), nodes: m.Nodes}, nil
	case *wire.Welcome:
		return nodesUpdate{}, fmt.Errorf("refused by the seed: %s", m.Reason)
	default:
		return nodesUpdate{}, fmt.Errorf("seed answered %v, want Nodes", m.Type())
	}
}

// refuseDiscovery counts and logs (once per interval per peer and reason)
// a list of nodes, or an entry of one, that discovery refused.
func (d *Daemon) refuseDiscovery(reason string, from auth.PeerID, format string, args ...any) {
	d.metrics.discoveryRefused.WithLabelValues(reason).Inc()
	d.warnPeer(from, "discovery_"+reason, fmt.Sprintf(format, args...))
}

// hostOf returns the IP of a network address, "" if it has none.
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap().String()
	}
	return ""
}

// discoveryMetrics count what discovery did.
type discoveryMetrics struct {
	discoveryProbes  *prometheus.CounterVec // by cluster, result
	discoveryRefused *prometheus.CounterVec // by reason
	discoveryAnswers prometheus.Counter
	discovered       *prometheus.GaugeVec   // by cluster
	discoveryRemoved *prometheus.CounterVec // by cluster
}

func (m *metrics) addDiscovery() {
	m.discoveryProbes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_discovery_probes_total",
		Help: "Seeds of a remote cluster asked for its nodes, by cluster and result: answered, failed (no connection)."}, []string{"cluster", "result"})
	m.discoveryRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_discovery_refused_total",
		Help: "Node lists, or entries of them, that discovery refused, by reason: wrong_cluster (a seed or peer listed another cluster's nodes), bad_name, too_many_nodes."}, []string{"reason"})
	m.discoveryAnswers = prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_discovery_answers_total",
		Help: "Probes of other clusters' nodes this node answered with its cluster's nodes."})
	m.discovered = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wandist_discovered_peers",
		Help: "Peers made by discovery, by cluster."}, []string{"cluster"})
	m.discoveryRemoved = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_discovery_removed_total",
		Help: "Discovered peers removed because their cluster declared them dead or left, by cluster."}, []string{"cluster"})
	for _, r := range []string{"wrong_cluster", "bad_name", "too_many_nodes"} {
		m.discoveryRefused.WithLabelValues(r)
	}
	m.reg.MustRegister(m.discoveryProbes, m.discoveryRefused, m.discoveryAnswers, m.discovered, m.discoveryRemoved)
}

// seedTLS is the TLS configuration of a probe: any node of cluster,
// proved by the cluster's CA (or pinned).
func (d *Daemon) seedTLS(cluster string) (*tls.Config, error) {
	return auth.ClientTLSConfigCluster(d.id, d.pins, cluster, []string{ALPN}, d.onReject)
}
