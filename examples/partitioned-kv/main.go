// Command partitioned-kv runs one server or one client of the kv example
// against a local wandistd. With the three daemons of
// configs/examples/three-cluster running (its README starts them; the
// commands below run from that folder), two backends in east and west
// share the 64 partitions, and a client in south reaches each key's owner:
//
//	partitioned-kv -socket run/east-1.sock serve 0-31
//	partitioned-kv -socket run/west-1.sock serve 32-63
//	partitioned-kv -socket run/south-1.sock put color blue
//	partitioned-kv -socket run/south-1.sock get color
//
// (south may use east's kv group: east exports every group to south. On a
// host with one daemon, -socket may be left out: $WANDIST_SOCKET, else
// /run/wandist/wandist.sock.)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/examples/partitioned-kv/kv"
)

func main() {
	socket := flag.String("socket", "", "the local wandistd socket (default $WANDIST_SOCKET, else /run/wandist/wandist.sock)")
	group := flag.String("group", "kv", "the store's group")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *socket, *group, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "partitioned-kv:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, socket, group string, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: partitioned-kv [-socket S] serve RANGE | put KEY VALUE | get KEY")
	}
	c, err := client.Connect(ctx, client.Options{Socket: socket, Name: "partitioned-kv"})
	if err != nil {
		return err
	}
	defer c.Close()
	switch {
	case args[0] == "serve" && len(args) == 2:
		lo, hi, _ := strings.Cut(args[1], "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 0 || b >= kv.Partitions || a > b {
			return fmt.Errorf("serve: range %q: want A-B within 0-%d", args[1], kv.Partitions-1)
		}
		var own []int
		for p := a; p <= b; p++ {
			own = append(own, p)
		}
		var s kv.Server
		return s.Serve(ctx, c, group, own)
	case args[0] == "put" && len(args) == 3:
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return (&kv.Client{C: c, Group: group}).Put(cctx, args[1], args[2])
	case args[0] == "get" && len(args) == 2:
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		v, err := (&kv.Client{C: c, Group: group}).Get(cctx, args[1])
		if err != nil {
			return err
		}
		fmt.Println(v)
		return nil
	}
	return fmt.Errorf("unknown command %q", strings.Join(args, " "))
}
