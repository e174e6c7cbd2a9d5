package daemon

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/gossip"
	"github.com/wandist/wandist/internal/wire"
)

// caWorld holds a CA per cluster for discovery tests.
type caWorld struct {
	t   *testing.T
	cas map[string]*auth.CA
}

func newCAWorld(t *testing.T, clusters ...string) *caWorld {
	w := &caWorld{t: t, cas: map[string]*auth.CA{}}
	for _, c := range clusters {
		ca, err := auth.NewCA("wandist", c, 24*time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w.cas[c] = ca
	}
	return w
}

// remote returns a remotes[] entry for cluster with seeds.
func (w *caWorld) remote(cluster, tr string, seeds ...string) configs.Remote {
	return configs.Remote{Cluster: cluster, Seeds: seeds, Transport: trName(tr), CAs: []*x509.Certificate{w.cas[cluster].Cert},
		Buffer: configs.Default().Buffer}
}

// start starts n with a certificate of its cluster's CA, trusting every
// CA of w for its cluster.
func (w *caWorld) start(n *node) {
	t := w.t
	t.Helper()
	d, err := New(n.cfg, n.opts)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := w.cas[n.cfg.Cluster].Issue(d.id.ID, d.id.Public(), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certs, err := auth.ParseCertificatesPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	d.id.Chain = auth.ChainDER(certs)
	for c, ca := range w.cas {
		d.pins.SetAnchors(c, []*x509.Certificate{ca.Cert})
	}
	n.gate.install(d)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.d = d
	t.Cleanup(func() { d.Close() })
}

// injectedFrom is the sender of the node lists tests hand the discovery
// worker: not a real node, whose own list, arriving meanwhile, would
// replace the test's before it is applied (a newer list from the same
// sender replaces one not yet applied).
var injectedFrom = auth.PeerID{Cluster: "west", Node: "test-injected"}

// unusedSeed is an address where no node listens.
func unusedSeed(tr string) string {
	if tr == "mem" {
		return "mem-nobody:1"
	}
	return "127.0.0.1:1"
}

// TestDiscoveryFromSeeds: east-1 knows only a seed of west and west's CA;
// it learns west-1 and west-2 from the seed, links to both, and a message
// reaches a member on west-2, the node no config of east names.
func TestDiscoveryFromSeeds(t *testing.T) {
	for _, tr := range testTransports {
		t.Run(tr, func(t *testing.T) {
			w := newCAWorld(t, "east", "west")
			w1, w2 := newNode(t, tr, "west", "west-1"), newNode(t, tr, "west", "west-2")
			east := newNode(t, tr, "east", "east-1")
			for _, n := range []*node{w1, w2} {
				n.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
			}
			w2.cfg.Peers = []configs.Peer{peerOf(w1, tr, "", "accept")}
			w.start(w2)
			w1.cfg.Peers = []configs.Peer{peerOf(w2, tr, w2.addr(tr), "connect")}
			w.start(w1)
			waitLink(t, w2.d, "west", "west-1")

			east.cfg.Remotes = []configs.Remote{w.remote("west", tr, w1.addr(tr))}
			w.start(east)
			waitLink(t, east.d, "west", "west-1")
			waitLink(t, east.d, "west", "west-2")
			if p := east.d.peer("west", "west-2"); p == nil || !p.discovered {
				t.Fatalf("west-2 is not a discovered peer of east-1: %+v", p)
			}

			mb := subscribe(t, w2, "orders", east)
			c := connect(t, east)
			if err := c.SendGroup(ctxT(t, 5*time.Second), "orders", []byte("0")); err != nil {
				t.Fatal(err)
			}
			receiveSeq(t, mb, 1, 10*time.Second)
		})
	}
}

// TestDiscoveryDeadNodeLeaves: a node only unreachable keeps its members;
// when its cluster says it is dead, the discovered peer goes and its
// members leave the view at once.
func TestDiscoveryDeadNodeLeaves(t *testing.T) {
	tr := "mem"
	w := newCAWorld(t, "east", "west")
	w1, w2 := newNode(t, tr, "west", "west-1"), newNode(t, tr, "west", "west-2")
	east := newNode(t, tr, "east", "east-1")
	for _, n := range []*node{w1, w2} {
		n.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
	}
	w2.cfg.Peers = []configs.Peer{peerOf(w1, tr, "", "accept")}
	w.start(w2)
	w1.cfg.Peers = []configs.Peer{peerOf(w2, tr, w2.addr(tr), "connect")}
	w.start(w1)
	east.cfg.Remotes = []configs.Remote{w.remote("west", tr, w1.addr(tr))}
	w.start(east)
	waitLink(t, east.d, "west", "west-2")
	subscribe(t, w2, "orders", east)
	// west-2 cannot reach east-1 any more (else it would link again and be
	// a peer again, rightly: it is alive).
	east.block("west", "west-2", true)
	w2.block("east", "east-1", true)
	// Nor through west-1, as a relay: west-2 is cut off from both.
	w1.block("west", "west-2", true)
	w2.block("west", "west-1", true)
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", "west-2", false); err != nil {
		t.Fatal(err)
	}
	if n := membersOn(east.d, "orders", "west-2"); n != 1 {
		t.Fatalf("east-1 has %d members on west-2 while it is only unreachable, want 1", n)
	}

	east.d.queueNodes(nodesUpdate{cluster: "west", from: injectedFrom,
		nodes: []wire.NodeEntry{{Node: "west-1", QUIC: w1.addr(tr)}, {Node: "west-2", State: wire.NodeDead}}})
	// (west-2's own list, sent when its link came up, may still say it is
	// alive and make it a peer again, without a link: its members stay
	// gone.)
	waitUntil(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(east.d.metrics.discoveryRemoved.WithLabelValues("west")) == 1 && len(east.d.groups.Members("orders")) == 0
	}, func() string { return "west-2 not removed from east-1, or its member still in the view" })
	if east.d.peer("west", "west-1") == nil {
		t.Fatal("west-1 was removed too")
	}
}

