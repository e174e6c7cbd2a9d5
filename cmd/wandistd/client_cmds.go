package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/daemon"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("status", "[-c FILE] [--admin ADDR] [--json] [--watch]", stdout)
	ep := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON: one object, or with --watch one object per line (NDJSON)")
	watch := fs.Bool("watch", false, "refresh every second until interrupted: in place on a terminal, else one snapshot after another")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	}
	admin, token, err := ep.resolveAdmin()
	if err != nil {
		return err
	}
	if !*watch {
		st, err := fetchStatus(ctx, admin, token)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSONIndent(stdout, st)
		}
		return printStatus(stdout, st)
	}
	return watchStatus(ctx, admin, token, *asJSON, stdout, stderr)
}

// watchStatus prints the status every second until ctx ends: in place on
// a terminal; else plain snapshots separated by a blank line, or with
// asJSON one JSON object per line. An error goes to stderr then (stdout
// holds only snapshots), in place of the snapshot on a terminal.
func watchStatus(ctx context.Context, admin, token string, asJSON bool, stdout, stderr io.Writer) error {
	tty := isTerminal(stdout)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 0; ; n++ {
		var buf bytes.Buffer
		st, err := fetchStatus(ctx, admin, token)
		switch {
		case ctx.Err() != nil:
			return nil // interrupted
		case err != nil:
		case asJSON:
			err = writeJSON(&buf, st)
		default:
			err = printStatus(&buf, st)
		}
		switch {
		case tty && !asJSON:
			fmt.Fprint(stdout, "\033[H\033[2J") // home, clear screen
			if err != nil {
				fmt.Fprintf(stdout, "%v\n", err)
			}
		case err != nil:
			fmt.Fprintf(stderr, "%v\n", err)
		case n > 0 && !asJSON:
			fmt.Fprintln(stdout) // a blank line between snapshots
		}
		if _, werr := stdout.Write(buf.Bytes()); werr != nil {
			return werr // the reader went away
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// fetchStatus gets the daemon's status from its admin listener.
func fetchStatus(ctx context.Context, admin, token string) (*daemon.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/v1/status", nil)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", admin, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the daemon's admin listener at %s: %w", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin listener at %s answered %s", admin, resp.Status)
	}
	var st daemon.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("bad status from %s: %w", admin, err)
	}
	return &st, nil
}

// printStatus prints st as text.
func printStatus(stdout io.Writer, st *daemon.Status) error {
	fmt.Fprintf(stdout, "node %s/%s  incarnation %s  groups %d\n", st.Cluster, st.Node, st.Incarnation, st.Groups)
	if c := st.Certificate; c != nil {
		fmt.Fprintf(stdout, "certificate %s serial %s expires %s (in %s)\n", c.Subject, c.Serial,
			c.NotAfter.Format(time.RFC3339), time.Until(c.NotAfter).Round(time.Minute))
	}
	if sp := st.Spool; sp != nil {
		fmt.Fprintf(stdout, "spool %d bytes in %d segments, %d appends, %d fsyncs (last %.2fms) %s\n", sp.Bytes, sp.Segments, sp.Appends, sp.Fsyncs, sp.LastFsyncSeconds*1000, sp.Error)
	}
	h := st.Hold
	fmt.Fprintf(stdout, "hold %d messages, %d bytes (bounds %d, %d) waiting here for their client or group member; expired %d, undeliverable %d, routed on %d\n",
		h.Messages, h.Bytes, h.MaxMessages, h.MaxBytes, h.Expired, h.Undeliverable, h.RoutedOn)
	if err := printClusterView(stdout, st.ClusterView); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tNODE\tTRANSPORT\tSTATE\tSINCE\tRTT\tQUEUED\tBYTES\tOLDEST\tIN/s\tOUT/s\tDRAIN\tREDELIVERED\tDUPS\tBUSY\tDISCARDED\tUNDELIVERABLE\tLAST ERROR")
	anyDiscovered := false
	for _, l := range st.Links {
		rtt := "-"
		if l.State == daemon.StateUp {
			rtt = fmt.Sprintf("%.2fms", l.RTTSeconds*1000)
		}
		drain := "-"
		switch {
		case l.DrainSeconds == nil: // not draining at the current rates
			drain = "never"
		case l.QueuedMessages > 0:
			drain = fmt.Sprintf("%.1fs", *l.DrainSeconds)
		}
		state := l.State
		if l.PastGrace {
			state += ", past grace" // down for groups.unreachable_grace: still buffering
		}
		node := l.Node
		if l.Discovered {
			node += "*"
			anyDiscovered = true
		}
		discarded := uint64(0)
		for _, n := range l.Discarded {
			discarded += n
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.1fs\t%.0f\t%.0f\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", l.Cluster, node, l.Transport, state,
			time.Since(l.Since).Round(time.Second), rtt, l.QueuedMessages, l.QueuedBytes, l.OldestSeconds,
			l.EnqueueRate, l.DequeueRate, drain, l.Redelivered, l.Duplicates, l.Rejected, discarded, l.Undeliverable, l.LastError)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if anyDiscovered {
		fmt.Fprintln(stdout, "* found by discovery from a remote cluster's seeds (remotes[]), not named in the config")
	}
	for _, l := range st.Links {
		if c := l.PeerCertificate; c != nil && c.CA {
			fmt.Fprintf(stdout, "peer %s/%s certificate serial %s expires %s (in %s)\n", l.Cluster, l.Node, c.Serial,
				c.NotAfter.Format(time.RFC3339), time.Until(c.NotAfter).Round(time.Minute))
		}
	}
	return nil
}

func cmdSub(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("sub", "[-c FILE] --group G [--count N] [--partitions N --own LIST] [--show-sender] [--json]", stdout)
	ep := socketFlags(fs)
	group := fs.String("group", "", "`group` to join")
	count := fs.Int("count", 0, "exit after `N` messages (0: run until interrupted)")
	partitions := fs.Int("partitions", 0, "join the group as partitioned into `N` partitions, owning those of --own")
	own := fs.String("own", "", "with --partitions, the partitions this subscriber owns: `LIST` like 0-31 or 1,5,9")
	showSender := fs.Bool("show-sender", false, "print each message as SENDER PAYLOAD (the sender's address, cluster/node/mailbox; mailbox 0 is an anonymous sender)")
	asJSON := fs.Bool("json", false, "print one JSON object per message: from, group, payload (payload_base64 when not UTF-8)")
	fs.notes = append(fs.notes, "Each message is printed on a line of its own, as it arrives.")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *group == "":
		return usageErr(fs, "--group is required")
	case *count < 0:
		return usageErr(fs, "--count must be >= 0, got %d", *count)
	case fs.NArg() > 0:
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	}
	parts, err := partitionFlags(fs, *partitions, *own)
	if err != nil {
		return err
	}
	c, err := ep.connect(ctx, "wandistd sub")
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
	fmt.Fprintf(stderr, "subscribed to %q as %s\n", *group, mb.Addr())
	p := &subPrinter{w: bufio.NewWriterSize(stdout, 64<<10), sender: *showSender, json: *asJSON}
	for n := 0; *count == 0 || n < *count; n++ {
		m, err := mb.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				left := -1
				if *count > 0 {
					left = *count - n
				}
				return drainSub(mb, *group, p, left)
			}
			return err
		}
		if err := p.print(m); err != nil {
			return err
		}
	}
	return nil
}

