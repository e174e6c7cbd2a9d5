package daemon

import (
	"context"
	"errors"
	"net/netip"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/transport"
)

func forEachTransport(t *testing.T, body func(t *testing.T, tr string)) {
	for _, tr := range testTransports {
		t.Run(tr, func(t *testing.T) { body(t, tr) })
	}
}

func TestLinkUpAndGroupSend(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pair(t, tr)
		mb := subscribe(t, west, "jobs", east)
		pub := connect(t, east)
		const n = 10000
		for i := 0; i < n; i++ {
			if err := pub.SendAsync(client.Target{Group: "jobs"}, []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		receiveSeq(t, mb, n, 20*time.Second)
		if got := mb.Addr(); got.Cluster != "west" || got.Node != "west-1" {
			t.Fatalf("mailbox address %v", got)
		}
		st := west.d.Status()
		if len(st.Links) != 1 || st.Links[0].State != StateUp || st.Links[0].Transport != tr {
			t.Fatalf("west status: %+v", st.Links)
		}
	})
}

func TestRedeliveryAcrossLinkDrops(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pair(t, tr)
		mb := subscribe(t, west, "jobs", east)
		pub := connect(t, east)
		const n = 20000
		for i := 0; i < n; i++ {
			if err := pub.SendAsync(client.Target{Group: "jobs"}, []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
			if i%2000 == 1000 {
				// Break the link from alternating sides, mid-stream.
				if i%4000 == 1000 {
					east.d.DropLink("west", "west-1")
				} else {
					west.d.DropLink("east", "east-1")
				}
			}
		}
		if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		receiveSeq(t, mb, n, 30*time.Second)
		if ups := west.d.LinkUps("east", "east-1"); ups < 2 {
			t.Fatalf("link came up %d times; the drops did not happen", ups)
		}
	})
}

