//go:build linux

package chaos

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// ConfigMode says how the daemons of a multi-cluster mesh find and trust
// each other; MeshConfig writes every node's config from it.
type ConfigMode string

// Config modes.
const (
	// PinnedPeers: every node lists every other node, of its own cluster
	// and of every other, in peers[] with its public key pinned; of each
	// pair the node with the lower name dials, the other accepts.
	PinnedPeers ConfigMode = "pinned"
	// CASeeds: each cluster has a CA (`certificate:`, `trust:`), its
	// nodes find each other by gossip (`gossip:` bind, seeds,
	// secret_file) and the other clusters from their seeds (`remotes:`
	// cluster, seeds, transport, ca_files); no peers[] at all.
	// The steps that need discovery (a node joining by seeds) run only in
	// this mode.
	CASeeds ConfigMode = "seeds"
	// CAGateways is CASeeds with every remote cluster in gateway mode
	// (remotes[].topology: gateway, gateways: meshGateways): each node
	// links directly to 2 nodes of each other cluster and reaches the
	// others through them, on demand.
	CAGateways ConfigMode = "gateways"
)

// usesSeeds reports whether the mode has cluster CAs, gossip and remotes
// by seeds.
func (m ConfigMode) usesSeeds() bool { return m == CASeeds || m == CAGateways }

// ErrModeNotReady is returned for a step a mode cannot take (a node
// joining a running mesh in PinnedPeers mode).
var ErrModeNotReady = errors.New("chaos: config mode not ready")

// Ports of every mesh node, each in its own namespace.
const (
	meshQUICPort  = 7301
	meshTCPPort   = 7302
	meshAdminPort = 7303
	meshGossip    = 7946
	meshSeeds     = 2 // seeds per cluster: its first nodes
	meshGateways  = 2 // remotes[].gateways in the CAGateways mode
)

// MeshNode is one node of a mesh: its place in the topology and its key.
type MeshNode struct {
	NodeNet
	PublicKey string // as `wandistd keygen` prints it
}

// MeshLayout is everything the nodes' configs are a function of.
type MeshLayout struct {
	Mode         ConfigMode
	Transport    string     // quic or tcp: how nodes dial each other
	Root         string     // node X's directory is Root/X (config, X.key, socket)
	Nodes        []MeshNode // every node of every cluster
	BufferBytes  int64      // buffer.max_bytes for every peer
	ClientBuffer int64      // local.client_buffer (0: the default)
}

// NodeDir is the directory of a node's config, key and socket.
func (l MeshLayout) NodeDir(node string) string { return filepath.Join(l.Root, node) }

// MeshConfig returns the config of node self. It is the one place that
// says how the nodes of a mesh are configured: the test writes every
// node's config, and a node added later, with it.
func MeshConfig(l MeshLayout, self string) (NodeConfig, error) {
	var me *MeshNode
	for i := range l.Nodes {
		if l.Nodes[i].Name == self {
			me = &l.Nodes[i]
		}
	}
	if me == nil {
		return NodeConfig{}, fmt.Errorf("chaos: node %q is not in the mesh layout", self)
	}
	port := map[string]int{"quic": meshQUICPort, "tcp": meshTCPPort}[l.Transport]
	if port == 0 {
		return NodeConfig{}, fmt.Errorf("chaos: mesh transport %q: want quic or tcp", l.Transport)
	}
	dir := l.NodeDir(self)
	cfg := NodeConfig{Cluster: me.Cluster, Node: me.Name, IP: me.IP.String(), QUICPort: meshQUICPort, TCPPort: meshTCPPort,
		AdminPort: meshAdminPort, Socket: filepath.Join(dir, "local.sock"), BufferBytes: l.BufferBytes, ClientBuffer: l.ClientBuffer,
		// A killed node (down 8 s, or 15 s in the long form) comes back
		// well within it: what waits for it is not routed on meanwhile.
		RejoinGrace: 30 * time.Second}
	switch l.Mode {
	case PinnedPeers:
		for _, p := range l.Nodes {
			if p.Name == self {
				continue
			}
			pc := PeerConfig{Cluster: p.Cluster, Node: p.Name, PublicKey: p.PublicKey}
			if self < p.Name { // of each pair, the lower name dials
				pc.Address, pc.Transport = fmt.Sprintf("%s:%d", p.IP, port), l.Transport
			}
			cfg.Peers = append(cfg.Peers, pc)
		}
		return cfg, nil
	case CASeeds, CAGateways:
		seedsConfig(l, me, port, &cfg)
		if l.Mode == CAGateways {
			for i := range cfg.Remotes {
				cfg.Remotes[i].Topology, cfg.Remotes[i].Gateways = "gateway", meshGateways
			}
		}
		return cfg, nil
	}
	return NodeConfig{}, fmt.Errorf("chaos: unknown config mode %q (want %q, %q or %q)", l.Mode, PinnedPeers, CASeeds, CAGateways)
}

// CADir is the directory of a cluster's CA (ca.crt, ca.key, gossip.key),
// as `wandistd ca init` writes it.
func (l MeshLayout) CADir(cluster string) string { return filepath.Join(l.Root, "ca-"+cluster) }

// seedsConfig fills in the CASeeds mode: the node's certificate, its
// cluster's CA, gossip with the cluster's first nodes as seeds, and every
// other cluster by its first nodes' link listeners.
func seedsConfig(l MeshLayout, me *MeshNode, port int, cfg *NodeConfig) {
	cfg.Certificate = filepath.Join(l.NodeDir(me.Name), me.Name+".crt")
	cfg.TrustCAs = []string{filepath.Join(l.CADir(me.Cluster), "ca.crt")}
	cfg.GossipBind = fmt.Sprintf("%s:%d", me.IP, meshGossip)
	cfg.GossipKey = filepath.Join(l.CADir(me.Cluster), "gossip.key")
	byCluster := map[string][]MeshNode{}
	var clusters []string
	for _, n := range l.Nodes {
		if byCluster[n.Cluster] == nil {
			clusters = append(clusters, n.Cluster)
		}
		byCluster[n.Cluster] = append(byCluster[n.Cluster], n)
	}
	for _, n := range byCluster[me.Cluster] {
		if n.Name != me.Name && len(cfg.GossipSeeds) < meshSeeds {
			cfg.GossipSeeds = append(cfg.GossipSeeds, fmt.Sprintf("%s:%d", n.IP, meshGossip))
		}
	}
	for _, c := range clusters {
		if c == me.Cluster {
			continue
		}
		r := RemoteConfig{Cluster: c, Transport: l.Transport, CAFile: filepath.Join(l.CADir(c), "ca.crt")}
		for _, n := range byCluster[c][:min(meshSeeds, len(byCluster[c]))] {
			r.Seeds = append(r.Seeds, fmt.Sprintf("%s:%d", n.IP, port))
		}
		cfg.Remotes = append(cfg.Remotes, r)
	}
}
