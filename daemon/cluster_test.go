package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/gossip"
)

// gossipKeyFile writes a gossip key file (0600) and returns its path.
func gossipKeyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(p, bytes.Repeat([]byte{3}, gossip.KeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fastGossip are memberlist timings for tests on loopback; transport, if
// not nil, is set to the node's memberlist transport (to cut it).
func fastGossip(transport **memberlist.NetTransport) func(*memberlist.Config) {
	return func(mc *memberlist.Config) {
		mc.ProbeInterval, mc.ProbeTimeout = 200*time.Millisecond, 100*time.Millisecond
		mc.GossipInterval, mc.PushPullInterval, mc.TCPTimeout = 50*time.Millisecond, 2*time.Second, 2*time.Second
		mc.SuspicionMult = 3
		if transport != nil {
			nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger})
			if err != nil {
				panic(err)
			}
			mc.Transport, *transport = nt, nt
			mc.BindPort, mc.AdvertisePort = nt.GetAutoBindPort(), nt.GetAutoBindPort()
		}
	}
}

func withGossip(n *node, key string, transport **memberlist.NetTransport, seeds ...string) {
	n.cfg.Gossip = configs.Gossip{Bind: "127.0.0.1:0", Seeds: seeds, SecretFile: key, Profile: configs.GossipLAN}
	n.opts.GossipTune = fastGossip(transport)
}

func clusterState(d *Daemon, node string) gossip.State {
	for _, m := range d.ClusterView() {
		if m.Node == node {
			return m.State
		}
	}
	return ""
}

func membersOn(d *Daemon, group, node string) int {
	n := 0
	for _, m := range d.groups.Members(group) {
		if m.Node == node {
			n++
		}
	}
	return n
}

// A node of this cluster declared dead by gossip takes its group members
// out of the views at once (an unreachable link alone keeps them), and
// they come back through the link when it comes back.
func TestGossipDeadNodeMembersLeave(t *testing.T) {
	key := gossipKeyFile(t)
	e1 := newNode(t, "mem", "east", "e1")
	e2 := newNode(t, "mem", "east", "e2")
	var e2Gossip *memberlist.NetTransport
	withGossip(e1, key, nil)
	e1.cfg.Peers = []configs.Peer{peerOf(e2, "mem", "", "accept")}
	e1.start()
	withGossip(e2, key, &e2Gossip, e1.d.ClusterView()[0].Addr)
	e2.cfg.Peers = []configs.Peer{peerOf(e1, "mem", e1.addr("mem"), "connect")}
	e2.start()
	waitLink(t, e1.d, "east", "e2")
	subscribe(t, e2, "g", e1)
	waitUntil(t, 20*time.Second, func() bool { return clusterState(e1.d, "e2") == gossip.StateAlive }, func() string { return "e1 sees e2 alive by gossip" })
	if m := e1.d.ClusterView(); len(m) != 2 || m[1].Meta.QUIC != e2.addr("mem") || m[1].Meta.Incarnation != e2.d.Incarnation() {
		t.Fatalf("e1's cluster view %+v: want e1 and e2 with e2's link address and incarnation", m)
	}

	// The link breaks without GoAway: e2's member stays, unreachable.
	e2.block("east", "e1", true)
	if err := e1.d.WaitLink(ctxT(t, 10*time.Second), "east", "e2", false); err != nil {
		t.Fatal(err)
	}
	if n := membersOn(e1.d, "g", "e2"); n != 1 {
		t.Fatalf("after the link broke e1 has %d members on e2, want 1 (kept while only unreachable)", n)
	}
	// e2's gossip stops hard: declared dead, its member leaves at once.
	began := time.Now()
	e2Gossip.Shutdown()
	waitUntil(t, 30*time.Second, func() bool { return clusterState(e1.d, "e2") == gossip.StateDead }, func() string { return "e2 declared dead" })
	dead := time.Since(began)
	waitUntil(t, 2*time.Second, func() bool { return membersOn(e1.d, "g", "e2") == 0 }, func() string { return "e2's member gone within 2s of its death" })
	t.Logf("declared dead after %v, members gone after %v", dead.Round(10*time.Millisecond), time.Since(began).Round(10*time.Millisecond))
	if v := testutil.ToFloat64(e1.d.metrics.gossip.members.WithLabelValues("dead")); v != 1 {
		t.Errorf("wandist_gossip_members{state=dead} = %v, want 1", v)
	}

	// The link comes back: the snapshot that starts it brings the member back.
	e2.block("east", "e1", false)
	waitUntil(t, 20*time.Second, func() bool { return membersOn(e1.d, "g", "e2") == 1 }, func() string { return "e2's member back through the link" })
}

// A node of this cluster that leaves (Close) is seen as left, and its
// members leave even when its GoAway does not arrive.
func TestGossipLeftNodeMembersLeave(t *testing.T) {
	key := gossipKeyFile(t)
	e1 := newNode(t, "mem", "east", "e1")
	e2 := newNode(t, "mem", "east", "e2")
	withGossip(e1, key, nil)
	e1.cfg.Peers = []configs.Peer{peerOf(e2, "mem", "", "accept")}
	e1.start()
	withGossip(e2, key, nil, e1.d.ClusterView()[0].Addr)
	e2.cfg.Peers = []configs.Peer{peerOf(e1, "mem", e1.addr("mem"), "connect")}
	e2.start()
	subscribe(t, e2, "g", e1)
	waitUntil(t, 20*time.Second, func() bool { return clusterState(e1.d, "e2") == gossip.StateAlive }, func() string { return "e1 sees e2" })
	e2.block("east", "e1", true) // no GoAway reaches e1
	if err := e1.d.WaitLink(ctxT(t, 10*time.Second), "east", "e2", false); err != nil {
		t.Fatal(err)
	}
	e2.d.Close()
	waitUntil(t, 10*time.Second, func() bool { return clusterState(e1.d, "e2") == gossip.StateLeft }, func() string { return "e2 left" })
	waitUntil(t, 2*time.Second, func() bool { return membersOn(e1.d, "g", "e2") == 0 }, func() string { return "e2's member gone" })
	st := e1.d.Status()
	if len(st.ClusterView) != 2 || st.ClusterView[1].State != "left" || st.ClusterView[1].Gossip == "" {
		t.Errorf("status cluster view %+v", st.ClusterView)
	}
}

// A node with another gossip key is refused and counted.
func TestGossipWrongKeyCounted(t *testing.T) {
	e1 := newNode(t, "mem", "east", "e1")
	withGossip(e1, gossipKeyFile(t), nil)
	e1.start()
	x := newNode(t, "mem", "east", "x")
	other := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(other, bytes.Repeat([]byte{9}, gossip.KeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	withGossip(x, other, nil, e1.d.ClusterView()[0].Addr)
	x.start()
	waitUntil(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(e1.d.metrics.gossip.refused.WithLabelValues(gossip.RefusedKey)) > 0
	}, func() string { return "wrong key counted" })
	if len(e1.d.ClusterView()) != 1 {
		t.Errorf("e1 admitted a node with another key: %+v", e1.d.ClusterView())
	}
}

// A gossip key file that group or others may read is refused at start.
func TestGossipKeyFilePermissions(t *testing.T) {
	key := gossipKeyFile(t)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "mem", "east", "e1")
	withGossip(n, key, nil)
	d, err := New(n.cfg, n.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Start(ctxT(t, 5*time.Second)); err == nil {
		t.Fatal("started with a gossip key file open to others")
	}
}
