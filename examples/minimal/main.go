// Command minimal is the smallest wandist service: it opens a mailbox on
// the local daemon, joins a group, sends a message to the group and
// receives it.
//
//	go run ./examples/minimal -socket configs/examples/two-cluster/run/east-1.sock
//
// (the socket of east-1 in configs/examples/two-cluster; without -socket,
// $WANDIST_SOCKET, else the SDK's default, /run/wandist/wandist.sock).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wandist/wandist/client"
)

func main() {
	socket := flag.String("socket", "", "the local wandistd socket (default $WANDIST_SOCKET, else /run/wandist/wandist.sock)")
	flag.Parse()
	if err := run(context.Background(), *socket, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "minimal:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, socket string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: socket})
	if err != nil {
		return err
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		return err
	}
	if err := mb.Join(ctx, "greeters"); err != nil {
		return err
	}
	if err := c.SendGroup(ctx, "greeters", []byte("hello, wandist")); err != nil {
		return err
	}
	m, err := mb.Receive(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s got %q\n", mb.Addr().Cluster+"/"+mb.Addr().Node, m.Payload)
	return nil
}
