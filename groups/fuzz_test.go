package groups_test

import (
	"strconv"
	"testing"

	"github.com/wandist/wandist/groups"
)

// FuzzNewClaim: any partition list from a peer either makes a valid claim
// (sorted, no repeats, each below N, N at most MaxPartitions) or is refused
// with ErrPartitionCount.
func FuzzNewClaim(f *testing.F) {
	f.Add(uint64(64), []byte{3, 1, 3, 63})
	f.Add(uint64(0), []byte{})
	f.Add(uint64(1<<16+1), []byte{0})
	f.Fuzz(func(t *testing.T, n uint64, raw []byte) {
		ps := make([]uint64, 0, len(raw)/2)
		for i := 0; i+1 < len(raw); i += 2 {
			ps = append(ps, uint64(raw[i])<<8|uint64(raw[i+1]))
		}
		c, err := groups.NewClaim(n, ps)
		if err != nil {
			return
		}
		if c.N != n || n > groups.MaxPartitions {
			t.Fatalf("claim %+v of n %d", c, n)
		}
		for i, p := range c.Partitions {
			if uint64(p) >= n || (i > 0 && p <= c.Partitions[i-1]) {
				t.Fatalf("claim %+v: partition %d out of order or range", c, p)
			}
		}
		for _, p := range ps {
			if !c.Owns(p) {
				t.Fatalf("claim %+v does not own %d", c, p)
			}
		}
	})
}

// FuzzPeerMembership: whatever snapshots and deltas a peer sends, what the
// registry holds of it stays within its budget, its import rules, and one
// partition count per group, agreeing with this node's members.
func FuzzPeerMembership(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte{1, 9, 9, 9, 1, 8, 8, 8, 2, 7, 7, 7, 0, 6, 6, 6, 3, 5, 5, 5})
	f.Fuzz(runFuzzPeer)
}

func runFuzzPeer(t *testing.T, ops []byte) {
	lim := groups.Limits{MaxMembers: 6, MaxGroups: 3, MaxPartitions: 10}
	if len(ops) > 1024 {
		ops = ops[:1024] // longer runs add little, and take long
	}
	{
		r, _ := newReg()
		r.SetPolicy(groups.Policy{Limits: lim, Imports: func(_, g string) bool { return g != "g7" }})
		peer, ver := farA, uint64(0)
		var snap []groups.Entry
		for len(ops) >= 4 {
			op, a, b, c := ops[0]%4, ops[1], ops[2], ops[3]
			ops = ops[4:]
			group := "g" + strconv.Itoa(int(a%8))
			n := uint64(c % 3 * 4) // 0, 4 or 8 partitions
			var ps []uint64
			for i := uint64(0); i < n && i < uint64(c%7); i++ {
				ps = append(ps, (i*uint64(b))%n)
			}
			claim, err := groups.NewClaim(n, ps)
			if err != nil {
				t.Fatal(err)
			}
			switch op {
			case 0: // a snapshot entry; b > 200 ends the snapshot
				snap = append(snap, groups.Entry{Group: group, Mailbox: uint64(b % 16), Count: 1, Claim: claim})
				if b > 200 {
					ver++
					mustApplySnapshot(t, r, peer, 1, ver, snap...)
					snap = nil
				}
			case 1, 2:
				ver++
				d := groups.Delta{Version: ver, Op: groups.OpJoin, Group: group, Mailbox: uint64(b % 16), Claim: claim}
				if op == 2 {
					d.Op, d.Claim = groups.OpLeave, groups.Claim{}
				}
				if err := r.ApplyDelta(peer, 1, d); err != nil {
					ver-- // before the first snapshot: a gap
				}
			case 3: // a local join
				_ = r.JoinClaim(group, uint64(b%4)+1000, claim)
			}
			checkPeerView(t, r, peer, lim)
		}
	}
}

func checkPeerView(t *testing.T, r *groups.Registry, peer groups.NodeID, lim groups.Limits) {
	t.Helper()
	members, gs, parts := 0, 0, 0
	for g := range r.Groups() {
		claims := r.ClaimsOf(g)
		counts := map[uint64]bool{}
		inGroup := false
		for _, m := range r.Members(g) {
			c := claims[groups.MemberKey{Cluster: m.Cluster, Node: m.Node, Mailbox: m.Mailbox}]
			counts[c.N] = true
			if m.Cluster == peer.Cluster && m.Node == peer.Node {
				members++
				parts += len(c.Partitions)
				inGroup = true
			}
		}
		if len(counts) > 1 {
			t.Fatalf("group %s: members with partition counts %v", g, counts)
		}
		if inGroup {
			gs++
			if g == "g7" {
				t.Fatal("a group not imported holds the peer's members")
			}
		}
	}
	if members > lim.MaxMembers || gs > lim.MaxGroups || parts > lim.MaxPartitions {
		t.Fatalf("the peer holds %d members in %d groups with %d partitions, over %+v", members, gs, parts, lim)
	}
}
