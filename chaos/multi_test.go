//go:build linux

package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
)

var (
	multiLong = flag.Bool("chaos.long", false, "TestMultiCluster: the long form (cluster c cut off for 60 s, not 10 s)")
	multiMode = flag.String("chaos.mode", string(CASeeds)+","+string(CAGateways), "TestMultiCluster: comma-separated, how the daemons are configured: pinned (peers[] with pinned keys), seeds (cluster CA, gossip, remotes by seeds) or gateways (seeds, with every remote cluster in gateway mode)")
)

// multiPlan is the timeline of TestMultiCluster.
type multiPlan struct {
	Clusters  []string
	Nodes     int           // per cluster
	Rate      int           // messages per second per flow
	Size      int           // payload bytes
	Warmup    time.Duration // traffic before the kill
	KillDown  time.Duration // how long the killed node stays down
	Between   time.Duration // traffic between the restart and the cut
	Partition time.Duration // how long cluster c is cut off
	After     time.Duration // traffic after the heal
}

func newMultiPlan(long bool) multiPlan {
	p := multiPlan{Clusters: []string{"a", "b", "c"}, Nodes: 4, Rate: 100, Size: 256,
		Warmup: 3 * time.Second, KillDown: 8 * time.Second, Between: 3 * time.Second, Partition: 10 * time.Second, After: 5 * time.Second}
	if long {
		p.KillDown, p.Partition, p.After = 15*time.Second, 60*time.Second, 10*time.Second
	}
	return p
}

// The flows: a1 and a2 each send one reliable flow to group to-b (members
// on b1 and b2) and one to group to-c (members on c1 and c2).
func multiFlows() ([]FlowSpec, []ConsumerSpec) {
	var fs []FlowSpec
	for _, from := range []string{"a1", "a2"} {
		for _, to := range []string{"b", "c"} {
			fs = append(fs, FlowSpec{From: from, Flow: Flow{Name: "reliable " + from + "->" + to, Tag: from + to, Mode: client.Reliable, Group: "to-" + to}})
		}
	}
	var cs []ConsumerSpec
	for _, on := range []string{"b1", "b2", "c1", "c2"} {
		cs = append(cs, ConsumerSpec{Group: "to-" + on[:1], On: on})
	}
	return fs, cs
}

// TestMultiCluster runs 3 clusters of 4 nodes (a namespace each, a LAN
// per cluster, faults in the WAN between clusters) over each transport:
// all links up; reliable flows from a to groups served in b and c; a node
// of b killed (SIGKILL) while it receives, and restarted; c cut off from
// the others and healed; then every message is accounted for: none lost,
// duplicated or reordered. -chaos.long holds the cut for 60 s. It runs in
// each mode of -chaos.mode: by default in both topologies, mesh (seeds)
// and gateway (gateways).
func TestMultiCluster(t *testing.T) {
	preflight(t)
	var modes []ConfigMode
	for _, m := range strings.Split(*multiMode, ",") {
		mode := ConfigMode(m)
		if mode != PinnedPeers && mode != CASeeds && mode != CAGateways {
			t.Fatalf("-chaos.mode=%q: want %q, %q or %q, comma-separated", m, PinnedPeers, CASeeds, CAGateways)
		}
		modes = append(modes, mode)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", namePrefix, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	unregister := onInterrupt(func() { os.RemoveAll(dir) })
	t.Cleanup(func() {
		if !*keep {
			os.RemoveAll(dir)
		}
		unregister()
	})
	bin, err := BuildDaemon(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	plan := newMultiPlan(*multiLong)
	for _, mode := range modes {
		for _, tr := range strings.Split(*transports, ",") {
			name := tr
			if len(modes) > 1 {
				name = string(mode) + "-" + tr
			}
			t.Run(name, func(t *testing.T) { runMulti(t, bin, filepath.Join(dir, name), mode, tr, plan) })
		}
	}
}
