package configs

import (
	"crypto/ed25519"
	"strings"
)

// checkPeers applies the per-peer rules and the rules across peers.
func (r *reporter) checkPeers(c *Config) {
	listening := c.Listen.QUIC != "" || c.Listen.TCP != ""
	first := map[[2]string]int{} // (cluster, node) -> index of first peer
	for i := range c.Peers {
		p := &c.Peers[i]
		key := r.peerKey(i)
		r.checkName(key+".cluster", p.Cluster)
		r.checkName(key+".node", p.Node)
		if validName(p.Cluster) && validName(p.Node) {
			id := [2]string{p.Cluster, p.Node}
			if p.Cluster == c.Cluster && p.Node == c.Node {
				r.keyf(key, "peer %s/%s is this node itself", p.Cluster, p.Node)
			} else if j, dup := first[id]; dup {
				where := r.peerKey(j)
				if l := c.Peers[j].Line; l > 0 {
					where += " at line " + itoa(l)
				}
				r.keyf(key, "duplicate peer %s/%s (already listed as %s)", p.Cluster, p.Node, where)
			} else {
				first[id] = i
			}
		}
		r.checkAddr(key+".address", p.Address, false)
		r.checkEnum(key+".transport", p.Transport, TransportQUIC, TransportTCP)
		r.checkEnum(key+".mode", p.Mode, ModeConnect, ModeAccept, ModeBoth)
		switch {
		case (p.Mode == ModeConnect || p.Mode == ModeBoth) && p.Address == "":
			r.keyf(key+".mode", "mode %q needs an address to dial; set %s.address or use mode \"accept\"", p.Mode, key)
		case p.Mode == ModeAccept && !listening:
			r.keyf(key+".mode", "peer is accept-only but this node listens on nothing; set listen.quic or listen.tcp, or give the peer an address")
		}
		if len(p.PublicKeys) > 0 || !c.hasCAs(p.Cluster) {
			r.checkKeys(key, p.PublicKeys, c.Cluster == p.Cluster)
		}
		r.checkBuffer(key+".buffer", p.Buffer, &c.Buffer)
	}
}

// checkKeys checks a peer's pinned keys; a peer without any must be of a
// cluster with CA certificates (own says whether it is this node's).
func (r *reporter) checkKeys(key string, keys []ed25519.PublicKey, own bool) {
	if len(keys) == 0 {
		if !r.reportedUnder(key + ".public_key") {
			where := "a remotes[] entry with the ca_files of its cluster"
			if own {
				where = "trust.ca_files (this node's own cluster's CA)"
			}
			r.keyf(key, "no public key: set public_key, public_keys or public_key_file, or trust the peer's cluster CA in %s", where)
		}
		return
	}
	for i, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			r.keyf(indexKey(key+".public_keys", i), "public key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
	}
}

// peerKey returns the key path of c.Peers[i].
func (r *reporter) peerKey(i int) string {
	if r.peerKeys != nil && i < len(r.peerKeys) {
		return r.peerKeys[i]
	}
	return indexKey("peers", i)
}

// reportedUnder reports whether any key starting with prefix has an error
// (public_key, public_keys[2], public_key_file, ... for "x.public_key").
func (r *reporter) reportedUnder(prefix string) bool {
	for k := range r.reported {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
