package groups_test

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wandist/wandist/groups"
)

var (
	self    = groups.NodeID{Cluster: "c1", Node: "n1"}
	sibling = groups.NodeID{Cluster: "c1", Node: "n2"} // same cluster
	farA    = groups.NodeID{Cluster: "c2", Node: "a"}
	farB    = groups.NodeID{Cluster: "c3", Node: "b"}
)

// recorder collects the deltas published through onChange.
type recorder struct {
	mu     sync.Mutex
	deltas []groups.Delta
}

func (r *recorder) onChange(d groups.Delta) {
	r.mu.Lock()
	r.deltas = append(r.deltas, d)
	r.mu.Unlock()
}

func (r *recorder) take() []groups.Delta {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.deltas
	r.deltas = nil
	return out
}

func newReg() (*groups.Registry, *recorder) {
	rec := &recorder{}
	return groups.New(self, rec.onChange), rec
}

// key is a member as "cluster/node#mailbox×count[!]" (! = unreachable).
func key(m groups.Member) string {
	s := fmt.Sprintf("%s/%s#%d×%d", m.Cluster, m.Node, m.Mailbox, m.Count)
	if !m.Reachable {
		s += "!"
	}
	return s
}

func keys(ms []groups.Member) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, key(m))
	}
	return out
}

// waitClosed waits for ch to be closed; the timeout only turns a hang into
// a failure, it never delays a passing test.
func waitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Changed channel never closed", what)
	}
}

func mustApplySnapshot(t testing.TB, r *groups.Registry, peer groups.NodeID, inc, ver uint64, es ...groups.Entry) {
	t.Helper()
	if err := r.ApplySnapshot(peer, inc, ver, es); err != nil {
		t.Fatalf("ApplySnapshot(%v, %d, %d): %v", peer, inc, ver, err)
	}
}

func TestJoinLeaveCounted(t *testing.T) {
	type op struct {
		join    bool
		group   string
		mailbox uint64
		wantOK  bool // Leave's answer
	}
	r, rec := newReg()
	steps := []struct {
		op   op
		want []string // LocalMembers("g")
	}{
		{op{true, "g", 7, true}, []string{"c1/n1#7×1"}},
		{op{true, "g", 7, true}, []string{"c1/n1#7×2"}},
		{op{true, "g", 3, true}, []string{"c1/n1#3×1", "c1/n1#7×2"}},
		{op{false, "g", 7, true}, []string{"c1/n1#3×1", "c1/n1#7×1"}},
		{op{false, "g", 7, true}, []string{"c1/n1#3×1"}},
		{op{false, "g", 7, false}, []string{"c1/n1#3×1"}},
		{op{false, "other", 3, false}, []string{"c1/n1#3×1"}},
		{op{false, "g", 3, true}, []string{}},
		{op{false, "g", 3, false}, []string{}},
	}
	published := 0
	for i, st := range steps {
		if st.op.join {
			r.Join(st.op.group, st.op.mailbox)
			published++
		} else {
			if ok := r.Leave(st.op.group, st.op.mailbox); ok != st.op.wantOK {
				t.Fatalf("step %d: Leave(%q, %d) = %v", i, st.op.group, st.op.mailbox, ok)
			}
			if st.op.wantOK {
				published++
			}
		}
		if got := keys(r.LocalMembers("g")); !slices.Equal(got, st.want) {
			t.Fatalf("step %d: LocalMembers = %v, want %v", i, got, st.want)
		}
	}
	if n := len(rec.take()); n != published {
		t.Fatalf("%d deltas published, want %d (a failed Leave publishes nothing)", n, published)
	}
	if g := r.Groups(); len(g) != 0 {
		t.Fatalf("Groups after everyone left = %v", g)
	}
	if _, ok := r.Closest("g"); ok {
		t.Fatal("Closest found a member of an emptied group")
	}
}

func TestRemoveMailbox(t *testing.T) {
	r, rec := newReg()
	for range 3 {
		r.Join("a", 1)
	}
	r.Join("b", 1)
	r.Join("a", 2)
	r.Join("c", 2)
	rec.take()
	r.RemoveMailbox(1)
	got := rec.take()
	if len(got) != 4 {
		t.Fatalf("RemoveMailbox published %d deltas, want 4: %+v", len(got), got)
	}
	perGroup := map[string]int{}
	for i, d := range got {
		if d.Op != groups.OpLeave || d.Mailbox != 1 || d.Version != uint64(7+i) {
			t.Fatalf("delta %d = %+v", i, d)
		}
		perGroup[d.Group]++
	}
	if perGroup["a"] != 3 || perGroup["b"] != 1 {
		t.Fatalf("leaves per group %v", perGroup)
	}
	if g := r.Groups(); len(g) != 2 || g["a"] != 1 || g["c"] != 1 {
		t.Fatalf("Groups = %v", g)
	}
	if got := keys(r.LocalMembers("a")); !slices.Equal(got, []string{"c1/n1#2×1"}) {
		t.Fatalf("LocalMembers(a) = %v", got)
	}
	r.RemoveMailbox(1)
	r.RemoveMailbox(99)
	if d := rec.take(); len(d) != 0 {
		t.Fatalf("removing a non-member published %+v", d)
	}
}

