package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/groups"
)

// mesh starts one node per cluster name, every pair linked (the smaller
// name dials), over tr. cfgs, if given, adjusts each config before start.
func mesh(t testing.TB, tr string, names []string, adjust func(*node)) []*node {
	t.Helper()
	ns := make([]*node, len(names))
	for i, c := range names {
		ns[i] = newNode(t, tr, c, c+"-1")
		if adjust != nil {
			adjust(ns[i])
		}
	}
	// Start in reverse order so that each dialler finds its peer listening.
	for i := len(ns) - 1; i >= 0; i-- {
		n := ns[i]
		for j, o := range ns {
			switch {
			case j < i:
				n.cfg.Peers = append(n.cfg.Peers, peerOf(o, tr, "", "accept"))
			case j > i:
				n.cfg.Peers = append(n.cfg.Peers, peerOf(o, tr, o.addr(tr), "connect"))
			}
		}
		n.start()
	}
	for _, n := range ns {
		for _, o := range ns {
			if o != n {
				waitLink(t, n.d, o.cfg.Cluster, o.cfg.Node)
			}
		}
	}
	return ns
}

// waitGroup waits until every node sees exactly want reachable members of group.
func waitGroup(t testing.TB, ns []*node, group string, want int) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	for _, n := range ns {
		for {
			ch := n.d.Groups().Changed()
			got := 0
			for _, m := range n.d.Groups().Members(group) {
				if m.Reachable {
					got++
				}
			}
			if got == want {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				t.Fatalf("%s sees %d members of %q, want %d", n.cfg.Cluster, got, group, want)
			}
		}
	}
}

func TestKeyRoutingPartitioned(t *testing.T) {
	ns := mesh(t, "mem", []string{"east", "north", "west"}, nil)
	east, north, west := ns[0], ns[1], ns[2]
	const N = 8
	wc, nc := connect(t, west), connect(t, north)
	wmb, _ := wc.NewMailbox(ctxT(t, 5*time.Second))
	nmb, _ := nc.NewMailbox(ctxT(t, 5*time.Second))
	if err := wmb.JoinPartitions(ctxT(t, 5*time.Second), "kv", N, 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := nmb.JoinPartitions(ctxT(t, 5*time.Second), "kv", N, 4, 5, 6, 7); err != nil {
		t.Fatal(err)
	}
	// A claim with another partition count is refused.
	if err := nmb.JoinPartitions(ctxT(t, 5*time.Second), "kv", 16, 1); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("join with a different partition count: %v", err)
	}
	waitGroup(t, ns, "kv", 2)
	// Every node routes every key to the same owner: the owner of its partition.
	for i := 0; i < 200; i++ {
		key := "key-" + strconv.Itoa(i)
		want := wmb.Addr()
		if groups.Partition(key, N) >= 4 {
			want = nmb.Addr()
		}
		for _, n := range ns {
			ms, err := n.d.Groups().Pick("kv", groups.Key, key, nil)
			if err != nil || len(ms) != 1 || ms[0].Cluster != want.Cluster || ms[0].Mailbox != want.Mailbox {
				t.Fatalf("%s routes %q to %+v (%v), want %v", n.cfg.Cluster, key, ms, err, want)
			}
		}
	}
	// And messages really go there.
	ec := connect(t, east)
	for i := 0; i < 20; i++ {
		key := "k" + strconv.Itoa(i)
		if err := ec.SendGroup(ctxT(t, 5*time.Second), "kv", []byte(key), client.WithKey(key)); err != nil {
			t.Fatal(err)
		}
		mb := wmb
		if groups.Partition(key, N) >= 4 {
			mb = nmb
		}
		m, err := mb.Receive(ctxT(t, 5*time.Second))
		if err != nil || string(m.Payload) != key {
			t.Fatalf("key %s: %v %v", key, m, err)
		}
	}
	// A partition without an owner fails fast; no other owner takes the key.
	if err := nmb.Leave(ctxT(t, 5*time.Second), "kv"); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, ns, "kv", 1)
	for i := 0; ; i++ {
		key := "x" + strconv.Itoa(i)
		if groups.Partition(key, N) < 4 {
			continue
		}
		err := ec.SendGroup(ctxT(t, 5*time.Second), "kv", []byte(key), client.WithKey(key))
		if !errors.Is(err, client.ErrNoMembers) {
			t.Fatalf("key of an unowned partition: %v, want ErrNoMembers", err)
		}
		break
	}
}