// TestDiscoverySeedOfAnotherCluster: a seed that is a node of another
// cluster (trusted for that one) is refused, and nothing is discovered.
func TestDiscoverySeedOfAnotherCluster(t *testing.T) {
	tr := "mem"
	w := newCAWorld(t, "east", "west", "south")
	s1 := newNode(t, tr, "south", "south-1")
	s1.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
	w.start(s1)
	east := newNode(t, tr, "east", "east-1")
	east.cfg.Remotes = []configs.Remote{w.remote("west", tr, s1.addr(tr)), w.remote("south", tr, unusedSeed(tr))}
	w.start(east)
	waitUntil(t, 10*time.Second, func() bool {
		return testutil.ToFloat64(east.d.metrics.handshakeRejects.WithLabelValues(string(auth.ReasonWrongPeer))) >= 2
	}, func() string { return "the seed of another cluster was not refused twice" })
	for _, p := range east.d.peerList() {
		if p.id.Cluster == "west" {
			t.Fatalf("a west peer was made from a south seed: %s", p.nodeName())
		}
	}
}

// TestDiscoveryWithGossip: two clusters of two nodes, no peers[] at all:
// each node finds its cluster by gossip and the other from a seed, and
// links to all three others. A node whose cluster declares it dead leaves
// the other cluster's views within 2 s of that.
func TestDiscoveryWithGossip(t *testing.T) {
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			w := newCAWorld(t, "east", "west")
			key := gossipKeyFile(t)
			w1, w2 := newNode(t, tr, "west", "west-1"), newNode(t, tr, "west", "west-2")
			e1, e2 := newNode(t, tr, "east", "east-1"), newNode(t, tr, "east", "east-2")
			var w2Gossip *memberlist.NetTransport
			for _, n := range []*node{w1, w2} {
				n.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
			}
			withGossip(w1, key, nil)
			w.start(w1)
			withGossip(w2, key, &w2Gossip, w1.d.ClusterView()[0].Addr)
			w.start(w2)
			for _, n := range []*node{e1, e2} {
				n.cfg.Remotes = []configs.Remote{w.remote("west", tr, w1.addr(tr))}
			}
			withGossip(e1, key, nil)
			w.start(e1)
			withGossip(e2, key, nil, e1.d.ClusterView()[0].Addr)
			w.start(e2)
			all := []*node{w1, w2, e1, e2}
			for _, a := range all {
				for _, b := range all {
					if a != b {
						waitLink(t, a.d, b.cfg.Cluster, b.cfg.Node)
					}
				}
			}
			subscribe(t, w2, "orders", e1, e2)
			for i, n := range []*node{e1, e2} {
				if err := connect(t, n).SendGroup(ctxT(t, 5*time.Second), "orders", []byte("x")); err != nil {
					t.Fatalf("send from node %d: %v", i, err)
				}
			}

			// west-2's gossip stops hard: west declares it dead, and east
			// hears it from west-1, though its links to west-2 stay up.
			w2Gossip.Shutdown()
			waitUntil(t, 30*time.Second, func() bool { return clusterState(w1.d, "west-2") == gossip.StateDead }, func() string { return "west-2 declared dead by west-1" })
			waitUntil(t, 2*time.Second, func() bool {
				return e1.d.peer("west", "west-2") == nil && membersOn(e1.d, "orders", "west-2") == 0
			}, func() string { return "east-1 still has west-2 or its member 2 s after west declared it dead" })
		})
	}
}

