package daemon

import (
	"context"
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// Quiet async sends travel in SendBatch frames; every kind of batch arrives
// whole and in order: to a remote group (routed once per batch), to a
// mailbox on the sending node and by round robin (both sent one by one).
func TestSendBatchPaths(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pair(t, tr)
		remote := subscribe(t, west, "g", east)
		local := subscribe(t, east, "l")
		rr1 := subscribe(t, west, "rr")
		rr2 := subscribe(t, west, "rr")
		if err := east.d.WaitMembers(ctxT(t, 10*time.Second), "rr", 2); err != nil {
			t.Fatal(err)
		}
		pub := connect(t, east)
		const n = 3000
		for i := range n {
			for _, err := range []error{
				pub.SendAsync(client.Target{Group: "g"}, []byte(strconv.Itoa(i))),
				pub.SendAsync(client.Target{Addr: local.Addr()}, []byte(strconv.Itoa(i))),
				pub.SendAsync(client.Target{Group: "rr"}, []byte(strconv.Itoa(i)), client.WithStrategy(client.RoundRobin)),
			} {
				if err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
		}
		if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		receiveSeq(t, remote, n, 30*time.Second)
		receiveSeq(t, local, n, 30*time.Second)
		// Round robin: each member gets every other message, in order.
		got := map[*client.Mailbox][]int{}
		ctx := ctxT(t, 30*time.Second)
		for range n {
			select {
			case <-ctx.Done():
				t.Fatalf("round robin: %d and %d of %d received", len(got[rr1]), len(got[rr2]), n)
			default:
			}
			for _, mb := range []*client.Mailbox{rr1, rr2} {
				short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
				m, err := mb.Receive(short)
				cancel()
				if err == nil {
					v, _ := strconv.Atoi(string(m.Payload))
					got[mb] = append(got[mb], v)
				}
			}
			if len(got[rr1])+len(got[rr2]) == n {
				break
			}
		}
		for _, mb := range []*client.Mailbox{rr1, rr2} {
			vs := got[mb]
			if len(vs) != n/2 {
				t.Fatalf("round robin: a member got %d of %d messages, want half", len(vs), n)
			}
			for i := 1; i < len(vs); i++ {
				if vs[i] != vs[i-1]+2 {
					t.Fatalf("round robin: a member got %d after %d", vs[i], vs[i-1])
				}
			}
		}
	})
}