func TestRendezvousMovesOnlyTheKeysItMust(t *testing.T) {
	ns := mesh(t, "mem", []string{"east", "north", "west"}, nil)
	var mbs []*client.Mailbox
	for _, n := range ns {
		c := connect(t, n)
		for range 2 {
			mb, _ := c.NewMailbox(ctxT(t, 5*time.Second))
			if err := mb.Join(ctxT(t, 5*time.Second), "svc"); err != nil {
				t.Fatal(err)
			}
			mbs = append(mbs, mb)
		}
	}
	waitGroup(t, ns, "svc", 6)
	owners := func(n *node) map[string]groups.Member {
		out := map[string]groups.Member{}
		for i := 0; i < 1000; i++ {
			k := strconv.Itoa(i)
			ms, err := n.d.Groups().Pick("svc", groups.Key, k, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := ms[0]
			m.Reachable, m.Count = false, 0
			out[k] = m
		}
		return out
	}
	before := owners(ns[0])
	for _, n := range ns[1:] {
		if got := owners(n); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Fatalf("%s assigns keys differently from %s", n.cfg.Cluster, ns[0].cfg.Cluster)
		}
	}
	gone := mbs[3].Addr()
	if err := mbs[3].Leave(ctxT(t, 5*time.Second), "svc"); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, ns, "svc", 5)
	after := owners(ns[0])
	moved := 0
	for k, m := range before {
		if after[k] != m {
			moved++
			if m.Mailbox != gone.Mailbox {
				t.Fatalf("key %s moved from %v to %v although its owner stayed", k, m, after[k])
			}
		}
	}
	if moved == 0 {
		t.Fatal("the member that left owned no key (suspicious spread)")
	}
}