// TestDiscoveryNeverReplacesConfigured: a node list naming a configured
// (pinned) peer at another address changes nothing: an address learned
// from a list is only a place to dial a node no config names.
func TestDiscoveryNeverReplacesConfigured(t *testing.T) {
	tr := "mem"
	w := newCAWorld(t, "east", "west")
	w1 := newNode(t, tr, "west", "west-1")
	east := newNode(t, tr, "east", "east-1")
	w1.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
	w.start(w1)
	east.cfg.Remotes = []configs.Remote{w.remote("west", tr, w1.addr(tr))}
	east.cfg.Peers = []configs.Peer{peerOf(w1, tr, w1.addr(tr), "connect")}
	w.start(east)
	waitLink(t, east.d, "west", "west-1")
	east.d.queueNodes(nodesUpdate{cluster: "west", from: injectedFrom,
		nodes: []wire.NodeEntry{{Node: "west-1", QUIC: "10.9.9.9:1"}, {Node: "west-1", State: wire.NodeDead}, {Node: "west-9"}}})
	waitUntil(t, 5*time.Second, func() bool { return east.d.peer("west", "west-9") != nil },
		func() string { return "the list was not applied" })
	p := east.d.peer("west", "west-1")
	if p == nil || p.discovered || p.address() != w1.addr(tr) || p.currentLink() == nil {
		t.Fatalf("the configured peer west-1 was changed by a node list: %+v", p)
	}
}

// TestDiscoveryBounds: a node list of more nodes than the bound makes
// peers up to it and counts the rest; a Nodes frame on a link that lists
// another cluster than the peer's ends that link, counted.
func TestDiscoveryBounds(t *testing.T) {
	tr := "mem"
	w := newCAWorld(t, "east", "west")
	w1 := newNode(t, tr, "west", "west-1")
	east := newNode(t, tr, "east", "east-1")
	w1.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
	w.start(w1)
	east.cfg.Remotes = []configs.Remote{w.remote("west", tr, w1.addr(tr))}
	w.start(east)
	waitLink(t, east.d, "west", "west-1")
	var many []wire.NodeEntry
	for i := range maxDiscovered + 50 {
		many = append(many, wire.NodeEntry{Node: "n" + strconv.Itoa(i)}) // no address: nothing to dial
	}
	east.d.queueNodes(nodesUpdate{cluster: "west", from: injectedFrom, nodes: many})
	refused := func() float64 {
		return testutil.ToFloat64(east.d.metrics.discoveryRefused.WithLabelValues("too_many_nodes"))
	}
	waitUntil(t, 10*time.Second, func() bool { return refused() >= 50 }, func() string { return fmt.Sprintf("%v refused", refused()) })
	if n := east.d.discoveredCount(east.d.disc.remotes["west"]); n != maxDiscovered {
		t.Fatalf("%d discovered peers, want the bound %d", n, maxDiscovered)
	}

	l := east.d.peer("west", "west-1").currentLink()
	if err := l.onNodes(&wire.Nodes{Cluster: "south"}); err == nil {
		t.Fatal("a Nodes frame listing another cluster than the peer's was taken")
	}
	if v := testutil.ToFloat64(east.d.metrics.discoveryRefused.WithLabelValues("wrong_cluster")); v != 1 {
		t.Fatalf("wrong_cluster counted %v times, want 1", v)
	}
}

