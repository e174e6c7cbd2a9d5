package daemon

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
)

// gwWorld is cluster west of n nodes, linked to each other as configured
// cluster mates (west-i dials west-j for i < j), and east-1, which knows
// west from the seed west-1, in gateway mode with k gateways.
type gwWorld struct {
	t    *testing.T
	east *node
	west map[string]*node // by node name
}

func newGWWorld(t *testing.T, n, k int, setup func(*node)) *gwWorld {
	t.Helper()
	return newGWWorldEast(t, n, k, setup, nil)
}

// newGWWorldEast is newGWWorld, with setupEast run on east-1 before it
// starts.
func newGWWorldEast(t *testing.T, n, k int, setup, setupEast func(*node)) *gwWorld {
	t.Helper()
	const tr = "mem"
	w := newCAWorld(t, "east", "west")
	gw := &gwWorld{t: t, west: map[string]*node{}}
	var west []*node
	for i := range n {
		wn := newNode(t, tr, "west", fmt.Sprintf("west-%d", i+1))
		west = append(west, wn)
		gw.west[wn.cfg.Node] = wn
	}
	for i, a := range west {
		re := w.remote("east", tr, unusedSeed(tr))
		re.Mode = configs.ModeAccept // west nodes do not dial east-1 (a link of their own would prove nothing)
		a.cfg.Remotes = []configs.Remote{re}
		for j, b := range west {
			switch {
			case j > i:
				a.cfg.Peers = append(a.cfg.Peers, peerOf(b, tr, b.addr(tr), "connect"))
			case j < i:
				a.cfg.Peers = append(a.cfg.Peers, peerOf(b, tr, "", "accept"))
			}
		}
		if setup != nil {
			setup(a)
		}
	}
	for i := n - 1; i >= 0; i-- {
		w.start(west[i])
	}
	for _, a := range west {
		for _, b := range west {
			if a != b {
				waitLink(t, a.d, "west", b.cfg.Node)
			}
		}
	}
	gw.east = newNode(t, tr, "east", "east-1")
	rc := w.remote("west", tr, west[0].addr(tr))
	rc.Topology, rc.Gateways = configs.TopologyGateway, k
	gw.east.cfg.Remotes = []configs.Remote{rc}
	if setupEast != nil {
		setupEast(gw.east)
	}
	w.start(gw.east)
	d := gw.east.d
	waitUntil(t, 10*time.Second, func() bool {
		n0 := 0
		for _, p := range d.peerList() {
			if p.id.Cluster == "west" {
				n0++
			}
		}
		return n0 == n
	}, func() string { return "east-1 did not discover every west node" })
	for _, g := range gw.gateways() {
		waitLink(t, d, "west", g)
	}
	// Links east-1 made to nodes it took for gateways while it knew only
	// some of west go (as they would once idle).
	for _, p := range d.peerList() {
		if l := p.currentLink(); l != nil && p.id.Cluster == "west" && !d.isGateway(p.id) {
			<-l.goAway(wire.GoAwayNormal, "test: not a gateway", errIdle)
		}
	}
	// Every other node's view came through the gateway (then a second
	// subscription, for nodes east-1 did not know yet at the first one, is
	// done with).
	waitUntil(t, 10*time.Second, func() bool {
		if !slices.Contains(gw.gateways(), gw.membershipGateway()) {
			return false
		}
		d.gwm.mu.Lock()
		defer d.gwm.mu.Unlock()
		return len(d.gwm.subs["west"].fed) == n-1
	}, func() string { return "east-1 did not get every west node's view through a gateway" })
	return gw
}

// gateways returns east-1's gateways of west, sorted.
func (gw *gwWorld) gateways() []string {
	var out []string
	for id := range gw.east.d.gatewaysOf("west") {
		out = append(out, id.Node)
	}
	slices.Sort(out)
	return out
}

// other returns a west node that is not a gateway of east-1 and has no
// link with it: a direct link carries the node's membership itself, and
// east-1 may keep one to a node it took for a gateway while it knew only
// some of west (the seed, west-1), past the setup's goAways.
func (gw *gwWorld) other() *node {
	names := slices.Sorted(maps.Keys(gw.west))
	for _, name := range names {
		if slices.Contains(gw.gateways(), name) {
			continue
		}
		if p := gw.east.d.peer("west", name); p != nil && p.currentLink() != nil {
			continue
		}
		return gw.west[name]
	}
	gw.t.Fatal("every west node is a gateway of east-1 or linked to it")
	return nil
}

