package client_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/internal/wire"
)

// fakeDaemon answers the local protocol's hello, Open and Join on each
// connection it accepts; before the Opened of the connection numbered
// (from 0) in early it sends the frames early gives for it, after the
// answer to a Join those late gives. With breakFirst it closes the first
// connection once the mailbox joined, making the client reconnect.
func fakeDaemon(t *testing.T, early, late map[int][]wire.Message, breakFirst bool) string {
	path := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 0; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r, err := client.FakeHello(conn, "c", "n")
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
						for _, e := range early[n] {
							out = wire.AppendFrame(out, e)
						}
						out = wire.AppendFrame(out, &wire.Opened{Req: m.Req, Mailbox: 9})
					case *wire.Join:
						out = wire.AppendFrame(out, &wire.Result{Req: m.Req, Status: wire.StatusOK})
						for _, e := range late[n] {
							out = wire.AppendFrame(out, e)
						}
					case *wire.Sync:
						out = wire.AppendFrame(out, &wire.Result{Req: m.Req, Status: wire.StatusOK})
					}
					conn.Write(out)
					if _, join := m.(*wire.Join); join && n == 0 && breakFirst {
						return // the first connection breaks
					}
				}
			}()
		}
	}()
	return path
}

// A DeliverBatch that arrives while the client restores its mailboxes after
// a reconnect is held and delivered once the mailbox is back, like a
// Deliver.
func TestDeliverBatchDuringRestore(t *testing.T) {
	batch := &wire.DeliverBatch{Mailbox: 9, FromCluster: "c", FromNode: "n", Group: "g",
		Payloads: wire.Batch(nil).Append([]byte("a")).Append([]byte("b"))}
	path := fakeDaemon(t, map[int][]wire.Message{1: {batch, &wire.Deliver{Mailbox: 9, FromCluster: "c", FromNode: "n", Payload: []byte("c")}}}, nil, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: path, ReconnectMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "b", "c"} {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v (reconnects: %d)", want, err, c.Reconnects())
		}
		if string(m.Payload) != want || m.From.Node != "n" || (m.Group == "g") != (want != "c") {
			t.Fatalf("received %q from %+v in group %q, want %q", m.Payload, m.From, m.Group, want)
		}
	}
}

// A DeliverBatch larger than the inbox: without HoldWhenFull what does not
// fit is dropped and counted; with it, the reader waits for room and every
// message arrives, in order.
func TestDeliverBatchIntoFullInbox(t *testing.T) {
	batch := &wire.DeliverBatch{Mailbox: 9, FromCluster: "c", FromNode: "n", Group: "g"}
	for i := range 100 {
		batch.Payloads = batch.Payloads.Append([]byte{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9})
	}
	for _, hold := range []bool{false, true} {
		path := fakeDaemon(t, nil, map[int][]wire.Message{0: {batch}}, false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Connect(ctx, client.Options{Socket: path, InboxBytes: 100, HoldWhenFull: hold})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mb, err := c.NewMailbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := mb.Join(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		want := 100
		if !hold {
			want = 10 // 100 bytes of inbox: ten 10-byte payloads
		}
		for i := range want {
			m, err := mb.Receive(ctx)
			if err != nil {
				t.Fatalf("hold %v: message %d: %v", hold, i, err)
			}
			if m.Payload[0] != byte(i) {
				t.Fatalf("hold %v: message %d is payload %d", hold, i, m.Payload[0])
			}
		}
		if d := mb.Dropped(); d != uint64(100-want) {
			t.Fatalf("hold %v: %d dropped, want %d", hold, d, 100-want)
		}
	}
}