func TestOnChangeVersionsInOrder(t *testing.T) {
	r, rec := newReg()
	r.Join("g", 1)
	r.Join("h", 2)
	r.Leave("g", 1)
	r.Leave("g", 1) // not a member: no version
	r.Join("g", 1)
	want := []groups.Delta{
		{Version: 1, Op: groups.OpJoin, Group: "g", Mailbox: 1},
		{Version: 2, Op: groups.OpJoin, Group: "h", Mailbox: 2},
		{Version: 3, Op: groups.OpLeave, Group: "g", Mailbox: 1},
		{Version: 4, Op: groups.OpJoin, Group: "g", Mailbox: 1},
	}
	if got := rec.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("deltas\n got %+v\nwant %+v", got, want)
	}

	// Concurrent changes: onChange sees consecutive versions in call order.
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				g := fmt.Sprintf("g%d", i%5)
				r.Join(g, uint64(w))
				if !r.Leave(g, uint64(w)) {
					t.Errorf("Leave(%s, %d) = false", g, w)
				}
			}
		})
	}
	wg.Wait()
	got := rec.take()
	if len(got) != 2*workers*each {
		t.Fatalf("%d deltas, want %d", len(got), 2*workers*each)
	}
	for i, d := range got {
		if d.Version != uint64(5+i) {
			t.Fatalf("delta %d has version %d, want %d", i, d.Version, 5+i)
		}
	}
	if v, _ := r.Snapshot(nil); v != uint64(4+2*workers*each) {
		t.Fatalf("Snapshot version %d", v)
	}
}

func TestSnapshotSortedWithVersion(t *testing.T) {
	r := groups.New(self, nil) // nil onChange is allowed
	v, es := r.Snapshot(nil)
	if v != 0 || len(es) != 0 {
		t.Fatalf("empty Snapshot = %d, %v", v, es)
	}
	r.Join("b", 2)
	r.Join("a", 9)
	r.Join("b", 1)
	r.Join("a", 10)
	r.Join("b", 2)
	r.Join("c", 5)
	r.Leave("c", 5)
	want := []groups.Entry{{Group: "a", Mailbox: 9, Count: 1}, {Group: "a", Mailbox: 10, Count: 1}, {Group: "b", Mailbox: 1, Count: 1}, {Group: "b", Mailbox: 2, Count: 2}}
	var cbVersion uint64
	var cbEntries []groups.Entry
	calls := 0
	v, es = r.Snapshot(func(version uint64, entries []groups.Entry) {
		calls++
		cbVersion, cbEntries = version, entries
	})
	if v != 7 || !reflect.DeepEqual(es, want) {
		t.Fatalf("Snapshot = %d, %+v; want 7, %+v", v, es, want)
	}
	if calls != 1 || cbVersion != v || !reflect.DeepEqual(cbEntries, want) {
		t.Fatalf("callback got %d, %+v (%d calls)", cbVersion, cbEntries, calls)
	}
}

// The snapshot callback runs under the registry's lock: a change made by
// another goroutine meanwhile waits, and its delta follows the snapshot.
func TestSnapshotCallbackOrdersWithDeltas(t *testing.T) {
	var inCallback atomic.Bool
	var during atomic.Int32
	var mu sync.Mutex
	var deltas []groups.Delta
	r := groups.New(self, func(d groups.Delta) {
		if inCallback.Load() {
			during.Add(1)
		}
		mu.Lock()
		deltas = append(deltas, d)
		mu.Unlock()
	})
	r.Join("g", 1)
	done := make(chan struct{})
	snapV, _ := r.Snapshot(func(version uint64, entries []groups.Entry) {
		inCallback.Store(true)
		started := make(chan struct{})
		go func() {
			close(started)
			r.Join("g", 2)
			close(done)
		}()
		<-started
		for range 2000 {
			runtime.Gosched()
			select {
			case <-done:
				t.Error("Join completed while the snapshot callback was running")
				inCallback.Store(false)
				return
			default:
			}
		}
		inCallback.Store(false)
	})
	<-done
	if during.Load() != 0 {
		t.Fatal("onChange ran during the snapshot callback")
	}
	mu.Lock()
	defer mu.Unlock()
	if snapV != 1 || len(deltas) != 2 || deltas[1].Version != snapV+1 || deltas[1].Mailbox != 2 {
		t.Fatalf("snapshot version %d, deltas %+v", snapV, deltas)
	}
}

