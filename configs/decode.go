package configs

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file holds the generic helpers that turn yaml.Nodes into Go values,
// reporting every problem with its key path and line.

// resolve follows alias nodes to the node they point at.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node is, for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(abbrev(n.Value))
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func abbrev(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// fields walks the mapping n found at path. It reports a value that is not
// a mapping, keys that are not strings, unknown keys (suggesting a close
// known one) and duplicate keys, records the line of every key, and calls fn
// with the name, full key path and value of each known key. A null n is an
// empty mapping.
func (r *reporter) fields(n *yaml.Node, path string, known []string, fn func(name, key string, v *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		got := describe(n)
		if contains(known, "token") && n.Kind == yaml.ScalarNode {
			got = "a single value (not shown: it may be a misplaced token)"
		}
		r.keyf(path, "must be a mapping of %s, got %s", strings.Join(known, ", "), got)
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, v := resolve(n.Content[i]), n.Content[i+1]
		line := n.Content[i].Line
		if kn == nil || kn.Kind != yaml.ScalarNode {
			r.at(line, path, "keys must be plain strings, got %s", describe(kn))
			continue
		}
		name := kn.Value
		key := joinKey(path, name)
		if kn.ShortTag() == "!!merge" {
			r.at(line, key, `merge keys ("<<") are not supported; write the keys out`)
			continue
		}
		if first, dup := seen[name]; dup {
			r.at(line, key, "duplicate key (first at line %d)", first)
			continue
		}
		seen[name] = line
		if !contains(known, name) {
			msg := fmt.Sprintf("unknown key %q", name)
			if s := suggest(name, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			r.at(line, key, "%s", msg)
			continue
		}
		r.lines[key] = line
		fn(name, key, v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar returns the resolved scalar n, or nil when n is null (unset) or
// not a scalar (reported).
func (r *reporter) scalar(n *yaml.Node, key, want string) *yaml.Node {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		r.keyf(key, "must be %s, got %s", want, describe(n))
		return nil
	}
	return n
}

// str sets *dst to the string value of n. Null leaves *dst alone.
func (r *reporter) str(n *yaml.Node, key string, dst *string) {
	if n = r.scalar(n, key, "a string"); n != nil {
		*dst = n.Value
	}
}

// boolean sets *dst to the YAML boolean in n (true or false).
func (r *reporter) boolean(n *yaml.Node, key string, dst *bool) {
	n = r.scalar(n, key, "true or false")
	if n == nil {
		return
	}
	var v bool
	if n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		r.keyf(key, "must be true or false, got %s", describe(n))
		return
	}
	*dst = v
}

// duration sets *dst to the Go duration (such as "500ms") in n.
func (r *reporter) duration(n *yaml.Node, key string, dst *time.Duration) {
	n = r.scalar(n, key, `a duration such as "500ms" or "30s"`)
	if n == nil {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		r.keyf(key, `bad duration %q: want a number with a unit, such as "500ms", "30s" or "2m"`, abbrev(n.Value))
		return
	}
	*dst = d
}

// size sets *dst to the byte count in n: an integer or a string such as
// "64MiB" (see ParseSize).
func (r *reporter) size(n *yaml.Node, key string, dst *int64) {
	n = r.scalar(n, key, `a size such as 65536 or "64MiB"`)
	if n == nil {
		return
	}
	if n.ShortTag() == "!!int" {
		var v int64
		if err := n.Decode(&v); err != nil {
			r.keyf(key, "bad size %q: not a 64-bit integer", abbrev(n.Value))
			return
		}
		*dst = v
		return
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		r.keyf(key, "%v", err)
		return
	}
	*dst = v
}

// intSize is size for an int field.
func (r *reporter) intSize(n *yaml.Node, key string, dst *int) {
	v := int64(*dst)
	r.size(n, key, &v)
	if v != int64(int(v)) {
		r.keyf(key, "size %d is too large", v)
		return
	}
	*dst = int(v)
}

// integer sets *dst to the integer in n.
func (r *reporter) integer(n *yaml.Node, key string, dst *int) {
	n = r.scalar(n, key, "an integer")
	if n == nil {
		return
	}
	var v int64
	var err error
	if n.ShortTag() == "!!int" {
		err = n.Decode(&v)
	} else {
		v, err = strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
	}
	if err != nil || v != int64(int(v)) {
		r.keyf(key, "must be an integer, got %s", describe(n))
		return
	}
	*dst = int(v)
}
