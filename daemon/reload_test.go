package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strconv"
	"testing"
	"time"

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