// A peer that applies the snapshot and then every delta published after it,
// while other goroutines keep changing the membership, ends with an exact
// copy: no delta is missed, none is applied twice.
func TestSnapshotPlusDeltasIsExact(t *testing.T) {
	type event struct {
		snap    bool
		version uint64
		entries []groups.Entry
		delta   groups.Delta
	}
	var (
		mu         sync.Mutex
		stream     []event
		subscribed bool // guarded by the registry's lock (set in the callback)
	)
	r := groups.New(self, func(d groups.Delta) {
		if subscribed {
			mu.Lock()
			stream = append(stream, event{delta: d})
			mu.Unlock()
		}
	})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			<-start
			for i := range 300 {
				mb := uint64(w*1000 + i%7)
				r.Join(fmt.Sprintf("g%d", i%3), mb)
				if i%3 == 0 {
					r.RemoveMailbox(mb)
				}
			}
		})
	}
	close(start)
	for { // subscribe in the middle of the changes
		ch := r.Changed()
		if v, _ := r.Snapshot(nil); v >= 200 {
			break
		}
		waitClosed(t, ch, "joins in progress")
	}
	r.Snapshot(func(version uint64, entries []groups.Entry) {
		subscribed = true
		mu.Lock()
		stream = append(stream, event{snap: true, version: version, entries: entries})
		mu.Unlock()
	})
	wg.Wait()

	peer := groups.New(farA, nil)
	for i, ev := range stream {
		var err error
		if ev.snap {
			err = peer.ApplySnapshot(self, 1, ev.version, ev.entries)
		} else {
			err = peer.ApplyDelta(self, 1, ev.delta)
		}
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	_, want := r.Snapshot(nil)
	for _, g := range []string{"g0", "g1", "g2"} {
		var got []groups.Entry
		for _, m := range peer.Members(g) {
			got = append(got, groups.Entry{Group: g, Mailbox: m.Mailbox, Count: m.Count})
		}
		var exp []groups.Entry
		for _, e := range want {
			if e.Group == g {
				exp = append(exp, e)
			}
		}
		if !reflect.DeepEqual(got, exp) && !(len(got) == 0 && len(exp) == 0) {
			t.Fatalf("group %s: peer sees %+v, registry has %+v", g, got, exp)
		}
	}
}

func TestApplySnapshotThenDeltas(t *testing.T) {
	r, _ := newReg()
	mustApplySnapshot(t, r, farA, 5, 10,
		groups.Entry{Group: "g", Mailbox: 1, Count: 2},
		groups.Entry{Group: "g", Mailbox: 2, Count: 1},
		groups.Entry{Group: "g", Mailbox: 2, Count: 1}, // duplicates add up
		groups.Entry{Group: "h", Mailbox: 3, Count: 0}, // ignored
		groups.Entry{Group: "h", Mailbox: 4, Count: -1},
	)
	if got := keys(r.Members("g")); !slices.Equal(got, []string{"c2/a#1×2", "c2/a#2×2"}) {
		t.Fatalf("after snapshot: %v", got)
	}
	if g := r.Groups(); len(g) != 1 {
		t.Fatalf("Groups = %v: empty entries made a group", g)
	}
	steps := []struct {
		d       groups.Delta
		inc     uint64
		wantErr error
		want    []string // Members("g")
	}{
		{groups.Delta{Version: 9, Op: groups.OpLeave, Group: "g", Mailbox: 1}, 5, nil, []string{"c2/a#1×2", "c2/a#2×2"}},  // covered by the snapshot
		{groups.Delta{Version: 10, Op: groups.OpLeave, Group: "g", Mailbox: 1}, 5, nil, []string{"c2/a#1×2", "c2/a#2×2"}}, // covered
		{groups.Delta{Version: 11, Op: groups.OpLeave, Group: "g", Mailbox: 1}, 5, nil, []string{"c2/a#1×1", "c2/a#2×2"}},
		{groups.Delta{Version: 13, Op: groups.OpJoin, Group: "g", Mailbox: 9}, 5, groups.ErrVersionGap, []string{"c2/a#1×1", "c2/a#2×2"}},
		{groups.Delta{Version: 12, Op: groups.OpJoin, Group: "g", Mailbox: 9}, 4, groups.ErrStale, []string{"c2/a#1×1", "c2/a#2×2"}},
		{groups.Delta{Version: 12, Op: groups.OpJoin, Group: "g", Mailbox: 9}, 6, groups.ErrVersionGap, []string{"c2/a#1×1", "c2/a#2×2"}}, // new incarnation: needs its snapshot
		{groups.Delta{Version: 12, Op: groups.OpJoin, Group: "g", Mailbox: 9}, 5, nil, []string{"c2/a#1×1", "c2/a#2×2", "c2/a#9×1"}},
		{groups.Delta{Version: 13, Op: groups.OpLeave, Group: "g", Mailbox: 1}, 5, nil, []string{"c2/a#2×2", "c2/a#9×1"}},
		{groups.Delta{Version: 14, Op: groups.OpLeave, Group: "g", Mailbox: 1}, 5, nil, []string{"c2/a#2×2", "c2/a#9×1"}}, // not a member: no-op
		{groups.Delta{Version: 15, Op: groups.OpJoin, Group: "h", Mailbox: 1}, 5, nil, []string{"c2/a#2×2", "c2/a#9×1"}},
		{groups.Delta{Version: 16, Op: groups.OpJoin, Group: "g", Mailbox: 2}, 5, nil, []string{"c2/a#2×3", "c2/a#9×1"}},
		{groups.Delta{Version: 17, Op: groups.OpLeave, Group: "g", Mailbox: 2}, 5, nil, []string{"c2/a#2×2", "c2/a#9×1"}},
		{groups.Delta{Version: 18, Op: groups.OpLeave, Group: "g", Mailbox: 2}, 5, nil, []string{"c2/a#2×1", "c2/a#9×1"}},
		{groups.Delta{Version: 19, Op: groups.OpLeave, Group: "g", Mailbox: 2}, 5, nil, []string{"c2/a#9×1"}},
		{groups.Delta{Version: 20, Op: groups.OpLeave, Group: "g", Mailbox: 9}, 5, nil, []string{}},
	}
	for i, st := range steps {
		err := r.ApplyDelta(farA, st.inc, st.d)
		if st.wantErr == nil && err != nil || st.wantErr != nil && !errors.Is(err, st.wantErr) {
			t.Fatalf("step %d: ApplyDelta(inc %d, %+v) = %v, want %v", i, st.inc, st.d, err, st.wantErr)
		}
		if got := keys(r.Members("g")); !slices.Equal(got, st.want) {
			t.Fatalf("step %d: Members = %v, want %v", i, got, st.want)
		}
	}
	if g := r.Groups(); len(g) != 1 || g["h"] != 1 {
		t.Fatalf("Groups = %v", g)
	}
	if err := r.ApplyDelta(farA, 5, groups.Delta{Version: 21, Op: 7, Group: "h", Mailbox: 5}); err == nil || errors.Is(err, groups.ErrVersionGap) || errors.Is(err, groups.ErrStale) {
		t.Fatalf("unknown op: %v", err)
	}
	if err := r.ApplyDelta(farB, 1, groups.Delta{Version: 1, Op: groups.OpJoin, Group: "g", Mailbox: 1}); !errors.Is(err, groups.ErrVersionGap) {
		t.Fatalf("delta before any snapshot = %v, want ErrVersionGap", err)
	}
	if len(r.Members("g")) != 0 {
		t.Fatal("a rejected delta changed the membership")
	}
}

