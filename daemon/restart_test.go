package daemon

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wandist/wandist/client"
)

// The receiving daemon dies without a word (its path is cut first, so no
// GoAway reaches the sender) and comes back as a new incarnation while a
// producer keeps sending to its group:
//   - no send is refused: the sender routes to the restarted node's
//     previous member while its consumer rejoins (groups: rejoining);
//   - what reaches the new node before the consumer has rejoined waits
//     in its hold for the group's member;
//   - the consumer (its client reconnects by itself) gets every message
//     once, in order: what it had taken but the dead daemon had not
//     acknowledged comes again and its client drops it.
func TestReceiverRestartLosesNothing(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pairWith(t, tr, func(east, _ *node) {
			east.cfg.Link.KeepaliveInterval, east.cfg.Link.KeepaliveTimeout = 100*time.Millisecond, 500*time.Millisecond
		})
		mb := subscribe(t, west, "g", east)
		pub := connect(t, east)
		const n = 600
		send := func(i int) {
			t.Helper()
			if err := pub.SendGroup(ctxT(t, 5*time.Second), "g", []byte(strconv.Itoa(i))); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		for i := range 200 {
			send(i)
		}
		// Cut, then stop west: east hears nothing, as after a kill -9.
		west.block("east", "east-1", true)
		if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", "west-1", false); err != nil {
			t.Fatal(err)
		}
		west.d.Close()
		for i := 200; i < 400; i++ { // buffered for the unreachable member
			send(i)
		}
		switch tr {
		case "quic":
			west.cfg.Listen.QUIC = west.addr(tr)
		case "tcp":
			west.cfg.Listen.TCP = west.addr(tr)
		}
		west.block("east", "east-1", false)
		west.start()
		waitLink(t, east.d, "west", "west-1")
		for i := 400; i < n; i++ { // the consumer may not have rejoined yet
			send(i)
		}
		receiveSeq(t, mb, n, 30*time.Second)
	})
}

// A keyed message held on a node whose member of the group is gone is
// routed again by its key: to the key's owner now, on another node, with
// its original sender shown as its origin. (West has just started: without
// groups.rejoin_grace 0 it would wait for a member of its own first.)
func TestHeldKeyedMessageReroutedToKeyOwner(t *testing.T) {
	ns := mesh(t, "mem", []string{"east", "north", "west"}, func(n *node) {
		n.cfg.Link.KeepaliveInterval, n.cfg.Link.KeepaliveTimeout = 100*time.Millisecond, 500*time.Millisecond
		n.cfg.Groups.RejoinGrace = 0
	})
	east, north, west := ns[0], ns[1], ns[2]
	cw := connect(t, west)
	mbW, err := cw.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := mbW.Join(ctxT(t, 5*time.Second), "kv"); err != nil {
		t.Fatal(err)
	}
	mbN := subscribe(t, north, "kv")
	for _, n := range []*node{east, north, west} {
		if err := n.d.WaitMembers(ctxT(t, 10*time.Second), "kv", 2); err != nil {
			t.Fatal(err)
		}
	}
	// Keys that east routes to west's member.
	var keys []string
	for i := 0; len(keys) < 50; i++ {
		k := "k" + strconv.Itoa(i)
		ms, err := east.d.groups.Pick("kv", strategyFromWire(4), k, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ms[0].Node == "west-1" {
			keys = append(keys, k)
		}
	}
	east.block("west", "west-1", true)
	west.block("east", "east-1", true)
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", "west-1", false); err != nil {
		t.Fatal(err)
	}
	pub := connect(t, east)
	for i, k := range keys { // buffered at east for west's (unreachable) member
		if err := pub.SendGroup(ctxT(t, 5*time.Second), "kv", []byte(strconv.Itoa(i)), client.WithKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	cw.Close() // west's member goes; north's is the owner of every key now
	if err := north.d.WaitMembers(ctxT(t, 10*time.Second), "kv", 1); err != nil {
		t.Fatal(err)
	}
	east.block("west", "west-1", false)
	west.block("east", "east-1", false)
	ctx := ctxT(t, 20*time.Second)
	for i := range keys {
		m, err := mbN.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, len(keys), err)
		}
		if string(m.Payload) != strconv.Itoa(i) || m.From.Cluster != "east" {
			t.Fatalf("message %d: %q from %v, want %q from east", i, m.Payload, m.From, strconv.Itoa(i))
		}
	}
	if n := testutil.ToFloat64(west.d.metrics.reroutedRemote); n != float64(len(keys)) {
		t.Fatalf("west routed %v messages on, want %d", n, len(keys))
	}
	if st := west.d.Status().Hold; st.RoutedOn != uint64(len(keys)) || st.Messages != 0 {
		t.Fatalf("west's hold status %+v, want %d routed on and none held", st, len(keys))
	}
}