// membershipGateway returns the node east-1 is subscribed to for west
// while that link is up, or "".
func (gw *gwWorld) membershipGateway() string {
	d := gw.east.d
	d.gwm.mu.Lock()
	defer d.gwm.mu.Unlock()
	if s := d.gwm.subs["west"]; s != nil && s.l.ctx.Err() == nil {
		return s.l.p.id.Node
	}
	return ""
}

// members returns east-1's members of group on node, and how many of them
// are reachable.
func members(d *Daemon, group, node string) (n, reachable int) {
	for _, m := range d.groups.Members(group) {
		if m.Node == node {
			n++
			if m.Reachable {
				reachable++
			}
		}
	}
	return n, reachable
}

// waitMembers waits until d has want members of group on node, all of them
// reachable (or none if !reachable).
func waitMembers(t *testing.T, d *Daemon, group, node string, want int, reachable bool) {
	t.Helper()
	waitUntil(t, 10*time.Second, func() bool {
		n, r := members(d, group, node)
		return n == want && (r == n) == reachable && (reachable || r == 0)
	}, func() string {
		n, r := members(d, group, node)
		return fmt.Sprintf("%s/%s: %d members of %s on %s, %d reachable; want %d, reachable %v", d.cfg.Cluster, d.cfg.Node, n, group, node, r, want, reachable)
	})
}

// join opens a mailbox on n and joins group.
func join(t *testing.T, n *node, group string) *client.Mailbox {
	t.Helper()
	return subscribe(t, n, group)
}

// TestGatewayMembersFromNonGateway: a member joined on a west node east-1
// has no link to becomes visible on east-1 through its gateway, leaves
// the same way, and a message to its group reaches it.
// Switched off: forwardDeltaLocked (no delta forwarded): the member never
// shows on east-1.
func TestGatewayMembersFromNonGateway(t *testing.T) {
	gw := newGWWorld(t, 4, 1, nil)
	east, x := gw.east, gw.other()
	g := gw.west[gw.membershipGateway()]
	waitUntil(t, 10*time.Second, func() bool { return testutil.ToFloat64(g.d.metrics.subscribers) == 1 },
		func() string { return "the gateway counts no subscriber" })
	mb := join(t, x, "orders")
	waitMembers(t, east.d, "orders", x.cfg.Node, 1, true)
	if east.d.peer("west", x.cfg.Node).currentLink() != nil {
		t.Fatal("east-1 has a link of its own to the member's node: the test proves nothing")
	}
	if err := mb.Leave(ctxT(t, 5*time.Second), "orders"); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, east.d, "orders", x.cfg.Node, 0, true)

	mb = join(t, x, "orders")
	waitMembers(t, east.d, "orders", x.cfg.Node, 1, true)
	c := connect(t, east)
	if err := c.SendGroup(ctxT(t, 5*time.Second), "orders", []byte("0")); err != nil {
		t.Fatal(err)
	}
	receiveSeq(t, mb, 1, 20*time.Second)
}

// TestGatewayMembersFollowGateway: with two gateways, the loss of the
// membership gateway's link moves the subscription to the other, and the
// members of a node east-1 has no link to stay reachable and follow
// changes; with no gateway up they turn unreachable, and reachable again
// when one comes back.
// Switched off: the subscription on another gateway (chooseMemberGateway
// not subscribing after a loss): no new gateway, the new member never
// shows; memberGatewayLost's PeerDown: the members stay reachable with no
// gateway up.
func TestGatewayMembersFollowGateway(t *testing.T) {
	gw := newGWWorld(t, 4, 2, nil)
	east, x := gw.east, gw.other()
	join(t, x, "orders")
	waitMembers(t, east.d, "orders", x.cfg.Node, 1, true)

	first := gw.membershipGateway()
	cut := func(name string, on bool) {
		east.block("west", name, on)
		gw.west[name].block("east", "east-1", on)
	}
	cut(first, true)
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", first, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool { g := gw.membershipGateway(); return g != "" && g != first },
		func() string { return "the subscription did not move to the other gateway" })
	second := gw.membershipGateway()
	waitMembers(t, east.d, "orders", x.cfg.Node, 1, true)
	join(t, x, "orders")
	waitMembers(t, east.d, "orders", x.cfg.Node, 2, true)

	cut(second, true)
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", second, false); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, east.d, "orders", x.cfg.Node, 2, false)

	cut(first, false)
	waitLink(t, east.d, "west", first)
	waitMembers(t, east.d, "orders", x.cfg.Node, 2, true)
	if got := testutil.ToFloat64(east.d.metrics.subscribes.WithLabelValues(subscribeChosen)); got < 3 {
		t.Fatalf("east-1 subscribed %v times for a gateway chosen, want at least 3", got)
	}
}

