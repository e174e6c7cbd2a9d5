package configs

import (
	"path"

	"go.yaml.in/yaml/v3"
)

// decodeExports decodes the exports list onto c.Exports (non-nil, even if
// empty, once the key is present).
func (r *reporter) decodeExports(n *yaml.Node, c *Config) {
	c.Exports = []Export{}
	for _, g := range r.decodeGroupRules(n, "exports", "to") {
		c.Exports = append(c.Exports, Export{Groups: g.groups, To: g.clusters, Line: g.line})
	}
}

// decodeImports decodes the imports list onto c.Imports (non-nil, even if
// empty, once the key is present).
func (r *reporter) decodeImports(n *yaml.Node, c *Config) {
	c.Imports = []Import{}
	for _, g := range r.decodeGroupRules(n, "imports", "from") {
		c.Imports = append(c.Imports, Import{Groups: g.groups, From: g.clusters, Line: g.line})
	}
}

// groupRule is one item of exports or imports: group name patterns and
// cluster patterns.
type groupRule struct {
	groups, clusters []string
	line             int
}

// decodeGroupRules decodes the list at key (exports or imports), whose
// items are {groups: [...], CLUSTERS: [...]}; CLUSTERS is to or from.
func (r *reporter) decodeGroupRules(n *yaml.Node, key, clusters string) []groupRule {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		r.keyf(key, "must be a list of {groups: [...], %s: [...]}, got %s", clusters, describe(n))
		return nil
	}
	var rules []groupRule
	for i, item := range n.Content {
		ikey := indexKey(key, i)
		r.lines[ikey] = item.Line
		g := groupRule{line: item.Line}
		r.fields(item, ikey, []string{"groups", clusters}, func(name, fkey string, v *yaml.Node) {
			if name == "groups" {
				g.groups = r.patterns(v, fkey)
			} else {
				g.clusters = r.patterns(v, fkey)
			}
		})
		if len(g.groups) == 0 {
			r.keyf(ikey, "needs groups: a list of group name patterns")
		}
		if len(g.clusters) == 0 {
			r.keyf(ikey, `needs %s: a list of clusters ("*" for all)`, clusters)
		}
		rules = append(rules, g)
	}
	return rules
}

// patterns decodes a list of strings that must be valid path.Match patterns.
func (r *reporter) patterns(n *yaml.Node, key string) []string {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		r.keyf(key, "must be a list of names or patterns, got %s", describe(n))
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
		if _, err := path.Match(s, ""); err != nil {
			r.keyf(ik, "bad pattern %q: %v", s, err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// Exported reports whether group is published to peers of cluster, by the
// config's export rules. Peers of the node's own cluster see every group.
func (c *Config) Exported(group, cluster string) bool {
	if c.Exports == nil || cluster == c.Cluster {
		return true
	}
	for _, e := range c.Exports {
		if matchAny(e.To, cluster) && matchAny(e.Groups, group) {
			return true
		}
	}
	return false
}

// Imported reports whether peers of cluster may add members to group, by
// the config's import rules: peers of the node's own cluster always may;
// without an imports key, peers of another cluster may for the groups
// exported to their cluster (and no other).
func (c *Config) Imported(group, cluster string) bool {
	if cluster == c.Cluster {
		return true
	}
	if c.Imports == nil {
		return c.Exported(group, cluster)
	}
	for _, e := range c.Imports {
		if matchAny(e.From, cluster) && matchAny(e.Groups, group) {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
