package configs

import (
	"crypto/x509"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wandist/wandist/auth"
)

// Trust says which cluster CAs this node trusts and what is revoked (YAML
// key trust).
type Trust struct {
	// Domain (domain) is the SPIFFE trust domain of node certificates:
	// spiffe://DOMAIN/wandist/CLUSTER/NODE. Default "wandist".
	Domain string
	// CAFiles (ca_files) are this node's own cluster's CA certificate
	// files (PEM), 1 or 2 (two while the CA is rotated); absolute after
	// Parse. Default none: peers of this cluster need pinned keys.
	CAFiles []string
	// CAs are the certificates parsed from CAFiles at load (Validate loads
	// them for a Config built in code that leaves CAs empty).
	CAs []*x509.Certificate
	// RevokedFile (revoked_file) lists revoked node keys and certificate
	// serials, one per line (see LoadRevoked); read at start and at every
	// reload. Default "": nothing revoked.
	RevokedFile string
	// ExpiryWarning (expiry_warning): a certificate (the node's, a CA's)
	// expiring within it is warned about. Default 720h.
	ExpiryWarning time.Duration
}

// DefaultExpiryWarning is the default trust.expiry_warning.
const DefaultExpiryWarning = 720 * time.Hour

// Remote is one remote cluster found from seeds (YAML remotes[]).
type Remote struct {
	Cluster   string
	Seeds     []string            // host:port of its link listeners; host may be a DNS name
	Transport string              // quic (default) | tcp
	CAFiles   []string            // ca_files, absolute after Parse
	CAs       []*x509.Certificate // parsed from CAFiles at load
	Mode      string              // as peers[].mode
	Buffer    Buffer              // as peers[].buffer, defaults from the top-level buffer
	// Topology is how this node links to the cluster's nodes: mesh (a
	// direct link to each) or gateway (direct links to Gateways of them,
	// the others through those; daemon/topology.go).
	Topology string
	Gateways int // k of gateway mode: direct links kept to the cluster
	// IdleClose: in gateway mode, a link this node dialled to a node that
	// is not a gateway is closed once it carried nothing for it (0: never;
	// DefaultIdleClose when a config file leaves it out).
	IdleClose time.Duration
	Line      int
}

// Topologies of remotes[].topology.
const (
	TopologyMesh    = "mesh"
	TopologyGateway = "gateway"
)

// Default and largest remotes[].gateways.
const (
	DefaultGateways  = 2
	maxGateways      = 16
	DefaultIdleClose = time.Minute
)

var (
	trustKeys  = []string{"domain", "ca_files", "revoked_file", "expiry_warning"}
	remoteKeys = []string{"cluster", "seeds", "transport", "ca_files", "mode", "buffer", "topology", "gateways", "idle_close"}
)

// maxCAFiles is how many CA files a cluster may have at once (two during
// a rotation).
const maxCAFiles = 2

func (r *reporter) decodeTrust(n *yaml.Node, path string, t *Trust) {
	r.fields(n, path, trustKeys, func(name, key string, v *yaml.Node) {
		switch name {
		case "domain":
			r.str(v, key, &t.Domain)
		case "ca_files":
			t.CAFiles = r.strings(v, key)
		case "revoked_file":
			r.str(v, key, &t.RevokedFile)
		case "expiry_warning":
			r.duration(v, key, &t.ExpiryWarning)
		}
	})
}

// decodeRemotes decodes the remotes list onto c.Remotes; run after the
// top-level buffer is decoded.
func (r *reporter) decodeRemotes(n *yaml.Node, c *Config) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		r.keyf("remotes", "must be a list of remote clusters, got %s", describe(n))
		return
	}
	for i, item := range n.Content {
		key := indexKey("remotes", i)
		r.lines[key] = item.Line
		m := resolve(item)
		if isNull(m) || m.Kind != yaml.MappingNode {
			r.keyf(key, "must be a mapping with cluster, seeds, ca_files ..., got %s", describe(m))
			continue
		}
		rc := Remote{Line: item.Line, Buffer: c.Buffer, IdleClose: DefaultIdleClose} // idle_close: 0 is never
		r.fields(m, key, remoteKeys, func(name, key string, v *yaml.Node) {
			switch name {
			case "cluster":
				r.str(v, key, &rc.Cluster)
			case "seeds":
				rc.Seeds = r.strings(v, key)
			case "transport":
				r.str(v, key, &rc.Transport)
			case "ca_files":
				rc.CAFiles = r.strings(v, key)
			case "mode":
				r.str(v, key, &rc.Mode)
			case "buffer":
				r.decodeBuffer(v, key, &rc.Buffer)
			case "topology":
				r.str(v, key, &rc.Topology)
			case "gateways":
				r.integer(v, key, &rc.Gateways)
			case "idle_close":
				r.duration(v, key, &rc.IdleClose)
			}
		})
		c.Remotes = append(c.Remotes, rc)
		r.remoteKeys = append(r.remoteKeys, key)
	}
}

