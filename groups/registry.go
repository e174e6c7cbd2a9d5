// Package groups keeps process-group membership across clusters, like
// Erlang's pg: a node owns the membership of its own mailboxes, publishes it
// to every linked peer (a snapshot when a link comes up, deltas after), and
// holds the views its peers published. A send to a group picks a member by
// closeness: same node, then same cluster, then the remote node with the
// lowest round-trip time.
package groups

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// NodeID names a node.
type NodeID struct{ Cluster, Node string }

func (n NodeID) String() string { return n.Cluster + "/" + n.Node }

// Member is one mailbox in a group.
type Member struct {
	Cluster   string
	Node      string
	Mailbox   uint64
	Count     int  // how many times it joined
	Reachable bool // false while its node's link is down
}

// Op is a membership change.
type Op uint8

// Membership operations. Their numbers are this package's own; the daemon
// converts them to and from the wire's.
const (
	OpJoin  Op = 1
	OpLeave Op = 2
	OpNoop  Op = 3 // the version advances, nothing else (a change the receiver may not see)
)

// Delta is one change of the local membership, published to peers.
type Delta struct {
	Version uint64
	Op      Op
	Group   string
	Mailbox uint64
	Claim   Claim // OpJoin of a partitioned group: the partitions claimed
}

// Entry is one (group, mailbox, count) in a snapshot.
type Entry struct {
	Group   string
	Mailbox uint64
	Count   int
	Claim   Claim
}

// ErrVersionGap is returned by ApplyDelta when a delta does not follow the
// last one applied: the caller must get a fresh snapshot.
var ErrVersionGap = errors.New("groups: membership delta out of order")

// ErrStale is returned for a snapshot or delta of an older incarnation.
var ErrStale = errors.New("groups: membership from an older incarnation")

type view struct {
	incarnation uint64
	version     uint64
	members     map[string]map[uint64]int   // group -> mailbox -> count
	claims      map[string]map[uint64]Claim // group -> mailbox -> claim (partitioned groups)
	reachable   bool
	rtt         time.Duration
	rejoin      rejoining // the previous incarnation's members, while they rejoin (rejoin.go)
	nMembers    int       // (group, mailbox) pairs in members
	nParts      int       // partitions in claims
	partial     bool      // some of what the peer published was refused (policy.go)
}

// Registry is one node's membership table. Safe for concurrent use.
type Registry struct {
	self NodeID

	mu       sync.RWMutex
	local    map[string]map[uint64]int        // guarded by mu
	claims   map[string]map[uint64]Claim      // guarded by mu: local claims
	rr       map[string]uint64                // guarded by mu: round-robin positions
	watchers map[string]map[*watcher]struct{} // guarded by mu: watches per group
	version  uint64                           // guarded by mu: local membership version
	views    map[NodeID]*view                 // guarded by mu
	onChange func(Delta)                      // called with mu held, in version order
	changed  chan struct{}                    // guarded by mu: closed and replaced at every change
	gen      uint64                           // guarded by mu: bumped by every change (changedLocked)
	genNow   atomic.Uint64                    // gen, for readers without mu (ClosestCache)
	closest  sync.Map                         // group -> *closestSet; entries of an older gen are stale
	policy   atomic.Pointer[Policy]           // what peers may publish (policy.go); nil: everything
}

// changedLocked records a change of membership, reachability or RTT: the
// cached closest sets are dropped. Every method that takes mu for writing,
// except Pick (round-robin positions only), calls it.
func (r *Registry) changedLocked() {
	r.gen++
	r.genNow.Store(r.gen)
	r.closest.Clear()
}

// Changed returns a channel closed at the next change of any membership,
// local or remote (for waiting without polling).
func (r *Registry) Changed() <-chan struct{} {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.changed
}

func (r *Registry) signalLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// New returns an empty registry for node self. onChange, if non-nil, is
// called for every local change, in order, while the registry is locked: it
// must not block or call back into the registry.
func New(self NodeID, onChange func(Delta)) *Registry {
	return &Registry{
		self:     self,
		local:    map[string]map[uint64]int{},
		claims:   map[string]map[uint64]Claim{},
		rr:       map[string]uint64{},
		views:    map[NodeID]*view{},
		onChange: onChange,
		changed:  make(chan struct{}),
	}
}

// Join adds mailbox to group once more.
func (r *Registry) Join(group string, mailbox uint64) {
	_ = r.JoinClaim(group, mailbox, Claim{})
}

// ErrPartitionCount is returned by JoinClaim when the claim's number of
// partitions differs from the one this node's members of the group use, or
// the claim is not valid (NewClaim).
var ErrPartitionCount = errors.New("groups: partition claim does not fit the group")