func TestApplySnapshotIncarnations(t *testing.T) {
	r, _ := newReg()
	mustApplySnapshot(t, r, farA, 5, 3, groups.Entry{Group: "g", Mailbox: 1, Count: 1}, groups.Entry{Group: "old", Mailbox: 2, Count: 1})
	r.SetRTT(farA, 40*time.Millisecond)
	mustApplySnapshot(t, r, farB, 1, 0, groups.Entry{Group: "g", Mailbox: 5, Count: 1})
	r.SetRTT(farB, 30*time.Millisecond)

	// Older incarnation: refused, nothing changes.
	if err := r.ApplySnapshot(farA, 4, 100, []groups.Entry{{Group: "g", Mailbox: 77, Count: 1}}); !errors.Is(err, groups.ErrStale) {
		t.Fatalf("older snapshot = %v, want ErrStale", err)
	}
	if got := keys(r.Members("g")); !slices.Equal(got, []string{"c2/a#1×1", "c3/b#5×1"}) {
		t.Fatalf("after stale snapshot: %v", got)
	}
	// Newer incarnation: replaces the whole view, versions restart.
	mustApplySnapshot(t, r, farA, 6, 0, groups.Entry{Group: "g", Mailbox: 8, Count: 1})
	if got := keys(r.Members("g")); !slices.Equal(got, []string{"c2/a#8×1", "c3/b#5×1"}) {
		t.Fatalf("after new incarnation: %v", got)
	}
	if g := r.Groups(); g["old"] != 0 || len(g) != 1 {
		t.Fatalf("Groups = %v", g)
	}
	if err := r.ApplyDelta(farA, 6, groups.Delta{Version: 1, Op: groups.OpJoin, Group: "g", Mailbox: 9}); err != nil {
		t.Fatalf("first delta of the new incarnation: %v", err)
	}
	if err := r.ApplyDelta(farA, 5, groups.Delta{Version: 4, Op: groups.OpJoin, Group: "g", Mailbox: 9}); !errors.Is(err, groups.ErrStale) {
		t.Fatalf("delta of the old incarnation = %v, want ErrStale", err)
	}
	// The RTT survives a new snapshot: farA (40ms) still loses to farB (30ms).
	for range 50 {
		if m, ok := r.Closest("g"); !ok || m.Node != "b" {
			t.Fatalf("Closest = %+v, %v; want farB", m, ok)
		}
	}
	// Same incarnation again (a reconnect): the snapshot replaces the view.
	mustApplySnapshot(t, r, farA, 6, 9)
	if got := keys(r.Members("g")); !slices.Equal(got, []string{"c3/b#5×1"}) {
		t.Fatalf("after empty snapshot: %v", got)
	}
}

