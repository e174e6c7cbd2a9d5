package groups

import "sort"

// What a peer may publish here: the registry takes a peer's members only
// within its import rules and its budget, and with the partition count of
// each partitioned group that this node fixed (see partitionCountLocked).
// What does not fit is refused: left out of the peer's view (not listed,
// watched or sent to) and reported to Policy.OnRefuse. The view is then
// partial: its hash cannot match the peer's digest (ViewDigest).

// Reason says why a member a peer published was refused.
type Reason uint8

// Reasons of refusal.
const (
	RefusedBadEntry       Reason = iota + 1 // a bad group name or partition claim
	RefusedNotImported                      // the group is not imported from the peer's cluster
	RefusedPartitionCount                   // its number of partitions differs from the group's here
	RefusedGroups                           // over Limits.MaxGroups
	RefusedMembers                          // over Limits.MaxMembers
	RefusedPartitions                       // over Limits.MaxPartitions
)

var reasonNames = map[Reason]string{
	RefusedBadEntry: "bad_entry", RefusedNotImported: "not_imported", RefusedPartitionCount: "partition_count",
	RefusedGroups: "groups", RefusedMembers: "members", RefusedPartitions: "partitions",
}

// String returns the reason's metric label: bad_entry, not_imported,
// partition_count, groups, members or partitions.
func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return "unknown"
}

// Limits bound what one peer may publish (0: no bound).
type Limits struct {
	MaxMembers    int // (group, mailbox) pairs
	MaxGroups     int // distinct groups
	MaxPartitions int // partitions claimed, summed over its members
}

// Policy is what the registry takes from peers. The zero Policy takes
// everything.
type Policy struct {
	Limits Limits
	// Imports reports whether peers of cluster may add members to group;
	// nil: every group.
	Imports func(cluster, group string) bool
	// OnRefuse, if set, is told of every member refused, once per join
	// (or per snapshot entry). It may run with the registry locked: it
	// must not block or call back into the registry.
	OnRefuse func(peer NodeID, reason Reason, group string)
}

// SetPolicy sets what the registry takes from peers from now on (what it
// holds stays).
func (r *Registry) SetPolicy(p Policy) { r.policy.Store(&p) }

func (r *Registry) pol() *Policy {
	if p := r.policy.Load(); p != nil {
		return p
	}
	return &Policy{}
}

func over(n, limit int) bool { return limit > 0 && n > limit }

// check returns why one more join of mailbox in group with claim c does not
// fit v, a view of peer (0: it fits). The partition count is checked
// against v's other members only: the caller checks it against this node's.
func (p *Policy) check(peer NodeID, v *view, group string, mailbox uint64, c Claim) Reason {
	if CheckName(group) != nil || c.check() != nil {
		return RefusedBadEntry
	}
	if p.Imports != nil && !p.Imports(peer.Cluster, group) {
		return RefusedNotImported
	}
	if n, ok := v.countExcept(group, mailbox); ok && n != c.N {
		return RefusedPartitionCount
	}
	ms := v.members[group]
	if ms[mailbox] == 0 {
		if len(ms) == 0 && over(len(v.members)+1, p.Limits.MaxGroups) {
			return RefusedGroups
		}
		if over(v.nMembers+1, p.Limits.MaxMembers) {
			return RefusedMembers
		}
	}
	if over(v.nParts-len(v.claims[group][mailbox].Partitions)+len(c.Partitions), p.Limits.MaxPartitions) {
		return RefusedPartitions
	}
	return 0
}

// refuse records a refusal of peer's member in group.
func (p *Policy) refuse(peer NodeID, v *view, reason Reason, group string) {
	v.partial = true
	if p.OnRefuse != nil {
		p.OnRefuse(peer, reason, group)
	}
}

// countExcept returns the partition count of group's members in v other
// than mailbox (0: not partitioned); ok is false if there is none.
func (v *view) countExcept(group string, mailbox uint64) (uint64, bool) {
	for mb := range v.members[group] {
		if mb != mailbox {
			return v.claims[group][mb].N, true
		}
	}
	return 0, false
}

// count returns the partition count of group's members in v; ok is false
// if there is none.
func (v *view) count(group string) (uint64, bool) {
	for mb := range v.members[group] {
		return v.claims[group][mb].N, true
	}
	return 0, false
}

