package daemon

import (
	"bytes"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/impair"
)

// relayedPair links east (dialling) to west through a UDP relay that can cut
// the path without closing anything (QUIC).
func relayedPair(t testing.TB) (east, west *node, relay *impair.UDPRelay) {
	t.Helper()
	east = newNode(t, "quic", "east", "east-1")
	west = newNode(t, "quic", "west", "west-1")
	west.cfg.Peers = []configs.Peer{peerOf(east, "quic", "", "accept")}
	west.start()
	relay, err := impair.NewUDPRelay("127.0.0.1:0", west.addr("quic"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	east.cfg.Peers = []configs.Peer{peerOf(west, "quic", relay.Addr(), "connect")}
	east.start()
	waitLink(t, east.d, "west", "west-1")
	return east, west, relay
}

// cutPath blackholes the relay (no FIN, no RST) and waits until east has
// declared its link to west dead.
func cutPath(t testing.TB, relay *impair.UDPRelay, east *node) {
	t.Helper()
	relay.SetBlackhole(true)
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "west", "west-1", false); err != nil {
		t.Fatal(err)
	}
}

// A high-priority message sent behind a large normal backlog overtakes it:
// it arrives before most of the backlog.
func TestHighPriorityOvertakesBacklog(t *testing.T) {
	east, west, relay := relayedPair(t)
	mb := subscribe(t, west, "g", east)
	pub := connect(t, east)
	const backlog = 900 // 64 KiB each: 56 MiB, within the default 64 MiB buffer
	big := bytes.Repeat([]byte("n"), 64<<10)
	cutPath(t, relay, east)
	for i := 0; i < backlog; i++ {
		sendAsync(t, pub, client.Target{Addr: mb.Addr()}, big)
	}
	sendAsync(t, pub, client.Target{Addr: mb.Addr()}, []byte("HIGH"), client.WithHighPriority())
	if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	relay.SetBlackhole(false)
	ctx := ctxT(t, 60*time.Second)
	for i := 0; i <= backlog; i++ {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d: %v", i, err)
		}
		if string(m.Payload) == "HIGH" {
			t.Logf("the high-priority message arrived after %d of %d backlog messages", i, backlog)
			if i > backlog/4 {
				t.Fatalf("high-priority message arrived after %d of %d normal ones: it waited for the backlog", i, backlog)
			}
			return
		}
	}
	t.Fatal("high-priority message never arrived")
}
