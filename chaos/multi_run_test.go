//go:build linux

package chaos

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
)

var multiSeq int

// multiRun is what one run of TestMultiCluster measured.
type multiRun struct {
	transport   string
	linksUp     time.Duration // from starting the daemons to every link up
	victim      string        // the node of b killed
	movedDuring int           // to-b deliveries on b's other consumers while the victim was down
	victimBack  time.Duration // from its restart to every link up again
	memberGone  time.Duration // from the kill to a1 listing no member on the victim (0: not before its restart)
	restart     time.Time     // when the victim was started again
	victimAfter int           // deliveries on the victim's consumer after its restart
	rerouted    int           // held messages the restarted victim routed on to another node's member
	healLinks   time.Duration // from the heal of c to every link up again
	cut         map[string]PairCounters
	drain       time.Duration
	results     []FlowResult
	took        time.Duration
}

// hold lets traffic flow for d (a step of the timeline, not a wait for an
// event).
func hold(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(d):
	}
}

func runMulti(t *testing.T, bin, dir string, mode ConfigMode, transport string, plan multiPlan) {
	ctx := context.Background()
	start := time.Now()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	multiSeq++
	topo, err := NewMultiTopology(ctx, fmt.Sprintf("%s%d-m%d", namePrefix, os.Getpid(), multiSeq), plan.Clusters, plan.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Close()
	mesh, err := NewMesh(ctx, topo, bin, dir, mode, transport, 4<<20, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer mesh.Stop()
	r := &multiRun{transport: transport}
	began := time.Now()
	if err := mesh.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mesh.WaitAllLinks(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	r.linksUp = time.Since(began)
	t.Logf("%d daemons, every link up %.1f s after the start (%s, mode %s; of a full mesh's %d, on-demand links with nothing to carry are idle)",
		len(mesh.Names("")), r.linksUp.Seconds(), transport, mode, linkCount(len(mesh.Names(""))))

	flows, consumers := multiFlows()
	mf, err := StartMultiFlow(ctx, mesh, dir, flows, consumers)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	mf.Run(plan.Rate, plan.Size)
	hold(t, ctx, plan.Warmup)
	t.Logf("links while the flows run: %s", linkCensus(ctx, mesh))
	multiKill(t, ctx, mesh, mf, plan, r)
	hold(t, ctx, plan.Between)
	heal := multiCut(t, ctx, mesh, plan, r)
	t.Run("fifth-node-by-seeds", func(t *testing.T) { multiJoin(t, ctx, mesh) })
	hold(t, ctx, plan.After)
	mf.StopSending()
	var derr error
	r.drain, derr = mf.Drain(ctx, 2*time.Minute)
	r.results = mf.Check(heal)
	r.victimAfter = mf.DeliveredOn(r.victim, r.restart)
	if m, err := mesh.Node(r.victim).Metrics(ctx); err == nil {
		r.rerouted = int(m["wandist_messages_rerouted_remote_total"])
	}
	r.took = time.Since(start)
	t.Logf("\n%s", r.report(plan))
	if *keep {
		writeMultiTrace(t, dir, mf, began)
	}
	fails := multiVerdict(r.results, mf.Bad(), derr)
	if mode == CAGateways {
		// The gateway path must have carried the flows' messages, or
		// this run proved nothing about it.
		relayed := 0.0
		for _, name := range mesh.Names("") {
			if m, err := mesh.Node(name).Metrics(ctx); err == nil {
				relayed += m["wandist_relayed_bytes_total"]
			}
		}
		t.Logf("bytes relayed by gateways: %.0f", relayed)
		if relayed == 0 {
			fails = append(fails, "gateway mode: no gateway relayed a byte; the flows never took the gateway path")
		}
	}
	for _, f := range fails {
		t.Error(f)
	}
	if len(fails) > 0 && r.rerouted > 0 {
		t.Logf("note: after its restart %s routed %d messages it held for to-b (resent by a1 and a2, whose first copies its previous incarnation may have delivered) on to b's other member (wandist_messages_rerouted_remote_total): they reach that member behind what it got directly, and a first copy delivered before the kill is delivered again there", r.victim, r.rerouted)
	}
}

// linkCount is the number of links of a full mesh of n nodes.
func linkCount(n int) int { return n * (n - 1) / 2 }

// multiKill kills (SIGKILL) the node of b whose consumer received last,
// restarts it after plan.KillDown, and waits for its links.
func multiKill(t *testing.T, ctx context.Context, mesh *Mesh, mf *MultiFlow, plan multiPlan, r *multiRun) {
	r.victim = mf.LastReceiver("to-b")
	if r.victim == "" {
		t.Fatal("no consumer of to-b received anything before the kill")
	}
	n := mesh.Node(r.victim)
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan time.Duration, 1)
	killAt := time.Now()
	go func() { watched <- memberGoneAfter(wctx, mesh.Node("a1").Socket, "to-b", r.victim, killAt) }()
	n.Kill9()
	hold(t, ctx, plan.KillDown)
	stopWatch()
	r.memberGone = <-watched
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	for _, c := range []string{"b1", "b2"} {
		if c != r.victim {
			r.movedDuring += mf.DeliveredOn(c, killAt) - mf.DeliveredOn(c, restart)
		}
	}
	var err error
	if r.victimBack, err = mesh.WaitAllLinks(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	r.restart = restart
	t.Logf("%s killed (SIGKILL), its member gone from a1's view %.1f s after (0: not before its restart), restarted %.1f s later, its links up %.1f s after that; b's other consumer took %d meanwhile",
		r.victim, r.memberGone.Seconds(), restart.Sub(killAt).Seconds(), r.victimBack.Seconds(), r.movedDuring)
}

// multiCut cuts cluster c off from the others for plan.Partition, heals
// it, waits for every link, and returns when it healed.
func multiCut(t *testing.T, ctx context.Context, mesh *Mesh, plan multiPlan, r *multiRun) time.Time {
	before, err := mesh.Topo.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := mesh.Topo.Cut(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	hold(t, ctx, plan.Partition)
	during, err := mesh.Topo.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	heal := time.Now() // just before: the times from the heal include nft's own
	if err := mesh.Topo.Heal(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	r.cut = map[string]PairCounters{}
	for k, v := range during {
		r.cut[k] = PairCounters{Packets: v.Packets - before[k].Packets, Dropped: v.Dropped - before[k].Dropped}
	}
	if r.healLinks, err = mesh.WaitAllLinks(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("c cut off for %v: dropped a->c %d, c->a %d, b->c %d, c->b %d packets; all links up %.1f s after the heal",
		plan.Partition, r.cut["a->c"].Dropped, r.cut["c->a"].Dropped, r.cut["b->c"].Dropped, r.cut["c->b"].Dropped, r.healLinks.Seconds())
	return heal
}

// multiJoin adds a 5th node to cluster a, found by seeds: it needs
// discovery, so it runs only in the seeds mode.
func multiJoin(t *testing.T, ctx context.Context, mesh *Mesh) {
	if !mesh.Mode().usesSeeds() {
		t.Skipf("a node joining by seeds needs the cluster CA, gossip and discovery of remote clusters (-chaos.mode=seeds); in mode %q every node would need a new config naming it", mesh.Mode())
	}
	start := time.Now()
	n, err := mesh.AddNode(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	routed, err := routesTo(ctx, mesh, n, start)
	if err != nil {
		t.Fatal(err)
	}
	d, err := mesh.WaitAllLinks(ctx, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s joined by seeds: b1 and c1 routed to its member %.1f s after its start; every link up %.1f s after that",
		n.Name, routed.Seconds(), d.Seconds())
}

// routesTo joins a member of group "to-NAME" on n and checks that a node
// of every other cluster routes a message to it within 10 s of start.
func routesTo(ctx context.Context, mesh *Mesh, n *Node, start time.Time) (time.Duration, error) {
	g := "to-" + n.Name
	sub, err := client.Connect(ctx, client.Options{Socket: n.Socket, Name: "joiner"})
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	mb, err := sub.NewMailbox(ctx)
	if err != nil {
		return 0, err
	}
	if err := mb.Join(ctx, g); err != nil {
		return 0, err
	}
	nn, _ := mesh.Topo.Node(n.Name)
	cluster := nn.Cluster
	for _, from := range []string{"b1", "c1"} {
		c, err := client.Connect(ctx, client.Options{Socket: mesh.Node(from).Socket, Name: "to-joiner"})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		if err := WaitMemberOf(ctx, c, g, cluster, 10*time.Second-time.Since(start)); err != nil {
			return 0, fmt.Errorf("%s: %w", from, err)
		}
		if err := c.SendGroup(ctx, g, []byte("hello from "+from)); err != nil {
			return 0, fmt.Errorf("%s: %w", from, err)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second-time.Since(start))
		m, err := mb.Receive(rctx)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("%s's message to %s's member: %w", from, n.Name, err)
		}
		if string(m.Payload) != "hello from "+from {
			return 0, fmt.Errorf("%s's member got %q, want %q", n.Name, m.Payload, "hello from "+from)
		}
	}
	return time.Since(start), nil
}

// multiVerdict lists what failed: any reliable message lost, duplicated
// or out of order (per consumer), delivered although never sent,
// corrupted, or a flow without deliveries after the heal.
func multiVerdict(res []FlowResult, bad []string, drainErr error) []string {
	var fails []string
	if drainErr != nil {
		fails = append(fails, drainErr.Error())
	}
	if len(bad) > 0 {
		fails = append(fails, fmt.Sprintf("%d corrupted or foreign payloads delivered (first %.60q)", len(bad), bad[0]))
	}
	for _, f := range res {
		if f.Lost > 0 {
			fails = append(fails, fmt.Sprintf("%s: %d accepted and lost (seqs %v)", f.Flow, f.Lost, f.LostSeqs))
		}
		if f.Duplicated > 0 {
			fails = append(fails, fmt.Sprintf("%s: %d duplicates", f.Flow, f.Duplicated))
		}
		if f.OutOfOrder > 0 {
			fails = append(fails, fmt.Sprintf("%s: %d out of order", f.Flow, f.OutOfOrder))
		}
		if f.Unexpected > 0 {
			fails = append(fails, fmt.Sprintf("%s: %d delivered that were refused or never sent", f.Flow, f.Unexpected))
		}
		if f.SentAfterHeal == 0 || f.DeliveredAfterHeal == 0 {
			fails = append(fails, fmt.Sprintf("%s: %d sent after the heal, %d of them delivered", f.Flow, f.SentAfterHeal, f.DeliveredAfterHeal))
		}
	}
	return fails
}

// report is the run's account, as Markdown rows.
func (r *multiRun) report(plan multiPlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "transport %s, run %.0f s: links up %.1f s after the start; %s killed for %v (its member gone from a1's view after %.1f s; b's other consumer took %d meanwhile, the victim's %d after its restart, and it routed %d it held on to another node's member; its links up %.1f s after the restart); c cut off %v, links up %.1f s after the heal; drain %.1f s\n",
		r.transport, r.took.Seconds(), r.linksUp.Seconds(), r.victim, plan.KillDown, r.memberGone.Seconds(), r.movedDuring, r.victimAfter, r.rerouted, r.victimBack.Seconds(), plan.Partition, r.healLinks.Seconds(), r.drain.Seconds())
	b.WriteString("| flow | sent | busy | delivered | lost | dup | ooo | heal→first | heal→drained |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.results {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", f.Flow, f.Sent, f.Busy, f.Delivered, f.Lost, f.Duplicated, f.OutOfOrder, fmtDur(f.HealToFirst), fmtDur(f.HealToDrained))
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		return "–"
	}
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// writeMultiTrace saves every send and delivery (trace.csv: kind, flow,
// seq, ms since the start, outcome or consuming node) for diagnosis.
func writeMultiTrace(t *testing.T, dir string, mf *MultiFlow, began time.Time) {
	var b strings.Builder
	b.WriteString("kind,flow,seq,ms,detail\n")
	for i, recs := range mf.records() {
		for j, rec := range recs {
			fmt.Fprintf(&b, "send,%s,%d,%d,%d\n", mf.Flows[i].Tag, j+1, rec.At.Sub(began).Milliseconds(), rec.Outcome)
		}
	}
	for i, ds := range mf.Deliveries() {
		for _, d := range ds {
			tag := "?"
			if d.Flow >= 0 {
				tag = mf.Flows[d.Flow].Tag
			}
			fmt.Fprintf(&b, "recv,%s,%d,%d,%s\n", tag, d.Seq, d.At.Sub(began).Milliseconds(), mf.Specs[i].On)
		}
	}
	path := filepath.Join(dir, "trace.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Error(err)
	}
	t.Logf("trace and daemon logs kept in %s", dir)
}

// memberGoneAfter polls, through the daemon at socket, until group g has
// no member on node, and returns how long after since that was; 0 if ctx
// ends first.
func memberGoneAfter(ctx context.Context, socket, g, node string, since time.Time) time.Duration {
	c, err := client.Connect(ctx, client.Options{Socket: socket, Name: "watch-" + node})
	if err != nil {
		return 0
	}
	defer c.Close()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ms, err := c.Members(ctx, g)
		if err == nil {
			on := false
			for _, m := range ms {
				on = on || m.Addr.Node == node
			}
			if !on {
				return time.Since(since)
			}
		}
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
	}
}

// linkCensus counts the links of every node to nodes of other clusters by
// state and transport ("up direct", "up relay", "idle", ...).
func linkCensus(ctx context.Context, mesh *Mesh) string {
	count := map[string]int{}
	clusterOf := map[string]string{}
	for _, n := range mesh.ReadLayout().Nodes {
		clusterOf[n.Name] = n.Cluster
	}
	for _, name := range mesh.Names("") {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := mesh.Node(name).Status(sctx)
		cancel()
		if err != nil {
			count["unknown"]++
			continue
		}
		for _, l := range st.Links {
			if l.Cluster == clusterOf[name] {
				continue
			}
			k := l.State
			if l.State == "up" {
				k = "up direct"
				if l.Transport == "relay" {
					k = "up relayed"
				}
			}
			count[k]++
		}
	}
	keys := slices.Sorted(maps.Keys(count))
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", count[k], k))
	}
	return "to other clusters: " + strings.Join(parts, ", ")
}
