package groups

import "maps"

// A node that restarts comes back with no members: its services reconnect
// and join again a moment later. Meanwhile a send to one of its groups is
// not refused with ErrNoMembers: the members its previous incarnation had
// stay candidates, after every real member, until a member of that group
// joins on that node again or EndRejoin (the daemon calls it once the
// grace has passed). The node holds what reaches it for a group without a
// member until one joins.

// rejoining is a view's memory of its previous incarnation's members of
// the groups that have none yet.
type rejoining struct {
	members map[string]map[uint64]int   // group -> mailbox -> count
	claims  map[string]map[uint64]Claim // group -> mailbox -> claim
}

// carryRejoining fills v (a new incarnation's view) with the members of
// old (its previous incarnation) in the groups v has none of.
func carryRejoining(old, v *view) {
	add := func(g string, ms map[uint64]int, cl map[uint64]Claim) {
		if len(ms) == 0 || len(v.members[g]) > 0 {
			return
		}
		if v.rejoin.members == nil {
			v.rejoin = rejoining{members: map[string]map[uint64]int{}, claims: map[string]map[uint64]Claim{}}
		}
		v.rejoin.members[g] = maps.Clone(ms)
		if len(cl) > 0 {
			v.rejoin.claims[g] = maps.Clone(cl)
		}
	}
	for g, ms := range old.members {
		add(g, ms, old.claims[g])
	}
	for g, ms := range old.rejoin.members { // restarted twice before its members came back
		if _, done := v.rejoin.members[g]; !done {
			add(g, ms, old.rejoin.claims[g])
		}
	}
}

// rejoined drops the rejoining members of group g: a member joined.
func (v *view) rejoined(g string) {
	delete(v.rejoin.members, g)
	delete(v.rejoin.claims, g)
}

// EndRejoin forgets the previous incarnation's members of peer: its grace
// for rejoining is over.
func (r *Registry) EndRejoin(peer NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.views[peer]; v != nil && len(v.rejoin.members) > 0 {
		r.changedLocked()
		v.rejoin = rejoining{}
		r.signalLocked()
	}
}

// Rejoining returns how many groups of peer still route to its previous
// incarnation's members.
func (r *Registry) Rejoining(peer NodeID) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if v := r.views[peer]; v != nil {
		return len(v.rejoin.members)
	}
	return 0
}

// rejoiningSetLocked returns the members closestSetLocked falls back to
// when group has no member: the rejoining ones, of reachable nodes first.
func (r *Registry) rejoiningSetLocked(group string) []Member {
	var reach, unreach []Member
	for id, v := range r.views {
		for mb, c := range v.rejoin.members[group] {
			m := Member{Cluster: id.Cluster, Node: id.Node, Mailbox: mb, Count: c, Reachable: v.reachable}
			if v.reachable {
				reach = append(reach, m)
			} else {
				unreach = append(unreach, m)
			}
		}
	}
	if len(reach) > 0 {
		return reach
	}
	return unreach
}

// rejoiningCandidatesLocked is candidatesLocked's fallback.
func (r *Registry) rejoiningCandidatesLocked(group string) []candidate {
	var out []candidate
	for id, v := range r.views {
		for mb, c := range v.rejoin.members[group] {
			out = append(out, candidate{Member: Member{Cluster: id.Cluster, Node: id.Node, Mailbox: mb, Count: c, Reachable: v.reachable},
				rtt: v.rtt, claim: v.rejoin.claims[group][mb]})
		}
	}
	return out
}
