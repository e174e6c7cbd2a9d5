package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
)

// localDaemon starts a one-node daemon for the examples and returns its socket.
func localDaemon() (socket string, stop func()) {
	dir, _ := os.MkdirTemp("", "wandist-example-")
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	c := configs.Default()
	c.Cluster, c.Node, c.Identity = "east", "east-1", "unused"
	c.Local.Socket = filepath.Join(dir, "wandist.sock")
	d, err := daemon.New(c, daemon.Options{Key: k, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := d.Start(context.Background()); err != nil {
		panic(err)
	}
	return c.Local.Socket, func() { d.Close(); os.RemoveAll(dir) }
}

// A service joins a group and receives what is sent to it.
func ExampleClient_SendGroup() {
	socket, stop := localDaemon()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Connect(ctx, client.Options{Socket: socket})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	mb, _ := c.NewMailbox(ctx)
	_ = mb.Join(ctx, "orders")

	_ = c.SendGroup(ctx, "orders", []byte("order 42"), client.WithTTL(time.Minute))
	m, _ := mb.Receive(ctx)
	fmt.Printf("%s\n", m.Payload)
	// Output: order 42
}

// Request-reply: the context's deadline travels with the request.
func ExampleClient_Call() {
	socket, stop := localDaemon()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	server, _ := client.Connect(ctx, client.Options{Socket: socket})
	defer server.Close()
	mb, _ := server.NewMailbox(ctx)
	_ = mb.Join(ctx, "upper")
	go mb.Serve(ctx, 1, func(ctx context.Context, m *client.Message) {
		_ = m.Reply(ctx, []byte(fmt.Sprintf("%s!", m.Payload)))
	})

	c, _ := client.Connect(ctx, client.Options{Socket: socket})
	defer c.Close()
	callCtx, callCancel := context.WithTimeout(ctx, 2*time.Second)
	defer callCancel()
	rep, err := c.CallGroup(callCtx, "upper", []byte("hello"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", rep.Payload)
	// Output: hello!
}

// Partitioned groups: a key always reaches the owner of its partition.
func ExampleMailbox_JoinPartitions() {
	socket, stop := localDaemon()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, _ := client.Connect(ctx, client.Options{Socket: socket})
	defer c.Close()
	low, _ := c.NewMailbox(ctx)
	high, _ := c.NewMailbox(ctx)
	_ = low.JoinPartitions(ctx, "kv", 2, 0)
	_ = high.JoinPartitions(ctx, "kv", 2, 1)

	for _, key := range []string{"a", "b", "c"} {
		_ = c.SendGroup(ctx, "kv", []byte(key), client.WithKey(key))
	}
	for _, mb := range []*client.Mailbox{low, high} {
		for {
			rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			m, err := mb.Receive(rctx)
			rcancel()
			if err != nil {
				break
			}
			fmt.Printf("partition %d got %s\n", map[*client.Mailbox]int{low: 0, high: 1}[mb], m.Payload)
		}
	}
	// Unordered output:
	// partition 0 got a
	// partition 0 got c
	// partition 1 got b
}

// Headers travel with a message; the receiver reads them on delivery.
func ExampleWithHeaders() {
	socket, stop := localDaemon()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, _ := client.Connect(ctx, client.Options{Socket: socket})
	defer c.Close()
	mb, _ := c.NewMailbox(ctx)
	_ = mb.Join(ctx, "orders")

	var h client.Headers
	h.Set("request-id", "r-7")
	_ = c.SendGroup(ctx, "orders", []byte("order 42"), client.WithHeaders(h))
	m, _ := mb.Receive(ctx)
	fmt.Printf("%s, request-id %s\n", m.Payload, m.Headers.Get("request-id"))

	// Headers out of bounds are refused before anything is sent.
	err := c.SendGroup(ctx, "orders", nil, client.WithHeaders(client.Headers{{Key: "Request-ID", Value: "r-8"}}))
	fmt.Println(errors.Is(err, client.ErrBadRequest))
	// Output:
	// order 42, request-id r-7
	// true
}

// A group's members on other nodes become known asynchronously: wait for
// one before the first send.
func ExampleClient_WaitMembers() {
	socket, stop := localDaemon()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, _ := client.Connect(ctx, client.Options{Socket: socket})
	defer c.Close()
	mb, _ := c.NewMailbox(ctx)
	_ = mb.Join(ctx, "orders")

	members, err := c.WaitMembers(ctx, "orders", client.WithCluster("east"), client.WithMinMembers(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(members), members[0].Addr == mb.Addr())
	// Output: 1 true
}
