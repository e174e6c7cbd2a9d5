package client

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/wandist/wandist/internal/wire"
)

// requestDaemon is a fake daemon for the replying side of request-reply: it
// answers the hello, Open (mailbox 9) and Join, then delivers one request
// (Corr 5, from mailbox 3 of c/n) to mailbox 9. It passes every Send and
// DeliverAck it reads to got, answers a Sync, and answers a Send only with
// refuse's status (when not StatusOK).
func requestDaemon(t *testing.T, refuse uint8) (path string, got <-chan wire.Message) {
	path = filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan wire.Message, 16)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r, err := FakeHello(conn, "c", "n")
		if err != nil {
			return
		}
		for {
			m, err := r.ReadMessage()
			if err != nil {
				return
			}
			var out []byte
			switch m := m.(type) {
			case *wire.Open:
				out = wire.AppendFrame(out, &wire.Opened{Req: m.Req, Mailbox: 9})
			case *wire.Join:
				out = wire.AppendFrame(out, &wire.Result{Req: m.Req, Status: wire.StatusOK})
				out = wire.AppendFrame(out, &wire.Deliver{Mailbox: 9, FromCluster: "c", FromNode: "n", From: 3, Corr: 5, TTL: 60_000, Payload: []byte("q")})
			case *wire.Sync:
				out = wire.AppendFrame(out, &wire.Result{Req: m.Req, Status: wire.StatusOK})
			case *wire.Send:
				ch <- m
				if refuse != wire.StatusOK {
					out = wire.AppendFrame(out, &wire.Result{Req: m.Req, Status: refuse, Message: "refused by the test"})
				}
			case *wire.DeliverAck:
				ch <- m
			}
			conn.Write(out)
		}
	}()
	return path, ch
}

