//go:build linux

package chaos

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/wandist/wandist/impair"
)

// Addresses of a MultiTopology: cluster k (from 0) has the LAN
// 10.214.(k+1).0/24 (its router .1, node i at .(10+i)), and its router's
// uplink to the WAN namespace is 10.215.(k+1).0/24 (the WAN .1, the router
// .2). Like the two-cluster Topology's, they exist only inside the
// namespaces the suite creates and are never routed from the root
// namespace.
func multiLAN(k int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 214, byte(k + 1), 0}), 24)
}

func multiUplink(k int, host byte) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 215, byte(k + 1), host})
}

// maxMultiClusters and maxMultiNodes bound the address plan (and the
// interface names, which must stay under 16 bytes).
const (
	maxMultiClusters = 9
	maxMultiNodes    = 200
)

// NodeNet is one node's place in a MultiTopology: its namespace and its
// LAN address.
type NodeNet struct {
	Cluster string
	Name    string // e.g. "b2": the cluster's name and the node's number (from 1)
	NS      string
	IP      netip.Addr
}

// MultiCluster is one cluster of a MultiTopology: a router namespace whose
// bridge is the LAN of the cluster's nodes, with an uplink to the WAN.
type MultiCluster struct {
	Name   string
	Index  int
	Router string       // the router's namespace
	LAN    netip.Prefix // the cluster's addresses
	wanIf  string       // in the WAN, towards this cluster's router
}

// MultiTopology is C clusters of N nodes, one network namespace per node.
// Each cluster's nodes share a LAN (a Linux bridge in the cluster's router
// namespace: no fault, sub-millisecond); the routers are joined by veth
// pairs to one WAN namespace that routes between clusters and applies the
// faults per ordered pair of clusters: delay and jitter in a TUN packet
// forwarder per pair (impair.PacketForwarder, as Topology uses where the
// kernel has no netem), loss and partitions in nftables. Every name starts
// with Prefix ("wdc-<pid>-..."), so RemoveLeftovers finds what a run that
// died left behind.
type MultiTopology struct {
	Prefix   string
	WAN      string
	Clusters []*MultiCluster
	HaveNFT  bool

	addMu  sync.Mutex // serialises AddNode
	mu     sync.Mutex
	nodes  []NodeNet                          // guarded by mu
	fwd    map[[2]int]*impair.PacketForwarder // guarded by mu; (from, to) cluster index
	faults map[[2]int]PairFault               // guarded by mu; what Apply set

	unregister func()
}

// NewMultiTopology creates the WAN, a router and LAN per cluster and
// nodesPer nodes per cluster, with the forwarders and the nftables table.
// Close removes all of it; an interrupt (SIGINT, SIGTERM) too.
func NewMultiTopology(ctx context.Context, prefix string, clusters []string, nodesPer int) (m *MultiTopology, err error) {
	if len(clusters) < 2 || len(clusters) > maxMultiClusters || nodesPer < 1 || nodesPer > maxMultiNodes {
		return nil, fmt.Errorf("chaos: %d clusters of %d nodes: want 2..%d clusters of 1..%d nodes", len(clusters), nodesPer, maxMultiClusters, maxMultiNodes)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return nil, fmt.Errorf("%w: the multi-cluster topology needs /dev/net/tun for its delays", ErrUnsupported)
	}
	m = &MultiTopology{Prefix: prefix, WAN: prefix + "-wan", fwd: map[[2]int]*impair.PacketForwarder{}, faults: map[[2]int]PairFault{}}
	m.unregister = onInterrupt(func() { m.remove(context.Background()) })
	defer func() {
		if err != nil {
			m.Close()
			m = nil
		}
	}()
	if err := m.addNS(ctx, m.WAN, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.all.send_redirects=0"); err != nil {
		return m, err
	}
	for k, name := range clusters {
		if err := checkNetName(name); err != nil {
			return m, err
		}
		c := &MultiCluster{Name: name, Index: k, Router: prefix + "-r-" + name, LAN: multiLAN(k), wanIf: fmt.Sprintf("wc%d", k)}
		m.Clusters = append(m.Clusters, c)
		if err := m.addCluster(ctx, c); err != nil {
			return m, err
		}
	}
	for _, from := range m.Clusters {
		for _, to := range m.Clusters {
			if from != to {
				if err := m.addForwarder(ctx, from, to); err != nil {
					return m, err
				}
			}
		}
	}
	if _, err := lookPath("nft"); err == nil {
		m.HaveNFT = true
		if err := m.writeNFT(ctx); err != nil {
			return m, err
		}
	}
	for _, c := range m.Clusters {
		for range nodesPer {
			if _, err := m.AddNode(ctx, c.Name); err != nil {
				return m, err
			}
		}
	}
	return m, nil
}

func checkNetName(name string) error {
	if name == "" || len(name) > 8 || strings.ContainsAny(name, "-/ \t\n") || name == "wan" {
		return fmt.Errorf("chaos: cluster name %q: want 1-8 characters without '-', '/' or blanks, not \"wan\"", name)
	}
	return nil
}

// addNS creates a namespace with its loopback up, IPv6 off and the given
// sysctls.
func (m *MultiTopology) addNS(ctx context.Context, ns string, sysctls ...string) error {
	if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	if _, err := run(ctx, "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	for _, kv := range append([]string{"net.ipv6.conf.all.disable_ipv6=1"}, sysctls...) {
		if _, err := runIn(ctx, ns, "sysctl", "-qw", kv); err != nil {
			return err
		}
	}
	return nil
}