// strings decodes a list of strings (a single string is a list of one).
func (r *reporter) strings(n *yaml.Node, key string) []string {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		r.keyf(key, "must be a list of strings, got %s", describe(n))
		return nil
	}
	var out []string
	for i, item := range n.Content {
		ikey := indexKey(key, i)
		r.lines[ikey] = item.Line
		var s string
		r.str(item, ikey, &s)
		out = append(out, s)
	}
	return out
}

// resolveTrustPaths makes the paths of trust, remotes and certificate
// absolute, relative to dir.
func (c *Config) resolveTrustPaths(dir string) {
	c.Certificate = resolvePath(dir, c.Certificate)
	c.Trust.RevokedFile = resolvePath(dir, c.Trust.RevokedFile)
	for i := range c.Trust.CAFiles {
		c.Trust.CAFiles[i] = resolvePath(dir, c.Trust.CAFiles[i])
	}
	for i := range c.Remotes {
		for j := range c.Remotes[i].CAFiles {
			c.Remotes[i].CAFiles[j] = resolvePath(dir, c.Remotes[i].CAFiles[j])
		}
	}
}

// fillTrust sets the defaults of trust and remotes.
func (c *Config) fillTrust() {
	setIfZero(&c.Trust.Domain, auth.DefaultTrustDomain)
	setIfZero(&c.Trust.ExpiryWarning, DefaultExpiryWarning)
	for i := range c.Remotes {
		rc := &c.Remotes[i]
		setIfZero(&rc.Transport, TransportQUIC)
		setIfZero(&rc.Mode, ModeBoth)
		setIfZero(&rc.Topology, TopologyMesh)
		setIfZero(&rc.Gateways, DefaultGateways)
		if rc.Buffer == (Buffer{}) {
			rc.Buffer = c.Buffer
		}
		fillBuffer(&rc.Buffer, c.Buffer)
	}
}

// remoteKey returns the key path of c.Remotes[i].
func (r *reporter) remoteKey(i int) string {
	if i < len(r.remoteKeys) {
		return r.remoteKeys[i]
	}
	return indexKey("remotes", i)
}

// checkTrust checks trust, certificate and remotes, and loads the CA
// certificates of configs that do not hold them yet.
func (r *reporter) checkTrust(c *Config) {
	t := &c.Trust
	if err := auth.ValidateTrustDomain(t.Domain); err != nil {
		r.add(&Error{Line: r.lineOf("trust.domain"), Key: "trust.domain", Msg: err.Error(), Err: err})
	}
	if t.ExpiryWarning <= 0 {
		r.keyf("trust.expiry_warning", "must be greater than 0, got %v", t.ExpiryWarning)
	}
	if len(t.CAFiles) > 0 {
		t.CAs = r.loadCAs("trust.ca_files", t.CAFiles, t.CAs)
	}
	if t.RevokedFile != "" {
		if _, _, err := LoadRevoked(t.RevokedFile); err != nil {
			r.add(&Error{Line: r.lineOf("trust.revoked_file"), Key: "trust.revoked_file", Msg: err.Error(), Err: err})
		}
	}
	r.checkCertificate(c)
	seen := map[string]int{}
	for i := range c.Remotes {
		r.checkRemote(c, i, seen)
	}
}

// loadCAs checks a ca_files list at key and returns the CA certificates,
// read from the files unless have already holds them.
func (r *reporter) loadCAs(key string, files []string, have []*x509.Certificate) []*x509.Certificate {
	if len(files) > maxCAFiles {
		r.keyf(key, "lists %d files; give 1, or 2 while the CA is rotated", len(files))
	}
	if len(have) > 0 {
		return have
	}
	var out []*x509.Certificate
	for i, f := range files {
		ikey := indexKey(key, i)
		if f == "" {
			r.keyf(ikey, "empty file name")
			continue
		}
		certs, err := auth.LoadCertificateFile(f)
		if err != nil {
			r.add(&Error{Line: r.lineOf(ikey), Key: ikey, Msg: fmt.Sprintf("cannot load CA certificate: %v", err), Err: err})
			continue
		}
		for _, ca := range certs {
			if !ca.IsCA || !ca.BasicConstraintsValid {
				r.keyf(ikey, "%s: certificate %q is not a CA certificate (no CA basic constraints)", f, ca.Subject.String())
			}
		}
		out = append(out, certs...)
	}
	return out
}