// TestKeyOwnersAgreeAfterNodeDies: west's three nodes each hold a member
// of a keyed group; west-3 dies (its cluster declares it dead). After
// that, east-1, west-1 and west-2 route every key to the same surviving
// member, none to west-3.
func TestKeyOwnersAgreeAfterNodeDies(t *testing.T) {
	tr := "tcp"
	w := newCAWorld(t, "east", "west")
	key := gossipKeyFile(t)
	ws := []*node{newNode(t, tr, "west", "west-1"), newNode(t, tr, "west", "west-2"), newNode(t, tr, "west", "west-3")}
	e1 := newNode(t, tr, "east", "east-1")
	var w3Gossip *memberlist.NetTransport
	for i, n := range ws {
		n.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
		var seeds []string
		if i > 0 {
			seeds = []string{ws[0].d.ClusterView()[0].Addr}
		}
		if i == 2 {
			withGossip(n, key, &w3Gossip, seeds...)
		} else {
			withGossip(n, key, nil, seeds...)
		}
		w.start(n)
	}
	e1.cfg.Remotes = []configs.Remote{w.remote("west", tr, ws[0].addr(tr))}
	w.start(e1)
	for _, n := range ws {
		subscribe(t, n, "kv")
	}
	all := []*node{e1, ws[0], ws[1], ws[2]}
	for _, n := range all {
		if err := n.d.WaitMembers(ctxT(t, 20*time.Second), "kv", 3); err != nil {
			t.Fatal(err)
		}
	}
	owners := func(n *node) []string {
		out := make([]string, 200)
		for i := range out {
			ms, err := n.d.groups.Pick("kv", strategyFromWire(wire.StrategyKey), "k"+strconv.Itoa(i), nil)
			if err != nil || len(ms) == 0 {
				out[i] = "none"
				continue
			}
			out[i] = ms[0].Node
		}
		return out
	}
	agree := func(ns ...*node) (bool, string) {
		first := owners(ns[0])
		for _, n := range ns[1:] {
			if o := owners(n); fmt.Sprint(o) != fmt.Sprint(first) {
				return false, fmt.Sprintf("%s and %s disagree", ns[0].cfg.Node, n.cfg.Node)
			}
		}
		return true, ""
	}
	if ok, why := agree(all...); !ok {
		t.Fatalf("before the death: %s", why)
	}
	w3Gossip.Shutdown()
	ws[2].d.Close()
	survivors := []*node{e1, ws[0], ws[1]}
	var why string
	waitUntil(t, 30*time.Second, func() bool {
		var ok bool
		if ok, why = agree(survivors...); !ok {
			return false
		}
		for _, o := range owners(e1) {
			if o == "west-3" || o == "none" {
				why = "a key still goes to " + o
				return false
			}
		}
		return true
	}, func() string { return why })
}

