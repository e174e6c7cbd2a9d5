package groups_test

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/wandist/wandist/groups"
)

// refusals records what the policy refused, as "node reason group".
type refusals struct {
	mu  sync.Mutex
	got []string
}

func (f *refusals) on(peer groups.NodeID, reason groups.Reason, group string) {
	f.mu.Lock()
	f.got = append(f.got, peer.Node+" "+reason.String()+" "+group)
	f.mu.Unlock()
}

func (f *refusals) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.got
	f.got = nil
	return out
}

func policyReg(lim groups.Limits, imports func(cluster, group string) bool) (*groups.Registry, *refusals) {
	r, _ := newReg()
	f := &refusals{}
	r.SetPolicy(groups.Policy{Limits: lim, Imports: imports, OnRefuse: f.on})
	return r, f
}

func TestNewClaim(t *testing.T) {
	c, err := groups.NewClaim(64, []uint64{9, 3, 9, 63, 0})
	if err != nil || c.N != 64 || !slices.Equal(c.Partitions, []uint16{0, 3, 9, 63}) {
		t.Fatalf("NewClaim = %+v, %v", c, err)
	}
	if !c.Owns(9) || c.Owns(4) || c.Owns(1<<20) || !slices.Equal(c.List(), []uint64{0, 3, 9, 63}) {
		t.Fatalf("Owns/List of %+v", c)
	}
	for _, tc := range []struct {
		n  uint64
		ps []uint64
	}{{4, []uint64{4}}, {0, []uint64{0}}, {groups.MaxPartitions + 1, nil}, {1 << 40, []uint64{1}}} {
		if _, err := groups.NewClaim(tc.n, tc.ps); !errors.Is(err, groups.ErrPartitionCount) {
			t.Errorf("NewClaim(%d, %v) = %v, want ErrPartitionCount", tc.n, tc.ps, err)
		}
	}
	if c, err := groups.NewClaim(groups.MaxPartitions, []uint64{groups.MaxPartitions - 1}); err != nil || !c.Owns(groups.MaxPartitions-1) {
		t.Fatalf("the largest partition: %+v %v", c, err)
	}
	r, _ := newReg()
	if err := r.JoinClaim("kv", 1, groups.Claim{N: 4, Partitions: []uint16{2, 1}}); !errors.Is(err, groups.ErrPartitionCount) {
		t.Fatalf("an unsorted claim built by hand: %v", err)
	}
}

func TestCheckName(t *testing.T) {
	for _, g := range []string{"", string(make([]byte, 256)), "a\nb", "x\x7f"} {
		if err := groups.CheckName(g); !errors.Is(err, groups.ErrBadName) {
			t.Errorf("CheckName(%q) = %v", g, err)
		}
	}
	if err := groups.CheckName("orders-eu/1 é"); err != nil {
		t.Error(err)
	}
}

// Members of groups not imported from the peer's cluster are refused, in
// snapshots and in deltas; the view is then partial.
func TestPolicyImports(t *testing.T) {
	r, f := policyReg(groups.Limits{}, func(cluster, group string) bool { return group != "private" })
	mustApplySnapshot(t, r, farA, 1, 1, groups.Entry{Group: "private", Mailbox: 1, Count: 1}, groups.Entry{Group: "pub", Mailbox: 2, Count: 1})
	if err := r.ApplyDelta(farA, 1, groups.Delta{Version: 2, Op: groups.OpJoin, Group: "private", Mailbox: 3}); err != nil {
		t.Fatal(err)
	}
	if err := r.ApplyDelta(farA, 1, groups.Delta{Version: 3, Op: groups.OpLeave, Group: "private", Mailbox: 3}); err != nil {
		t.Fatal(err) // a leave of a refused join changes nothing
	}
	if got := f.take(); !slices.Equal(got, []string{"a not_imported private", "a not_imported private"}) {
		t.Fatalf("refusals %v", got)
	}
	if ms := r.Members("private"); len(ms) != 0 {
		t.Fatalf("refused members listed: %v", keys(ms))
	}
	if ms := r.Members("pub"); len(ms) != 1 {
		t.Fatalf("imported group: %v", keys(ms))
	}
	if s, ok := r.ViewDigest(farA); !ok || !s.Partial || s.Version != 3 {
		t.Fatalf("view summary %+v %v, want partial at version 3", s, ok)
	}
	// A snapshot without refusals makes the view whole again.
	mustApplySnapshot(t, r, farA, 1, 4, groups.Entry{Group: "pub", Mailbox: 2, Count: 1})
	if s, _ := r.ViewDigest(farA); s.Partial || s.Hash != groups.MembershipHash([]groups.Entry{{Group: "pub", Mailbox: 2, Count: 1}}) {
		t.Fatalf("view summary %+v after a whole snapshot", s)
	}
}

