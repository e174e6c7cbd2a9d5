package main

import (
	"context"
	bin "encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
)

// benchFigures are the results of one bench test. Seconds everywhere.
type benchFigures struct {
	Messages      int     `json:"messages"`        // messages (one-way) or requests (request-reply) done
	Seconds       float64 `json:"seconds"`         // from the first send to the last receipt
	MsgsPerSecond float64 `json:"msgs_per_second"` // Messages / Seconds
	P50Seconds    float64 `json:"p50_seconds"`     // median latency: send to receipt, or round trip
	P99Seconds    float64 `json:"p99_seconds"`     // 99th percentile latency
}

// benchResult is what `wandistd bench` prints.
type benchResult struct {
	From         string        `json:"from"` // cluster/node
	To           string        `json:"to"`
	Group        string        `json:"group"`
	Size         int           `json:"size"` // payload bytes
	Mode         string        `json:"mode"`
	OneWay       *benchFigures `json:"one_way,omitempty"`
	RequestReply *benchFigures `json:"request_reply,omitempty"`
}

// benchWarmUp is how many messages go before a one-way test, and a tenth
// of it how many requests before a request-reply test, not counted.
const benchWarmUp = 1000

// benchHeader is the bytes of a bench payload that carry its send time.
const benchHeader = 8

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("bench", "--from SOCK|FILE --to SOCK|FILE [--messages N] [--requests N] [--size B] [--mode M] [--json]", stdout)
	from := fs.String("from", "", "the sending node: its local socket `path`, or its config file (local.socket, local.token)")
	to := fs.String("to", "", "the receiving node: its local socket `path`, or its config file")
	messages := fs.Int("messages", 10000, "one-way messages to send, as fast as the daemon takes them (0: skip this test)")
	requests := fs.Int("requests", 1000, "requests to make, one at a time (0: skip this test)")
	size := fs.Int("size", 128, fmt.Sprintf("payload `bytes` of each message (at least %d)", benchHeader))
	mode := fs.String("mode", "reliable", "delivery `mode` of the one-way messages: reliable, at-most-once or durable")
	timeout := fs.Duration("timeout", time.Minute, "give up on a test after this long")
	asJSON := fs.Bool("json", false, "print the results as one JSON object")
	fs.notes = append(fs.notes, "bench joins a new group on --to and sends to it from --to's peer --from, with the Go SDK:\n"+
		"one-way (msgs/s, and latency from send to receipt under that load), then request-reply\n"+
		"(requests/s, and round trip). Both sockets must be reachable from this host; one clock times both ends.\n"+
		"A socket's token comes from $"+envToken+", else from its config file's local.token.")
	if err := parse(fs, args); err != nil {
		return err
	}
	m, err := client.ParseMode(*mode)
	switch {
	case *from == "" || *to == "":
		return usageErr(fs, "--from and --to are required")
	case fs.NArg() > 0:
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	case *messages < 0 || *requests < 0 || *messages+*requests == 0:
		return usageErr(fs, "--messages and --requests must be >= 0, and one of them > 0")
	case *size < benchHeader:
		return usageErr(fs, "--size must be at least %d, got %d", benchHeader, *size)
	case *timeout <= 0:
		return usageErr(fs, "--timeout must be positive, got %v", *timeout)
	case err != nil:
		return usageErr(fs, "--mode: %v", err)
	}
	src, err := benchConnect(ctx, "--from", *from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := benchConnect(ctx, "--to", *to)
	if err != nil {
		return err
	}
	defer dst.Close()
	res := &benchResult{From: src.Cluster() + "/" + src.Node(), To: dst.Cluster() + "/" + dst.Node(),
		Group: fmt.Sprintf("wandist-bench-%016x", rand.Uint64()), Size: *size, Mode: *mode}
	mb, err := benchJoin(ctx, src, dst, res.Group, *timeout)
	if err != nil {
		return err
	}
	if *messages > 0 {
		tctx, cancel := context.WithTimeout(ctx, *timeout)
		// A first round, not counted, opens the path (streams, buffers).
		_, err = benchOneWay(tctx, src, mb, res.Group, min(*messages, benchWarmUp), *size, client.WithMode(m))
		if err == nil {
			res.OneWay, err = benchOneWay(tctx, src, mb, res.Group, *messages, *size, client.WithMode(m))
		}
		cancel()
		if err != nil {
			return fmt.Errorf("one-way: %w", err)
		}
	}
	if *requests > 0 {
		tctx, cancel := context.WithTimeout(ctx, *timeout)
		res.RequestReply, err = benchRequests(tctx, src, mb, res.Group, *requests, *size)
		cancel()
		if err != nil {
			return fmt.Errorf("request-reply: %w", err)
		}
	}
	if *asJSON {
		return writeJSONIndent(stdout, res)
	}
	printBench(stdout, res)
	return nil
}

