package daemon

import (
	"bytes"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/internal/wire"
)

// traceHeaders are the headers of message i.
func traceHeaders(i int) client.Headers {
	return client.Headers{
		{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-" + strconv.FormatInt(int64(0x1000000000000000+i), 16) + "-01"},
		{Key: "n", Value: strconv.Itoa(i)},
	}
}

// Headers cross a link on every kind of send: to an address, to a group by
// the closest member and by a strategy the receiver routes by (Routed), an
// async send among batched plain ones, and a Call and its Reply.
func TestHeadersCrossLink(t *testing.T) {
	for _, tr := range []string{"tcp", "quic"} {
		t.Run(tr, func(t *testing.T) {
			east, west := pair(t, tr)
			mb := subscribe(t, west, "g", east)
			c := connect(t, east)
			ctx := ctxT(t, 30*time.Second)
			sends := []func(i int) error{
				func(i int) error {
					return c.Send(ctx, mb.Addr(), []byte(strconv.Itoa(i)), client.WithHeaders(traceHeaders(i)))
				},
				func(i int) error {
					return c.SendGroup(ctx, "g", []byte(strconv.Itoa(i)), client.WithHeaders(traceHeaders(i)))
				},
				func(i int) error {
					return c.SendGroup(ctx, "g", []byte(strconv.Itoa(i)), client.WithHeaders(traceHeaders(i)), client.WithStrategy(client.Random))
				},
				func(i int) error {
					return c.SendGroup(ctx, "g", []byte(strconv.Itoa(i)), client.WithHeaders(traceHeaders(i)), client.WithHighPriority(), client.WithTTL(time.Minute))
				},
				func(i int) error {
					return c.SendAsync(client.Target{Group: "g"}, []byte(strconv.Itoa(i)), client.WithHeaders(traceHeaders(i)))
				},
				func(i int) error { // plain: in a DataBatch, without headers
					return c.SendAsync(client.Target{Group: "g"}, []byte(strconv.Itoa(i)))
				},
			}
			for i, send := range sends {
				if err := send(i); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			if err := c.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			got := map[int]client.Headers{} // by payload: the high lane may overtake
			for range sends {
				m, err := mb.Receive(ctx)
				if err != nil {
					t.Fatal(err)
				}
				i, _ := strconv.Atoi(string(m.Payload))
				got[i] = m.Headers
			}
			for i := range sends {
				want := traceHeaders(i)
				if i == len(sends)-1 {
					want = nil
				}
				if h, ok := got[i]; !ok || !slices.Equal(h, want) {
					t.Fatalf("message %d: headers %v (received: %v), want %v", i, h, ok, want)
				}
			}
			go func() {
				m, err := mb.Receive(ctx)
				if err == nil {
					_ = m.Reply(ctx, []byte(m.Headers.Get("n")), client.WithHeaders(client.Headers{{Key: "from", Value: "west"}}))
				}
			}()
			r, err := c.CallGroup(ctx, "g", []byte("?"), client.WithHeaders(client.Headers{{Key: "n", Value: "7"}}))
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Payload) != "7" || r.Headers.Get("from") != "west" {
				t.Fatalf("reply %q with headers %v", r.Payload, r.Headers)
			}
		})
	}
}

// Messages a client read but did not confirm are sent again when it goes
// (the receiving node resets the link): the group's next member gets each
// one with its headers.
func TestHeadersKeptOnRedelivery(t *testing.T) {
	const n = 50
	east, west := pair(t, "mem")
	rc := dialRaw(t, west)
	rc.join("g")
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "g", 1); err != nil {
		t.Fatal(err)
	}
	pub := connect(t, east)
	for i := range n {
		sendAsync(t, pub, client.Target{Group: "g"}, []byte(strconv.Itoa(i)), client.WithHeaders(traceHeaders(i)))
	}
	if err := pub.Flush(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	rc.read(func(m wire.Message) bool {
		if d, ok := m.(*wire.Deliver); ok {
			want, _ := wire.EncodeHeaders(nil, traceHeaders(int(rc.n-1)))
			if !bytes.Equal(d.Headers, want) {
				t.Fatalf("first delivery %d: headers %q, want %q", rc.n-1, d.Headers, want)
			}
		}
		return rc.n == n
	})
	next := subscribe(t, west, "g")
	rc.conn.Close()
	ctx := ctxT(t, 30*time.Second)
	for i := range n {
		m, err := next.Receive(ctx)
		if err != nil {
			t.Fatalf("redelivery %d: %v", i, err)
		}
		if string(m.Payload) != strconv.Itoa(i) || !slices.Equal(m.Headers, traceHeaders(i)) {
			t.Fatalf("redelivered %q with headers %v, want %d with %v", m.Payload, m.Headers, i, traceHeaders(i))
		}
	}
	if st := east.d.Status().Links[0]; st.Redelivered == 0 {
		t.Fatalf("east redelivered nothing: %+v", st)
	}
}

// Durable messages with headers sent while the link is cut wait in the
// spool; after the sender restarts (recovering them from its spool) and
// the link heals, they arrive with their headers.
func TestHeadersDurableAcrossCutAndRestart(t *testing.T) {
	east, west := pairWith(t, "mem", func(east, _ *node) {
		east.cfg.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	})
	mb := subscribe(t, west, "g", east)
	east.block("west", "west-1", true)
	west.block("east", "east-1", true)
	ctx := ctxT(t, 30*time.Second)
	c := connect(t, east)
	for i := range 10 {
		if err := c.SendGroup(ctx, "g", []byte(strconv.Itoa(i)), client.WithMode(client.Durable), client.WithHeaders(traceHeaders(i))); err != nil {
			t.Fatalf("durable send %d: %v", i, err)
		}
	}
	c.Close()
	east.d.Close()
	east.start() // recovers the ten from its spool
	east.block("west", "west-1", false)
	west.block("east", "east-1", false)
	for i := range 10 {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatalf("durable %d: %v", i, err)
		}
		if string(m.Payload) != strconv.Itoa(i) || !slices.Equal(m.Headers, traceHeaders(i)) {
			t.Fatalf("durable %q with headers %v, want %d with %v", m.Payload, m.Headers, i, traceHeaders(i))
		}
	}
}

// A client of the local protocol's version 2 (before headers) gets the
// messages sent to it with headers, without them, in the form it decodes.
func TestHeadersLeftOutForVersion2Client(t *testing.T) {
	east, west := pair(t, "mem")
	rc := dialRawVersion(t, west, wire.LocalVersion2)
	rc.join("g")
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "g", 1); err != nil {
		t.Fatal(err)
	}
	pub := connect(t, east)
	if err := pub.SendGroup(ctxT(t, 5*time.Second), "g", []byte("x"), client.WithHeaders(traceHeaders(1))); err != nil {
		t.Fatal(err)
	}
	rc.read(func(m wire.Message) bool {
		switch d := m.(type) {
		case *wire.Deliver:
			if d.Headers != nil || d.Flags&wire.FlagHeaders != 0 || string(d.Payload) != "x" {
				t.Fatalf("a version-2 client got %+v", d)
			}
			return true
		case *wire.DeliverBatch: // without headers, the message is a plain one
			if p, _ := d.Payloads.Next(); string(p) != "x" || d.Payloads.Count() != 1 {
				t.Fatalf("a version-2 client got %+v", d)
			}
			return true
		}
		return false
	})
}
