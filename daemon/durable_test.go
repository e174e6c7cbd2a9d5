package daemon

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/impair"
)

func TestDurableNeedsSpool(t *testing.T) {
	east, west := pair(t, "mem")
	subscribe(t, west, "g", east)
	c := connect(t, east)
	err := c.SendGroup(ctxT(t, 5*time.Second), "g", []byte("x"), client.WithMode(client.Durable))
	if !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("durable send without a spool: %v, want ErrBadRequest", err)
	}
}

// Durable messages accepted while the link is down survive a restart of the
// sending daemon: they come back from its spool and are delivered once, in
// order, when the path heals.
func TestDurableSurvivesSenderRestart(t *testing.T) {
	east := newNode(t, "quic", "east", "east-1")
	west := newNode(t, "quic", "west", "west-1")
	east.cfg.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	west.cfg.Spool.Dir = filepath.Join(t.TempDir(), "wspool")
	west.cfg.Peers = []configs.Peer{peerOf(east, "quic", "", "accept")}
	west.start()
	relay, err := impair.NewUDPRelay("127.0.0.1:0", west.addr("quic"))
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	east.cfg.Peers = []configs.Peer{peerOf(west, "quic", relay.Addr(), "connect")}
	east.start()
	waitLink(t, east.d, "west", "west-1")
	mb := subscribe(t, west, "g", east)
	c := connect(t, east)
	send := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := c.SendGroup(ctxT(t, 5*time.Second), "g", []byte(strconv.Itoa(i)), client.WithMode(client.Durable)); err != nil {
				t.Fatalf("durable send %d: %v", i, err)
			}
		}
	}
	send(0, 100)
	ctx := ctxT(t, 30*time.Second)
	next := 0
	expect := func(to int) {
		t.Helper()
		for ; next < to; next++ {
			m, err := mb.Receive(ctx)
			if err != nil {
				t.Fatalf("waiting for %d: %v", next, err)
			}
			if string(m.Payload) != strconv.Itoa(next) {
				t.Fatalf("got %q, want %d", m.Payload, next)
			}
		}
	}
	expect(100)

	cutPath(t, relay, east)
	send(100, 200) // confirmed: on east's disk
	c.Close()
	east.d.Close()
	east.start() // new incarnation, same spool
	// The hundred sent during the cut, and perhaps a few earlier ones whose
	// ack had not reached the spool (the receiver drops those as duplicates).
	if st := east.d.Status(); st.Links[0].QueuedMessages < 100 {
		t.Fatalf("recovered %d durable messages, want at least 100", st.Links[0].QueuedMessages)
	}
	relay.SetBlackhole(false)
	waitLink(t, east.d, "west", "west-1")
	expect(200)
	// Nothing more: no duplicate of the first hundred.
	if m, err := mb.Receive(ctxT(t, 300*time.Millisecond)); err == nil {
		t.Fatalf("unexpected extra message %q", m.Payload)
	}
	// Acked durable messages leave the sender's buffer.
	for east.d.Status().Links[0].QueuedMessages != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("durable messages never acked: %+v", east.d.Status().Links[0])
		case <-time.After(20 * time.Millisecond): // polling a figure: no event carries it
		}
	}
}

// A full spool makes durable sends fail with a clear busy error while
// reliable traffic goes on; nothing already confirmed is lost.
func TestFullSpoolRefusesDurableOnly(t *testing.T) {
	east, west, relay := relayedPair(t)
	east.d.Close()
	east.cfg.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	east.cfg.Spool.MaxBytes = 256 << 10
	east.start()
	waitLink(t, east.d, "west", "west-1")
	mb := subscribe(t, west, "g", east)
	cutPath(t, relay, east) // nothing is acked, the spool fills
	c := connect(t, east)
	ctx := ctxT(t, 30*time.Second)
	payload := make([]byte, 4096)
	confirmed := 0
	var full error
	for i := 0; i < 1000; i++ {
		err := c.Send(ctx, mb.Addr(), payload, client.WithMode(client.Durable))
		if err != nil {
			full = err
			break
		}
		confirmed++
	}
	if !errors.Is(full, client.ErrBusy) {
		t.Fatalf("after %d durable sends: %v, want ErrBusy from the full spool", confirmed, full)
	}
	// Reliable traffic still goes: queued now, delivered on heal.
	if err := c.Send(ctx, mb.Addr(), []byte("reliable"), client.WithHighPriority()); err != nil {
		t.Fatalf("reliable send with a full spool: %v", err)
	}
	relay.SetBlackhole(false)
	got, sawReliable := 0, false
	for got < confirmed || !sawReliable {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatalf("received %d of %d confirmed durable messages: %v", got, confirmed, err)
		}
		if string(m.Payload) == "reliable" {
			sawReliable = true
		} else {
			got++
		}
	}
	if got != confirmed {
		t.Fatalf("received %d durable messages, %d were confirmed", got, confirmed)
	}
}
