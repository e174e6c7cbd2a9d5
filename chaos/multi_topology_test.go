//go:build linux

package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func newTestMulti(t *testing.T, clusters []string, nodes int) *MultiTopology {
	t.Helper()
	topoSeq++
	m, err := NewMultiTopology(context.Background(), fmt.Sprintf("%s%d-mt%d", namePrefix, os.Getpid(), topoSeq), clusters, nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// netnsWith lists the namespaces whose names start with prefix.
func netnsWith(prefix string) []string {
	var out []string
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// The LANs route to each other through the WAN; a pair's delay is applied
// to that pair only, a cut isolates one cluster both ways and is counted,
// a node added after the start is reachable, and Close removes every
// namespace.
func TestMultiTopologyRoutesAndFaults(t *testing.T) {
	preflight(t)
	ctx := context.Background()
	m := newTestMulti(t, []string{"a", "b", "c"}, 2)
	if got := len(m.Nodes("")); got != 6 {
		t.Fatalf("%d nodes, want 6", got)
	}
	addr := func(n NodeNet) string { return n.IP.String() + ":9000" }
	a1, _ := m.Node("a1")
	a2, _ := m.Node("a2")
	b1, _ := m.Node("b1")
	c1, _ := m.Node("c1")
	for _, n := range []NodeNet{a2, b1, c1} {
		echoIn(t, n.NS, addr(n))
	}
	for _, to := range []NodeNet{a2, b1, c1} {
		if _, err := rtt(t, a1.NS, addr(to)); err != nil {
			t.Fatalf("no path from a1 to %s: %v", to.Name, err)
		}
	}

	// Delay on a->b only: a1-b1 slow, a1-c1 and a1-a2 not.
	if err := m.Apply(ctx, "a", "b", PairFault{Delay: 80 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if d, err := rtt(t, a1.NS, addr(b1)); err != nil || d < 80*time.Millisecond {
		t.Fatalf("a1->b1 RTT %v (%v) with 80 ms on a->b", d, err)
	}
	if d, err := rtt(t, a1.NS, addr(c1)); err != nil || d >= 80*time.Millisecond {
		t.Fatalf("a1->c1 RTT %v (%v): the a->b delay leaked", d, err)
	}
	if err := m.Apply(ctx, "a", "b", PairFault{}); err != nil {
		t.Fatal(err)
	}

	before, err := m.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before["a->b"].Fwd.Delayed == 0 || before["a->b"].Packets == 0 {
		t.Fatalf("a->b counters %+v: the delay or the count missed its packets", before["a->b"])
	}
	if err := m.Cut(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := rtt(t, a1.NS, addr(c1)); err == nil {
		t.Fatal("an echo reached the cut cluster c")
	}
	if _, err := rtt(t, a1.NS, addr(b1)); err != nil {
		t.Fatalf("the cut of c broke a->b: %v", err)
	}
	after, _ := m.Counters(ctx)
	if after["a->c"].Dropped == before["a->c"].Dropped {
		t.Fatalf("the cut dropped nothing from a to c: %+v", after["a->c"])
	}
	if err := m.Heal(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := rtt(t, a1.NS, addr(c1)); err != nil {
		t.Fatalf("no path to c after the heal: %v", err)
	}

	b3, err := m.AddNode(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if b3.Name != "b3" {
		t.Fatalf("added node named %q, want b3", b3.Name)
	}
	echoIn(t, b3.NS, addr(b3))
	for _, from := range []NodeNet{a1, b1} {
		if _, err := rtt(t, from.NS, addr(b3)); err != nil {
			t.Fatalf("no path from %s to the added b3: %v", from.Name, err)
		}
	}

	if n := len(netnsWith(m.Prefix + "-")); n != 1+3+7 {
		t.Fatalf("%d namespaces, want 11 (WAN, 3 routers, 7 nodes)", n)
	}
	m.Close()
	if left := netnsWith(m.Prefix + "-"); len(left) > 0 {
		t.Fatalf("Close left %v", left)
	}
}
