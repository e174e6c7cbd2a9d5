package groups_test

import (
	"errors"
	"testing"

	"github.com/wandist/wandist/groups"
)

// A peer that restarted (a snapshot of a new incarnation, without its
// members yet) keeps its previous members as candidates of the groups that
// have no member, with every strategy, until a member of the group joins
// on it again or its grace ends (EndRejoin).
func TestRestartedPeerMembersRejoin(t *testing.T) {
	r, _ := newReg()
	part := groups.Claim{N: 4, Partitions: []uint16{0, 1, 2, 3}}
	mustApplySnapshot(t, r, farA, 1, 3,
		groups.Entry{Group: "g", Mailbox: 5, Count: 1},
		groups.Entry{Group: "h", Mailbox: 6, Count: 1},
		groups.Entry{Group: "kv", Mailbox: 7, Count: 1, Claim: part})
	mustApplySnapshot(t, r, farA, 2, 0) // restarted: nobody has joined yet
	if m, ok := r.Closest("g"); !ok || key(m) != "c2/a#5×1" {
		t.Fatalf("Closest(g) after the restart: %v %v, want the previous member", key(m), ok)
	}
	for _, s := range []groups.Strategy{groups.Random, groups.RoundRobin, groups.Key, groups.Broadcast} {
		ms, err := r.Pick("kv", s, "some-key", nil)
		if err != nil || len(ms) != 1 || ms[0].Mailbox != 7 {
			t.Fatalf("Pick(kv, %v) after the restart: %v %v", s, keys(ms), err)
		}
	}
	if n := r.Rejoining(farA); n != 3 {
		t.Fatalf("%d groups rejoining, want 3", n)
	}
	// A member of g joins on the restarted node: g routes to it alone.
	if err := r.ApplyDelta(farA, 2, groups.Delta{Version: 1, Op: groups.OpJoin, Group: "g", Mailbox: 9}); err != nil {
		t.Fatal(err)
	}
	if ms := r.Members("g"); len(ms) != 1 || ms[0].Mailbox != 9 {
		t.Fatalf("members of g: %v", keys(ms))
	}
	if m, _ := r.Closest("g"); m.Mailbox != 9 {
		t.Fatalf("Closest(g) after the join: %v", key(m))
	}
	// Rejoining members are not members: nobody lists or watches them.
	if ms := r.Members("h"); len(ms) != 0 {
		t.Fatalf("members of h: %v", keys(ms))
	}
	// The grace ends: h has no member.
	r.EndRejoin(farA)
	if _, err := r.Pick("h", groups.Random, "", nil); !errors.Is(err, groups.ErrNoMembers) {
		t.Fatalf("Pick(h) after the grace: %v, want ErrNoMembers", err)
	}
	if _, ok := r.Closest("h"); ok {
		t.Fatal("Closest(h) after the grace found a member")
	}
}
