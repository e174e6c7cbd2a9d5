package groups

import (
	"hash/fnv"
	"sort"
	"strconv"
)

// Event is one membership change seen by a watch.
type Event struct {
	Op     Op // OpJoin or OpLeave
	Member Member
}

type watcher struct {
	group string
	fn    func(Event)
}

// Watch calls fn with a Join for every current member of group, then with
// every change, in order, until cancel is called. fn runs with the registry
// locked: it must not block or call back into the registry.
func (r *Registry) Watch(group string, fn func(Event)) (cancel func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := &watcher{group: group, fn: fn}
	if r.watchers == nil {
		r.watchers = map[string]map[*watcher]struct{}{}
	}
	if r.watchers[group] == nil {
		r.watchers[group] = map[*watcher]struct{}{}
	}
	r.watchers[group][w] = struct{}{}
	for _, c := range r.candidatesLocked(group) {
		fn(Event{Op: OpJoin, Member: c.Member})
	}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.watchers[group], w)
		if len(r.watchers[group]) == 0 {
			delete(r.watchers, group)
		}
	}
}

// emitLocked tells group's watchers about one change.
func (r *Registry) emitLocked(op Op, group string, m Member) {
	for w := range r.watchers[group] {
		w.fn(Event{Op: op, Member: m})
	}
}

// emitViewDiffLocked tells watchers what changed between two views of peer
// (either may be nil): a leave per member gone, a join per member new.
func (r *Registry) emitViewDiffLocked(peer NodeID, old, new *view) {
	for g := range r.watchers {
		var before, after map[uint64]int
		if old != nil {
			before = old.members[g]
		}
		if new != nil {
			after = new.members[g]
		}
		for _, mb := range sortedKeys(before) {
			if after[mb] == 0 {
				r.emitLocked(OpLeave, g, Member{Cluster: peer.Cluster, Node: peer.Node, Mailbox: mb, Count: before[mb], Reachable: old.reachable})
			}
		}
		for _, mb := range sortedKeys(after) {
			if before[mb] == 0 {
				r.emitLocked(OpJoin, g, Member{Cluster: peer.Cluster, Node: peer.Node, Mailbox: mb, Count: after[mb], Reachable: new.reachable})
			}
		}
	}
}

func sortedKeys(m map[uint64]int) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// MembershipHash is the digest of a membership: 64-bit FNV-1a over the
// entries in (group, mailbox) order, each as group, 0, mailbox, 0, count, 0,
// partition count, newline. Entries with a zero count are skipped.
func MembershipHash(entries []Entry) uint64 {
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Group != entries[j].Group {
			return entries[i].Group < entries[j].Group
		}
		return entries[i].Mailbox < entries[j].Mailbox
	})
	h := fnv.New64a()
	var buf []byte
	for _, e := range entries {
		if e.Count <= 0 {
			continue
		}
		buf = append(buf[:0], e.Group...)
		buf = append(buf, 0)
		buf = strconv.AppendUint(buf, e.Mailbox, 10)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, int64(e.Count), 10)
		buf = append(buf, 0)
		buf = strconv.AppendUint(buf, e.Claim.N, 10)
		buf = append(buf, '\n')
		h.Write(buf)
	}
	return h.Sum64()
}

// Digest runs fn, with the registry locked, with the local membership's
// version and the hash of the entries whose group passes keep (the subset a
// given peer is sent). Locked, so that it is ordered with published deltas.
func (r *Registry) Digest(keep func(group string) bool, fn func(version, hash uint64)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var es []Entry
	for g, m := range r.local {
		if keep != nil && !keep(g) {
			continue
		}
		for mb, c := range m {
			es = append(es, Entry{Group: g, Mailbox: mb, Count: c, Claim: r.claims[g][mb]})
		}
	}
	fn(r.version, MembershipHash(es))
}

// ViewSummary is what this node holds of a peer's membership.
type ViewSummary struct {
	Incarnation, Version uint64
	// Hash is the MembershipHash of the view, unless Partial.
	Hash uint64
	// Partial: some of what the peer published was refused (import
	// rules, budget, partition counts; see Policy), so the view's hash
	// cannot match the peer's digest. Hash is then not computed.
	Partial bool
}

// ViewDigest returns what this node holds of peer's membership; ok is
// false if nothing is held.
func (r *Registry) ViewDigest(peer NodeID) (s ViewSummary, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v := r.views[peer]
	if v == nil {
		return ViewSummary{}, false
	}
	s = ViewSummary{Incarnation: v.incarnation, Version: v.version, Partial: v.partial}
	if s.Partial {
		return s, true
	}
	var es []Entry
	for g, m := range v.members {
		for mb, c := range m {
			es = append(es, Entry{Group: g, Mailbox: mb, Count: c, Claim: v.claims[g][mb]})
		}
	}
	s.Hash = MembershipHash(es)
	return s, true
}