// JoinClaim adds mailbox to group once more, owning the claim's partitions
// (a partitioned group), or none (the zero Claim). This node's members fix
// the group's partition count here: a join is checked against theirs only,
// and peers' members with another count are refused from then on (those
// known are removed, each reported to the policy's OnRefuse).
func (r *Registry) JoinClaim(group string, mailbox uint64, c Claim) error {
	if err := c.check(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changedLocked()
	for mb := range r.local[group] {
		if n := r.claims[group][mb].N; n != c.N {
			return fmt.Errorf("%w: group %q has %d partitions on this node, the join claims %d", ErrPartitionCount, group, n, c.N)
		}
		break
	}
	m := r.local[group]
	if m == nil {
		m = map[uint64]int{}
		r.local[group] = m
		r.evictLocked(group, c.N)
	}
	m[mailbox]++
	if c.N > 0 {
		if r.claims[group] == nil {
			r.claims[group] = map[uint64]Claim{}
		}
		c.Partitions = slices.Clone(c.Partitions)
		r.claims[group][mailbox] = c
	}
	r.signalLocked()
	r.version++
	if r.onChange != nil {
		r.onChange(Delta{Version: r.version, Op: OpJoin, Group: group, Mailbox: mailbox, Claim: c})
	}
	r.emitLocked(OpJoin, group, Member{Cluster: r.self.Cluster, Node: r.self.Node, Mailbox: mailbox, Count: m[mailbox], Reachable: true})
	return nil
}

// Leave undoes one Join; it reports false if the mailbox was not a member.
func (r *Registry) Leave(group string, mailbox uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changedLocked()
	return r.leaveLocked(group, mailbox)
}

func (r *Registry) leaveLocked(group string, mailbox uint64) bool {
	m := r.local[group]
	if m[mailbox] == 0 {
		return false
	}
	m[mailbox]--
	if m[mailbox] == 0 {
		delete(m, mailbox)
		delete(r.claims[group], mailbox)
		if len(m) == 0 {
			delete(r.local, group)
			delete(r.claims, group)
		}
	}
	r.publishLocked(OpLeave, group, mailbox)
	r.emitLocked(OpLeave, group, Member{Cluster: r.self.Cluster, Node: r.self.Node, Mailbox: mailbox, Count: m[mailbox], Reachable: true})
	return true
}

// RemoveMailbox leaves every group the mailbox joined, every time it joined.
func (r *Registry) RemoveMailbox(mailbox uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changedLocked()
	for g := range r.local {
		for r.local[g] != nil && r.local[g][mailbox] > 0 {
			r.leaveLocked(g, mailbox)
		}
	}
}

func (r *Registry) publishLocked(op Op, group string, mailbox uint64) {
	r.signalLocked()
	r.version++
	if r.onChange != nil {
		r.onChange(Delta{Version: r.version, Op: op, Group: group, Mailbox: mailbox})
	}
}

// Snapshot returns the local membership and its version. Called under the
// same lock as onChange, so a snapshot followed by the deltas published after
// it is exact; snap, if non-nil, runs while the registry is still locked
// (use it to queue the snapshot ahead of later deltas).
func (r *Registry) Snapshot(snap func(version uint64, entries []Entry)) (uint64, []Entry) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Entry
	for g, m := range r.local {
		for mb, c := range m {
			out = append(out, Entry{Group: g, Mailbox: mb, Count: c, Claim: r.claims[g][mb]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Mailbox < out[j].Mailbox
	})
	if snap != nil {
		snap(r.version, out)
	}
	return r.version, out
}

// ApplySnapshot replaces what is known of peer's membership, taking the
// entries under the policy (see Incoming).
func (r *Registry) ApplySnapshot(peer NodeID, incarnation, version uint64, entries []Entry) error {
	in := r.NewIncoming(peer)
	for _, e := range entries {
		in.Add(e)
	}
	return r.ApplyIncoming(in, incarnation, version)
}

// ApplyIncoming replaces what is known of the peer's membership with the
// snapshot in, of its incarnation at version. Its members of a group whose
// partition count here differs from theirs are refused.
func (r *Registry) ApplyIncoming(in *Incoming, incarnation, version uint64) error {
	peer := in.peer
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changedLocked()
	if v := r.views[peer]; v != nil && incarnation < v.incarnation {
		return fmt.Errorf("%w: snapshot of %s incarnation %d, already have %d", ErrStale, peer, incarnation, v.incarnation)
	}
	v := in.v
	in.v = newView() // in is spent
	v.incarnation, v.version = incarnation, version
	p := r.pol()
	for g := range v.members {
		if n, ok := r.partitionCountLocked(g, peer); ok {
			if vn, _ := v.count(g); vn != n {
				r.evictViewLocked(p, peer, v, g, false)
			}
		}
	}
	old := r.views[peer]
	if old != nil {
		v.rtt = old.rtt
	}
	switch {
	case old != nil && incarnation > old.incarnation:
		carryRejoining(old, v)
	case old != nil: // the same incarnation again (a new link)
		v.rejoin = old.rejoin
		for g := range v.members {
			v.rejoined(g)
		}
	}
	r.emitViewDiffLocked(peer, old, v)
	r.views[peer] = v
	r.signalLocked()
	return nil
}

// ErrUnknownOp is returned by ApplyDelta for a delta of an unknown
// operation: its version was taken, nothing else.
var ErrUnknownOp = errors.New("groups: membership delta of an unknown operation")

// ApplyDelta applies one membership change published by peer; a join that
// the policy refuses only advances the version.
func (r *Registry) ApplyDelta(peer NodeID, incarnation uint64, d Delta) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changedLocked()
	v := r.views[peer]
	if v == nil || incarnation > v.incarnation {
		return fmt.Errorf("%w: delta %d of %s before its snapshot", ErrVersionGap, d.Version, peer)
	}
	if incarnation < v.incarnation {
		return fmt.Errorf("%w: delta of %s incarnation %d, already have %d", ErrStale, peer, incarnation, v.incarnation)
	}
	if d.Version <= v.version {
		return nil // already reflected in the snapshot
	}
	if d.Version != v.version+1 {
		return fmt.Errorf("%w: %s sent version %d after %d", ErrVersionGap, peer, d.Version, v.version)
	}
	v.version = d.Version
	switch d.Op {
	case OpNoop:
	case OpJoin:
		r.joinLocked(peer, v, d)
	case OpLeave:
		r.leaveViewLocked(peer, v, d)
	default:
		return fmt.Errorf("%w: %d from %s", ErrUnknownOp, d.Op, peer)
	}
	return nil
}

// joinLocked applies a join delta of peer to v, its view, if the policy
// takes it.
func (r *Registry) joinLocked(peer NodeID, v *view, d Delta) {
	p := r.pol()
	reason := p.check(peer, v, d.Group, d.Mailbox, d.Claim)
	if n, ok := r.partitionCountLocked(d.Group, peer); reason == 0 && ok && n != d.Claim.N {
		reason = RefusedPartitionCount
	}
	if reason != 0 {
		p.refuse(peer, v, reason, d.Group)
		return
	}
	r.signalLocked()
	v.add(d.Group, d.Mailbox, 1, d.Claim)
	v.rejoined(d.Group)
	r.emitLocked(OpJoin, d.Group, Member{Cluster: peer.Cluster, Node: peer.Node, Mailbox: d.Mailbox, Count: v.members[d.Group][d.Mailbox], Reachable: v.reachable})
}

// leaveViewLocked applies a leave delta of peer to v, its view (a mailbox
// that is not a member, maybe refused, changes nothing).
func (r *Registry) leaveViewLocked(peer NodeID, v *view, d Delta) {
	n := v.members[d.Group][d.Mailbox]
	if n == 0 {
		return
	}
	r.signalLocked()
	if n == 1 {
		v.drop(d.Group, d.Mailbox)
	} else {
		v.members[d.Group][d.Mailbox] = n - 1
	}
	r.emitLocked(OpLeave, d.Group, Member{Cluster: peer.Cluster, Node: peer.Node, Mailbox: d.Mailbox, Count: n - 1, Reachable: v.reachable})
}

// PeerDown marks peer's members unreachable until its next snapshot. They
// stay candidates for routing (after every reachable one): messages for
// them wait in the peer's buffer.
func (r *Registry) PeerDown(peer NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changedLocked()
	if v := r.views[peer]; v != nil && v.reachable {
		v.reachable = false
		r.signalLocked()
	}
}

// SetRTT records the round-trip time to peer, used by Closest.
func (r *Registry) SetRTT(peer NodeID, rtt time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changedLocked()
	if v := r.views[peer]; v != nil {
		v.rtt = rtt
	}
}

// ForgetPeer removes everything known of peer's membership.
func (r *Registry) ForgetPeer(peer NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changedLocked()
	if v := r.views[peer]; v != nil {
		r.emitViewDiffLocked(peer, v, nil)
		delete(r.views, peer)
		r.signalLocked()
	}
}

// Members returns every member of group, local ones first, then by node.
func (r *Registry) Members(group string) []Member {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Member
	for mb, c := range r.local[group] {
		out = append(out, Member{Cluster: r.self.Cluster, Node: r.self.Node, Mailbox: mb, Count: c, Reachable: true})
	}
	for id, v := range r.views {
		for mb, c := range v.members[group] {
			out = append(out, Member{Cluster: id.Cluster, Node: id.Node, Mailbox: mb, Count: c, Reachable: v.reachable})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		la, lb := a.Cluster == r.self.Cluster && a.Node == r.self.Node, b.Cluster == r.self.Cluster && b.Node == r.self.Node
		if la != lb {
			return la
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.Mailbox < b.Mailbox
	})
	return out
}

// LocalMembers returns the mailboxes of this node in group.
func (r *Registry) LocalMembers(group string) []Member {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Member
	for mb, c := range r.local[group] {
		out = append(out, Member{Cluster: r.self.Cluster, Node: r.self.Node, Mailbox: mb, Count: c, Reachable: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mailbox < out[j].Mailbox })
	return out
}

// Groups returns the names of every known group with its member count.
func (r *Registry) Groups() map[string]int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]int{}
	for g, m := range r.local {
		out[g] += len(m)
	}
	for _, v := range r.views {
		for g, m := range v.members {
			out[g] += len(m)
		}
	}
	return out
}

// Closest picks the member of group a send should go to: one on this node if
// any, else a reachable one in this cluster, else the reachable remote node
// with the lowest RTT, else (all unreachable) the
// unreachable one with the lowest RTT, whose buffer holds the message until
// its link returns. Among equals it picks at random. ok is false when the
// group has no member.
func (r *Registry) Closest(group string) (m Member, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.closestLocked(group)
}

// ClosestCache is one caller's memory of the last group it asked Closest
// for: while the registry has not changed since, the next ask for that
// group takes no lock and no map lookup. The zero value is empty. Not safe
// for concurrent use: a caller (a local client's reader) owns one.
type ClosestCache struct {
	group   string
	gen     uint64
	members []Member // nil: empty
}

// ClosestCached is Closest through the caller's cache c.
func (r *Registry) ClosestCached(group string, c *ClosestCache) (Member, bool) {
	if c.members == nil || c.group != group || c.gen != r.genNow.Load() {
		r.mu.RLock()
		c.group, c.gen, c.members = group, r.gen, r.closestSetCachedLocked(group)
		r.mu.RUnlock()
		if len(c.members) == 0 {
			c.members = nil
			return Member{}, false
		}
	}
	if len(c.members) == 1 {
		return c.members[0], true
	}
	return c.members[rand.IntN(len(c.members))], true
}

// closestLocked is Closest with the registry locked (read or write). It is
// on every group send, so the set of closest members of a group is cached
// until the next change of the registry (membership, reachability, RTT):
// a send then costs a map lookup and a random pick.
func (r *Registry) closestLocked(group string) (m Member, ok bool) {
	best := r.closestSetCachedLocked(group)
	if len(best) == 0 {
		return Member{}, false
	}
	return best[rand.IntN(len(best))], true
}

// closestSetCachedLocked is closestSetLocked through the registry's cache.
// The slice returned is shared: read only.
func (r *Registry) closestSetCachedLocked(group string) []Member {
	if v, hit := r.closest.Load(group); hit && v.(*closestSet).gen == r.gen {
		return v.(*closestSet).members
	}
	best := r.closestSetLocked(group)
	if len(best) > 0 { // groups without members are not cached: any name can be asked for
		r.closest.Store(group, &closestSet{gen: r.gen, members: best})
	}
	return best
}

// closestSet is the cached answer of closestSetLocked for one group.
type closestSet struct {
	gen     uint64 // Registry.gen it was computed at
	members []Member
}

// closestSetLocked returns the members Closest chooses among: this node's,
// else those of the reachable nodes of this cluster, else of other
// clusters, else unreachable ones; among nodes of one
// rank, those with the lowest RTT.
func (r *Registry) closestSetLocked(group string) []Member {
	if loc := r.local[group]; len(loc) > 0 {
		out := make([]Member, 0, len(loc))
		for mb, c := range loc {
			out = append(out, Member{Cluster: r.self.Cluster, Node: r.self.Node, Mailbox: mb, Count: c, Reachable: true})
		}
		return out
	}
	// rank: 0 same cluster reachable, 1 other cluster reachable, 2 unreachable.
	bestRank, bestRTT := 3, time.Duration(0)
	var best []Member
	for id, v := range r.views {
		ms := v.members[group]
		if len(ms) == 0 {
			continue
		}
		rank := 1
		if !v.reachable {
			rank = 2
		} else if id.Cluster == r.self.Cluster {
			rank = 0
		}
		if rank > bestRank || (rank == bestRank && v.rtt > bestRTT) {
			continue
		}
		if rank < bestRank || v.rtt < bestRTT {
			best = best[:0]
		}
		bestRank, bestRTT = rank, v.rtt
		for mb, c := range ms {
			best = append(best, Member{Cluster: id.Cluster, Node: id.Node, Mailbox: mb, Count: c, Reachable: v.reachable})
		}
	}
	if len(best) == 0 {
		return r.rejoiningSetLocked(group)
	}
	return best
}
