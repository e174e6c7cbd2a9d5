package daemon

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/transport"
)

// TestRelayManyPipes: 2 nodes of east reach 20 nodes of west, all through
// west-1, at once: 40 relayed links, 20 of them on each of east's links to
// west-1 (more than link.max_streams), all carrying reliable messages
// exactly once and in order. Once everything is closed, no goroutine is
// left.
func TestRelayManyPipes(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	const nEast, nWest, n = 2, 20, 25
	relay := newNode(t, "mem", "west", "west-1")
	var east, west []*node
	for i := range nEast {
		east = append(east, newNode(t, "mem", "east", fmt.Sprintf("east-%d", i+1)))
	}
	for i := range nWest {
		w := newNode(t, "mem", "west", fmt.Sprintf("west-%d", i+2))
		w.cfg.Peers = []configs.Peer{peerOf(relay, "mem", "", "accept")}
		for _, e := range east {
			w.cfg.Peers = append(w.cfg.Peers, peerOf(e, "mem", "", "accept"))
		}
		w.start()
		for _, e := range east {
			w.block(e.cfg.Cluster, e.cfg.Node, true)
		}
		west = append(west, w)
		relay.cfg.Peers = append(relay.cfg.Peers, peerOf(w, "mem", w.addr("mem"), "connect"))
	}
	for _, e := range east {
		relay.cfg.Peers = append(relay.cfg.Peers, peerOf(e, "mem", "", "accept"))
	}
	relay.start()
	for _, e := range east {
		e.cfg.Peers = []configs.Peer{peerOf(relay, "mem", relay.addr("mem"), "connect")}
		for _, w := range west {
			e.cfg.Peers = append(e.cfg.Peers, peerOf(w, "mem", w.addr("mem"), "connect"))
			e.gate.setBlocked(w.d.id.ID, true)
		}
		e.start()
	}
	var clients []*client.Client
	mbs := map[[2]int]*client.Mailbox{}
	for j, w := range west {
		c := connect(t, w)
		clients = append(clients, c)
		for i := range east {
			mb, err := c.NewMailbox(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			mbs[[2]int{i, j}] = mb
		}
	}
	for _, e := range east {
		for _, w := range west {
			waitLinkFor(t, e.d, w.cfg.Cluster, w.cfg.Node, 30*time.Second, nil)
		}
	}
	if v := testutil.ToFloat64(relay.d.metrics.pipes.WithLabelValues(pipeRoleRelay)); v != nEast*nWest {
		t.Fatalf("west-1 relays %v pairs of pipes, want %d", v, nEast*nWest)
	}
	l := relay.d.peer("east", "east-1").currentLink()
	l.pm.mu.Lock()
	onLink := len(l.pm.pipes)
	l.pm.mu.Unlock()
	if onLink != nWest || onLink <= relay.cfg.Link.MaxStreams {
		t.Fatalf("%d pipes on west-1's link to east-1, want %d (> link.max_streams %d)", onLink, nWest, relay.cfg.Link.MaxStreams)
	}
	for i, e := range east {
		pub := connect(t, e)
		clients = append(clients, pub)
		for k := range n {
			for j := range west {
				sendAsync(t, pub, client.Target{Addr: mbs[[2]int{i, j}].Addr()}, []byte(strconv.Itoa(k)))
			}
		}
		if err := pub.Flush(ctxT(t, 20*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for _, mb := range mbs {
		receiveSeq(t, mb, n, 30*time.Second)
	}

	for _, c := range clients {
		c.Close()
	}
	for _, e := range east {
		e.d.Close()
	}
	waitUntil(t, 10*time.Second, func() bool {
		return testutil.ToFloat64(relay.d.metrics.pipes.WithLabelValues(pipeRoleRelay)) == 0 && relay.d.relay.active.Load() == 0
	}, func() string { return "west-1 still relays pipes of closed nodes" })
	relay.d.Close()
	for _, w := range west {
		w.d.Close()
	}
	goleak.VerifyNone(t, ignore)
}

// TestRelayTargetRefused: the target of a pipe closes it when TLS fails
// over it (handshake) and when the TLS identity is not the origin the
// relay named (origin_mismatch), counted.
func TestRelayTargetRefused(t *testing.T) {
	east, w1, w2 := relayWorld(t, "mem")
	toW2 := w1.d.peer("west", "west-2").currentLink()
	tc, err := east.d.clientTLS(east.d.peer("west", "west-2"))
	if err != nil {
		t.Fatal(err)
	}
	open := func(origin auth.PeerID) *pipeConn {
		c, err := toW2.newEndpoint(func(id uint64) *pipeConn {
			return newPipeConn(toW2.pm, id, nil, transport.RelayAddr{Via: "x", End: "west/west-2"})
		}, origin)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	count := func(reason string) float64 {
		return testutil.ToFloat64(w2.d.metrics.relayRefused.WithLabelValues(reason))
	}

	before := count(relayOriginMismatch)
	c := open(auth.PeerID{Cluster: "east", Node: "east-9"}) // east-1's TLS
	if conn, err := transport.ClientOver(ctxT(t, 10*time.Second), c, tc, east.d.overlayOptions()); err == nil {
		conn.Close()
	}
	waitUntil(t, 10*time.Second, func() bool { return count(relayOriginMismatch) == before+1 },
		func() string { return "origin_mismatch not counted" })

	before = count(relayHandshake)
	c = open(auth.PeerID{Cluster: "east", Node: "east-1"})
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool { return count(relayHandshake) == before+1 },
		func() string { return "handshake failure not counted" })
	c.Close()
	if w1.d.peer("west", "west-2").currentLink() != toW2 {
		t.Fatal("a refused pipe ended the link")
	}
}