func TestDirectSendToAddress(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pair(t, tr)
		wc := connect(t, west)
		wmb, err := wc.NewMailbox(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ec := connect(t, east)
		emb, err := ec.NewMailbox(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := emb.Send(ctxT(t, 5*time.Second), wmb.Addr(), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		m, err := wmb.Receive(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload) != "hello" || m.From != emb.Addr() {
			t.Fatalf("got %q from %v, want hello from %v", m.Payload, m.From, emb.Addr())
		}
		// and back, to the sender's address
		if err := wmb.Send(ctxT(t, 5*time.Second), m.From, []byte("reply")); err != nil {
			t.Fatal(err)
		}
		r, err := emb.Receive(ctxT(t, 5*time.Second))
		if err != nil || string(r.Payload) != "reply" {
			t.Fatalf("reply: %v %+v", err, r)
		}
	})
}

func TestBothDialKeepsOneLink(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		for round := 0; round < 5; round++ {
			a := newNode(t, tr, "east", "east-1")
			b := newNode(t, tr, "west", "west-1")
			release := make(chan struct{})
			a.gate.holdDials(release)
			b.gate.holdDials(release)
			// Both listen; learn the addresses, then configure both to dial.
			a.start()
			b.start()
			aAddr, bAddr := a.addr(tr), b.addr(tr)
			a.d.Close()
			b.d.Close()
			a.cfg.Peers = []configs.Peer{peerOf(b, tr, bAddr, "both")}
			b.cfg.Peers = []configs.Peer{peerOf(a, tr, aAddr, "both")}
			if tr != "mem" {
				a.cfg.Listen.QUIC, a.cfg.Listen.TCP = addrIf(a.cfg.Listen.QUIC, aAddr), addrIf(a.cfg.Listen.TCP, aAddr)
				b.cfg.Listen.QUIC, b.cfg.Listen.TCP = addrIf(b.cfg.Listen.QUIC, bAddr), addrIf(b.cfg.Listen.TCP, bAddr)
			}
			a.start()
			b.start()
			close(release) // both dial at once
			waitLink(t, a.d, "west", "west-1")
			waitLink(t, b.d, "east", "east-1")
			mb := subscribe(t, b, "g", a)
			pub := connect(t, a)
			for i := 0; i < 100; i++ {
				if err := pub.SendGroup(ctxT(t, 5*time.Second), "g", []byte(strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			receiveSeq(t, mb, 100, 10*time.Second)
			la, lb := a.d.peer("west", "west-1").currentLink(), b.d.peer("east", "east-1").currentLink()
			if la == nil || lb == nil {
				t.Fatalf("round %d: a link is down: %v %v", round, la, lb)
			}
			if la.dialer == lb.dialer {
				t.Fatalf("round %d: both sides keep a link they %s", round, map[bool]string{true: "dialled", false: "accepted"}[la.dialer])
			}
			if tr != "mem" && la.conn.LocalAddr().(portAddr).AddrPort().Port() != lb.conn.RemoteAddr().(portAddr).AddrPort().Port() {
				t.Fatalf("round %d: the two sides keep different connections: %v vs %v", round, la.conn.LocalAddr(), lb.conn.RemoteAddr())
			}
			if ua, ub := a.d.LinkUps("west", "west-1"), b.d.LinkUps("east", "east-1"); ua != 1 || ub != 1 {
				t.Fatalf("round %d: links came up %d and %d times, want exactly once each", round, ua, ub)
			}
			a.d.Close()
			b.d.Close()
		}
	})
}

// TestSimultaneousDialRule drives the tie-break by hand: a Hello that arrives
// while the acceptor's own dial is in its handshake.
func TestSimultaneousDialRule(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		// east/east-1 < west/west-1. East is dialling and receives west's
		// Hello: east's dial wins, west's attempt is answered Simultaneous.
		east := newNode(t, tr, "east", "east-1")
		west := newNode(t, tr, "west", "west-1")
		east.cfg.Peers = []configs.Peer{peerOf(west, tr, "", "accept")}
		east.start()
		ep := east.d.peer("west", "west-1")
		ep.mu.Lock()
		ep.dialing = true
		ep.mu.Unlock()
		west.cfg.Peers = []configs.Peer{peerOf(east, tr, east.addr(tr), "connect")}
		west.start()
		wp := west.d.peer("east", "east-1")
		ctx := ctxT(t, 10*time.Second)
		for {
			_, ch, _, _ := wp.busy()
			if wp.simultaneous.Load() > 0 {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				t.Fatal("west's dial was never answered Simultaneous")
			}
		}
		if wp.currentLink() != nil || ep.currentLink() != nil {
			t.Fatal("a link came up although east's own dial should win")
		}
		// East's dial "fails": west may now get through.
		ep.mu.Lock()
		ep.dialing = false
		ep.signalLocked()
		ep.mu.Unlock()
		waitLink(t, west.d, "east", "east-1")

		// The other way round: west accepts while dialling; east's Hello
		// wins and west's own dial is marked to be abandoned.
		e2 := newNode(t, tr, "east", "east-2")
		w2 := newNode(t, tr, "west", "west-2")
		w2.cfg.Peers = []configs.Peer{peerOf(e2, tr, "", "accept")}
		w2.start()
		w2p := w2.d.peer("east", "east-2")
		w2p.mu.Lock()
		w2p.dialing = true
		w2p.mu.Unlock()
		e2.cfg.Peers = []configs.Peer{peerOf(w2, tr, w2.addr(tr), "connect")}
		e2.start()
		waitLink(t, w2.d, "east", "east-2")
		w2p.mu.Lock()
		aborted := w2p.abortDial
		w2p.dialing = false
		w2p.mu.Unlock()
		if !aborted {
			t.Fatal("west accepted east's dial but did not mark its own dial to be abandoned")
		}
	})
}

type portAddr interface{ AddrPort() netip.AddrPort }

func addrIf(cur, addr string) string {
	if cur == "" {
		return ""
	}
	return addr
}

func TestUnpinnedNodeNeverLinks(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pair(t, tr)
		// A third node that claims to be west-1 with its own key, and one
		// that uses a name east does not know.
		for _, name := range []string{"west-1", "west-9"} {
			evil := newNode(t, tr, "west", name)
			evil.cfg.Local.Socket = ""
			evil.cfg.Listen = configs.Listen{}
			evil.cfg.Peers = []configs.Peer{peerOf(east, tr, east.addr(tr), "connect")}
			evil.start()
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			err := evil.d.WaitLink(ctx, "east", "east-1", true)
			cancel()
			if err == nil {
				t.Fatalf("%s with an unpinned key got a link", name)
			}
			evil.d.Close()
		}
		rej := testutil.ToFloat64(east.d.metrics.handshakeRejects.WithLabelValues("unpinned_key")) +
			testutil.ToFloat64(east.d.metrics.handshakeRejects.WithLabelValues("unknown_peer"))
		if rej < 2 {
			t.Fatalf("east counted %v rejections, want at least 2", rej)
		}
		// The real link was not disturbed.
		if ups := west.d.LinkUps("east", "east-1"); ups != 1 {
			t.Fatalf("real link came up %d times, want 1", ups)
		}
	})
}

