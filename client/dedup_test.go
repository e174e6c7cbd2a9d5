package client_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/internal/wire"
)

// A reliable message the daemon delivers again (after its restart) is
// dropped by the client, by stream and Seq, whatever the order the
// deliveries come in (a held message comes after later ones); messages
// of another lane or another sender are not confused with it; and the
// client confirms every delivery it took, duplicates included.
func TestRedeliveryDroppedAndConfirmed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const mbox = 7
	d := func(seq, floor uint64, flags uint64, node string) wire.Message {
		return &wire.Deliver{Mailbox: mbox, FromCluster: "east", FromNode: node, Stream: 42, Seq: seq, Floor: floor, Flags: flags,
			Payload: fmt.Appendf(nil, "%s/%d/%d", node, flags, seq)}
	}
	batch := func(seq, floor uint64, n int) wire.Message {
		b := &wire.DeliverBatch{Mailbox: mbox, FromCluster: "east", FromNode: "e1", Stream: 42, Seq: seq, Floor: floor}
		for i := range n {
			b.Payloads = b.Payloads.Append(fmt.Appendf(nil, "e1/0/%d", seq+uint64(i)))
		}
		return b
	}
	frames := []wire.Message{
		d(1, 0, 0, "e1"), d(2, 0, 0, "e1"), d(2, 0, 0, "e1"), // a duplicate
		d(5, 1, 0, "e1"),                   // 3 and 4 are held at the daemon
		batch(6, 2, 3),                     // 6, 7, 8
		d(3, 2, 0, "e1"), d(4, 2, 0, "e1"), // the held ones: not duplicates
		batch(5, 2, 4),                     // 5..8 again: all duplicates
		d(1, 0, 0, "e2"),                   // another sender
		d(1, 0, wire.FlagHigh, "e1"),       // another lane
		d(9, 8, 0, "e1"), d(2, 8, 0, "e1"), // 2 is under the floor
	}
	want := []string{"e1/0/1", "e1/0/2", "e1/0/5", "e1/0/6", "e1/0/7", "e1/0/8", "e1/0/3", "e1/0/4", "e2/0/1",
		"e1/" + strconv.Itoa(int(wire.FlagHigh)) + "/1", "e1/0/9"}
	total := uint64(0)
	for _, f := range frames {
		if b, ok := f.(*wire.DeliverBatch); ok {
			total += uint64(b.Payloads.Count())
		} else {
			total++
		}
	}
	acked := make(chan uint64, 100)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r, err := client.FakeHello(conn, "west", "w1")
		if err != nil {
			return
		}
		m, err := r.ReadMessage()
		if err != nil {
			return
		}
		conn.Write(wire.AppendFrame(nil, &wire.Opened{Req: m.(*wire.Open).Req, Mailbox: mbox}))
		var out []byte
		for _, f := range frames {
			out = wire.AppendFrame(out, f)
		}
		conn.Write(out)
		for {
			m, err := r.ReadMessage()
			if err != nil {
				return
			}
			if a, ok := m.(*wire.DeliverAck); ok {
				acked <- a.Count
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: path, NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(m.Payload) != w {
			t.Fatalf("message %d: got %q, want %q", i, m.Payload, w)
		}
	}
	for {
		select {
		case n := <-acked:
			if n > total {
				t.Fatalf("confirmed %d deliveries of %d", n, total)
			}
			if n == total { // every frame was dispatched: the last duplicate too
				if dups := c.Duplicates(); dups != total-uint64(len(want)) {
					t.Fatalf("%d duplicates dropped, want %d", dups, total-uint64(len(want)))
				}
				return
			}
		case <-ctx.Done():
			t.Fatalf("the client never confirmed all %d deliveries", total)
		}
	}
}