// A batch that fills the destination's buffer midway: the messages before
// the bound are queued and later delivered in order, those after it are
// refused (Flush reports ErrBusy), and the buffer never holds more than its
// bound.
func TestSendBatchFullMidway(t *testing.T) {
	const bound = 100
	east, west := pairWith(t, "mem", func(east, west *node) {
		west.cfg.Buffer.MaxMessages = bound // peerOf gives east this buffer for west
	})
	mb := subscribe(t, west, "g", east)
	east.block("west", "west-1", true)
	if err := east.d.WaitLink(ctxT(t, 5*time.Second), "west", "west-1", false); err != nil {
		t.Fatal(err)
	}
	pub := connect(t, east)
	for i := range 3 * bound {
		if err := pub.SendAsync(client.Target{Group: "g"}, []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := pub.Flush(ctxT(t, 10*time.Second)); !errors.Is(err, client.ErrBusy) {
		t.Fatalf("Flush after overfilling the buffer: %v, want ErrBusy", err)
	}
	if st := east.d.peer("west", "west-1").queue.Stats(); st.Messages != bound || st.Rejected != 2*bound {
		t.Fatalf("west's buffer holds %d messages and refused %d; want %d and %d", st.Messages, st.Rejected, bound, 2*bound)
	}
	east.block("west", "west-1", false)
	receiveSeq(t, mb, bound, 30*time.Second)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if m, err := mb.Receive(short); err == nil {
		t.Fatalf("message %q delivered beyond the bound", m.Payload)
	}
}

// A SendBatch that is not quiet, or is durable, is refused with a Result
// that says why; the connection goes on.
func TestSendBatchMustBeQuiet(t *testing.T) {
	east, _ := pair(t, "mem")
	c, err := net.Dial("unix", east.cfg.Local.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := wire.NewReader(c, 1<<20)
	c.Write(wire.AppendFrame(nil, &wire.ClientHello{Version: wire.LocalVersion, Name: "t"}))
	if m, err := r.ReadMessage(); err != nil || m.(*wire.ServerHello).Status != wire.StatusOK {
		t.Fatalf("hello: %v %v", m, err)
	}
	for _, flags := range []uint64{0, wire.FlagQuiet | wire.FlagDurable} {
		b := &wire.SendBatch{SendHeader: wire.SendHeader{Req: 7, Flags: flags, Group: "g"}, Payloads: wire.Batch(nil).Append([]byte("x")).Append([]byte("y"))}
		c.Write(b.AppendFrame(wire.AppendFrame(nil, &wire.Sync{Req: 8})))
		var res []*wire.Result
		for len(res) < 2 {
			m, err := r.ReadMessage()
			if err != nil {
				t.Fatalf("flags %#x: %v", flags, err)
			}
			if x, ok := m.(*wire.Result); ok {
				res = append(res, x)
			}
		}
		if res[0].Req != 8 || res[1].Req != 7 || res[1].Status != wire.StatusBadRequest || !strings.Contains(res[1].Message, "must be quiet and not durable") {
			t.Fatalf("flags %#x: results %+v %+v", flags, res[0], res[1])
		}
	}
}

// DataBatch frames from a peer: each message is delivered once, in order,
// a batch resent in part after a resume delivers only what is new; a batch
// on the durable lane, or a malformed one, is a protocol error that ends
// only that link.
func TestDataBatchFromPeer(t *testing.T) {
	east, west := pair(t, "mem")
	mb := subscribe(t, east, "g", west)
	to := mb.Addr().Mailbox
	rogue := newNode(t, "mem", "north", "north-1")
	if err := addPeerForTest(east.d, peerOf(rogue, "mem", "", "accept")); err != nil {
		t.Fatal(err)
	}
	openLane := func(conn transport.Conn, lane uint8) transport.Stream {
		s, err := conn.OpenStream(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		s.Write(wire.AppendFrame(nil, &wire.StreamInit{Kind: wire.StreamData, Lane: lane}))
		return s
	}
	batch := func(seq uint64, ps ...string) []byte {
		b := &wire.DataBatch{Seq: seq, To: to, From: 4}
		for _, p := range ps {
			b.Payloads = b.Payloads.Append([]byte(p))
		}
		return b.AppendFrame(nil)
	}

	conn, _, _ := rawPeer(t, "mem", east, rogue)
	waitLink(t, east.d, "north", "north-1")
	s := openLane(conn, wire.LaneNormal)
	s.Write(append(batch(1, "a", "b", "c"), batch(2, "b", "c", "d")...)) // the second: a resend from Seq 2
	for _, want := range []string{"a", "b", "c", "d"} {
		m, err := mb.Receive(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if string(m.Payload) != want || m.From.Cluster != "north" || m.From.Mailbox != 4 {
			t.Fatalf("got %q from %+v, want %q from north", m.Payload, m.From, want)
		}
	}
	if n := east.d.peer("north", "north-1").duplicates.Load(); n != 2 {
		t.Fatalf("%d duplicates dropped, want 2", n)
	}

	for _, bad := range []struct {
		name  string
		lane  uint8
		frame []byte
	}{
		{"durable lane", wire.LaneDurable, batch(1, "x")},
		{"no payload", wire.LaneNormal, (&wire.DataBatch{Seq: 9, To: to}).AppendFrame(nil)},
		{"payload beyond the body", wire.LaneNormal, nil},
		{"Seqs wrapping past 2^64-1", wire.LaneNormal, batch(math.MaxUint64, "y", "z")},
	} {
		t.Run(bad.name, func(t *testing.T) {
			before := testutil.ToFloat64(east.d.metrics.protocolErrors.WithLabelValues("frame"))
			conn, _, r := rawPeer(t, "mem", east, rogue)
			waitLink(t, east.d, "north", "north-1")
			f := bad.frame
			if bad.name == "payload beyond the body" {
				f = batch(9, "xyz")
				f[len(f)-4] = 9 // the payload's length claims 9 bytes
			}
			openLane(conn, bad.lane).Write(f)
			if g := expectClosed(t, r); g != nil && g.Code != wire.GoAwayProtocol {
				t.Fatalf("GoAway code %d, want protocol", g.Code)
			}
			if after := testutil.ToFloat64(east.d.metrics.protocolErrors.WithLabelValues("frame")); after <= before {
				t.Fatalf("protocol error not counted (%v -> %v)", before, after)
			}
		})
	}
	// The link from west still works.
	wc := connect(t, west)
	if err := wc.SendGroup(ctxT(t, 5*time.Second), "g", []byte("0")); err != nil {
		t.Fatal(err)
	}
	receiveSeq(t, mb, 1, 5*time.Second)
}

// A link's reader remembers the mailbox its messages go to; once that
// mailbox is closed, messages to it are dropped (no_mailbox), not handed
// to the closed mailbox's client.
func TestClosedMailboxLeavesReaderCache(t *testing.T) {
	east, west := pair(t, "mem")
	c := connect(t, west)
	closing, err := c.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	other := subscribe(t, west, "other", east)
	pub := connect(t, east)
	send := func(to client.Addr, n int) {
		for i := range n {
			if err := pub.SendAsync(client.Target{Addr: to}, []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Flush(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	send(closing.Addr(), 100)
	receiveSeq(t, closing, 100, 10*time.Second)
	dropped := west.d.metrics.dropped.WithLabelValues("no_mailbox")
	before := testutil.ToFloat64(dropped)
	delivered := testutil.ToFloat64(west.d.metrics.delivered)
	if err := closing.Close(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	send(closing.Addr(), 100)
	send(other.Addr(), 1) // behind them on the same lane: once it is in, they were handled
	receiveSeq(t, other, 1, 10*time.Second)
	if got := testutil.ToFloat64(dropped) - before; got != 100 {
		t.Fatalf("%v messages to the closed mailbox dropped as no_mailbox, want 100", got)
	}
	if got := testutil.ToFloat64(west.d.metrics.delivered) - delivered; got != 1 {
		t.Fatalf("%v messages delivered after the close, want 1 (to the other mailbox)", got)
	}
}