// addCluster creates a cluster's router namespace, its LAN bridge and its
// uplink to the WAN, and the routes both ways.
func (m *MultiTopology) addCluster(ctx context.Context, c *MultiCluster) error {
	if err := m.addNS(ctx, c.Router, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"); err != nil {
		return err
	}
	gw := c.LAN.Addr().Next()
	for _, s := range [][]string{
		{"-n", c.Router, "link", "add", "br0", "type", "bridge"},
		{"-n", c.Router, "addr", "add", netip.PrefixFrom(gw, 24).String(), "dev", "br0"},
		{"-n", c.Router, "link", "set", "br0", "up"},
		{"-n", m.WAN, "link", "add", c.wanIf, "type", "veth", "peer", "name", "wan0", "netns", c.Router},
		{"-n", m.WAN, "addr", "add", multiUplink(c.Index, 1).String() + "/24", "dev", c.wanIf},
		{"-n", c.Router, "addr", "add", multiUplink(c.Index, 2).String() + "/24", "dev", "wan0"},
		{"-n", m.WAN, "link", "set", c.wanIf, "up"},
		{"-n", c.Router, "link", "set", "wan0", "up"},
		{"-n", c.Router, "route", "add", "default", "via", multiUplink(c.Index, 1).String()},
		{"-n", m.WAN, "route", "add", c.LAN.String(), "via", multiUplink(c.Index, 2).String()},
	} {
		if _, err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	return nil
}

// addForwarder puts a TUN packet forwarder in the path from cluster from
// to cluster to: what enters the WAN from from's router for to's LAN is
// routed into the TUN device, impaired, written back, and routed on by
// the main table.
func (m *MultiTopology) addForwarder(ctx context.Context, from, to *MultiCluster) error {
	tun := fmt.Sprintf("t%d%d", from.Index, to.Index)
	table := fmt.Sprint(100 + 10*from.Index + to.Index)
	var dev *os.File
	if err := inNS(m.WAN, func() error {
		var err error
		dev, err = impair.OpenTUN(tun)
		return err
	}); err != nil {
		return err
	}
	m.mu.Lock()
	m.fwd[[2]int{from.Index, to.Index}] = impair.NewPacketForwarder(dev, from.LAN)
	m.mu.Unlock()
	for _, s := range [][]string{
		{"-n", m.WAN, "link", "set", tun, "up"},
		{"-n", m.WAN, "rule", "add", "iif", from.wanIf, "to", to.LAN.String(), "lookup", table, "pref", table},
		{"-n", m.WAN, "route", "add", "default", "dev", tun, "table", table},
	} {
		if _, err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	_, err := runIn(ctx, m.WAN, "sysctl", "-qw", "net.ipv4.conf."+tun+".rp_filter=0")
	return err
}

// Cluster returns the cluster named name, nil if there is none.
func (m *MultiTopology) Cluster(name string) *MultiCluster {
	for _, c := range m.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// AddNode adds a node to a cluster's LAN (also after the start: a node
// joining a running cluster) and returns it. Nodes are named after their
// cluster and number: the 5th node of "a" is "a5".
func (m *MultiTopology) AddNode(ctx context.Context, cluster string) (NodeNet, error) {
	c := m.Cluster(cluster)
	if c == nil {
		return NodeNet{}, fmt.Errorf("chaos: no cluster %q in the topology", cluster)
	}
	m.addMu.Lock()
	defer m.addMu.Unlock()
	i := len(m.Nodes(cluster)) + 1
	if i > maxMultiNodes {
		return NodeNet{}, fmt.Errorf("chaos: cluster %q has %d nodes already, the most the address plan holds", cluster, maxMultiNodes)
	}
	a := c.LAN.Addr().As4()
	a[3] = byte(10 + i)
	n := NodeNet{Cluster: cluster, Name: fmt.Sprintf("%s%d", cluster, i), NS: m.Prefix + "-n-" + fmt.Sprintf("%s%d", cluster, i), IP: netip.AddrFrom4(a)}
	if err := m.addNS(ctx, n.NS); err != nil {
		return n, err
	}
	port := fmt.Sprintf("n%d", i) // in the router, on its bridge
	for _, s := range [][]string{
		{"-n", c.Router, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.NS},
		{"-n", c.Router, "link", "set", port, "master", "br0", "up"},
		{"-n", n.NS, "addr", "add", netip.PrefixFrom(n.IP, 24).String(), "dev", "eth0"},
		{"-n", n.NS, "link", "set", "eth0", "up"},
		{"-n", n.NS, "route", "add", "default", "via", c.LAN.Addr().Next().String()},
	} {
		if _, err := run(ctx, "ip", s...); err != nil {
			return n, err
		}
	}
	m.mu.Lock()
	m.nodes = append(m.nodes, n)
	m.mu.Unlock()
	return n, nil
}

// Nodes returns the nodes of a cluster ("": of every cluster), in the
// order they were added.
func (m *MultiTopology) Nodes(cluster string) []NodeNet {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []NodeNet
	for _, n := range m.nodes {
		if cluster == "" || n.Cluster == cluster {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the node named name.
func (m *MultiTopology) Node(name string) (NodeNet, bool) {
	for _, n := range m.Nodes("") {
		if n.Name == name {
			return n, true
		}
	}
	return NodeNet{}, false
}

// Close removes everything the topology created.
func (m *MultiTopology) Close() {
	m.remove(context.Background())
	if m.unregister != nil {
		m.unregister()
	}
}

// remove closes the forwarders and deletes every namespace named
// Prefix-... (and kills the processes in them), whether or not this
// process got to record it.
func (m *MultiTopology) remove(ctx context.Context) {
	m.mu.Lock()
	for k, f := range m.fwd {
		f.Close()
		delete(m.fwd, k)
	}
	m.mu.Unlock()
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), m.Prefix+"-") {
				killNamespace(ctx, e.Name())
				_, _ = run(ctx, "ip", "netns", "del", e.Name())
			}
		}
	}
}
