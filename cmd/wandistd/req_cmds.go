package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wandist/wandist/client"
)

func cmdReq(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("req", "[-c FILE] --group G [--key K | --strategy S] [--timeout D] [--json] PAYLOAD", stdout)
	ep := socketFlags(fs)
	group := fs.String("group", "", "`group` to send the request to")
	key := fs.String("key", "", "route by `key` (partition owner or rendezvous hashing)")
	strategy := fs.String("strategy", "", strategyUsage)
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the reply (travels as the request's TTL)")
	asJSON := fs.Bool("json", false, "print the reply as JSON: from, payload (payload_base64 when not UTF-8), seconds (round trip)")
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
		return usageErr(fs, "--timeout must be positive, got %v", *timeout)
	}
	opts, err := routeFlags(fs, *key, *strategy)
	if err != nil {
		return err
	}
	c, err := ep.connect(ctx, "wandistd req")
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	rep, err := c.CallGroup(cctx, *group, []byte(fs.Arg(0)), opts...)
	if err != nil {
		if errors.Is(err, client.ErrTimeout) {
			return fmt.Errorf("no reply from group %q within %v: %w", *group, *timeout, err)
		}
		return err
	}
	if *asJSON {
		return writeJSON(stdout, reqJSON{From: rep.From.String(), Seconds: time.Since(start).Seconds(), jsonPayload: newJSONPayload(rep.Payload)})
	}
	fmt.Fprintf(stdout, "%s\n", rep.Payload)
	return nil
}

// reqJSON is a reply as `req --json` prints it.
type reqJSON struct {
	From    string  `json:"from"`
	Seconds float64 `json:"seconds"`
	jsonPayload
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("serve", "[-c FILE] --group G --echo [--partitions N --own LIST] [--json]", stdout)
	ep := socketFlags(fs)
	group := fs.String("group", "", "`group` to join and serve")
	echo := fs.Bool("echo", false, "answer every request with its own payload")
	partitions := fs.Int("partitions", 0, "the group is partitioned into `N` partitions")
	own := fs.String("own", "", "partitions this server owns: `LIST` like 0-31 or 1,5,9")
	asJSON := fs.Bool("json", false, "print one JSON object per message received: from, group, payload (payload_base64 when not UTF-8)")
	fs.notes = append(fs.notes, "Each message received is printed as SENDER PAYLOAD.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		return usageErr(fs, "--group is required")
	}
	if !*echo {
		return usageErr(fs, "--echo is required (the only built-in service)")
	}
	if fs.NArg() > 0 {
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	}
	parts, err := partitionFlags(fs, *partitions, *own)
	if err != nil {
		return err
	}
	c, err := ep.connect(ctx, "wandistd serve")
	if err != nil {
		return err
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		return err
	}
	if err := joinGroup(ctx, mb, *group, *partitions, parts); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "serving %q as %s\n", *group, mb.Addr())
	var mu sync.Mutex // guards p
	p := &subPrinter{w: bufio.NewWriter(stdout), sender: true, json: *asJSON}
	err = mb.Serve(ctx, 16, func(ctx context.Context, m *client.Message) {
		mu.Lock()
		p.print(m)
		mu.Unlock()
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