// TestGoneNodeMessagesRoutedOn: messages buffered for a node that its
// cluster then declares dead, and that does not come back within
// groups.rejoin_grace, go to their group's member now, in order; none is
// lost. (Within the grace they wait for it: a restart takes them.)
func TestGoneNodeMessagesRoutedOn(t *testing.T) {
	tr := "tcp"
	w := newCAWorld(t, "east", "west")
	key := gossipKeyFile(t)
	w1, w2 := newNode(t, tr, "west", "west-1"), newNode(t, tr, "west", "west-2")
	east := newNode(t, tr, "east", "east-1")
	east.cfg.Groups.RejoinGrace = 300 * time.Millisecond
	var w2Gossip *memberlist.NetTransport
	for _, n := range []*node{w1, w2} {
		n.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
	}
	withGossip(w1, key, nil)
	w.start(w1)
	withGossip(w2, key, &w2Gossip, w1.d.ClusterView()[0].Addr)
	w.start(w2)
	east.cfg.Remotes = []configs.Remote{w.remote("west", tr, w1.addr(tr))}
	w.start(east)
	mb1 := subscribe(t, w1, "kv")
	subscribe(t, w2, "kv")
	if err := east.d.WaitMembers(ctxT(t, 20*time.Second), "kv", 2); err != nil {
		t.Fatal(err)
	}
	var keys []string // keys east routes to west-2's member
	for i := 0; len(keys) < 20; i++ {
		k := "k" + strconv.Itoa(i)
		ms, err := east.d.groups.Pick("kv", strategyFromWire(wire.StrategyKey), k, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ms[0].Node == "west-2" {
			keys = append(keys, k)
		}
	}
	east.block("west", "west-2", true)
	w2.block("east", "east-1", true)
	// Nor through west-1, as a relay: west-2 is cut off from both.
	w1.block("west", "west-2", true)
	w2.block("west", "west-1", true)
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", "west-2", false); err != nil {
		t.Fatal(err)
	}
	pub := connect(t, east)
	for i, k := range keys { // buffered at east for west-2
		if err := pub.SendGroup(ctxT(t, 5*time.Second), "kv", []byte(strconv.Itoa(i)), client.WithKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	w2Gossip.Shutdown() // west declares west-2 dead; it never comes back
	receiveSeq(t, mb1, len(keys), 30*time.Second)
	if n := testutil.ToFloat64(east.d.metrics.reroutedRemote); n != float64(len(keys)) {
		t.Fatalf("east routed %v on, want %d", n, len(keys))
	}
	waitUntil(t, 10*time.Second, func() bool { return east.d.peer("west", "west-2") == nil },
		func() string { return "the gone peer west-2 was not removed once nothing waited for it" })
}

// TestDiscoverySeedByName: a seed given by name is resolved to every
// address it has (a headless service's pods), tried in turn, and resolved
// again at every round: a first address where nothing answers does not
// stop discovery, and a name that resolves to nothing yet is tried later.
func TestDiscoverySeedByName(t *testing.T) {
	tr := "tcp"
	w := newCAWorld(t, "east", "west")
	w1 := newNode(t, tr, "west", "west-1")
	w1.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
	w.start(w1)
	_, port, err := net.SplitHostPort(w1.addr(tr))
	if err != nil {
		t.Fatal(err)
	}
	var lookups atomic.Int64
	east := newNode(t, tr, "east", "east-1")
	east.opts.LookupHost = func(_ context.Context, host string) ([]string, error) {
		if host != "west-seeds.example" {
			return nil, fmt.Errorf("unexpected name %q", host)
		}
		if lookups.Add(1) == 1 {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return []string{"127.0.0.2", "127.0.0.1"}, nil // nothing listens on 127.0.0.2
	}
	east.cfg.Remotes = []configs.Remote{w.remote("west", tr, net.JoinHostPort("west-seeds.example", port))}
	w.start(east)
	waitLink(t, east.d, "west", "west-1")
	if n := lookups.Load(); n < 2 {
		t.Fatalf("the seed's name was resolved %d times, want at least 2 (again after the first round found nothing)", n)
	}
}

// TestRemovedDiscoveredLeavesNothingUncounted: a message that reaches a
// gone node's buffer as the peer is removed (a send racing the removal) is
// routed on or discarded and counted, never left in the retired buffer.
func TestRemovedDiscoveredLeavesNothingUncounted(t *testing.T) {
	tr := "mem"
	w := newCAWorld(t, "east", "west")
	w1 := newNode(t, tr, "west", "west-1")
	east := newNode(t, tr, "east", "east-1")
	w1.cfg.Remotes = []configs.Remote{w.remote("east", tr, unusedSeed(tr))}
	w.start(w1)
	east.cfg.Remotes = []configs.Remote{w.remote("west", tr, w1.addr(tr))}
	w.start(east)
	waitLink(t, east.d, "west", "west-1")
	east.block("west", "west-1", true)
	w1.block("east", "east-1", true)
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", "west-1", false); err != nil {
		t.Fatal(err)
	}
	p := east.d.peer("west", "west-1")
	if err := p.queue.EnqueueCopy(&buffer.Message{To: 7, Group: "nobody-else", Payload: []byte("late")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	east.d.removeDiscovered(p, "test: declared gone")
	if n := p.queue.Stats().Messages; n != 0 {
		t.Fatalf("%d messages left in the removed peer's buffer, uncounted", n)
	}
	if v := testutil.ToFloat64(east.d.metrics.removedDiscards.WithLabelValues("west", "west-1")); v != 1 {
		t.Fatalf("discarded and counted %v, want 1", v)
	}
}
