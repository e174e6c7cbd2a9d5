package daemon

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
)

// gatewayWorld starts a west cluster of n nodes, each configured with its
// cluster mates (the lower-numbered dials), and east-1, which knows only a
// seed of west and links to it in gateway mode with k gateways.
func gatewayWorld(t *testing.T, tr string, n, k int) (east *node, west []*node) {
	t.Helper()
	w := newCAWorld(t, "east", "west")
	for i := range n {
		wn := newNode(t, tr, "west", fmt.Sprintf("west-%d", i+1))
		// west never dials east: east-1's own choices alone make its
		// links.
		rc := w.remote("east", tr, unusedSeed(tr))
		rc.Mode = configs.ModeAccept
		wn.cfg.Remotes = []configs.Remote{rc}
		west = append(west, wn)
	}
	// Every west node is a configured peer of every other: the earlier
	// ones accept, the later ones dial them.
	for i, wn := range west {
		for _, o := range west[i+1:] {
			wn.cfg.Peers = append(wn.cfg.Peers, peerOf(o, tr, "", "accept"))
		}
		for _, o := range west[:i] {
			wn.cfg.Peers = append(wn.cfg.Peers, peerOf(o, tr, o.addr(tr), "connect"))
		}
		w.start(wn)
	}
	east = newNode(t, tr, "east", "east-1")
	rc := w.remote("west", tr, west[0].addr(tr))
	rc.Topology, rc.Gateways, rc.IdleClose = configs.TopologyGateway, k, time.Second
	east.cfg.Remotes = []configs.Remote{rc}
	w.start(east)
	return east, west
}

// gatewaysUp returns the names of east's gateways in west, sorted, once k
// are chosen among n discovered nodes and their links are up.
func gatewaysUp(t *testing.T, east *node, n, k int) []string {
	t.Helper()
	var names []string
	waitUntil(t, 15*time.Second, func() bool {
		names = names[:0]
		peers := 0
		for _, p := range east.d.peerList() {
			if p.id.Cluster == "west" {
				peers++
			}
		}
		for id := range east.d.gatewaysOf("west") {
			if east.d.peer(id.Cluster, id.Node).currentLink() == nil {
				return false
			}
			names = append(names, id.Node)
		}
		return peers == n && len(names) == k
	}, func() string { return fmt.Sprintf("gateways up: %v", names) })
	slices.Sort(names)
	return names
}

// TestGatewayTopology: east-1 links directly to k of west's 4 nodes only;
// a mailbox on another west node is reached on demand through a gateway,
// exactly once and in order, the link closes when idle, and the loss of
// the gateway in the middle of a flow loses, duplicates and reorders
// nothing.
func TestGatewayTopology(t *testing.T) {
	for _, tr := range testTransports {
		t.Run(tr, func(t *testing.T) {
			const n, k = 4, 2
			east, west := gatewayWorld(t, tr, n, k)
			gws := gatewaysUp(t, east, n, k)
			var target *node
			var onDemand []*peer
			for _, wn := range west {
				if !slices.Contains(gws, wn.cfg.Node) {
					target = wn
					onDemand = append(onDemand, east.d.peer("west", wn.cfg.Node))
				}
			}
			// A node that was a gateway while east-1 knew fewer of west's
			// nodes may be linked for idle_close more.
			waitUntil(t, 10*time.Second, func() bool {
				for _, p := range onDemand {
					if p.status().state != StateIdle {
						return false
					}
				}
				return true
			}, func() string { return "the on-demand peers are not all idle with nothing queued" })
			c := connect(t, target)
			mb, err := c.NewMailbox(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			to := client.Target{Addr: mb.Addr()}
			pub := connect(t, east)
			const first = 200
			for i := range first {
				sendAsync(t, pub, to, []byte(strconv.Itoa(i)))
			}
			if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			receiveSeqFrom(t, mb, 0, first, 30*time.Second)
			tp := east.d.peer("west", target.cfg.Node)
			via := east.d.gatewayFor(tp)
			if l := tp.currentLink(); l != nil && !l.relayed() {
				t.Fatalf("east-1's link to %s is direct (%s), want relayed through a gateway", target.cfg.Node, l.conn.Transport())
			}

			// Idle: the on-demand link closes.
			if err := east.d.WaitLink(ctxT(t, 15*time.Second), "west", target.cfg.Node, false); err != nil {
				t.Fatal(err)
			}
			if v := testutil.ToFloat64(east.d.metrics.linksClosed.WithLabelValues(closedIdle)); v < 1 {
				t.Errorf("links closed idle = %v, want >= 1", v)
			}
			for _, g := range gws {
				if east.d.peer("west", g).currentLink() == nil {
					t.Errorf("gateway %s's link closed; gateways stay linked", g)
				}
			}

			// The gateway in use goes in the middle of a flow: the
			// rest comes through the other one.
			const n2 = 600
			for i := first; i < first+100; i++ {
				sendAsync(t, pub, to, []byte(strconv.Itoa(i)))
			}
			if err := east.d.WaitLink(ctxT(t, 15*time.Second), "west", target.cfg.Node, true); err != nil {
				t.Fatal(err)
			}
			if via == nil {
				t.Fatal("no gateway for the target")
			}
			gw := via.p.id
			east.block(gw.Cluster, gw.Node, true)
			for _, wn := range west {
				if wn.cfg.Node == gw.Node {
					wn.block("east", "east-1", true)
				}
			}
			for i := first + 100; i < n2; i++ {
				sendAsync(t, pub, to, []byte(strconv.Itoa(i)))
			}
			if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			receiveSeqFrom(t, mb, first, n2, 40*time.Second)
			for _, wn := range west {
				if g := wn.cfg.Node; slices.Contains(gws, g) && g != gw.Node && testutil.ToFloat64(wn.d.metrics.relayedBytes) == 0 {
					t.Errorf("the other gateway, %s, relayed nothing after %s went", g, gw)
				}
			}
		})
	}
}

// TestRendezvousSpreads: the gateways that the nodes of one cluster choose
// in another spread over its nodes, and one node joining moves few
// choices.
func TestRendezvousSpreads(t *testing.T) {
	const a, b, k = 64, 16, 2
	count := map[string]int{}
	pick := func(from auth.PeerID, nodes int) []string {
		type s struct {
			n     string
			score uint64
		}
		var ss []s
		for j := range nodes {
			id := auth.PeerID{Cluster: "west", Node: "w" + strconv.Itoa(j)}
			ss = append(ss, s{id.Node, rendezvous(from, id)})
		}
		slices.SortFunc(ss, func(x, y s) int {
			if x.score > y.score {
				return -1
			}
			return 1
		})
		return []string{ss[0].n, ss[1].n}
	}
	moved := 0
	for i := range a {
		from := auth.PeerID{Cluster: "east", Node: "e" + strconv.Itoa(i)}
		before := pick(from, b)
		for _, n := range before {
			count[n]++
		}
		after := pick(from, b+1)
		for _, n := range after {
			if !slices.Contains(before, n) {
				moved++
			}
		}
	}
	for j := range b {
		if c := count["w"+strconv.Itoa(j)]; c < 2 || c > 16 {
			t.Errorf("node w%d is a gateway of %d of %d nodes; want about %d", j, c, a, a*k/b)
		}
	}
	// A 17th node should take about k/(b+1) of the choices: 64*2/17 ~ 7.5.
	if moved > 20 {
		t.Errorf("a node joining moved %d of %d choices", moved, a*k)
	}
}