// benchConnect connects to a node given by flag as a socket or a config file.
func benchConnect(ctx context.Context, flag, path string) (*client.Client, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: no such socket or config file: %w", flag, err)
	}
	o := client.Options{Socket: path, Token: os.Getenv(envToken), Name: "wandistd bench", NoReconnect: true}
	if fi.Mode()&os.ModeSocket == 0 {
		cfg, err := configs.Load(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		o.Socket, o.Token = cfg.Local.Socket, first(o.Token, cfg.Local.Token)
	}
	c, err := client.Connect(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return c, nil
}

// benchJoin joins a mailbox of dst to group and waits until src sees it.
func benchJoin(ctx context.Context, src, dst *client.Client, group string, timeout time.Duration) (*client.Mailbox, error) {
	mb, err := dst.NewMailbox(ctx)
	if err != nil {
		return nil, err
	}
	w, err := src.Watch(ctx, group)
	if err != nil {
		return nil, err
	}
	defer w.Close(context.Background())
	if err := mb.Join(ctx, group); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		e, err := w.Next(wctx)
		if err != nil {
			return nil, fmt.Errorf("%s/%s never saw the member %s of %s join: are the two nodes linked? (%w)", src.Cluster(), src.Node(), mb.Addr(), group, err)
		}
		if e.Op == client.Joined && e.Member == mb.Addr() {
			return mb, nil
		}
	}
}

// benchOneWay sends n messages from src to group as fast as src's daemon
// takes them, and receives them in mb.
func benchOneWay(ctx context.Context, src *client.Client, mb *client.Mailbox, group string, n, size int, opts ...client.SendOption) (*benchFigures, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := time.Now()
	type result struct {
		lat  []time.Duration
		last time.Duration
		err  error
	}
	got := make(chan result, 1)
	go func() {
		r := result{lat: make([]time.Duration, 0, n)}
		for len(r.lat) < n {
			m, err := mb.Receive(ctx)
			if err != nil {
				r.err = fmt.Errorf("received %d of %d messages: %w", len(r.lat), n, err)
				break
			}
			r.last = time.Since(base)
			r.lat = append(r.lat, r.last-time.Duration(bin.BigEndian.Uint64(m.Payload)))
		}
		got <- r
	}()
	payload := make([]byte, size)
	target := client.Target{Group: group}
	var err error
	for i := 1; i <= n && err == nil; i++ {
		bin.BigEndian.PutUint64(payload, uint64(time.Since(base)))
		if err = src.SendAsync(target, payload, opts...); err == nil && (i%1024 == 0 || i == n) {
			err = src.Flush(ctx) // bounds what is in flight; the first refusal ends the test
		}
	}
	if err != nil {
		cancel() // what was not sent will not come
	}
	r := <-got
	if err = errors.Join(err, r.err); err != nil {
		return nil, err
	}
	return figures(r.lat, r.last), nil
}

// benchRequests makes n requests from src to group, one at a time, and
// answers them from mb.
func benchRequests(ctx context.Context, src *client.Client, mb *client.Mailbox, group string, n, size int) (*benchFigures, error) {
	sctx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = mb.Serve(sctx, 1, func(ctx context.Context, m *client.Message) { _ = m.Reply(ctx, m.Payload) })
	}()
	defer func() { stop(); <-served }()
	payload := make([]byte, size)
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for i := range min(n, benchWarmUp/10) { // not counted
		if _, err := src.CallGroup(ctx, group, payload); err != nil {
			return nil, fmt.Errorf("warm-up request %d: %w", i+1, err)
		}
	}
	for i := range n {
		t := time.Now()
		if _, err := src.CallGroup(ctx, group, payload); err != nil {
			return nil, fmt.Errorf("request %d of %d: %w", i+1, n, err)
		}
		lat = append(lat, time.Since(t))
	}
	return figures(lat, time.Since(start)), nil
}

// figures summarises latencies lat of a test that took elapsed.
func figures(lat []time.Duration, elapsed time.Duration) *benchFigures {
	slices.Sort(lat)
	f := &benchFigures{Messages: len(lat), Seconds: elapsed.Seconds()}
	if elapsed > 0 {
		f.MsgsPerSecond = float64(len(lat)) / elapsed.Seconds()
	}
	f.P50Seconds, f.P99Seconds = quantile(lat, 0.50).Seconds(), quantile(lat, 0.99).Seconds()
	return f
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func printBench(w io.Writer, r *benchResult) {
	fmt.Fprintf(w, "bench %s -> %s: %d-byte payloads\n", r.From, r.To, r.Size)
	d := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)).Round(time.Microsecond) }
	if f := r.OneWay; f != nil {
		fmt.Fprintf(w, "one-way (%s):  %8d msgs in %v: %10.0f msgs/s, latency p50 %v p99 %v (send to receipt, at full rate)\n",
			r.Mode, f.Messages, d(f.Seconds), f.MsgsPerSecond, d(f.P50Seconds), d(f.P99Seconds))
	}
	if f := r.RequestReply; f != nil {
		fmt.Fprintf(w, "request-reply:       %8d reqs in %v: %10.0f msgs/s, round trip p50 %v p99 %v (one at a time)\n",
			f.Messages, d(f.Seconds), f.MsgsPerSecond, d(f.P50Seconds), d(f.P99Seconds))
	}
}