// TestGatewayMembersOwnLinkDown: a node's members stay reachable when its
// own on-demand link closes while a membership gateway feeds its view.
// Switched off: membersViaGateway in peer.linkDown (PeerDown always): the
// members turn unreachable.
func TestGatewayMembersOwnLinkDown(t *testing.T) {
	gw := newGWWorld(t, 3, 1, nil)
	east, x := gw.east, gw.other()
	mb := join(t, x, "orders")
	waitMembers(t, east.d, "orders", x.cfg.Node, 1, true)
	c := connect(t, east)
	if err := c.SendGroup(ctxT(t, 5*time.Second), "orders", []byte("0")); err != nil {
		t.Fatal(err)
	}
	receiveSeq(t, mb, 1, 20*time.Second)
	p := east.d.peer("west", x.cfg.Node)
	l := p.currentLink()
	if l == nil {
		t.Fatal("no on-demand link to the member's node after a message")
	}
	<-l.goAway(wire.GoAwayNormal, "test", errIdle)
	waitUntil(t, 10*time.Second, func() bool { // set after PeerDown would be
		return testutil.ToFloat64(east.d.metrics.linkUp.WithLabelValues("west", x.cfg.Node)) == 0
	}, func() string { return "the link to the member's node stays up" })
	if n, r := members(east.d, "orders", x.cfg.Node); n != 1 || r != 1 {
		t.Fatalf("after its own link closed: %d members, %d reachable; want 1, 1", n, r)
	}
}

// TestGatewayMembersGapResubscribes: a forwarded delta after a gap in the
// versions (a delta lost on the way) makes east-1 subscribe again on the
// same link, and the snapshot repairs the view.
// Switched off: the subscription in onNodeDelta after a gap: the member
// whose delta was lost never shows.
func TestGatewayMembersGapResubscribes(t *testing.T) {
	gw := newGWWorld(t, 3, 1, nil)
	east, x := gw.east, gw.other()
	join(t, x, "orders")
	waitMembers(t, east.d, "orders", x.cfg.Node, 1, true)
	g := gw.west[gw.membershipGateway()]
	el := east.d.peer("west", g.cfg.Node).currentLink()
	gl := g.d.peer("east", "east-1").currentLink()
	g.d.dropSubscriber(gl) // the next delta is lost on the way
	join(t, x, "orders")
	waitUntil(t, 10*time.Second, func() bool {
		s, _ := g.d.groups.View(groupsID(auth.PeerID{Cluster: "west", Node: x.cfg.Node}))
		return len(s.Entries) == 2
	}, func() string { return "the gateway did not take the second member" })
	g.d.gwm.fwdMu.Lock()
	g.d.gwm.subscribers[gl] = struct{}{}
	g.d.gwm.fwdMu.Unlock()
	join(t, x, "orders") // the next delta: a gap on east-1
	waitMembers(t, east.d, "orders", x.cfg.Node, 3, true)
	if got := testutil.ToFloat64(east.d.metrics.subscribes.WithLabelValues(subscribeGap)); got != 1 {
		t.Fatalf("subscribed %v times after a gap, want 1", got)
	}
	if east.d.peer("west", g.cfg.Node).currentLink() != el {
		t.Fatal("the gap ended the gateway's link")
	}
}

