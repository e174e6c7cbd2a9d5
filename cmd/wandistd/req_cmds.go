package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wandist/wandist/client"
)

func cmdReq(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("req", "--socket PATH --group G [--key K] [--timeout D] PAYLOAD", stderr)
	socket := fs.String("socket", "", "the daemon's local socket `path` (default $WANDIST_SOCKET, else /run/wandist/wandist.sock)")
	group := fs.String("group", "", "`group` to send the request to")
	key := fs.String("key", "", "route by `key` (partition owner or rendezvous hashing)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the reply (travels as the request's TTL)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		return usageErr(fs, "--group is required")
	}
	if fs.NArg() != 1 {
		return usageErr(fs, "exactly one PAYLOAD argument, got %d", fs.NArg())
	}
	if *timeout <= 0 {
		return usageErr(fs, "--timeout must be positive")
	}
	c, err := client.Connect(ctx, client.Options{Socket: *socket, Name: "wandistd req"})
	if err != nil {
		return err
	}
	defer c.Close()
	var opts []client.SendOption
	if *key != "" {
		opts = append(opts, client.WithKey(*key))
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := c.CallGroup(cctx, *group, []byte(fs.Arg(0)), opts...)
	if err != nil {
		if errors.Is(err, client.ErrTimeout) {
			return fmt.Errorf("no reply from group %q within %v: %w", *group, *timeout, err)
		}
		return err
	}
	fmt.Fprintf(stdout, "%s\n", rep.Payload)
	return nil
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("serve", "--socket PATH --group G --echo [--partitions N --own LIST]", stderr)
	socket := fs.String("socket", "", "the daemon's local socket `path` (default $WANDIST_SOCKET, else /run/wandist/wandist.sock)")
	group := fs.String("group", "", "`group` to join and serve")
	echo := fs.Bool("echo", false, "answer every request with its own payload")
	partitions := fs.Int("partitions", 0, "the group is partitioned into `N` partitions")
	own := fs.String("own", "", "partitions this server owns: `LIST` like 0-31 or 1,5,9")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		return usageErr(fs, "--group is required")
	}
	if !*echo {
		return usageErr(fs, "--echo is required (the only built-in service)")
	}
	var parts []int
	if *partitions > 0 {
		var err error
		if parts, err = parseList(*own, *partitions); err != nil {
			return usageErr(fs, "--own: %v", err)
		}
	} else if *own != "" {
		return usageErr(fs, "--own needs --partitions")
	}
	c, err := client.Connect(ctx, client.Options{Socket: *socket, Name: "wandistd serve"})
	if err != nil {
		return err
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		return err
	}
	if *partitions > 0 {
		err = mb.JoinPartitions(ctx, *group, *partitions, parts...)
	} else {
		err = mb.Join(ctx, *group)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "serving %q as %s\n", *group, mb.Addr())
	err = mb.Serve(ctx, 16, func(ctx context.Context, m *client.Message) {
		fmt.Fprintf(stdout, "%s %s\n", m.From, m.Payload)
		if m.IsRequest() {
			if err := m.Reply(ctx, m.Payload); err != nil {
				fmt.Fprintf(stderr, "reply to %s: %v\n", m.From, err)
			}
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// parseList parses "0-3,7,9-10" into partitions, each < n.
func parseList(s string, n int) ([]int, error) {
	if s == "" {
		return nil, fmt.Errorf("empty list")
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("%q is not a number", hi)
			}
		}
		if a < 0 || b >= n || a > b {
			return nil, fmt.Errorf("%q is outside 0-%d", part, n-1)
		}
		for p := a; p <= b; p++ {
			out = append(out, p)
		}
	}
	return out, nil
}
