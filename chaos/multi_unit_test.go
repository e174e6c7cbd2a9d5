//go:build linux

package chaos

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
)

// testLayout is 3 clusters of 2 nodes with fresh keys, in dir.
func testLayout(t *testing.T, mode ConfigMode) MeshLayout {
	t.Helper()
	l := MeshLayout{Mode: mode, Transport: "tcp", Root: t.TempDir(), BufferBytes: 4 << 20}
	for k, c := range []string{"a", "b", "c"} {
		for i := 1; i <= 2; i++ {
			pub, _, err := ed25519.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s%d", c, i)
			l.Nodes = append(l.Nodes, MeshNode{NodeNet: NodeNet{Cluster: c, Name: name, IP: netip.AddrFrom4([4]byte{10, 214, byte(k + 1), byte(10 + i)})},
				PublicKey: auth.FormatPublicKey(pub)})
		}
	}
	return l
}

// In the pinned mode every node's config is valid, lists every other node
// of every cluster (its own included) with its key, and of each pair
// exactly one node dials the other, over the layout's transport.
func TestMeshConfigPinned(t *testing.T) {
	l := testLayout(t, PinnedPeers)
	dials := map[[2]string]int{}
	for _, n := range l.Nodes {
		cfg, err := MeshConfig(l, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(l.NodeDir(n.Name), "config.yaml")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		parsed, err := configs.Parse([]byte(cfg.Render()), path)
		if err != nil {
			t.Fatalf("%s's config does not parse: %v\n%s", n.Name, err, cfg.Render())
		}
		if len(parsed.Peers) != len(l.Nodes)-1 {
			t.Fatalf("%s has %d peers, want %d", n.Name, len(parsed.Peers), len(l.Nodes)-1)
		}
		for _, p := range cfg.Peers {
			want := ""
			for _, o := range l.Nodes {
				if o.Name == p.Node {
					want = o.PublicKey
				}
			}
			if p.PublicKey != want || want == "" {
				t.Fatalf("%s pins %q for %s, want %q", n.Name, p.PublicKey, p.Node, want)
			}
			if p.Address != "" {
				if p.Transport != "tcp" {
					t.Fatalf("%s dials %s over %q", n.Name, p.Node, p.Transport)
				}
				pair := [2]string{min(n.Name, p.Node), max(n.Name, p.Node)}
				dials[pair]++
			}
		}
	}
	if want := len(l.Nodes) * (len(l.Nodes) - 1) / 2; len(dials) != want {
		t.Fatalf("%d pairs dialled, want every one of the %d", len(dials), want)
	}
	for pair, n := range dials {
		if n != 1 {
			t.Fatalf("pair %v dialled by %d nodes, want 1", pair, n)
		}
	}
}

// An unknown node or mode is an error.
func TestMeshConfigErrors(t *testing.T) {
	if _, err := MeshConfig(testLayout(t, PinnedPeers), "z9"); err == nil {
		t.Fatal("a config for a node not in the layout")
	}
	if _, err := MeshConfig(testLayout(t, "gossip"), "a1"); err == nil {
		t.Fatal("a config in an unknown mode")
	}
}

// In the seeds mode every node's config is valid and names no peer: its
// certificate, its cluster's CA, gossip with another node of its cluster
// as a seed, and each other cluster by its first nodes and its CA; in the
// gateways mode, each other cluster in gateway mode.
func TestMeshConfigSeeds(t *testing.T) {
	for _, mode := range []ConfigMode{CASeeds, CAGateways} {
		t.Run(string(mode), func(t *testing.T) { testMeshConfigSeeds(t, mode) })
	}
}

func testMeshConfigSeeds(t *testing.T, mode ConfigMode) {
	l := testLayout(t, mode)
	cas := map[string]*auth.CA{}
	for _, n := range l.Nodes {
		ca := cas[n.Cluster]
		if ca == nil {
			var err error
			if ca, err = auth.NewCA("wandist", n.Cluster, time.Hour, time.Now()); err != nil {
				t.Fatal(err)
			}
			cas[n.Cluster] = ca
			if err := os.MkdirAll(l.CADir(n.Cluster), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := ca.Save(filepath.Join(l.CADir(n.Cluster), "ca.crt"), filepath.Join(l.CADir(n.Cluster), "ca.key")); err != nil {
				t.Fatal(err)
			}
		}
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ca.Issue(auth.PeerID{Cluster: n.Cluster, Node: n.Name}, pub, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(l.NodeDir(n.Name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l.NodeDir(n.Name), n.Name+".crt"), cert, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range l.Nodes {
		cfg, err := MeshConfig(l, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(l.NodeDir(n.Name), "wandistd.yaml")
		c, err := configs.Parse([]byte(cfg.Render()), path)
		if err != nil {
			t.Fatalf("%s: %v\n%s", n.Name, err, cfg.Render())
		}
		if len(c.Peers) != 0 || len(c.Remotes) != 2 || len(c.Gossip.Seeds) != 1 || len(c.Trust.CAs) != 1 {
			t.Fatalf("%s: %d peers, %d remotes, gossip seeds %v, %d CAs; want 0, 2, one other node of its cluster, 1\n%s",
				n.Name, len(c.Peers), len(c.Remotes), c.Gossip.Seeds, len(c.Trust.CAs), cfg.Render())
		}
		for _, r := range c.Remotes {
			topo, k := configs.TopologyMesh, configs.DefaultGateways
			if mode == CAGateways {
				topo, k = configs.TopologyGateway, meshGateways
			}
			if r.Cluster == n.Cluster || len(r.Seeds) != 2 || len(r.CAs) != 1 || r.Transport != "tcp" || r.Topology != topo || r.Gateways != k {
				t.Fatalf("%s: remote %+v", n.Name, r)
			}
		}
	}
}

// CheckSpread judges order per consumer (two members of a group are not
// ordered with each other) but losses and duplicates over all of them.
func TestCheckSpread(t *testing.T) {
	flows := []Flow{{Name: "f", Tag: "f", Mode: client.Reliable}}
	t0 := time.Unix(100, 0)
	recs := [][]SendRecord{make([]SendRecord, 6)}
	for i := range recs[0] {
		recs[0][i] = SendRecord{At: t0.Add(time.Duration(i) * time.Millisecond), Outcome: Accepted}
	}
	at := func(ms int, seqs ...uint64) []Delivery {
		var out []Delivery
		for i, s := range seqs {
			out = append(out, Delivery{Flow: 0, Seq: s, At: t0.Add(time.Duration(ms+i) * time.Millisecond)})
		}
		return out
	}
	// x takes 1, 2, 5, 6; y takes 3, 4 after x took 5: in order per member.
	r := CheckSpread(flows, recs, [][]Delivery{at(10, 1, 2, 5, 6), at(20, 3, 4)}, time.Time{})[0]
	if r.Lost != 0 || r.Duplicated != 0 || r.OutOfOrder != 0 || r.Delivered != 6 {
		t.Fatalf("spread in order: %+v", r)
	}
	// y takes 4 before 3, x takes 3 too, 6 is never delivered.
	r = CheckSpread(flows, recs, [][]Delivery{at(10, 1, 2, 5, 3), at(20, 4, 3)}, time.Time{})[0]
	if r.OutOfOrder != 2 || r.Duplicated != 1 || r.Lost != 1 || r.LostSeqs[0] != 6 {
		t.Fatalf("want 2 out of order (3 at x after 5, 3 at y after 4), 1 duplicate (3), 6 lost: %+v", r)
	}
}

// Rewriting the matrix's report keeps the many-nodes section.
func TestWriteMarkdownKeepsManyNodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chaos.md")
	section := manyNodesHeading + "3 clusters x 4 nodes\n\nmeasured by hand\n"
	if err := os.WriteFile(path, []byte("# old report\n"+section), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := Report{Profile: "full"}
	if err := rep.WriteMarkdown(path); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if s := string(got); !strings.HasSuffix(s, section) || strings.Contains(s, "# old report") {
		t.Fatalf("rewritten report:\n%s", s)
	}
}