// A peer that goes down keeps its members, unreachable, however long it
// is away; its next snapshot makes them reachable again, and ForgetPeer
// (GoAway, reload) removes them.
func TestPeerDownKeepsMembers(t *testing.T) {
	r, _ := newReg()
	mustApplySnapshot(t, r, farA, 1, 0, groups.Entry{Group: "g", Mailbox: 1, Count: 1})
	mustApplySnapshot(t, r, farB, 1, 0, groups.Entry{Group: "g", Mailbox: 2, Count: 1})
	mustApplySnapshot(t, r, sibling, 1, 0, groups.Entry{Group: "g", Mailbox: 3, Count: 1})
	r.Join("g", 4)

	r.PeerDown(farA)
	r.PeerDown(farA) // already down
	r.PeerDown(farB)
	r.PeerDown(groups.NodeID{Cluster: "zz", Node: "unknown"})
	want := []string{"c1/n1#4×1", "c1/n2#3×1", "c2/a#1×1!", "c3/b#2×1!"}
	if got := keys(r.Members("g")); !slices.Equal(got, want) {
		t.Fatalf("after PeerDown: %v, want %v", got, want)
	}
	// Down peers still take deltas in order, and routing still finds them.
	if err := r.ApplyDelta(farA, 1, groups.Delta{Version: 1, Op: groups.OpJoin, Group: "h", Mailbox: 5}); err != nil {
		t.Fatalf("delta of a down peer = %v", err)
	}
	if ms, err := r.Pick("h", groups.Random, "", nil); err != nil || len(ms) != 1 || ms[0].Mailbox != 5 || ms[0].Reachable {
		t.Fatalf("Pick among unreachable members = %+v, %v", ms, err)
	}
	// A snapshot makes the peer reachable again.
	mustApplySnapshot(t, r, farB, 1, 1, groups.Entry{Group: "g", Mailbox: 2, Count: 1})
	want = []string{"c1/n1#4×1", "c1/n2#3×1", "c2/a#1×1!", "c3/b#2×1"}
	if got := keys(r.Members("g")); !slices.Equal(got, want) {
		t.Fatalf("after farB's snapshot: %v, want %v", got, want)
	}
	r.ForgetPeer(farA)
	if got := keys(r.Members("g")); !slices.Equal(got, []string{"c1/n1#4×1", "c1/n2#3×1", "c3/b#2×1"}) {
		t.Fatalf("after ForgetPeer: %v", got)
	}
}

func TestMembersOrderAndGroups(t *testing.T) {
	// self sorts after these peers by name: local must still come first.
	me := groups.NodeID{Cluster: "zz", Node: "zz"}
	r := groups.New(me, nil)
	mustApplySnapshot(t, r, groups.NodeID{Cluster: "b", Node: "2"}, 1, 0, groups.Entry{Group: "g", Mailbox: 5, Count: 1}, groups.Entry{Group: "g", Mailbox: 1, Count: 3})
	mustApplySnapshot(t, r, groups.NodeID{Cluster: "a", Node: "9"}, 1, 0, groups.Entry{Group: "g", Mailbox: 7, Count: 1}, groups.Entry{Group: "h", Mailbox: 7, Count: 1})
	mustApplySnapshot(t, r, groups.NodeID{Cluster: "b", Node: "1"}, 1, 0, groups.Entry{Group: "g", Mailbox: 8, Count: 1})
	mustApplySnapshot(t, r, groups.NodeID{Cluster: "zz", Node: "a"}, 1, 0, groups.Entry{Group: "g", Mailbox: 1, Count: 1})
	r.Join("g", 9)
	r.Join("g", 2)
	r.Join("g", 2)
	r.Join("local", 1)
	want := []string{"zz/zz#2×2", "zz/zz#9×1", "a/9#7×1", "b/1#8×1", "b/2#1×3", "b/2#5×1", "zz/a#1×1"}
	for range 20 { // map order varies from call to call
		if got := keys(r.Members("g")); !slices.Equal(got, want) {
			t.Fatalf("Members = %v\nwant %v", got, want)
		}
	}
	if got := keys(r.LocalMembers("g")); !slices.Equal(got, want[:2]) {
		t.Fatalf("LocalMembers = %v", got)
	}
	if got := r.LocalMembers("h"); len(got) != 0 {
		t.Fatalf("LocalMembers(h) = %v", got)
	}
	if got := r.Members("nope"); len(got) != 0 {
		t.Fatalf("Members(nope) = %v", got)
	}
	wantG := map[string]int{"g": 7, "h": 1, "local": 1}
	g := r.Groups()
	if len(g) != len(wantG) {
		t.Fatalf("Groups = %v, want %v", g, wantG)
	}
	for k, v := range wantG {
		if g[k] != v {
			t.Fatalf("Groups = %v, want %v", g, wantG)
		}
	}
}

