package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
)

// A reload that adds a peer brings its link up while a stream to another
// peer goes on without a lost or duplicated message.
func TestReloadAddsPeerWithoutDisturbingOthers(t *testing.T) {
	east, west := pair(t, "mem")
	south := newNode(t, "mem", "south", "south-1")
	south.cfg.Peers = []configs.Peer{peerOf(east, "mem", "", "accept")}
	south.start()
	mb := subscribe(t, west, "g", east)
	pub := connect(t, east)
	const n = 20000
	sent := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := pub.SendAsync(client.Target{Group: "g"}, []byte(strconv.Itoa(i))); err != nil {
				sent <- err
				return
			}
			if i == n/2 {
				cfg := *east.d.Config()
				cfg.Peers = append(append([]configs.Peer(nil), cfg.Peers...), peerOf(south, "mem", south.addr("mem"), "connect"))
				if err := east.d.Reload(&cfg); err != nil {
					sent <- err
					return
				}
			}
		}
		sent <- pub.Flush(context.Background())
	}()
	receiveSeq(t, mb, n, 30*time.Second)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	waitLink(t, east.d, "south", "south-1")
	if ps := east.d.Config().Peers; len(ps) != 2 || ps[1].Cluster != "south" {
		t.Fatalf("Config() after the reload lists peers %+v", ps)
	}
	if ups := east.d.LinkUps("west", "west-1"); ups != 1 {
		t.Fatalf("the west link came up %d times: the reload disturbed it", ups)
	}
}

// Rotating a peer's pinned key on a running node closes the link that was
// made with the old key; the peer cannot come back with it.
func TestReloadRevokesKeyOnUpLink(t *testing.T) {
	east, west := pair(t, "mem")
	cfg := *east.d.Config()
	cfg.Peers = append([]configs.Peer(nil), cfg.Peers...)
	cfg.Peers[0].PublicKeys = []ed25519.PublicKey{newKey(t).Public().(ed25519.PublicKey)}
	if err := east.d.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := east.d.WaitLink(ctxT(t, 5*time.Second), "west", "west-1", false); err != nil {
		t.Fatal(err)
	}
	if err := west.d.WaitLink(ctxT(t, 5*time.Second), "east", "east-1", false); err != nil {
		t.Fatal(err)
	}
	// West keeps dialling with its old key (its reconnect backoff is at
	// most 200ms here): it must never get a link again.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := east.d.WaitLink(ctx, "west", "west-1", true); err == nil {
		t.Fatal("west came back with its revoked key")
	}
}

func TestReloadRefusesBadConfig(t *testing.T) {
	east, _ := pair(t, "mem")
	cfg := *east.d.Config()
	cfg.Listen.QUIC = "mem-elsewhere:1"
	if err := east.d.Reload(&cfg); !errors.Is(err, ErrNeedsRestart) {
		t.Fatalf("listener change: %v, want ErrNeedsRestart", err)
	}
	cfg = *east.d.Config()
	cfg.Peers = append([]configs.Peer(nil), cfg.Peers...)
	cfg.Peers[0].PublicKeys = nil // a peer without a key is invalid
	var el configs.ErrorList
	if err := east.d.Reload(&cfg); !errors.As(err, &el) {
		t.Fatalf("invalid peer: %v, want a config error", err)
	}
	// The running config stays: the link is still up.
	if east.d.peer("west", "west-1").currentLink() == nil {
		t.Fatal("a refused reload took the link down")
	}
}

// A client's sends look their peer up through a cache: a reload that
// removes the peer makes the client's next send to it fail at once (not
// queue for a peer that is gone), and one that adds it back makes sends go
// through again.
func TestReloadRemovedPeerUnreachableForARunningSender(t *testing.T) {
	east, west := pair(t, "mem")
	mb := subscribe(t, west, "g", east)
	pub := connect(t, east)
	to := mb.Addr()
	receive := func(want string) {
		t.Helper()
		m, err := mb.Receive(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if string(m.Payload) != want {
			t.Fatalf("received %q, want %q", m.Payload, want)
		}
	}
	if err := pub.Send(ctxT(t, 5*time.Second), to, []byte("before")); err != nil {
		t.Fatal(err)
	}
	// Delivered before the peer goes: a removed peer's queued messages are
	// discarded.
	receive("before")
	withWest := *east.d.Config()
	without := withWest
	without.Peers = nil
	if err := east.d.Reload(&without); err != nil {
		t.Fatal(err)
	}
	if err := pub.Send(ctxT(t, 5*time.Second), to, []byte("removed")); !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("send to a removed peer: %v, want ErrUnreachable", err)
	}
	if err := east.d.Reload(&withWest); err != nil {
		t.Fatal(err)
	}
	waitLink(t, east.d, "west", "west-1")
	if err := pub.Send(ctxT(t, 5*time.Second), to, []byte("after")); err != nil {
		t.Fatalf("send after the peer came back: %v", err)
	}
	receive("after")
}

// A receiver that removes the sending peer and adds it back mid-stream
// keeps its receive positions: nothing delivered before comes again, and
// nothing is lost.
func TestReloadReaddedSenderNoDuplicates(t *testing.T) {
	east, west := pair(t, "mem")
	mb := subscribe(t, west, "g", east)
	pub := connect(t, east)
	const n = 20000
	sent := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := pub.SendAsync(client.Target{Group: "g"}, []byte(strconv.Itoa(i))); err != nil {
				sent <- err
				return
			}
		}
		sent <- pub.Flush(context.Background())
	}()
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < n/4; i++ { // part of the stream is delivered, some of it not yet acked
		m, err := mb.Receive(ctx)
		if err != nil || string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	withEast := *west.d.Config()
	without := withEast
	without.Peers = nil
	if err := west.d.Reload(&without); err != nil {
		t.Fatal(err)
	}
	if err := west.d.Reload(&withEast); err != nil {
		t.Fatal(err)
	}
	for i := n / 4; i < n; i++ {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("message %d: got %q (a duplicate or a gap)", i, m.Payload)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// A reload that removes a peer discards what waits for it, and counts it:
// the one way a reliable message accepted for a peer is given up.
func TestReloadRemovedPeerDiscardsCounted(t *testing.T) {
	east, west := pair(t, "mem")
	mb := subscribe(t, west, "g", east)
	east.block("west", "west-1", true)
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", "west-1", false); err != nil {
		t.Fatal(err)
	}
	pub := connect(t, east)
	for i := range 10 {
		if err := pub.Send(ctxT(t, 5*time.Second), mb.Addr(), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	without := *east.d.Config()
	without.Peers = nil
	if err := east.d.Reload(&without); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(east.d.metrics.removedDiscards.WithLabelValues("west", "west-1")); n != 10 {
		t.Fatalf("%v messages counted as discarded with the removed peer, want 10", n)
	}
}