// add records count more joins of mailbox in group with claim c (its
// latest), keeping v's counts.
func (v *view) add(group string, mailbox uint64, count int, c Claim) {
	m := v.members[group]
	if m == nil {
		m = map[uint64]int{}
		v.members[group] = m
	}
	if m[mailbox] == 0 {
		v.nMembers++
	}
	m[mailbox] += count
	v.nParts += len(c.Partitions) - len(v.claims[group][mailbox].Partitions)
	switch {
	case c.N > 0:
		if v.claims[group] == nil {
			v.claims[group] = map[uint64]Claim{}
		}
		v.claims[group][mailbox] = c
	case v.claims[group] != nil:
		delete(v.claims[group], mailbox)
		if len(v.claims[group]) == 0 {
			delete(v.claims, group)
		}
	}
}

// drop removes mailbox from group in v, every join of it, keeping v's
// counts; it returns the joins removed.
func (v *view) drop(group string, mailbox uint64) int {
	m := v.members[group]
	n := m[mailbox]
	if n == 0 {
		return 0
	}
	delete(m, mailbox)
	v.nMembers--
	v.nParts -= len(v.claims[group][mailbox].Partitions)
	delete(v.claims[group], mailbox)
	if len(m) == 0 {
		delete(v.members, group)
		delete(v.claims, group)
	}
	return n
}

// partitionCountLocked returns the partition count of group on this node,
// leaving out peer's view: the count of this node's members if it has any
// (they fix it), else the one of the members other peers published (they
// agree: a claim that does not is refused); ok is false if there is none.
func (r *Registry) partitionCountLocked(group string, peer NodeID) (uint64, bool) {
	for mb := range r.local[group] {
		return r.claims[group][mb].N, true
	}
	for id, v := range r.views {
		if id == peer {
			continue
		}
		for mb := range v.members[group] {
			return v.claims[group][mb].N, true
		}
	}
	return 0, false
}

// evictLocked refuses the members of group in every view whose partition
// count differs from n, the one this node's members just fixed.
func (r *Registry) evictLocked(group string, n uint64) {
	p := r.pol()
	for id, v := range r.views {
		if cn, ok := v.count(group); !ok || cn == n {
			continue
		}
		r.evictViewLocked(p, id, v, group, true)
	}
}

// evictViewLocked removes the members of group from v, peer's view, each
// refused for its partition count; installed: v is in r.views (its
// watchers are told).
func (r *Registry) evictViewLocked(p *Policy, peer NodeID, v *view, group string, installed bool) {
	mbs := make([]uint64, 0, len(v.members[group]))
	for mb := range v.members[group] {
		mbs = append(mbs, mb)
	}
	sort.Slice(mbs, func(i, j int) bool { return mbs[i] < mbs[j] })
	for _, mb := range mbs {
		v.drop(group, mb)
		if installed {
			r.emitLocked(OpLeave, group, Member{Cluster: peer.Cluster, Node: peer.Node, Mailbox: mb, Reachable: v.reachable})
		}
		p.refuse(peer, v, RefusedPartitionCount, group)
	}
	if installed {
		r.signalLocked()
	}
}

// Incoming is a snapshot of a peer's membership being received (it may
// come in several frames). It takes entries one by one under the policy,
// so it never holds more than the peer may publish. Not safe for
// concurrent use.
type Incoming struct {
	r    *Registry
	peer NodeID
	v    *view
}

// NewIncoming starts a snapshot of peer's membership.
func (r *Registry) NewIncoming(peer NodeID) *Incoming {
	return &Incoming{r: r, peer: peer, v: newView()}
}

func newView() *view {
	return &view{members: map[string]map[uint64]int{}, claims: map[string]map[uint64]Claim{}, reachable: true}
}

// Add takes one entry of the snapshot, or refuses it. Entries repeating a
// (group, mailbox) add up their counts; the last one's claim stays.
func (in *Incoming) Add(e Entry) {
	if e.Count <= 0 {
		return
	}
	p := in.r.pol()
	reason := p.check(in.peer, in.v, e.Group, e.Mailbox, e.Claim)
	if reason == 0 {
		// Against this node's count too (ApplyIncoming checks again: it
		// may change until then).
		in.r.mu.RLock()
		n, ok := in.r.partitionCountLocked(e.Group, in.peer)
		in.r.mu.RUnlock()
		if ok && n != e.Claim.N {
			reason = RefusedPartitionCount
		}
	}
	if reason != 0 {
		p.refuse(in.peer, in.v, reason, e.Group)
		return
	}
	in.v.add(e.Group, e.Mailbox, e.Count, e.Claim)
}

// Members returns how many members the snapshot holds so far.
func (in *Incoming) Members() int { return in.v.nMembers }
