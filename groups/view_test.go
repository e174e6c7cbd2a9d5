package groups_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/wandist/wandist/groups"
)

// TestViewAndVersion: View returns the entries held of a peer, sorted,
// with its incarnation and version; ViewVersion the last two.
func TestViewAndVersion(t *testing.T) {
	r, _ := newReg()
	if _, ok := r.View(farA); ok {
		t.Fatal("a view of a peer never heard of")
	}
	c, _ := groups.NewClaim(4, []uint64{1, 3})
	if err := r.ApplySnapshot(farA, 5, 10, []groups.Entry{{Group: "b", Mailbox: 2, Count: 1}, {Group: "a", Mailbox: 9, Count: 2, Claim: c}, {Group: "c", Mailbox: 1, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := r.ApplyDelta(farA, 5, groups.Delta{Version: 11, Op: groups.OpJoin, Group: "b", Mailbox: 3}); err != nil {
		t.Fatal(err)
	}
	s, ok := r.View(farA)
	want := groups.ViewState{Incarnation: 5, Version: 11, Entries: []groups.Entry{
		{Group: "a", Mailbox: 9, Count: 2, Claim: c},
		{Group: "b", Mailbox: 2, Count: 1}, {Group: "b", Mailbox: 3, Count: 1}, {Group: "c", Mailbox: 1, Count: 1}}}
	if !ok || !reflect.DeepEqual(s, want) {
		t.Fatalf("View = %+v, %v; want %+v", s, ok, want)
	}
	if inc, v, ok := r.ViewVersion(farA); !ok || inc != 5 || v != 11 {
		t.Fatalf("ViewVersion = %d, %d, %v", inc, v, ok)
	}
}

// TestApplyIncomingNewer: a snapshot of a lower version than the view of
// the same incarnation leaves the view (marked reachable); one of the same
// or a higher version, or of a newer incarnation, replaces it.
func TestApplyIncomingNewer(t *testing.T) {
	r, _ := newReg()
	apply := func(inc, ver uint64, mailboxes ...uint64) error {
		in := r.NewIncoming(farA)
		for _, mb := range mailboxes {
			in.Add(groups.Entry{Group: "g", Mailbox: mb, Count: 1})
		}
		return r.ApplyIncomingNewer(in, inc, ver)
	}
	if err := apply(5, 10, 1, 2); err != nil {
		t.Fatal(err)
	}
	r.PeerDown(farA)
	if err := apply(5, 9, 7); !errors.Is(err, groups.ErrNotNewer) {
		t.Fatalf("older snapshot: err = %v, want ErrNotNewer", err)
	}
	if got := keys(r.Members("g")); !reflect.DeepEqual(got, []string{"c2/a#1×1", "c2/a#2×1"}) {
		t.Fatalf("after an older snapshot: %v, want the view kept and reachable", got)
	}
	if err := apply(5, 10, 3); err != nil {
		t.Fatal(err)
	}
	if err := apply(6, 1, 4); err != nil {
		t.Fatal(err)
	}
	if got := keys(r.Members("g")); !reflect.DeepEqual(got, []string{"c2/a#4×1"}) {
		t.Fatalf("after newer snapshots: %v", got)
	}
}
