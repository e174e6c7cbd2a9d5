package daemon

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/impair"
)

// With one destination unreachable (its path blackholed), its buffer fills
// to the configured bound and no further: sends to it answer ErrBusy at once,
// memory stays within the bound plus a small constant, and traffic to
// another destination is not affected.
func TestFullBufferAnswersBusyAndIsolates(t *testing.T) {
	east := newNode(t, "quic", "east", "east-1")
	west := newNode(t, "quic", "west", "west-1")
	south := newNode(t, "quic", "south", "south-1")
	const bound = 4 << 20
	west.cfg.Peers = []configs.Peer{peerOf(east, "quic", "", "accept")}
	south.cfg.Peers = []configs.Peer{peerOf(east, "quic", "", "accept")}
	west.start()
	south.start()
	relay, err := impair.NewUDPRelay("127.0.0.1:0", west.addr("quic"))
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	wp := peerOf(west, "quic", relay.Addr(), "connect")
	wp.Buffer.MaxBytes = bound
	east.cfg.Peers = []configs.Peer{wp, peerOf(south, "quic", south.addr("quic"), "connect")}
	east.start()
	waitLink(t, east.d, "west", "west-1")
	waitLink(t, east.d, "south", "south-1")
	subscribe(t, west, "w", east)
	smb := subscribe(t, south, "s", east)

	cutPath(t, relay, east) // west's consumer side is gone, no FIN
	pub := connect(t, east)
	payload := make([]byte, 1024)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	accepted, busy := 0, 0
	ctx := ctxT(t, 60*time.Second) // one context: a context per send would grow the heap itself
	for i := 0; i < 3*bound/len(payload); i++ {
		err := pub.SendGroup(ctx, "w", payload)
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, client.ErrBusy):
			busy++
		default:
			t.Fatalf("send %d: %v (want nil or ErrBusy, never a timeout)", i, err)
		}
	}
	if busy == 0 || accepted == 0 {
		t.Fatalf("accepted %d, busy %d: the bound was not reached or nothing fit", accepted, busy)
	}
	st := east.d.Status()
	var ws LinkStatus
	for _, l := range st.Links {
		if l.Cluster == "west" {
			ws = l
		}
	}
	if ws.QueuedBytes > bound || ws.Rejected != uint64(busy) {
		t.Fatalf("west buffer: %d bytes queued (bound %d), %d rejected (client saw %d)", ws.QueuedBytes, bound, ws.Rejected, busy)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > bound+8<<20 {
		t.Fatalf("heap grew by %d bytes for a %d-byte bound", grew, bound)
	}
	// South is unaffected.
	for i := 0; i < 100; i++ {
		if err := pub.SendGroup(ctxT(t, 5*time.Second), "s", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	receiveSeq(t, smb, 100, 10*time.Second)
	t.Logf("west: %d accepted, %d busy; %d bytes held (bound %d)", accepted, busy, ws.QueuedBytes, bound)
}

// A client that stops reading its socket does not delay delivery to other
// mailboxes on its node, and loses nothing: what its client cannot take
// waits in the node's hold (local.inbox_full: park), unacknowledged, and
// reaches it in order once it reads again.
func TestStuckConsumerIsolated(t *testing.T) {
	east, west := pairWith(t, "mem", func(_, west *node) { west.cfg.Local.ClientBuffer = 256 << 10 })
	// The stuck client: opens a mailbox, joins, then never reads.
	smb := slowMember(t, west, east, 1<<20)
	good := subscribe(t, west, "good", east)
	pub := connect(t, east)
	payload := make([]byte, 4096)
	for i := 0; i < 1000; i++ { // 4 MiB for a 1 MiB inbox
		if err := pub.SendAsync(client.Target{Group: "stuck"}, payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := pub.SendAsync(client.Target{Group: "good"}, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	receiveSeq(t, good, 100, 10*time.Second)
	// Nobody read the stuck mailbox: its inbox took 1 MiB, its client's
	// buffer at the daemon (1 MiB in this test) the next, and the rest
	// waits in west's hold, unacknowledged; nothing was dropped.
	if n := testutil.ToFloat64(west.d.metrics.held); n == 0 {
		t.Fatal("nothing held for the stuck mailbox")
	}
	ctx := ctxT(t, 30*time.Second)
	for i := range 1000 {
		if _, err := smb.Receive(ctx); err != nil {
			t.Fatalf("stuck mailbox, message %d of 1000: %v", i, err)
		}
	}
	if d := smb.Dropped(); d != 0 {
		t.Fatalf("the stuck mailbox's client dropped %d reliable messages", d)
	}
	if n := testutil.ToFloat64(west.d.metrics.dropped.WithLabelValues("inbox_full")); n != 0 {
		t.Fatalf("west dropped %v reliable messages at a full inbox", n)
	}
	// Every message confirmed: east's buffer to west empties.
	for ctx := ctxT(t, 10*time.Second); east.d.peer("west", "west-1").queue.Stats().Messages != 0; {
		select {
		case <-ctx.Done():
			t.Fatalf("east still holds %d messages for west", east.d.peer("west", "west-1").queue.Stats().Messages)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Async sends are quiet on the socket (only failures are answered): Flush
// still reports the first failure among them, once, and a daemon that goes
// away before Flush is a failure too, never a silent success.
func TestFlushReportsQuietSendFailures(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.start()
	good := subscribe(t, n, "good")
	pub := connect(t, n)
	for i := range 100 {
		target := client.Target{Group: "good"}
		if i == 40 {
			target = client.Target{Group: "nobody"}
		}
		if err := pub.SendAsync(target, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctxT(t, 5*time.Second)); !errors.Is(err, client.ErrNoMembers) {
		t.Fatalf("Flush = %v, want ErrNoMembers", err)
	}
	if err := pub.Flush(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("second Flush = %v, want nil (the failure was reported)", err)
	}
	for i := range 100 {
		if i == 40 {
			continue
		}
		m, err := good.Receive(ctxT(t, 5*time.Second))
		if err != nil || string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("message %d: %v %q", i, err, m.Payload)
		}
	}

	// The daemon restarts between the sends and Flush: the client has
	// reconnected, and a Sync on the new connection must not pass for a
	// confirmation of sends made on the old one. The send goes to the
	// sender's own mailbox: the daemon either delivers it or never reads
	// it, whichever way its shutdown goes (to another client's mailbox it
	// could be refused as that client's connection closes first).
	self, err := pub.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.SendAsync(client.Target{Addr: self.Addr()}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	n.d.Close()
	n.start()
	deadline := time.Now().Add(10 * time.Second)
	for pub.Reconnects() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client did not reconnect")
		}
		time.Sleep(5 * time.Millisecond) // polling: the SDK has no reconnect event
	}
	if err := pub.Flush(ctxT(t, 5*time.Second)); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("Flush after the daemon restarted = %v, want ErrUnavailable", err)
	}
	if err := pub.Flush(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("second Flush = %v, want nil", err)
	}
}

// The hold is bounded: past local.hold_messages a link lane waits (the
// sender's buffer keeps what follows) instead of dropping, and everything
// arrives, in order, once the consumer reads.
func TestHoldBoundHoldsUpLane(t *testing.T) {
	east, west := pairWith(t, "mem", func(_, west *node) {
		west.cfg.Local.ClientBuffer, west.cfg.Local.HoldMessages = 64<<10, 1000
	})
	mb := slowMember(t, west, east, 64<<10)
	pub := connect(t, east)
	const n = 5000
	payload := make([]byte, 100)
	for i := range n {
		copy(payload, strconv.Itoa(i)+" ")
		sendAsync(t, pub, client.Target{Group: "stuck"}, payload)
	}
	if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool { return testutil.ToFloat64(west.d.metrics.holdFullWaits) > 0 }, func() string {
		return "west's lane never waited for room in its hold"
	})
	if held := testutil.ToFloat64(west.d.metrics.held); held > 1000+2 {
		t.Fatalf("west holds %v messages, bound 1000 (+1 per lane)", held)
	}
	ctx := ctxT(t, 30*time.Second)
	for i := range n {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, n, err)
		}
		if want := strconv.Itoa(i) + " "; string(m.Payload[:len(want)]) != want {
			t.Fatalf("message %d: %q", i, m.Payload[:8])
		}
	}
	if d := testutil.ToFloat64(west.d.metrics.dropped.WithLabelValues("inbox_full")); d != 0 {
		t.Fatalf("west dropped %v", d)
	}
}

// A held message whose TTL ends leaves the hold, counted, and is done: its
// sender's buffer lets it go.
func TestHeldMessageExpires(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	east, west := pairWith(t, "mem", func(_, west *node) {
		west.cfg.Local.ClientBuffer = 64 << 10
		west.opts.Now = now
	})
	mb := slowMember(t, west, east, 64<<10)
	pub := connect(t, east)
	payload := make([]byte, 1000)
	for range 1000 { // 1 MB for 128 KiB of client buffer and inbox
		sendAsync(t, pub, client.Target{Group: "stuck"}, payload, client.WithTTL(time.Hour))
	}
	if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool { return west.d.Status().Hold.Messages > 0 }, func() string { return "nothing held" })
	// West's clock runs ahead by hours: every held message, and every one
	// held from now on, is past its TTL.
	waitUntil(t, 10*time.Second, func() bool {
		clock.Add(int64(2 * time.Hour))
		return queued(east) == 0 || west.d.Status().Hold.Messages == 0 && west.d.Status().Hold.Expired > 0
	}, func() string {
		return fmt.Sprintf("west still holds %d messages past their TTL", west.d.Status().Hold.Messages)
	})
	st := west.d.Status().Hold
	if st.Expired == 0 || testutil.ToFloat64(west.d.metrics.dropped.WithLabelValues("expired_held")) != float64(st.Expired) {
		t.Fatalf("hold status %+v: expired not counted", st)
	}
	// The client gets what it had taken; every message is then done, and
	// east's buffer empties.
	got := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := mb.Receive(ctx)
		cancel()
		if err != nil {
			break
		}
		got++
	}
	waitUntil(t, 10*time.Second, func() bool { clock.Add(int64(2 * time.Hour)); return queued(east) == 0 }, func() string {
		return fmt.Sprintf("east holds %d messages; the client got %d, west expired %d", queued(east), got, west.d.Status().Hold.Expired)
	})
	if st := west.d.Status().Hold; got+int(st.Expired) != 1000 {
		t.Fatalf("the client got %d and west expired %d of 1000", got, st.Expired)
	}
}

// slowMember joins group "stuck" on n with a client whose inbox holds
// inbox bytes, once waitOn sees it; the test reads it when it pleases.
func slowMember(t *testing.T, n, waitOn *node, inbox int) *client.Mailbox {
	t.Helper()
	c, err := client.Connect(ctxT(t, 5*time.Second), client.Options{Socket: n.cfg.Local.Socket, InboxBytes: inbox})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	mb, err := c.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Join(ctxT(t, 5*time.Second), "stuck"); err != nil {
		t.Fatal(err)
	}
	if err := waitOn.d.WaitMembers(ctxT(t, 5*time.Second), "stuck", 1); err != nil {
		t.Fatal(err)
	}
	return mb
}
