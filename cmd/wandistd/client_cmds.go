package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/daemon"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("status", "[--admin ADDR] [--json] [--watch]", stderr)
	admin := fs.String("admin", "127.0.0.1:7103", "the daemon's admin `address` (host:port)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	watch := fs.Bool("watch", false, "refresh every second, in place, until interrupted")
	token := fs.String("token", os.Getenv("WANDIST_ADMIN_TOKEN"), "admin `token`, when the daemon requires one (default $WANDIST_ADMIN_TOKEN)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !*watch {
		return statusOnce(ctx, *admin, *token, *asJSON, stdout)
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		var buf bytes.Buffer
		err := statusOnce(ctx, *admin, *token, *asJSON, &buf)
		fmt.Fprint(stdout, "\033[H\033[2J") // home, clear screen
		if err != nil {
			fmt.Fprintf(stdout, "%v\n", err)
		} else {
			stdout.Write(buf.Bytes())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func statusOnce(ctx context.Context, admin, token string, asJSON bool, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/v1/status", nil)
	if err != nil {
		return fmt.Errorf("--admin %q: %w", admin, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon's admin listener at %s: %w", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin listener at %s answered %s", admin, resp.Status)
	}
	var st daemon.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("bad status from %s: %w", admin, err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
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
	fs := newFlags("sub", "--socket PATH --group G [--count N]", stderr)
	socket := fs.String("socket", "", "the daemon's local socket `path` (default $WANDIST_SOCKET, else /run/wandist/wandist.sock)")
	group := fs.String("group", "", "`group` to join")
	count := fs.Int("count", 0, "exit after `N` messages (0: run until interrupted)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		return usageErr(fs, "--group is required")
	}
	if *count < 0 {
		return usageErr(fs, "--count must be >= 0, got %d", *count)
	}
	c, err := client.Connect(ctx, client.Options{Socket: *socket, Name: "wandistd sub"})
	if err != nil {
		return err
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		return err
	}
	if err := mb.Join(ctx, *group); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "subscribed to %q as %s\n", *group, mb.Addr())
	w := bufio.NewWriterSize(stdout, 64<<10)
	defer w.Flush()
	for n := 0; *count == 0 || n < *count; n++ {
		m, err := mb.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				left := -1
				if *count > 0 {
					left = *count - n
				}
				return drainSub(mb, *group, w, left)
			}
			return err
		}
		w.Write(m.Payload)
		w.WriteByte('\n')
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// drainSub ends a subscription that was interrupted without losing what
// the client took: it leaves the group (what comes for the group next goes
// to another member, or waits for one at the daemon), then prints what is
// in the mailbox and what still arrives for it until subDrainIdle passes
// with nothing, at most left messages more (left < 0: no limit). What the
// client had not confirmed when it closes goes back to the group.
func drainSub(mb *client.Mailbox, group string, w *bufio.Writer, left int) error {
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
		w.Write(m.Payload)
		w.WriteByte('\n')
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// subDrainIdle is how long an interrupted `sub` waits for more of what was
// already on its way to its mailbox.
const subDrainIdle = 300 * time.Millisecond

func cmdPub(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) error {
	fs := newFlags("pub", "--socket PATH --group G [--priority high|normal] [--ttl D] [--mode M] [PAYLOAD]", stderr)
	socket := fs.String("socket", "", "the daemon's local socket `path` (default $WANDIST_SOCKET, else /run/wandist/wandist.sock)")
	group := fs.String("group", "", "`group` to send to")
	prio := fs.String("priority", "normal", "lane: `high` or normal")
	ttl := fs.Duration("ttl", 0, "time to live of each message (0: none)")
	mode := fs.String("mode", "reliable", "delivery `mode`: reliable, at-most-once or durable")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		return usageErr(fs, "--group is required")
	}
	if fs.NArg() > 1 {
		return usageErr(fs, "at most one PAYLOAD argument (got %d); quote it, or pipe lines on stdin", fs.NArg())
	}
	var opts []client.SendOption
	switch *prio {
	case "high":
		opts = append(opts, client.WithHighPriority())
	case "normal", "":
	default:
		return usageErr(fs, "--priority %q: want high or normal", *prio)
	}
	if *ttl < 0 {
		return usageErr(fs, "--ttl must not be negative")
	}
	if *ttl > 0 {
		opts = append(opts, client.WithTTL(*ttl))
	}
	m, err := client.ParseMode(*mode)
	if err != nil {
		return usageErr(fs, "--mode: %v", err)
	}
	opts = append(opts, client.WithMode(m))
	c, err := client.Connect(ctx, client.Options{Socket: *socket, Name: "wandistd pub"})
	if err != nil {
		return err
	}
	defer c.Close()
	target := client.Target{Group: *group}
	if fs.NArg() == 1 {
		return c.SendGroup(ctx, *group, []byte(fs.Arg(0)), opts...)
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), c.MaxMessage()+1)
	n := 0
	for sc.Scan() {
		n++
		if err := c.SendAsync(target, sc.Bytes(), opts...); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if n%4096 == 0 {
			// Bound what is in flight, and stop at the first refusal.
			if err := c.Flush(ctx); err != nil {
				return fmt.Errorf("a send among lines %d-%d was refused: %w", n-4095, n, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin after line %d: %w", n, err)
	}
	if err := c.Flush(ctx); err != nil {
		return fmt.Errorf("a send among the last lines (up to %d) was refused: %w", n, err)
	}
	fmt.Fprintf(stderr, "%d messages accepted by the local daemon\n", n)
	return nil
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
