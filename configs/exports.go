package configs

import (
	"path"

	"go.yaml.in/yaml/v3"
)

var (
	exportKeys = []string{"groups", "to"}
	importKeys = []string{"groups", "from"}
)

// decodeExports decodes the exports list onto c.Exports (non-nil, even if
// empty, once the key is present).
func (r *reporter) decodeExports(n *yaml.Node, c *Config) {
	c.Exports = []Export{}
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		r.keyf("exports", "must be a list of {groups: [...], to: [...]}, got %s", describe(n))
		return
	}
	for i, item := range n.Content {
		key := indexKey("exports", i)
		r.lines[key] = item.Line
		e := Export{Line: item.Line}
		r.fields(item, key, exportKeys, func(name, key string, v *yaml.Node) {
			switch name {
			case "groups":
				e.Groups = r.patterns(v, key)
			case "to":
				e.To = r.patterns(v, key)
			}
		})
		if len(e.Groups) == 0 {
			r.keyf(key, "needs groups: a list of group name patterns")
		}
		if len(e.To) == 0 {
			r.keyf(key, `needs to: a list of clusters ("*" for all)`)
		}
		c.Exports = append(c.Exports, e)
	}
}

// decodeImports decodes the imports list onto c.Imports (non-nil, even if
// empty, once the key is present).
func (r *reporter) decodeImports(n *yaml.Node, c *Config) {
	c.Imports = []Import{}
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		r.keyf("imports", "must be a list of {groups: [...], from: [...]}, got %s", describe(n))
		return
	}
	for i, item := range n.Content {
		key := indexKey("imports", i)
		r.lines[key] = item.Line
		e := Import{Line: item.Line}
		r.fields(item, key, importKeys, func(name, key string, v *yaml.Node) {
			switch name {
			case "groups":
				e.Groups = r.patterns(v, key)
			case "from":
				e.From = r.patterns(v, key)
			}
		})
		if len(e.Groups) == 0 {
			r.keyf(key, "needs groups: a list of group name patterns")
		}
		if len(e.From) == 0 {
			r.keyf(key, `needs from: a list of clusters ("*" for all)`)
		}
		c.Imports = append(c.Imports, e)
	}
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
