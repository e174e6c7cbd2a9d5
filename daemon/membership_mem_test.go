package daemon

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// heapNow returns the live heap after a full collection.
func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// membershipShape is a peer's membership of a given shape, and the most
// heap bytes it may take per wire byte (docs/security.md).
type membershipShape struct {
	name      string
	members   []wire.Member
	maxFactor float64
}

func shapes() []membershipShape {
	var typical, tiny, groupsEach, parts []wire.Member
	for i := range 50_000 { // services: 100 groups, real mailbox ids (6-byte varints)
		typical = append(typical, wire.Member{Group: "service-" + strconv.Itoa(i%100), Mailbox: 1<<40 + uint64(i), Count: 1})
	}
	for i := range 50_000 { // the least bytes per member: one group, small mailboxes
		tiny = append(tiny, wire.Member{Group: "g", Mailbox: uint64(i), Count: 1})
	}
	for _, g := range shortestNames(10_000) { // one member per group, names as short as can be
		groupsEach = append(groupsEach, wire.Member{Group: g, Mailbox: 1, Count: 1})
	}
	all := make([]uint64, 16384)
	for i := range all {
		all[i] = uint64(i)
	}
	for i := range 60 { // partitioned: 60 members owning 16384 partitions each
		parts = append(parts, wire.Member{Group: "kv", Mailbox: uint64(i), Count: 1, PartitionCount: 65536, Partitions: all})
	}
	return []membershipShape{{"typical", typical, 4}, {"tiny members", tiny, 5}, {"one member per group", groupsEach, 40}, {"partitioned", parts, 1.5}}
}

// shortestNames returns n distinct valid group names, as short as can be:
// every 1-byte name, then 2-byte ones.
func shortestNames(n int) []string {
	var ok []byte
	for b := 0x20; b <= 0xff; b++ {
		if b != 0x7f {
			ok = append(ok, byte(b))
		}
	}
	var out []string
	for _, a := range ok {
		out = append(out, string([]byte{a}))
	}
	for _, a := range ok {
		for _, b := range ok {
			out = append(out, string([]byte{a, b}))
		}
	}
	return out[:n]
}

// takeSnapshot feeds ms to r as a snapshot of peer in frames of about
// 512 KiB, as a link does, and returns the bytes of frames.
func takeSnapshot(t testing.TB, r *groups.Registry, peer groups.NodeID, ms []wire.Member) int {
	in := r.NewIncoming(peer)
	total := 0
	for len(ms) > 0 {
		n, size := 0, 0
		for n < len(ms) && size < 512<<10 {
			size += len(ms[n].Group) + 24 + 3*len(ms[n].Partitions)
			n++
		}
		frame := wire.AppendFrame(nil, &wire.MembersSnapshot{Incarnation: 1, Members: ms[:n], More: n < len(ms)})
		total += len(frame)
		var m wire.MembersSnapshot
		if err := m.DecodeBody(frame[wire.HeaderSize:]); err != nil {
			t.Fatal(err)
		}
		for _, e := range m.Members {
			c, err := groups.NewClaim(e.PartitionCount, e.Partitions)
			if err != nil {
				t.Fatal(err)
			}
			in.Add(groups.Entry{Group: e.Group, Mailbox: e.Mailbox, Count: int(e.Count), Claim: c})
		}
		ms = ms[n:]
	}
	if err := r.ApplyIncoming(in, 1, 1); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestMembershipMemoryPerWireByte measures the heap a peer's membership
// takes here per byte of the frames that brought it, for several shapes:
// docs/security.md states the bound asserted here.
func TestMembershipMemoryPerWireByte(t *testing.T) {
	for _, s := range shapes() {
		r := groups.New(groups.NodeID{Cluster: "east", Node: "east-1"}, nil)
		peer := groups.NodeID{Cluster: "west", Node: "west-1"}
		before := heapNow()
		wireBytes := takeSnapshot(t, r, peer, s.members)
		after := heapNow()
		runtime.KeepAlive(r)
		runtime.KeepAlive(s.members)
		heap := float64(after) - float64(before)
		factor := heap / float64(wireBytes)
		t.Logf("%-22s %6d members: %9d wire bytes, %9.0f heap bytes (%.0f per member): %.1f heap bytes per wire byte",
			s.name, len(s.members), wireBytes, heap, heap/float64(len(s.members)), factor)
		if factor > s.maxFactor {
			t.Errorf("%s: %.1f heap bytes per wire byte, more than the %v docs/security.md states", s.name, factor, s.maxFactor)
		}
	}
}

// TestMembershipMemoryAtTheBudget fills one peer's view up to the default
// budget, in the costliest shape it allows (every group with a 255-byte
// name, every member partitioned): docs/security.md states the bound
// asserted here.
func TestMembershipMemoryAtTheBudget(t *testing.T) {
	const maxHeap = 24 << 20
	g := configs.Default().Groups
	var ms []wire.Member
	parts := make([]uint64, g.MaxPartitionsPerPeer/g.MaxMembersPerPeer)
	for i := range parts {
		parts[i] = uint64(i)
	}
	pad := strings.Repeat("x", groups.MaxNameLen-5)
	names := make([]string, g.MaxGroupsPerPeer)
	for i := range names {
		names[i] = fmt.Sprintf("%s%05d", pad, i)
	}
	for i := range g.MaxMembersPerPeer {
		ms = append(ms, wire.Member{Group: names[i%len(names)], Mailbox: 1<<40 + uint64(i), Count: 1, PartitionCount: 65536, Partitions: parts})
	}
	r := groups.New(groups.NodeID{Cluster: "east", Node: "east-1"}, nil)
	r.SetPolicy(groups.Policy{Limits: limitsOf(g)})
	peer := groups.NodeID{Cluster: "west", Node: "west-1"}
	before := heapNow()
	wireBytes := takeSnapshot(t, r, peer, ms)
	after := heapNow()
	runtime.KeepAlive(r)
	runtime.KeepAlive(ms)
	heap := float64(after) - float64(before)
	t.Logf("%d members in %d groups, %d partitions: %d wire bytes, %.1f MB of heap", len(ms), g.MaxGroupsPerPeer, len(ms)*len(parts), wireBytes, heap/1e6)
	if got := r.Groups(); len(got) != g.MaxGroupsPerPeer {
		t.Fatalf("%d groups taken, want %d", len(got), g.MaxGroupsPerPeer)
	}
	if heap > maxHeap {
		t.Errorf("one peer at the default budget takes %.1f MB, more than the %d MB docs/security.md states", heap/1e6, maxHeap>>20)
	}
}