// TestGatewayMembersExportsOnly: a gateway forwards its cluster mates'
// groups exported to the subscriber's cluster only, in snapshots and
// deltas, and the versions of the others (no gap).
// Switched off: the export check of exportedMembers (snapshot) and of
// forwardDeltaLocked: the private groups show on east-1.
func TestGatewayMembersExportsOnly(t *testing.T) {
	exports := func(n *node) {
		n.cfg.Exports = []configs.Export{{Groups: []string{"pub-*"}, To: []string{"east"}}}
	}
	gw := newGWWorld(t, 3, 1, exports)
	east, x := gw.east, gw.other()
	// Before: east-1 learns these from the snapshot. Resubscribe to be
	// sure it is sent after they joined.
	join(t, x, "priv-0")
	join(t, x, "pub-0")
	waitUntil(t, 10*time.Second, func() bool {
		s, ok := gw.west[gw.membershipGateway()].d.groups.View(groupsID(auth.PeerID{Cluster: "west", Node: x.cfg.Node}))
		return ok && len(s.Entries) == 2
	}, func() string { return "the gateway does not hold both members" })
	east.d.subscribe(east.d.peer("west", gw.membershipGateway()).currentLink(), subscribeGap)
	waitMembers(t, east.d, "pub-0", x.cfg.Node, 1, true)
	join(t, x, "priv-a")
	join(t, x, "pub-a")
	waitMembers(t, east.d, "pub-a", x.cfg.Node, 1, true)
	for _, g := range []string{"priv-0", "priv-a"} {
		if n, _ := members(east.d, g, x.cfg.Node); n != 0 {
			t.Errorf("east-1 sees %d members of %s, a group not exported to it", n, g)
		}
	}
	if got := testutil.ToFloat64(east.d.metrics.nodeRefused.WithLabelValues(nodeRefusedGap)); got != 0 {
		t.Fatalf("%v gaps: the versions of groups not exported were not forwarded", got)
	}
}

// TestGatewayMembersRefused: a subscription over a relayed link or from a
// node of the gateway's own cluster is refused and counted; so are frames
// about a node of another cluster, of the receiver's own, the gateway
// itself, a node unknown to the receiver, or from a link not subscribed
// on; none changes a view and every link stays up.
// Switched off: the checks of onMembersSubscribe (relayed, own cluster):
// nothing counted, subscribers registered; of checkNodeFrame: nothing
// counted, the members show.
func TestGatewayMembersRefused(t *testing.T) {
	gw := newGWWorld(t, 4, 2, nil)
	east, x := gw.east, gw.other()
	mb := join(t, x, "orders")
	waitMembers(t, east.d, "orders", x.cfg.Node, 1, true)
	c := connect(t, east)
	if err := c.SendGroup(ctxT(t, 5*time.Second), "orders", []byte("0")); err != nil {
		t.Fatal(err)
	}
	receiveSeq(t, mb, 1, 20*time.Second)
	relayed := east.d.peer("west", x.cfg.Node).currentLink()
	if relayed == nil || !relayed.relayed() {
		t.Fatal("no relayed link to the member's node")
	}
	w1, w2 := gw.west["west-1"], gw.west["west-2"]
	inCluster := w1.d.peer("west", "west-2").currentLink()
	for _, c := range []struct {
		over   *link
		at     *node
		reason string
	}{
		{relayed, x, subRefusedRelayed},
		{inCluster, w2, subRefusedOwnCluster},
	} {
		subs := testutil.ToFloat64(c.at.d.metrics.subscribers)
		c.over.sendControl(&wire.MembersSubscribe{})
		waitUntil(t, 10*time.Second, func() bool {
			return testutil.ToFloat64(c.at.d.metrics.subscribeRefused.WithLabelValues(c.reason)) == 1
		}, func() string { return "subscription not refused as " + c.reason })
		if got := testutil.ToFloat64(c.at.d.metrics.subscribers); got != subs {
			t.Fatalf("%s: %v subscribers, %v before", c.reason, got, subs)
		}
	}

	g := gw.west[gw.membershipGateway()]
	var other *node
	for _, name := range gw.gateways() {
		if name != g.cfg.Node {
			other = gw.west[name]
		}
	}
	el := east.d.peer("west", g.cfg.Node).currentLink()
	gl := g.d.peer("east", "east-1").currentLink()
	ol := other.d.peer("east", "east-1").currentLink()
	evil := []wire.Member{{Group: "evil", Mailbox: 1, Count: 1}}
	for _, c := range []struct {
		from    *link
		cluster string
		node    string
		reason  string
	}{
		{gl, "south", "south-1", nodeRefusedForeign},
		{gl, "east", "east-1", nodeRefusedOwnCluster},
		{gl, "west", g.cfg.Node, nodeRefusedGateway},
		{gl, "west", "west-9", nodeRefusedUnknown},
		{ol, "west", x.cfg.Node, nodeRefusedNotSubscribed},
	} {
		before := testutil.ToFloat64(east.d.metrics.nodeRefused.WithLabelValues(c.reason))
		c.from.sendControl(&wire.NodeMembers{Cluster: c.cluster, Node: c.node, Incarnation: 1, Version: 1, Members: evil})
		c.from.sendControl(&wire.NodeDelta{Cluster: c.cluster, Node: c.node, Delta: wire.MembersDelta{Incarnation: 1, Version: 2, Op: wire.OpJoin, Group: "evil", Mailbox: 2}})
		waitUntil(t, 10*time.Second, func() bool {
			return testutil.ToFloat64(east.d.metrics.nodeRefused.WithLabelValues(c.reason)) == before+2
		}, func() string {
			return fmt.Sprintf("frames about %s/%s not refused twice as %s", c.cluster, c.node, c.reason)
		})
	}
	if ms := east.d.groups.Members("evil"); len(ms) != 0 {
		t.Fatalf("refused frames made members: %+v", ms)
	}
	if east.d.peer("west", g.cfg.Node).currentLink() != el || gl.ctx.Err() != nil || ol.ctx.Err() != nil {
		t.Fatal("a refused frame ended a link")
	}
}

