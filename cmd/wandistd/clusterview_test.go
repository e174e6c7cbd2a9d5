package main

import (
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/daemon"
)

func TestPrintClusterView(t *testing.T) {
	var b strings.Builder
	if err := printClusterView(&b, []daemon.ClusterMember{
		{Node: "e1", State: "alive", Since: time.Now(), QUIC: "10.0.0.1:7000", Gossip: "10.0.0.1:7946"},
		{Node: "e2", State: "dead", Since: time.Now(), TCP: "10.0.0.2:7001", Gossip: "10.0.0.2:7946"},
	}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"cluster by gossip, 2 nodes", "e1", "alive", "10.0.0.1:7000", "e2", "dead", "10.0.0.2:7001", "10.0.0.2:7946"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster view lacks %q:\n%s", want, out)
		}
	}
}