// drainSub ends a subscription that was interrupted without losing what
// the client took: it leaves the group (what comes for the group next goes
// to another member, or waits for one at the daemon), then prints what is
// in the mailbox and what still arrives for it until subDrainIdle passes
// with nothing, at most left messages more (left < 0: no limit). Close
// confirms what the client took; what it had not taken goes back to the
// group.
func drainSub(mb *client.Mailbox, group string, p *subPrinter, left int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = mb.Leave(ctx, group)
	cancel()
	for ; left != 0; left-- {
		ctx, cancel := context.WithTimeout(context.Background(), subDrainIdle)
		m, err := mb.Receive(ctx)
		cancel()
		if err != nil {
			return nil
		}
		if err := p.print(m); err != nil {
			return err
		}
	}
	return nil
}

// subDrainIdle is how long an interrupted `sub` waits for more of what was
// already on its way to its mailbox.
const subDrainIdle = 300 * time.Millisecond

func cmdPub(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) error {
	fs := newFlags("pub", "[-c FILE] --group G [--key K | --strategy S] [--priority high|normal] [--ttl D] [--mode M] [--json] [PAYLOAD]", stdout)
	ep := socketFlags(fs)
	group := fs.String("group", "", "`group` to send to")
	key := fs.String("key", "", "route by `key`: the owner of its partition (partitioned groups), else the member chosen by rendezvous hashing")
	strategy := fs.String("strategy", "", strategyUsage)
	prio := fs.String("priority", "normal", "lane: `high` or normal")
	ttl := fs.Duration("ttl", 0, "time to live of each message (0: none)")
	mode := fs.String("mode", "reliable", "delivery `mode`: reliable, at-most-once or durable")
	asJSON := fs.Bool("json", false, `print a summary as JSON on stdout: {"accepted": N}`)
	fs.notes = append(fs.notes, "Without PAYLOAD, each line of stdin is a message.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		return usageErr(fs, "--group is required")
	}
	if fs.NArg() > 1 {
		return usageErr(fs, "at most one PAYLOAD argument (got %d); quote it, or pipe lines on stdin", fs.NArg())
	}
	opts, err := routeFlags(fs, *key, *strategy)
	if err != nil {
		return err
	}
	switch *prio {
	case "high":
		opts = append(opts, client.WithHighPriority())
	case "normal", "":
	default:
		return usageErr(fs, "--priority %q: want high or normal", *prio)
	}
	if *ttl < 0 {
		return usageErr(fs, "--ttl must not be negative, got %v", *ttl)
	}
	if *ttl > 0 {
		opts = append(opts, client.WithTTL(*ttl))
	}
	m, err := client.ParseMode(*mode)
	if err != nil {
		return usageErr(fs, "--mode: %v", err)
	}
	opts = append(opts, client.WithMode(m))
	c, err := ep.connect(ctx, "wandistd pub")
	if err != nil {
		return err
	}
	defer c.Close()
	n := 1
	if fs.NArg() == 1 {
		err = c.SendGroup(ctx, *group, []byte(fs.Arg(0)), opts...)
	} else {
		n, err = pubLines(ctx, c, client.Target{Group: *group}, stdin, opts)
		if err == nil && !*asJSON {
			fmt.Fprintf(stderr, "%d messages accepted by the local daemon\n", n)
		}
	}
	if err == nil && *asJSON {
		err = writeJSON(stdout, map[string]int{"accepted": n})
	}
	return err
}