// checkCertificate checks that certificate parses and names this node.
func (r *reporter) checkCertificate(c *Config) {
	if c.Certificate == "" {
		return
	}
	const key = "certificate"
	certs, err := auth.LoadCertificateFile(c.Certificate)
	if err != nil {
		r.add(&Error{Line: r.lineOf(key), Key: key, Msg: fmt.Sprintf("cannot load the node certificate: %v", err), Err: err})
		return
	}
	id, td, _, err := auth.PeerFromCertificateWithDomain(certs[0])
	if err != nil {
		r.add(&Error{Line: r.lineOf(key), Key: key, Msg: fmt.Sprintf("%s: %v", c.Certificate, err), Err: err})
		return
	}
	if id.Cluster != c.Cluster || id.Node != c.Node {
		r.keyf(key, "%s names %s, but this node is %s/%s", c.Certificate, id, c.Cluster, c.Node)
	}
	if td != "" && td != c.Trust.Domain {
		r.keyf(key, "%s is in trust domain %q, but trust.domain is %q", c.Certificate, td, c.Trust.Domain)
	}
}

func (r *reporter) checkRemote(c *Config, i int, seen map[string]int) {
	rc := &c.Remotes[i]
	key := r.remoteKey(i)
	r.checkName(key+".cluster", rc.Cluster)
	switch j, dup := seen[rc.Cluster]; {
	case rc.Cluster == "":
	case rc.Cluster == c.Cluster:
		r.keyf(key+".cluster", "%s is this node's own cluster; its CA goes in trust.ca_files and its nodes are found by gossip", rc.Cluster)
	case dup:
		r.keyf(key+".cluster", "duplicate remote cluster %s (already listed as %s)", rc.Cluster, r.remoteKey(j))
	default:
		seen[rc.Cluster] = i
	}
	if len(rc.Seeds) == 0 {
		r.keyf(key, "needs seeds: a list of host:port of the cluster's link listeners")
	}
	for j, s := range rc.Seeds {
		if s == "" {
			r.keyf(indexKey(key+".seeds", j), "empty seed; want host:port")
			continue
		}
		r.checkAddr(indexKey(key+".seeds", j), s, false)
	}
	r.checkEnum(key+".transport", rc.Transport, TransportQUIC, TransportTCP)
	r.checkEnum(key+".mode", rc.Mode, ModeConnect, ModeAccept, ModeBoth)
	r.checkEnum(key+".topology", rc.Topology, TopologyMesh, TopologyGateway)
	if rc.IdleClose < 0 {
		r.keyf(key+".idle_close", "must be 0 (never) or more, got %v", rc.IdleClose)
	}
	if rc.Gateways < 1 || rc.Gateways > maxGateways {
		r.keyf(key+".gateways", "must be from 1 to %d, got %d", maxGateways, rc.Gateways)
	}
	if len(rc.CAFiles) == 0 && len(rc.CAs) == 0 {
		r.keyf(key, "needs ca_files: the remote cluster's CA certificate file(s), 1 or 2")
	} else if len(rc.CAFiles) > 0 {
		rc.CAs = r.loadCAs(key+".ca_files", rc.CAFiles, rc.CAs)
	}
	r.checkBuffer(key+".buffer", rc.Buffer, &c.Buffer)
}

// hasCAs reports whether cluster has CA certificates in c: its own in
// trust.ca_files, another's in a remotes[] entry.
func (c *Config) hasCAs(cluster string) bool {
	if cluster == c.Cluster {
		return len(c.Trust.CAFiles) > 0 || len(c.Trust.CAs) > 0
	}
	for _, rc := range c.Remotes {
		if rc.Cluster == cluster && (len(rc.CAFiles) > 0 || len(rc.CAs) > 0) {
			return true
		}
	}
	return false
}

// Anchors returns the CA certificates per cluster: this node's own from
// trust and each remote's.
func (c *Config) Anchors() map[string][]*x509.Certificate {
	out := map[string][]*x509.Certificate{}
	if len(c.Trust.CAs) > 0 {
		out[c.Cluster] = c.Trust.CAs
	}
	for _, rc := range c.Remotes {
		if len(rc.CAs) > 0 {
			out[rc.Cluster] = rc.CAs
		}
	}
	return out
}
