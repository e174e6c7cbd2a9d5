package groups

import (
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

// Strategy chooses the member(s) a group send goes to. The values are the
// ones of the local protocol (wire.Strategy*).
type Strategy uint8

// Strategies.
const (
	Closest      Strategy = 0 // same node, then same cluster, then lowest RTT; unreachable last
	Random       Strategy = 1 // uniformly among reachable members
	RoundRobin   Strategy = 2 // in turn among reachable members, per sending node
	LeastBacklog Strategy = 3 // power of two choices on the destination's backlog, then RTT
	Key          Strategy = 4 // partition owner (partitioned group) or rendezvous hashing
	Broadcast    Strategy = 5 // every member
)

// ErrNoMembers is returned by Pick when no member fits: the group is empty,
// or (key routing of a partitioned group) the key's partition has no owner.
var ErrNoMembers = errors.New("groups: no member")

// NoOwnerError is Pick's error for key routing of a partitioned group when
// the key's partition has no owner: errors.Is(err, ErrNoMembers) holds, and
// errors.As gives the partition, so that a caller holding messages for it
// can keep them apart from those of other partitions.
type NoOwnerError struct {
	Group     string
	N         uint64 // the group's number of partitions
	Partition uint64 // the key's partition, without an owner
}

func (e *NoOwnerError) Error() string {
	return "groups: partition " + strconv.FormatUint(e.Partition, 10) + " of " + strconv.FormatUint(e.N, 10) +
		" of group " + strconv.Quote(e.Group) + " has no owner"
}

// Is makes a NoOwnerError match ErrNoMembers.
func (e *NoOwnerError) Is(target error) bool { return target == ErrNoMembers }

// ErrBadStrategy is returned by Pick for an unknown strategy.
var ErrBadStrategy = errors.New("groups: unknown routing strategy")

// KeyHash is the stable hash of routing keys: 64-bit FNV-1a of the key's
// bytes. Any language reproduces it; partition = KeyHash(key) mod N.
func KeyHash(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()
}

// Partition returns the partition of key in a group of n partitions.
func Partition(key string, n uint64) uint64 { return KeyHash(key) % n }

// rendezvousScore is the weight of member m for key: the member with the
// highest score gets the key, so a membership change moves only the keys of
// the members that came or went.
func rendezvousScore(key string, m Member) uint64 {
	return KeyHash(key + "\x00" + m.Cluster + "/" + m.Node + "/" + strconv.FormatUint(m.Mailbox, 10))
}

// Backlog tells Pick how much is queued towards a node (0 for this node).
type Backlog func(cluster, node string) int

// candidate is a member with what ranking needs.
type candidate struct {
	Member
	rtt   time.Duration
	claim Claim
}

// candidatesLocked lists every member of group, local ones included.
func (r *Registry) candidatesLocked(group string) []candidate {
	var out []candidate
	for mb, c := range r.local[group] {
		out = append(out, candidate{Member: Member{Cluster: r.self.Cluster, Node: r.self.Node, Mailbox: mb, Count: c, Reachable: true},
			claim: r.claims[group][mb]})
	}
	for id, v := range r.views {
		for mb, c := range v.members[group] {
			out = append(out, candidate{Member: Member{Cluster: id.Cluster, Node: id.Node, Mailbox: mb, Count: c, Reachable: v.reachable},
				rtt: v.rtt, claim: v.claims[group][mb]})
		}
	}
	if len(out) == 0 {
		out = r.rejoiningCandidatesLocked(group)
	}
	// A stable order, so that round-robin and ties are the same everywhere.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
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

// rank orders candidates by closeness: this node, same cluster reachable,
// other reachable (by RTT), unreachable (by RTT).
func (r *Registry) rank(c candidate) (int, time.Duration) {
	switch {
	case c.Cluster == r.self.Cluster && c.Node == r.self.Node:
		return 0, 0
	case !c.Reachable:
		return 3, c.rtt
	case c.Cluster == r.self.Cluster:
		return 1, c.rtt
	}
	return 2, c.rtt
}

// closestOf picks the closest candidate, at random among equals.
func (r *Registry) closestOf(cs []candidate) Member {
	bestRank, bestRTT := 4, time.Duration(0)
	var best []Member
	for _, c := range cs {
		rk, rtt := r.rank(c)
		if rk > bestRank || (rk == bestRank && rtt > bestRTT) {
			continue
		}
		if rk < bestRank || rtt < bestRTT {
			best = best[:0]
		}
		bestRank, bestRTT = rk, rtt
		best = append(best, c.Member)
	}
	return best[rand.IntN(len(best))]
}

// Pick chooses where a send to group goes under strategy s. It returns one
// member, or every member for Broadcast. Key routing never falls back to
// another partition's owner: a partition without an owner is a
// *NoOwnerError (which is ErrNoMembers).
func (r *Registry) Pick(group string, s Strategy, key string, backlog Backlog) ([]Member, error) {
	r.mu.Lock() // round-robin state changes
	defer r.mu.Unlock()
	if s == Closest { // the common case, without a sorted candidate list
		m, ok := r.closestLocked(group)
		if !ok {
			return nil, ErrNoMembers
		}
		return []Member{m}, nil
	}
	cs := r.candidatesLocked(group)
	if len(cs) == 0 {
		return nil, ErrNoMembers
	}
	reachable := func() []candidate {
		var out []candidate
		for _, c := range cs {
			if c.Reachable {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return cs // all unreachable: buffered for them
		}
		return out
	}
	switch s {
	case Random:
		rs := reachable()
		return []Member{rs[rand.IntN(len(rs))].Member}, nil
	case RoundRobin:
		rs := reachable()
		i := r.rr[group]
		r.rr[group] = i + 1
		return []Member{rs[i%uint64(len(rs))].Member}, nil
	case LeastBacklog:
		rs := reachable()
		a, b := rs[rand.IntN(len(rs))], rs[rand.IntN(len(rs))]
		if backlog != nil {
			ba, bb := backlog(a.Cluster, a.Node), backlog(b.Cluster, b.Node)
			if bb < ba || (bb == ba && b.rtt < a.rtt) {
				a = b
			}
		}
		return []Member{a.Member}, nil
	case Key:
		if n := cs[0].claim.N; n > 0 {
			p := Partition(key, n)
			var owners []candidate
			for _, c := range cs {
				if c.claim.N == n && c.claim.Owns(p) {
					owners = append(owners, c)
				}
			}
			if len(owners) == 0 {
				return nil, &NoOwnerError{Group: group, N: n, Partition: p}
			}
			return []Member{r.closestOf(owners)}, nil
		}
		best, bestScore := cs[0].Member, rendezvousScore(key, cs[0].Member)
		for _, c := range cs[1:] {
			if sc := rendezvousScore(key, c.Member); sc > bestScore {
				best, bestScore = c.Member, sc
			}
		}
		return []Member{best}, nil
	case Broadcast:
		out := make([]Member, len(cs))
		for i, c := range cs {
			out[i] = c.Member
		}
		return out, nil
	}
	return nil, ErrBadStrategy
}

// MemberKey names a member: its node and mailbox.
type MemberKey struct {
	Cluster, Node string
	Mailbox       uint64
}

// ClaimsOf returns the partition claims of group's members (partitioned
// groups only).
func (r *Registry) ClaimsOf(group string) map[MemberKey]Claim {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[MemberKey]Claim{}
	for _, c := range r.candidatesLocked(group) {
		if c.claim.N > 0 {
			out[MemberKey{c.Cluster, c.Node, c.Mailbox}] = c.claim
		}
	}
	return out
}