// pubLines sends each line of r to target and returns how many the daemon accepted.
func pubLines(ctx context.Context, c *client.Client, target client.Target, r io.Reader, opts []client.SendOption) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), c.MaxMessage()+1)
	n := 0
	for sc.Scan() {
		n++
		if err := c.SendAsync(target, sc.Bytes(), opts...); err != nil {
			return 0, fmt.Errorf("line %d: %w", n, err)
		}
		if n%4096 == 0 {
			// Bound what is in flight, and stop at the first refusal.
			if err := c.Flush(ctx); err != nil {
				return 0, fmt.Errorf("a send among lines %d-%d was refused: %w", n-4095, n, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("stdin after line %d: %w", n, err)
	}
	if err := c.Flush(ctx); err != nil {
		return 0, fmt.Errorf("a send among the last lines (up to %d) was refused: %w", n, err)
	}
	return n, nil
}

// printClusterView prints this node's cluster by gossip (nothing without gossip).
func printClusterView(w io.Writer, view []daemon.ClusterMember) error {
	if len(view) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\ncluster by gossip, %d nodes:\n", len(view))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tSINCE\tQUIC\tTCP\tGOSSIP")
	for _, m := range view {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Node, m.State, time.Since(m.Since).Round(time.Second),
			orDash(m.QUIC), orDash(m.TCP), m.Gossip)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
