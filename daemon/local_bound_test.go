package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// rawLocal connects to n's socket and says hello as name, by hand: the
// test then writes what it likes and reads nothing.
func rawLocal(t *testing.T, n *node, name string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", n.cfg.Local.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(wire.AppendFrame(nil, &wire.ClientHello{Version: wire.LocalVersion, Name: name}))
	typ, body, err := wire.NewReader(c, 1<<20).ReadFrame()
	var sh wire.ServerHello
	if err != nil || typ != wire.TypeServerHello || sh.DecodeBody(body) != nil || sh.Status != wire.StatusOK {
		t.Fatalf("hello: %v %v %+v", typ, err, sh)
	}
	c.SetDeadline(time.Time{})
	return c
}

// unwrittenFor returns the bytes the daemon holds for its local client
// named name and has not written to it (-1: no such client).
func unwrittenFor(d *Daemon, name string) int {
	d.local.mu.Lock()
	defer d.local.mu.Unlock()
	for c := range d.local.clients {
		if c.name == name {
			c.omu.Lock()
			defer c.omu.Unlock()
			return c.unwrittenLocked()
		}
	}
	return -1
}

// bigGroup makes group have n members on d's node.
func bigGroup(t *testing.T, d *Daemon, group string, n int) {
	t.Helper()
	for i := range n {
		if err := d.groups.JoinClaim(group, uint64(1_000_000+i), groups.Claim{}); err != nil {
			t.Fatal(err)
		}
	}
}

// A client that asks for a big group's members over and over and never
// reads what it is answered: the daemon holds at most local.client_buffer
// plus one answer for it (it stops reading the client's requests), and
// other clients, here and over the link, are served meanwhile.
func TestLocalAnswersBoundedByClientBuffer(t *testing.T) {
	const bound = 1 << 20
	east, west := pairWith(t, "mem", func(east, _ *node) { east.cfg.Local.ClientBuffer = bound })
	bigGroup(t, east.d, "big", 4000)
	listSize := len(wire.AppendFrame(nil, &wire.MembersList{Members: make([]wire.MemberInfo, 4000)})) + 4000*16

	raw := rawLocal(t, east, "greedy")
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after raw is closed (cleanups run last first)
	const asks = 300   // ~80 MB of answers, unbounded
	wg.Go(func() {
		var b []byte
		for i := range asks {
			b = wire.AppendFrame(b[:0], &wire.Members{Req: uint64(i + 1), Group: "big"})
			if _, err := raw.Write(b); err != nil {
				return // the test ended: the daemon stopped reading long before
			}
		}
	})
	limit := bound + listSize
	waitUntil(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(east.d.metrics.localWaits) >= 1 || unwrittenFor(east.d, "greedy") > limit
	}, func() string { return fmt.Sprintf("no answer waited; unwritten %d", unwrittenFor(east.d, "greedy")) })
	if u := unwrittenFor(east.d, "greedy"); u > limit {
		t.Fatalf("the daemon holds %d bytes for a client that does not read, over local.client_buffer %d plus one answer (%d)", u, bound, listSize)
	}

	// Others are served: a local client lists the group and sends over the
	// link to a member on west, which answers.
	srv := subscribe(t, west, "echo", east)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- srv.Serve(ctx, 1, func(ctx context.Context, m *client.Message) { m.Reply(ctx, m.Payload) })
	}()
	defer func() { cancel(); <-served }()
	c := connect(t, east)
	ms, err := c.Members(ctxT(t, 5*time.Second), "big")
	if err != nil || len(ms) != 4000 {
		t.Fatalf("another client's Members: %d members, %v", len(ms), err)
	}
	for i := range 20 {
		if rep, err := c.CallGroup(ctxT(t, 5*time.Second), "echo", []byte("ping")); err != nil || string(rep.Payload) != "ping" {
			t.Fatalf("call %d over the link: %v", i, err)
		}
	}
	if u := unwrittenFor(east.d, "greedy"); u > limit {
		t.Fatalf("the daemon holds %d bytes for a client that does not read, over %d", u, limit)
	}
}

// A member list larger than local.client_buffer on its own is refused with
// ErrTooLarge, saying why, and counted; the client goes on.
func TestLocalAnswerTooLargeRefused(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Local.ClientBuffer = 64 << 10
	n.start()
	bigGroup(t, n.d, "big", 10_000) // ~180 KB of list
	c := connect(t, n)
	_, err := c.Members(ctxT(t, 5*time.Second), "big")
	if !errors.Is(err, client.ErrTooLarge) || !strings.Contains(err.Error(), "local.client_buffer") || !strings.Contains(err.Error(), `"big"`) {
		t.Fatalf("Members of a list over local.client_buffer: %v, want ErrTooLarge naming the bound and the group", err)
	}
	if v := testutil.ToFloat64(n.d.metrics.localRejects.WithLabelValues("answer_too_large")); v != 1 {
		t.Fatalf("answer_too_large counted %v, want 1", v)
	}
	bigGroup(t, n.d, "small", 10)
	if ms, err := c.Members(ctxT(t, 5*time.Second), "small"); err != nil || len(ms) != 10 {
		t.Fatalf("Members after a refusal: %d, %v", len(ms), err)
	}
}

// Connections that never say hello hold no slot of local.max_clients, and
// past maxPendingHello of them the oldest are closed: real clients connect
// while hundreds are open, and max_clients still holds for them.
func TestSilentConnectionsDoNotLockOutClients(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Local.MaxClients = 4
	n.cfg.Local.HelloTimeout = time.Minute // only the defences below free the slots
	n.start()
	const silent = maxPendingHello + 72
	for range silent {
		c, err := net.Dial("unix", n.cfg.Local.Socket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	evicted := func() float64 { return testutil.ToFloat64(n.d.metrics.localRejects.WithLabelValues("hello_evicted")) }
	waitUntil(t, 10*time.Second, func() bool { return evicted() >= silent-maxPendingHello }, func() string {
		return fmt.Sprintf("%v of %d silent connections evicted, want %d", evicted(), silent, silent-maxPendingHello)
	})
	n.d.local.mu.Lock()
	pending := len(n.d.local.pending)
	n.d.local.mu.Unlock()
	if pending > maxPendingHello {
		t.Fatalf("%d connections pending hello, over %d", pending, maxPendingHello)
	}
	for i := range n.cfg.Local.MaxClients {
		c, err := client.Connect(ctxT(t, 5*time.Second), client.Options{Socket: n.cfg.Local.Socket, Name: fmt.Sprint("real-", i)})
		if err != nil {
			t.Fatalf("real client %d beside %d silent connections: %v", i, silent, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	_, err := client.Connect(ctxT(t, 5*time.Second), client.Options{Socket: n.cfg.Local.Socket})
	if !errors.Is(err, client.ErrBusy) {
		t.Fatalf("client over local.max_clients: %v, want ErrBusy", err)
	}
}

// A connection silent past local.hello_timeout is closed and counted.
func TestHelloTimeoutClosesSilentConnection(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Local.HelloTimeout = 200 * time.Millisecond
	n.start()
	c, err := net.Dial("unix", n.cfg.Local.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectHangUp(t, c, "silent local connection")
	if v := testutil.ToFloat64(n.d.metrics.localRejects.WithLabelValues("no_hello")); v != 1 {
		t.Fatalf("no_hello counted %v, want 1", v)
	}
}