// A path that goes silent (a blackhole: no FIN, no RST, nothing) is noticed
// by the keepalive alone: east's link goes down for nothing received within
// link.keepalive_timeout (ErrKeepaliveTimeout, or the transport's idle
// timeout set from it). West, restarted meanwhile behind the
// blackhole (its GoAway lost), is linked again once the path heals, and a
// message crosses to its new incarnation.
func TestKeepaliveAndReconnectAfterPeerRestart(t *testing.T) {
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			var logs syncBuffer
			east, west, relay := blackholePair(t, tr, &logs)
			relay.SetBlackhole(true)
			west.d.Close() // its GoAway goes into the blackhole
			if err := east.d.WaitLink(ctxT(t, 20*time.Second), "west", "west-1", false); err != nil {
				t.Fatalf("east never noticed the silent path: %v", err)
			}
			// The daemon's keepalive, or the transport's idle watchdog
			// (quic-go's idle timeout; the TCP transport's, fed by yamux
			// pings), which is given the same link.keepalive_timeout and
			// may fire first: either way, nothing received for that long.
			want := []error{ErrKeepaliveTimeout, transport.ErrIdleTimeout}
			down := waitLinkDownCause(t, &logs)
			if !slices.ContainsFunc(want, func(e error) bool { return strings.Contains(down, e.Error()) }) {
				t.Fatalf("east's link went down with cause %q, want one of %q (the keepalive noticing); east's log:\n%s", down, want, logs.String())
			}
			old := west.d.Incarnation()
			west.cfg.Listen.QUIC, west.cfg.Listen.TCP = "", ""
			if tr == "quic" {
				west.cfg.Listen.QUIC = relay.Target()
			} else {
				west.cfg.Listen.TCP = relay.Target()
			}
			west.start()
			if west.d.Incarnation() == old {
				t.Fatal("restart kept the incarnation")
			}
			relay.SetBlackhole(false)
			waitLink(t, east.d, "west", "west-1")
			mb := subscribe(t, west, "g", east)
			ec := connect(t, east)
			if err := ec.SendGroup(ctxT(t, 10*time.Second), "g", []byte("0")); err != nil {
				t.Fatal(err)
			}
			receiveSeq(t, mb, 1, 10*time.Second)
		})
	}
}

func TestSendErrors(t *testing.T) {
	east, _ := pair(t, "mem")
	c := connect(t, east)
	ctx := ctxT(t, 5*time.Second)
	if err := c.SendGroup(ctx, "nobody", []byte("x")); !errors.Is(err, client.ErrNoMembers) {
		t.Fatalf("send to empty group: %v, want ErrNoMembers", err)
	}
	if err := c.Send(ctx, client.Addr{Cluster: "south", Node: "s-1", Mailbox: 1}, []byte("x")); !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("send to unknown node: %v, want ErrUnreachable", err)
	}
	if err := c.Send(ctx, client.Addr{Cluster: "east", Node: "east-1", Mailbox: 12345}, []byte("x")); !errors.Is(err, client.ErrNoMailbox) {
		t.Fatalf("send to unknown local mailbox: %v, want ErrNoMailbox", err)
	}
	big := make([]byte, c.MaxMessage()+1)
	if err := c.SendGroup(ctx, "g", big); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("oversized send: %v, want ErrTooLarge", err)
	}
}