// receiveRequest connects to path and returns the request the fake daemon
// delivers. A confirmDelay other than 0 replaces the client's.
func receiveRequest(t *testing.T, ctx context.Context, path string, confirmDelay time.Duration) (*Client, *Message) {
	c, err := Connect(ctx, Options{Socket: path, NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if confirmDelay != 0 {
		c.wmu.Lock()
		c.confirmDelay = confirmDelay
		c.wmu.Unlock()
	}
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	m, err := mb.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !m.IsRequest() {
		t.Fatalf("the delivery is not a request: %+v", m)
	}
	return c, m
}

// nextSend returns the next Send the fake daemon read.
func nextSend(t *testing.T, ctx context.Context, got <-chan wire.Message) *wire.Send {
	for {
		select {
		case m := <-got:
			if s, ok := m.(*wire.Send); ok {
				return s
			}
		case <-ctx.Done():
			t.Fatal("the daemon read no Send")
		}
	}
}

// A Reply is quiet: it returns without a Result from the daemon (this one
// never answers a Send it accepts), and the Send says so (FlagQuiet).
func TestReplyIsQuiet(t *testing.T) {
	path, got := requestDaemon(t, wire.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, m := receiveRequest(t, ctx, path, 0)
	if err := m.Reply(ctx, []byte("a")); err != nil {
		t.Fatalf("Reply: %v (it waited for a Result no daemon sends for a quiet send)", err)
	}
	s := nextSend(t, ctx, got)
	if s.Flags&wire.FlagQuiet == 0 || s.Flags&wire.FlagReply == 0 || s.Corr != 5 || s.Mailbox != 3 || s.Node != "n" || string(s.Payload) != "a" {
		t.Fatalf("the reply's Send: %+v, want a quiet reply to c/n/3 with Corr 5", s)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush after an accepted reply: %v", err)
	}
}

// A quiet Reply the daemon refuses: the refusal is collected for Flush.
func TestRefusedReplyGoesToFlush(t *testing.T) {
	path, got := requestDaemon(t, wire.StatusUnreachable)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, m := receiveRequest(t, ctx, path, 0)
	if err := m.Reply(ctx, []byte("a")); err != nil {
		t.Fatalf("Reply: %v", err)
	}
	nextSend(t, ctx, got)
	err := c.Flush(ctx)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Flush after a refused reply: %v, want ErrUnreachable", err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("a second Flush: %v, want nil (the failure was reported once)", err)
	}
}

// A Reply takes the confirmation of the request's delivery along (a
// DeliverAck right after the reply, in the same write): with the
// confirmation timer an hour away, the daemon still gets it.
func TestReplyCarriesConfirmation(t *testing.T) {
	path, got := requestDaemon(t, wire.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, m := receiveRequest(t, ctx, path, time.Hour)
	if err := m.Reply(ctx, []byte("a")); err != nil {
		t.Fatalf("Reply: %v", err)
	}
	var seen []wire.Message
	for len(seen) < 2 {
		select {
		case f := <-got:
			seen = append(seen, f)
		case <-ctx.Done():
			t.Fatalf("the daemon read %d frames after the reply (%+v), want the Send and a DeliverAck", len(seen), seen)
		}
	}
	if _, ok := seen[0].(*wire.Send); !ok {
		t.Fatalf("first frame %T, want the reply's Send", seen[0])
	}
	if a, ok := seen[1].(*wire.DeliverAck); !ok || a.Count != 1 {
		t.Fatalf("after the reply: %+v, want DeliverAck{Count: 1}", seen[1])
	}
}

// Close confirms what the client took, even when the confirmation timer
// has not run yet: the daemon reads the DeliverAck before the connection
// ends, so it does not give the delivery to another member again.
func TestCloseConfirmsWhatWasTaken(t *testing.T) {
	path, got := requestDaemon(t, wire.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _ := receiveRequest(t, ctx, path, time.Hour) // the timer never confirms
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-got:
			if a, ok := m.(*wire.DeliverAck); ok {
				if a.Count != 1 {
					t.Fatalf("Close confirmed %d deliveries, want the 1 taken", a.Count)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("the daemon read no DeliverAck before the client closed")
		}
	}
}

// The reader counts a delivery as taken before the application can have
// it, so Close, right after a Receive, confirms it (counted after, a Close
// in between left it unconfirmed, to come again to the group's next
// member). The test holds the mailbox's lock, so the reader stops inside
// the hand-over: the delivery must be counted by then.
func TestDeliveryCountedBeforeHandedOver(t *testing.T) {
	path, got := deliverOnOpenDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Connect(ctx, Options{Socket: path, NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.wmu.Lock()
	c.confirmDelay = time.Hour // the timer never confirms
	c.wmu.Unlock()
	mb, err := c.NewMailbox(ctx) // mailbox 1
	if err != nil {
		t.Fatal(err)
	}
	mb.mu.Lock()
	if _, err := c.NewMailbox(ctx); err != nil { // the daemon delivers to mailbox 1 after it
		mb.mu.Unlock()
		t.Fatal(err)
	}
	for c.taken.Load() == 0 {
		if ctx.Err() != nil {
			mb.mu.Unlock()
			t.Fatal("the reader hands a delivery to its mailbox before it counts it")
		}
		time.Sleep(time.Millisecond)
	}
	mb.mu.Unlock()
	if m, err := mb.Receive(ctx); err != nil || string(m.Payload) != "x" {
		t.Fatalf("Receive: %v %v", m, err)
	}
	c.Close()
	select {
	case a := <-got:
		if a.Count != 1 {
			t.Fatalf("Close confirmed %d deliveries, want the 1 received", a.Count)
		}
	case <-ctx.Done():
		t.Fatal("the daemon read no DeliverAck before the client closed")
	}
}

// deliverOnOpenDaemon is a fake daemon that answers the hello and Opens
// (mailboxes 1, 2, ...), and after the second Opened delivers "x" to
// mailbox 1. It passes every DeliverAck it reads to got.
func deliverOnOpenDaemon(t *testing.T) (path string, got <-chan *wire.DeliverAck) {
	path = filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan *wire.DeliverAck, 16)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r, err := FakeHello(conn, "c", "n")
		if err != nil {
			return
		}
		var opened uint64
		for {
			m, err := r.ReadMessage()
			if err != nil {
				return
			}
			switch m := m.(type) {
			case *wire.Open:
				opened++
				out := wire.AppendFrame(nil, &wire.Opened{Req: m.Req, Mailbox: opened})
				if opened == 2 {
					out = wire.AppendFrame(out, &wire.Deliver{Mailbox: 1, FromCluster: "c", FromNode: "n", From: 3, Payload: []byte("x")})
				}
				conn.Write(out)
			case *wire.DeliverAck:
				ch <- m
			}
		}
	}()
	return path, ch
}