func TestClosest(t *testing.T) {
	type peer struct {
		id      groups.NodeID
		rtt     time.Duration
		down    bool
		members []uint64 // in group "g"
	}
	ms := func(xs ...uint64) []uint64 { return xs }
	for _, tc := range []struct {
		name  string
		local []uint64
		peers []peer
		want  []string // every acceptable answer, each must come up; nil: ok=false
	}{
		{"unknown group", nil, []peer{{id: farA, members: nil}}, nil},
		{"local first", ms(1), []peer{{id: sibling, members: ms(2)}, {id: farA, members: ms(3)}}, []string{"c1/n1#1"}},
		{"local beats everything, random among local", ms(1, 2, 3), []peer{{id: sibling, members: ms(4)}}, []string{"c1/n1#1", "c1/n1#2", "c1/n1#3"}},
		{"same cluster before faster remote", nil, []peer{{id: sibling, rtt: 90 * time.Millisecond, members: ms(2)}, {id: farA, rtt: time.Millisecond, members: ms(3)}}, []string{"c1/n2#2"}},
		{"unreachable sibling loses to remote", nil, []peer{{id: sibling, down: true, members: ms(2)}, {id: farA, rtt: 80 * time.Millisecond, members: ms(3)}}, []string{"c2/a#3"}},
		{"lowest RTT remote", nil, []peer{{id: farA, rtt: 50 * time.Millisecond, members: ms(3)}, {id: farB, rtt: 20 * time.Millisecond, members: ms(4, 5)}}, []string{"c3/b#4", "c3/b#5"}},
		{"lowest RTT remote, other order", nil, []peer{{id: farB, rtt: 20 * time.Millisecond, members: ms(4)}, {id: farA, rtt: 50 * time.Millisecond, members: ms(3)}}, []string{"c3/b#4"}},
		{"equal RTT: random over nodes", nil, []peer{{id: farA, rtt: 20 * time.Millisecond, members: ms(3)}, {id: farB, rtt: 20 * time.Millisecond, members: ms(4)}}, []string{"c2/a#3", "c3/b#4"}},
		{"equal RTT: uniform over members", nil, []peer{{id: farA, rtt: 20 * time.Millisecond, members: ms(1, 2, 3)}, {id: farB, rtt: 20 * time.Millisecond, members: ms(4)}, {id: sibling, down: true, members: ms(9)}}, []string{"c2/a#1", "c2/a#2", "c2/a#3", "c3/b#4"}},
		{"reachable slow beats unreachable fast", nil, []peer{{id: farA, rtt: time.Second, members: ms(3)}, {id: farB, rtt: time.Millisecond, down: true, members: ms(4)}}, []string{"c2/a#3"}},
		{"all unreachable: lowest RTT", nil, []peer{{id: sibling, rtt: 9 * time.Millisecond, down: true, members: ms(2)}, {id: farA, rtt: 5 * time.Millisecond, down: true, members: ms(3)}, {id: farB, rtt: 7 * time.Millisecond, down: true, members: ms(4)}}, []string{"c2/a#3!"}},
		{"same cluster: lowest RTT sibling", nil, []peer{{id: sibling, rtt: 9 * time.Millisecond, members: ms(2)}, {id: groups.NodeID{Cluster: "c1", Node: "n3"}, rtt: 3 * time.Millisecond, members: ms(5, 6)}}, []string{"c1/n3#5", "c1/n3#6"}},
		{"peer without the group is ignored", nil, []peer{{id: sibling, members: nil}, {id: farA, rtt: time.Second, members: ms(3)}}, []string{"c2/a#3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := groups.New(self, nil)
			for _, mb := range tc.local {
				r.Join("g", mb)
			}
			r.Join("other", 100)
			for _, p := range tc.peers {
				es := []groups.Entry{{Group: "other", Mailbox: 200, Count: 1}}
				for _, mb := range p.members {
					es = append(es, groups.Entry{Group: "g", Mailbox: mb, Count: 1})
				}
				mustApplySnapshot(t, r, p.id, 1, 0, es...)
				r.SetRTT(p.id, p.rtt)
				if p.down {
					r.PeerDown(p.id)
				}
			}
			const calls = 2000
			seen := map[string]int{}
			for range calls {
				m, ok := r.Closest("g")
				if ok != (tc.want != nil) {
					t.Fatalf("Closest ok = %v (%+v)", ok, m)
				}
				if !ok {
					if m != (groups.Member{}) {
						t.Fatalf("not ok, but member %+v", m)
					}
					continue
				}
				k := fmt.Sprintf("%s/%s#%d", m.Cluster, m.Node, m.Mailbox)
				if !m.Reachable {
					k += "!"
				}
				if m.Count != 1 {
					t.Fatalf("Count %d", m.Count)
				}
				seen[k]++
			}
			for k := range seen {
				if !slices.Contains(tc.want, k) {
					t.Fatalf("Closest picked %s; want one of %v", k, tc.want)
				}
			}
			// Uniform among equals: each within 40% of its share (10σ).
			for _, k := range tc.want {
				share := calls / len(tc.want)
				if n := seen[k]; n < share*6/10 || n > share*14/10 {
					t.Fatalf("Closest picked %s %d times in %d calls, want about %d: %v", k, n, calls, share, seen)
				}
			}
			if _, ok := r.Closest("nope"); ok {
				t.Fatal("Closest(nope) ok")
			}
		})
	}
}