// The SDK reconnects to a restarted daemon by itself, re-opens its mailbox
// and re-joins its groups; sends during the gap fail at once.
func TestClientReconnectsAfterDaemonRestart(t *testing.T) {
	east, west := pair(t, "mem")
	c, err := client.Connect(ctxT(t, 5*time.Second), client.Options{Socket: west.cfg.Local.Socket, ReconnectMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Join(ctxT(t, 5*time.Second), "g"); err != nil {
		t.Fatal(err)
	}
	old := mb.Addr()
	west.d.Close()
	if err := mb.Join(ctxT(t, 5*time.Second), "other"); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("call during the gap: %v, want ErrUnavailable", err)
	}
	west.start()
	// East learns the re-joined member of the restarted node.
	ctx := ctxT(t, 10*time.Second)
	for {
		ch := east.d.Groups().Changed()
		ms := east.d.Groups().Members("g")
		if len(ms) == 1 && ms[0].Reachable && ms[0].Mailbox != old.Mailbox {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("east never saw the re-joined member: %+v", ms)
		}
	}
	ec := connect(t, east)
	if err := ec.SendGroup(ctxT(t, 5*time.Second), "g", []byte("0")); err != nil {
		t.Fatal(err)
	}
	receiveSeq(t, mb, 1, 5*time.Second)
	if c.Reconnects() != 1 || mb.Addr() == old {
		t.Fatalf("reconnects %d, address %v (was %v)", c.Reconnects(), mb.Addr(), old)
	}
}

// laneGoroutines counts the running lane writers and data stream readers of
// every link in this process.
func laneGoroutines(t *testing.T) (writers, readers int) {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "daemon.(*link).dataWriter(") {
			writers++
		}
		if strings.Contains(g, "daemon.(*link).dataReader(") {
			readers++
		}
	}
	return writers, readers
}

// An idle link runs no lane writer and opens no data stream: a lane's
// writer, its stream and the peer's reader of it come with the lane's first
// message, and only for that lane.
func TestLaneStreamsOpenOnFirstMessage(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pair(t, tr)
		mb := subscribe(t, west, "jobs", east) // membership: control stream only
		if w, r := laneGoroutines(t); w != 0 || r != 0 {
			t.Fatalf("idle link: %d lane writers, %d stream readers; want none", w, r)
		}
		pub := connect(t, east)
		want := func(step string, w, r int) {
			t.Helper()
			deadline := time.Now().Add(5 * time.Second)
			for {
				gw, gr := laneGoroutines(t)
				if gw == w && gr == r {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d lane writers, %d stream readers; want %d, %d", step, gw, gr, w, r)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		for i, high := range []bool{false, false, true} {
			var opts []client.SendOption
			if high {
				opts = append(opts, client.WithHighPriority())
			}
			if err := pub.SendGroup(ctxT(t, 5*time.Second), "jobs", []byte(strconv.Itoa(i)), opts...); err != nil {
				t.Fatal(err)
			}
			m, err := mb.Receive(ctxT(t, 5*time.Second))
			if err != nil || string(m.Payload) != strconv.Itoa(i) {
				t.Fatalf("message %d: %v %q", i, err, m.Payload)
			}
			if high {
				want("after a high-priority message", 2, 2)
			} else {
				want("after normal messages", 1, 1)
			}
		}
		// A reply goes the other way, on west's own normal lane.
		emb, err := pub.NewMailbox(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := mb.Send(ctxT(t, 5*time.Second), emb.Addr(), []byte("back")); err != nil {
			t.Fatal(err)
		}
		if m, err := emb.Receive(ctxT(t, 5*time.Second)); err != nil || string(m.Payload) != "back" {
			t.Fatalf("reply: %v %q", err, m.Payload)
		}
		want("after a reply", 3, 3)
	})
}

// A few messages, fewer than ackEvery, are acknowledged by the ack timer,
// without waiting for another control frame to ride with: with keepalives
// and digests a minute apart, the sender's buffer still empties at once.
func TestDelayedAckTimer(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pairWith(t, tr, func(east, west *node) {
			for _, n := range []*node{east, west} {
				n.cfg.Link.KeepaliveInterval, n.cfg.Link.KeepaliveTimeout = time.Minute, 2*time.Minute
				n.opts.DigestInterval = time.Minute
			}
		})
		mb := subscribe(t, west, "jobs", east)
		pub := connect(t, east)
		for i := range 3 {
			if err := pub.SendGroup(ctxT(t, 5*time.Second), "jobs", []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		receiveSeqBytes := func() {
			for i := range 3 {
				m, err := mb.Receive(ctxT(t, 5*time.Second))
				if err != nil || len(m.Payload) != 1 || m.Payload[0] != byte(i) {
					t.Fatalf("message %d: %v %v", i, err, m)
				}
			}
		}
		receiveSeqBytes()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st := east.d.Status()
			if len(st.Links) == 1 && st.Links[0].QueuedMessages == 0 && st.Links[0].InFlightBytes == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sender still holds unacknowledged messages: %+v", st.Links)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