func TestStrategies(t *testing.T) {
	ns := mesh(t, "mem", []string{"east", "north", "west"}, nil)
	var mbs []*client.Mailbox
	for _, n := range ns[1:] {
		c := connect(t, n)
		mb, _ := c.NewMailbox(ctxT(t, 5*time.Second))
		if err := mb.Join(ctxT(t, 5*time.Second), "w"); err != nil {
			t.Fatal(err)
		}
		mbs = append(mbs, mb)
	}
	waitGroup(t, ns, "w", 2)
	ec := connect(t, ns[0])
	count := func(n int, opts ...client.SendOption) []int {
		for i := 0; i < n; i++ {
			if err := ec.SendGroup(ctxT(t, 5*time.Second), "w", []byte("x"), opts...); err != nil {
				t.Fatal(err)
			}
		}
		// Drain: each mailbox's count.
		if err := ec.SendGroup(ctxT(t, 5*time.Second), "w", []byte("end"), client.WithStrategy(client.Broadcast)); err != nil {
			t.Fatal(err)
		}
		out := make([]int, len(mbs))
		for i, mb := range mbs {
			for {
				m, err := mb.Receive(ctxT(t, 5*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				if string(m.Payload) == "end" {
					break
				}
				out[i]++
			}
		}
		return out
	}
	if got := count(10, client.WithStrategy(client.RoundRobin)); got[0] != 5 || got[1] != 5 {
		t.Fatalf("round-robin spread %v, want 5/5", got)
	}
	if got := count(3, client.WithStrategy(client.Broadcast)); got[0] != 3 || got[1] != 3 {
		t.Fatalf("broadcast reached %v, want 3/3", got)
	}
	if got := count(200, client.WithStrategy(client.Random)); got[0] == 0 || got[1] == 0 || got[0]+got[1] != 200 {
		t.Fatalf("random spread %v", got)
	}
	if got := count(50, client.WithStrategy(client.LeastBacklog)); got[0]+got[1] != 50 {
		t.Fatalf("least-backlog delivered %v", got)
	}
	if err := ec.SendGroup(ctxT(t, 5*time.Second), "w", []byte("x"), client.WithStrategy(99)); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("unknown strategy: %v", err)
	}
}

func TestExportRules(t *testing.T) {
	ns := mesh(t, "mem", []string{"east", "west"}, func(n *node) {
		if n.cfg.Cluster == "east" {
			n.cfg.Exports = []configs.Export{{Groups: []string{"pub-*"}, To: []string{"west"}}}
		}
	})
	east, west := ns[0], ns[1]
	ec := connect(t, east)
	pubMb, _ := ec.NewMailbox(ctxT(t, 5*time.Second))
	privMb, _ := ec.NewMailbox(ctxT(t, 5*time.Second))
	if err := pubMb.Join(ctxT(t, 5*time.Second), "pub-a"); err != nil {
		t.Fatal(err)
	}
	if err := privMb.Join(ctxT(t, 5*time.Second), "priv"); err != nil {
		t.Fatal(err)
	}
	if err := privMb.Join(ctxT(t, 5*time.Second), "pub-b"); err != nil {
		t.Fatal(err)
	}
	if err := west.d.WaitMembers(ctxT(t, 5*time.Second), "pub-b", 1); err != nil {
		t.Fatal(err)
	}
	if ms := west.d.Groups().Members("priv"); len(ms) != 0 {
		t.Fatalf("west sees the unexported group: %+v", ms)
	}
	if ms := west.d.Groups().Members("pub-a"); len(ms) != 1 {
		t.Fatalf("west does not see the exported group: %+v", ms)
	}
	// West cannot reach the unexported group by name...
	wc := connect(t, west)
	if err := wc.SendGroup(ctxT(t, 5*time.Second), "priv", []byte("x")); !errors.Is(err, client.ErrNoMembers) {
		t.Fatalf("send to an unexported group: %v", err)
	}
	// ...and east drops a message that names it anyway (a forged route).
	p := west.d.peer("east", "east-1")
	if err := p.queue.Enqueue(&bufferMessage{To: privMb.Addr().Mailbox, Group: "priv", Payload: []byte("forged")}); err != nil {
		t.Fatal(err)
	}
	if err := wc.SendGroup(ctxT(t, 5*time.Second), "pub-a", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	m, err := pubMb.Receive(ctxT(t, 5*time.Second))
	if err != nil || string(m.Payload) != "ok" {
		t.Fatalf("exported group: %v %v", m, err)
	}
	if n := testutil.ToFloat64(east.d.metrics.dropped.WithLabelValues("not_exported")); n != 1 {
		t.Fatalf("forged message to an unexported group: %v drops counted, want 1", n)
	}
	if m, err := privMb.Receive(ctxT(t, 300*time.Millisecond)); err == nil {
		t.Fatalf("the unexported group got %q", m.Payload)
	}
}

func TestWatchAndMembers(t *testing.T) {
	ns := mesh(t, "mem", []string{"east", "west"}, nil)
	east, west := ns[0], ns[1]
	ec := connect(t, east)
	w, err := ec.Watch(ctxT(t, 5*time.Second), "g")
	if err != nil {
		t.Fatal(err)
	}
	local, _ := ec.NewMailbox(ctxT(t, 5*time.Second))
	if err := local.Join(ctxT(t, 5*time.Second), "g"); err != nil {
		t.Fatal(err)
	}
	if err := west.d.WaitMembers(ctxT(t, 5*time.Second), "g", 1); err != nil {
		t.Fatal(err)
	}
	wc := connect(t, west)
	remote, _ := wc.NewMailbox(ctxT(t, 5*time.Second))
	if err := remote.Join(ctxT(t, 5*time.Second), "g"); err != nil {
		t.Fatal(err)
	}
	next := func(op client.EventOp, who client.Addr) {
		t.Helper()
		e, err := w.Next(ctxT(t, 5*time.Second))
		if err != nil || e.Op != op || e.Member != who {
			t.Fatalf("event %+v (%v), want %v %v", e, err, op, who)
		}
	}
	next(client.Joined, local.Addr())
	next(client.Joined, remote.Addr())
	ms, err := ec.Members(ctxT(t, 5*time.Second), "g")
	if err != nil || len(ms) != 2 || ms[0].Addr != local.Addr() || ms[1].Addr != remote.Addr() || !ms[1].Reachable {
		t.Fatalf("members: %+v %v", ms, err)
	}
	lm, err := ec.LocalMembers(ctxT(t, 5*time.Second), "g")
	if err != nil || len(lm) != 1 || lm[0].Addr != local.Addr() {
		t.Fatalf("local members: %+v %v", lm, err)
	}
	// A mailbox that disappears (its client goes away) leaves at once.
	wc.Close()
	next(client.Left, remote.Addr())
	if err := local.Leave(ctxT(t, 5*time.Second), "g"); err != nil {
		t.Fatal(err)
	}
	next(client.Left, local.Addr())
	if err := w.Close(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// A peer away past the unreachable grace loses nothing: its members stay
// listed (unreachable; no Left event), sends to its groups are accepted
// and buffered, nothing is discarded, and after the heal every message
// arrives, once and in order. The grace only has the peer reported.
func TestUnreachableGraceKeepsMembersAndBuffer(t *testing.T) {
	var logs syncBuffer
	east, west, relay := relayedPair(t)
	east.d.Close()
	east.cfg.Groups.UnreachableGrace = 500 * time.Millisecond
	east.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	east.start()
	waitLink(t, east.d, "west", "west-1")
	mb := subscribe(t, west, "g", east)
	ec := connect(t, east)
	w, err := ec.Watch(ctxT(t, 5*time.Second), "g")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := w.Next(ctxT(t, 5*time.Second)); err != nil || e.Op != client.Joined {
		t.Fatalf("first event %+v %v", e, err)
	}
	cutPath(t, relay, east)
	const n = 100
	send := func(i int) {
		t.Helper()
		if err := ec.SendGroup(ctxT(t, 5*time.Second), "g", []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := range n / 2 { // before the grace ends: they must outlive it
		send(i)
	}
	deadline := time.After(10 * time.Second)
	for !strings.Contains(logs.String(), "peer unreachable past the grace") {
		select {
		case <-deadline:
			t.Fatalf("no report of the grace\n%s", logs.String())
		case <-time.After(20 * time.Millisecond): // the janitor's log: no event to wait on
		}
	}
	ms, _ := ec.Members(ctxT(t, 5*time.Second), "g")
	if len(ms) != 1 || ms[0].Reachable {
		t.Fatalf("past the grace: %+v, want the member listed, unreachable", ms)
	}
	for i := n / 2; i < n; i++ { // past the grace: accepted and buffered
		send(i)
	}
	st := east.d.Status().Links[0]
	if st.QueuedMessages != n || st.Discarded["discarded"] != 0 || !st.PastGrace {
		t.Fatalf("buffer past the grace: %+v", st)
	}
	relay.SetBlackhole(false)
	receiveSeq(t, mb, n, 20*time.Second)
	// The watch saw no Left: its next event is the next join.
	subscribe(t, west, "g")
	if e, err := w.Next(ctxT(t, 10*time.Second)); err != nil || e.Op != client.Joined || e.Member == mb.Addr() {
		t.Fatalf("event after the heal: %+v %v, want the new member's Joined", e, err)
	}
}

// The periodic digest finds a view that diverged from its owner's
// membership and repairs it with a fresh snapshot.
func TestDigestRepairsDivergence(t *testing.T) {
	ns := mesh(t, "mem", []string{"east", "west"}, func(n *node) { n.opts.DigestInterval = 50 * time.Millisecond })
	east, west := ns[0], ns[1]
	mb := subscribe(t, west, "g", east)
	east.d.Groups().ForgetPeer(groups.NodeID{Cluster: "west", Node: "west-1"}) // a lost update
	if ms := east.d.Groups().Members("g"); len(ms) != 0 {
		t.Fatalf("setup: %+v", ms)
	}
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "g", 1); err != nil {
		t.Fatal(err)
	}
	if ms := east.d.Groups().Members("g"); len(ms) != 1 || ms[0].Mailbox != mb.Addr().Mailbox {
		t.Fatalf("repaired view: %+v", ms)
	}
	if n := testutil.ToFloat64(east.d.metrics.protocolErrors.WithLabelValues("digest_mismatch")); n < 1 {
		t.Fatal("the divergence was not counted")
	}
}