func TestSetRTTUnknownPeer(t *testing.T) {
	r := groups.New(self, nil)
	r.SetRTT(farA, time.Second) // no view: nothing to record, no panic
	mustApplySnapshot(t, r, farA, 1, 0, groups.Entry{Group: "g", Mailbox: 1, Count: 1})
	mustApplySnapshot(t, r, farB, 1, 0, groups.Entry{Group: "g", Mailbox: 2, Count: 1})
	r.SetRTT(farA, 5*time.Millisecond)
	r.SetRTT(farB, 6*time.Millisecond)
	for range 50 {
		if m, _ := r.Closest("g"); m.Node != "a" {
			t.Fatalf("Closest = %+v", m)
		}
	}
	r.SetRTT(farA, 7*time.Millisecond) // RTTs change
	for range 50 {
		if m, _ := r.Closest("g"); m.Node != "b" {
			t.Fatalf("Closest after SetRTT = %+v", m)
		}
	}
}

func TestChanged(t *testing.T) {
	stranger := groups.NodeID{Cluster: "zz", Node: "nobody"}
	setup := func() *groups.Registry {
		r := groups.New(self, nil)
		r.Join("g", 1)
		mustApplySnapshot(t, r, farA, 2, 5, groups.Entry{Group: "g", Mailbox: 7, Count: 1})
		mustApplySnapshot(t, r, farB, 1, 0, groups.Entry{Group: "g", Mailbox: 8, Count: 1})
		r.PeerDown(farB)
		return r
	}
	for _, tc := range []struct {
		name   string
		change func(*groups.Registry)
		want   bool
	}{
		{"Join", func(r *groups.Registry) { r.Join("g", 2) }, true},
		{"Join again", func(r *groups.Registry) { r.Join("g", 1) }, true},
		{"Leave", func(r *groups.Registry) { r.Leave("g", 1) }, true},
		{"Leave of a non-member", func(r *groups.Registry) { r.Leave("g", 2) }, false},
		{"RemoveMailbox", func(r *groups.Registry) { r.RemoveMailbox(1) }, true},
		{"RemoveMailbox of a non-member", func(r *groups.Registry) { r.RemoveMailbox(2) }, false},
		{"ApplySnapshot", func(r *groups.Registry) { _ = r.ApplySnapshot(farA, 2, 6, nil) }, true},
		{"ApplySnapshot of a new peer", func(r *groups.Registry) { _ = r.ApplySnapshot(sibling, 1, 0, nil) }, true},
		{"stale ApplySnapshot", func(r *groups.Registry) { _ = r.ApplySnapshot(farA, 1, 6, nil) }, false},
		{"ApplyDelta", func(r *groups.Registry) {
			_ = r.ApplyDelta(farA, 2, groups.Delta{Version: 6, Op: groups.OpJoin, Group: "g", Mailbox: 9})
		}, true},
		{"ApplyDelta covered by the snapshot", func(r *groups.Registry) {
			_ = r.ApplyDelta(farA, 2, groups.Delta{Version: 5, Op: groups.OpJoin, Group: "g", Mailbox: 9})
		}, false},
		{"ApplyDelta with a gap", func(r *groups.Registry) {
			_ = r.ApplyDelta(farA, 2, groups.Delta{Version: 7, Op: groups.OpJoin, Group: "g", Mailbox: 9})
		}, false},
		{"stale ApplyDelta", func(r *groups.Registry) {
			_ = r.ApplyDelta(farA, 1, groups.Delta{Version: 6, Op: groups.OpJoin, Group: "g", Mailbox: 9})
		}, false},
		{"PeerDown", func(r *groups.Registry) { r.PeerDown(farA) }, true},
		{"PeerDown of a down peer", func(r *groups.Registry) { r.PeerDown(farB) }, false},
		{"PeerDown of a stranger", func(r *groups.Registry) { r.PeerDown(stranger) }, false},
		{"ForgetPeer", func(r *groups.Registry) { r.ForgetPeer(farA) }, true},
		{"ForgetPeer of a stranger", func(r *groups.Registry) { r.ForgetPeer(stranger) }, false},
		{"SetRTT", func(r *groups.Registry) { r.SetRTT(farA, time.Second) }, false},
		{"reads", func(r *groups.Registry) {
			r.Snapshot(nil)
			r.Members("g")
			r.LocalMembers("g")
			r.Groups()
			r.Closest("g")
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := setup()
			ch := r.Changed()
			if r.Changed() != ch {
				t.Fatal("Changed returned a new channel without a change")
			}
			tc.change(r)
			select {
			case <-ch:
				if !tc.want {
					t.Fatal("Changed closed without a membership change")
				}
				next := r.Changed()
				select {
				case <-next:
					t.Fatal("the channel after a change is already closed")
				default:
				}
			default:
				if tc.want {
					t.Fatal("Changed not closed by a change")
				}
			}
		})
	}
}