// TestGatewayMembersNodeGone: a node its cluster declares dead leaves
// east-1's view, although its gateway still holds it, and a later frame
// about it is refused (the view does not come back); once the node is
// alive again, east-1 subscribes again and takes its view.
// Switched off: the unknown_node check of checkNodeFrame: the view of the
// gone node comes back with the next forwarded change; gatewayNodeAdded:
// the view never comes back.
func TestGatewayMembersNodeGone(t *testing.T) {
	gw := newGWWorld(t, 3, 1, nil)
	east, x := gw.east, gw.other()
	join(t, x, "orders")
	waitMembers(t, east.d, "orders", x.cfg.Node, 1, true)
	var nodes []wire.NodeEntry
	for name, n := range gw.west {
		e := wire.NodeEntry{Node: name, QUIC: n.addr("mem")}
		if n == x {
			e = wire.NodeEntry{Node: name, State: wire.NodeDead}
		}
		nodes = append(nodes, e)
	}
	east.d.queueNodes(nodesUpdate{cluster: "west", from: injectedFrom, nodes: nodes})
	waitMembers(t, east.d, "orders", x.cfg.Node, 0, true)
	join(t, x, "orders") // forwarded by the gateway, which still holds x
	refused := func() bool {
		return testutil.ToFloat64(east.d.metrics.nodeRefused.WithLabelValues(nodeRefusedUnknown)) >= 1
	}
	waitUntil(t, 10*time.Second, func() bool {
		n, _ := members(east.d, "orders", x.cfg.Node)
		return refused() || n > 0
	}, func() string { return "the change of a gone node was not refused" })
	if n, _ := members(east.d, "orders", x.cfg.Node); n != 0 || !refused() {
		t.Fatalf("the gone node's view came back: %d members", n)
	}

	// Alive again (its cluster says so): a peer again, east-1 subscribes
	// again for the snapshot it refused.
	for i := range nodes {
		if nodes[i].Node == x.cfg.Node {
			nodes[i] = wire.NodeEntry{Node: x.cfg.Node, QUIC: x.addr("mem")}
		}
	}
	east.d.queueNodes(nodesUpdate{cluster: "west", from: injectedFrom, nodes: nodes})
	waitMembers(t, east.d, "orders", x.cfg.Node, 2, true)
	if got := testutil.ToFloat64(east.d.metrics.subscribes.WithLabelValues(subscribeUnknown)); got != 1 {
		t.Fatalf("subscribed %v times for a node refused as unknown, want 1", got)
	}
}

// TestGatewayMembersReloadImports: when a reload changes east-1's import
// rules, east-1 subscribes again and takes, under the new rules, the
// members it refused through the gateway.
// Switched off: resubscribeAll in resyncAll: the member refused before
// never shows.
func TestGatewayMembersReloadImports(t *testing.T) {
	gw := newGWWorldEast(t, 3, 1, nil, func(e *node) {
		e.cfg.Imports = []configs.Import{{Groups: []string{"pub-*"}, From: []string{"west"}}}
	})
	east, x := gw.east, gw.other()
	join(t, x, "priv-a")
	join(t, x, "pub-a")
	waitMembers(t, east.d, "pub-a", x.cfg.Node, 1, true)
	if n, _ := members(east.d, "priv-a", x.cfg.Node); n != 0 {
		t.Fatalf("east-1 took %d members of a group it does not import", n)
	}
	cfg := *east.d.Config()
	cfg.Imports = nil
	if err := east.d.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, east.d, "priv-a", x.cfg.Node, 1, true)
}