func TestPolicyLimits(t *testing.T) {
	r, f := policyReg(groups.Limits{MaxMembers: 5, MaxGroups: 2, MaxPartitions: 10}, nil)
	claim := func(n uint64, ps ...uint64) groups.Claim {
		c, err := groups.NewClaim(n, ps)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A snapshot: 3 groups (one too many), then members past 5.
	var es []groups.Entry
	for i := range 3 {
		es = append(es, groups.Entry{Group: "g" + strconv.Itoa(i), Mailbox: uint64(i), Count: 1})
	}
	for i := range 5 {
		es = append(es, groups.Entry{Group: "g0", Mailbox: uint64(100 + i), Count: 1})
	}
	mustApplySnapshot(t, r, farA, 1, 1, es...)
	if got := f.take(); !slices.Equal(got, []string{"a groups g2", "a members g0", "a members g0"}) {
		t.Fatalf("snapshot refusals %v", got)
	}
	if g := r.Groups(); g["g0"] != 4 || g["g1"] != 1 || g["g2"] != 0 {
		t.Fatalf("groups %v", g)
	}
	// Deltas: a leave makes room for one join; partitions are counted.
	ver := uint64(1)
	apply := func(d groups.Delta) {
		t.Helper()
		ver++
		d.Version = ver
		if err := r.ApplyDelta(farA, 1, d); err != nil {
			t.Fatal(err)
		}
	}
	apply(groups.Delta{Op: groups.OpJoin, Group: "g1", Mailbox: 200})                                        // members
	apply(groups.Delta{Op: groups.OpLeave, Group: "g0", Mailbox: 100})                                       // 4 members
	apply(groups.Delta{Op: groups.OpLeave, Group: "g0", Mailbox: 101})                                       // 3 members
	apply(groups.Delta{Op: groups.OpLeave, Group: "g1", Mailbox: 1})                                         // 2, one group
	apply(groups.Delta{Op: groups.OpJoin, Group: "kv", Mailbox: 300, Claim: claim(16, 0, 1, 2, 3, 4, 5, 6)}) // 3 members, 7 partitions
	apply(groups.Delta{Op: groups.OpJoin, Group: "kv", Mailbox: 301, Claim: claim(16, 7, 8, 9, 10)})         // partitions: 11 > 10
	apply(groups.Delta{Op: groups.OpJoin, Group: "kv", Mailbox: 301, Claim: claim(16, 7, 8, 9)})             // 10 partitions
	apply(groups.Delta{Op: groups.OpJoin, Group: "kv", Mailbox: 300, Claim: claim(16, 0)})                   // a rejoin: 4 partitions
	apply(groups.Delta{Op: groups.OpJoin, Group: "kv", Mailbox: 302, Claim: claim(16, 1, 2, 3, 4, 5, 6)})    // 10 again
	apply(groups.Delta{Op: groups.OpJoin, Group: "kv", Mailbox: 303, Claim: claim(8, 1)})                    // another count
	apply(groups.Delta{Op: groups.OpJoin, Group: "x\x00", Mailbox: 304})                                     // a bad name
	if got := f.take(); !slices.Equal(got, []string{"a members g1", "a partitions kv", "a partition_count kv", "a bad_entry x\x00"}) {
		t.Fatalf("delta refusals %q", got)
	}
	if g := r.Groups(); g["kv"] != 3 || g["g0"] != 2 || len(g) != 2 {
		t.Fatalf("groups %v", g)
	}
}

// This node's members fix a partitioned group's count: a peer's claim of
// another count neither blocks a local join nor takes keys from it.
func TestPartitionCountFixedLocally(t *testing.T) {
	r, f := policyReg(groups.Limits{}, nil)
	one, _ := groups.NewClaim(1, []uint64{0})
	mustApplySnapshot(t, r, farA, 1, 1, groups.Entry{Group: "kv", Mailbox: 9, Count: 1, Claim: one})
	var evs []string
	r.Watch("kv", func(e groups.Event) { evs = append(evs, strconv.Itoa(int(e.Op))+" "+key(e.Member)) })
	all := make([]uint64, 64)
	for i := range all {
		all[i] = uint64(i)
	}
	low, _ := groups.NewClaim(64, all[:32])
	if err := r.JoinClaim("kv", 1, low); err != nil {
		t.Fatalf("a local join with the peer claiming another count: %v", err)
	}
	if got := f.take(); !slices.Equal(got, []string{"a partition_count kv"}) {
		t.Fatalf("refusals %v", got)
	}
	if got := keys(r.Members("kv")); !slices.Equal(got, []string{"c1/n1#1×1"}) {
		t.Fatalf("members %v", got)
	}
	if !slices.Equal(evs, []string{"1 c2/a#9×1", "2 c2/a#9×0", "1 c1/n1#1×1"}) {
		t.Fatalf("watch events %v", evs)
	}
	// Later claims of the peer with its count are refused too; one with
	// this node's count is taken.
	if err := r.ApplyDelta(farA, 1, groups.Delta{Version: 2, Op: groups.OpJoin, Group: "kv", Mailbox: 10, Claim: one}); err != nil {
		t.Fatal(err)
	}
	high, _ := groups.NewClaim(64, all[32:])
	if err := r.ApplyDelta(farA, 1, groups.Delta{Version: 3, Op: groups.OpJoin, Group: "kv", Mailbox: 11, Claim: high}); err != nil {
		t.Fatal(err)
	}
	mustApplySnapshot(t, r, farB, 1, 1, groups.Entry{Group: "kv", Mailbox: 12, Count: 1, Claim: one})
	if got := f.take(); !slices.Equal(got, []string{"a partition_count kv", "b partition_count kv"}) {
		t.Fatalf("refusals %v", got)
	}
	for i := range 200 {
		k := "k" + strconv.Itoa(i)
		ms, err := r.Pick("kv", groups.Key, k, nil)
		want := uint64(1)
		if groups.Partition(k, 64) >= 32 {
			want = 11
		}
		if err != nil || ms[0].Mailbox != want {
			t.Fatalf("key %s to %v (%v), want mailbox %d", k, ms, err, want)
		}
	}
	// Another local join must agree with this node's count.
	if err := r.JoinClaim("kv", 2, one); !errors.Is(err, groups.ErrPartitionCount) {
		t.Fatalf("a local join of another count: %v", err)
	}
}

// Without members here, the first count taken from a peer holds: another
// peer's claim of another count is refused.
func TestPartitionCountAgreedAmongPeers(t *testing.T) {
	r, f := policyReg(groups.Limits{}, nil)
	eight, _ := groups.NewClaim(8, []uint64{0, 1, 2, 3, 4, 5, 6, 7})
	one, _ := groups.NewClaim(1, []uint64{0})
	mustApplySnapshot(t, r, farA, 1, 1, groups.Entry{Group: "kv", Mailbox: 1, Count: 1, Claim: eight})
	mustApplySnapshot(t, r, farB, 1, 1, groups.Entry{Group: "kv", Mailbox: 2, Count: 1, Claim: one}, groups.Entry{Group: "kv", Mailbox: 3, Count: 1, Claim: eight})
	if got := f.take(); !slices.Equal(got, []string{"b partition_count kv"}) {
		t.Fatalf("refusals %v", got)
	}
	// Within one snapshot the first count holds too.
	mustApplySnapshot(t, r, farB, 1, 2, groups.Entry{Group: "solo", Mailbox: 2, Count: 1, Claim: one}, groups.Entry{Group: "solo", Mailbox: 3, Count: 1, Claim: eight})
	if got := f.take(); !slices.Equal(got, []string{"b partition_count solo"}) {
		t.Fatalf("refusals %v", got)
	}
}

// Key routing to a partition without an owner fails with a *NoOwnerError
// that names the partition and is ErrNoMembers.
func TestPickNoOwnerNamesThePartition(t *testing.T) {
	r, _ := newReg()
	c, _ := groups.NewClaim(4, []uint64{0, 1, 2})
	if err := r.JoinClaim("kv", 1, c); err != nil {
		t.Fatal(err)
	}
	key := "k0"
	for i := 1; groups.Partition(key, 4) != 3; i++ {
		key = "k" + strconv.Itoa(i)
	}
	_, err := r.Pick("kv", groups.Key, key, nil)
	var no *groups.NoOwnerError
	if !errors.Is(err, groups.ErrNoMembers) || !errors.As(err, &no) || no.Group != "kv" || no.N != 4 || no.Partition != 3 {
		t.Fatalf("Pick of a key of unowned partition 3: %v (%+v)", err, no)
	}
	for i := 0; ; i++ {
		if k := "k" + strconv.Itoa(i); groups.Partition(k, 4) != 3 {
			if ms, err := r.Pick("kv", groups.Key, k, nil); err != nil || len(ms) != 1 || ms[0].Mailbox != 1 {
				t.Fatalf("Pick of a key of owned partition %d: %v %v", groups.Partition(k, 4), ms, err)
			}
			break
		}
	}
}