// A waiter on Changed wakes up for a change made by another goroutine.
func TestChangedWakesWaiter(t *testing.T) {
	r := groups.New(self, nil)
	ch := r.Changed()
	go r.Join("g", 1)
	waitClosed(t, ch, "Join")
	if len(r.Members("g")) != 1 {
		t.Fatal("woken before the change is visible")
	}
}

func BenchmarkClosest(b *testing.B) {
	for _, bc := range []struct {
		name  string
		local bool
		pick  bool // through Pick(Closest), as the daemon sends
	}{{"remote", false, false}, {"local", true, false}, {"pick-remote", false, true}, {"pick-local", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			r := groups.New(self, nil)
			if bc.local {
				for mb := range 8 {
					r.Join("g", uint64(mb))
				}
			}
			for n := range 32 {
				id := groups.NodeID{Cluster: fmt.Sprintf("c%d", n%4), Node: fmt.Sprintf("n%d", n)}
				var es []groups.Entry
				for mb := range 16 {
					es = append(es, groups.Entry{Group: "g", Mailbox: uint64(mb), Count: 1})
				}
				es = append(es, groups.Entry{Group: "h", Mailbox: 1, Count: 1})
				if err := r.ApplySnapshot(id, 1, 0, es); err != nil {
					b.Fatal(err)
				}
				r.SetRTT(id, time.Duration(n%3+1)*time.Millisecond)
			}
			b.ReportAllocs()
			for b.Loop() {
				if bc.pick {
					if _, err := r.Pick("g", groups.Closest, "", nil); err != nil {
						b.Fatal(err)
					}
				} else if _, ok := r.Closest("g"); !ok {
					b.Fatal("no member")
				}
			}
		})
	}
}

// Closest caches its answer per group; every kind of change must show in
// the next answer: joins and leaves, snapshots, RTT, reachability, a
// forgotten peer.
// Closest, and ClosestCached through one cache kept across the steps (and
// asked for another group in between), follow every change.
func TestClosestFollowsChanges(t *testing.T) {
	r := groups.New(self, nil)
	r.Join("h", 99)
	var cache groups.ClosestCache
	want := func(step, member string) {
		t.Helper()
		for i := range 50 {
			m, ok := r.Closest("g")
			if i%2 == 1 {
				m, ok = r.ClosestCached("g", &cache)
			}
			got := "none"
			if ok {
				got = fmt.Sprintf("%s/%s#%d", m.Cluster, m.Node, m.Mailbox)
			}
			if got != member {
				t.Fatalf("%s: Closest (cached: %v) = %s, want %s", step, i%2 == 1, got, member)
			}
			if i == 20 { // the cache holds "g" at the end of the step
				if m, ok := r.ClosestCached("h", &cache); !ok || m.Mailbox != 99 {
					t.Fatalf("%s: ClosestCached(h) = %+v, %v", step, m, ok)
				}
			}
		}
	}
	want("empty", "none")
	r.Join("g", 1)
	want("local join", "c1/n1#1")
	mustApplySnapshot(t, r, farA, 1, 0, groups.Entry{Group: "g", Mailbox: 3, Count: 1})
	r.SetRTT(farA, 50*time.Millisecond)
	want("remote joins, local still first", "c1/n1#1")
	r.Leave("g", 1)
	want("local left", "c2/a#3")
	mustApplySnapshot(t, r, farB, 1, 0, groups.Entry{Group: "g", Mailbox: 4, Count: 1})
	r.SetRTT(farB, 80*time.Millisecond)
	want("slower remote", "c2/a#3")
	r.SetRTT(farB, 10*time.Millisecond)
	want("RTT changed", "c3/b#4")
	r.PeerDown(farB)
	want("faster one down", "c2/a#3")
	r.ForgetPeer(farA)
	want("other forgotten", "c3/b#4")
	if err := r.ApplyDelta(farB, 1, groups.Delta{Version: 1, Op: groups.OpLeave, Group: "g", Mailbox: 4}); err != nil {
		t.Fatal(err)
	}
	want("left by delta", "none")
	r.Join("g", 7)
	r.RemoveMailbox(7)
	want("mailbox removed", "none")
}
