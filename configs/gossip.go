package configs

import (
	"go.yaml.in/yaml/v3"
)

// Gossip configures membership inside this node's cluster (YAML key
// gossip), on hashicorp/memberlist. Without Bind the node does no gossip.
type Gossip struct {
	Bind      string   // bind: host:port gossip listens on (UDP and TCP); "" = no gossip
	Advertise string   // advertise: host:port the other nodes reach this one at; default the bind address
	Seeds     []string // seeds: host:port of nodes of this cluster; a DNS name stands for every address it resolves to
	// SecretFile is the cluster's gossip key: a file of 32 bytes, raw or in
	// base64 (secret_file; required with bind; made absolute).
	SecretFile string
	Profile    string // profile: lan (default) or wan, memberlist's timings
}

// Gossip profiles.
const (
	GossipLAN = "lan"
	GossipWAN = "wan"
)

var gossipKeys = []string{"bind", "advertise", "seeds", "secret_file", "profile"}

func (r *reporter) decodeGossip(n *yaml.Node, path string, g *Gossip) {
	r.fields(n, path, gossipKeys, func(name, key string, v *yaml.Node) {
		switch name {
		case "bind":
			r.str(v, key, &g.Bind)
		case "advertise":
			r.str(v, key, &g.Advertise)
		case "seeds":
			g.Seeds = r.strList(v, key)
		case "secret_file":
			r.str(v, key, &g.SecretFile)
		case "profile":
			r.str(v, key, &g.Profile)
		}
	})
}

// strList decodes a list of non-empty strings.
func (r *reporter) strList(n *yaml.Node, key string) []string {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		r.keyf(key, "must be a list, got %s", describe(n))
		return nil
	}
	var out []string
	for i, item := range n.Content {
		var s string
		ik := indexKey(key, i)
		r.lines[ik] = item.Line
		r.str(item, ik, &s)
		if s == "" {
			r.keyf(ik, "must not be empty")
			continue
		}
		out = append(out, s)
	}
	return out
}

func (r *reporter) checkGossip(g *Gossip) {
	r.checkEnum("gossip.profile", g.Profile, GossipLAN, GossipWAN)
	if g.Bind == "" {
		for key, set := range map[string]bool{"gossip.advertise": g.Advertise != "", "gossip.seeds": len(g.Seeds) > 0, "gossip.secret_file": g.SecretFile != ""} {
			if set {
				r.keyf(key, "needs gossip.bind: without it the node does no gossip")
			}
		}
		return
	}
	r.checkAddr("gossip.bind", g.Bind, true)
	r.checkAddr("gossip.advertise", g.Advertise, false)
	for i, s := range g.Seeds {
		r.checkAddr(indexKey("gossip.seeds", i), s, false)
	}
	if g.SecretFile == "" {
		r.keyf("gossip.bind", "needs gossip.secret_file: the cluster's 32-byte gossip key (e.g. head -c 32 /dev/urandom > gossip.key; chmod 600 gossip.key), the same on every node of the cluster")
	}
}
