//go:build linux

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wandist/wandist/impair"
)

// PairFault is a fault on the traffic from one cluster to another (one
// direction; a cut applies it both ways).
type PairFault struct {
	Delay, Jitter time.Duration // in the pair's TUN forwarder
	Loss          float64       // share of packets, in nftables (numgen)
	Blackhole     bool          // drop every packet silently (no FIN, RST or ICMP), in nftables
}

func (f PairFault) nft() bool { return f.Loss > 0 || f.Blackhole }

// pair returns the indexes of two clusters.
func (m *MultiTopology) pair(from, to string) ([2]int, error) {
	a, b := m.Cluster(from), m.Cluster(to)
	if a == nil || b == nil || a == b {
		return [2]int{}, fmt.Errorf("chaos: no pair of distinct clusters %q -> %q in the topology", from, to)
	}
	return [2]int{a.Index, b.Index}, nil
}

// Apply sets the fault on the traffic from cluster from to cluster to,
// replacing the pair's earlier fault (the zero PairFault clears it).
func (m *MultiTopology) Apply(ctx context.Context, from, to string, f PairFault) error {
	p, err := m.pair(from, to)
	if err != nil {
		return err
	}
	if f.nft() && !m.HaveNFT {
		return fmt.Errorf("%w: loss and blackholes need nftables", ErrUnsupported)
	}
	m.mu.Lock()
	if f == (PairFault{}) {
		delete(m.faults, p)
	} else {
		m.faults[p] = f
	}
	fwd := m.fwd[p]
	m.mu.Unlock()
	if fwd != nil {
		if err := fwd.SetFaults(impair.Both, impair.Faults{Delay: f.Delay, Jitter: f.Jitter}); err != nil {
			return err
		}
	}
	if m.HaveNFT {
		return m.writeFaults(ctx)
	}
	return nil
}

// Cut partitions cluster name from every other cluster, both ways,
// silently (a blackhole: links go half-open until their keepalives
// notice). Heal ends it.
func (m *MultiTopology) Cut(ctx context.Context, name string) error { return m.setCut(ctx, name, true) }

// Heal ends a Cut of cluster name; the pairs' other faults stay.
func (m *MultiTopology) Heal(ctx context.Context, name string) error {
	return m.setCut(ctx, name, false)
}

func (m *MultiTopology) setCut(ctx context.Context, name string, on bool) error {
	c := m.Cluster(name)
	if c == nil {
		return fmt.Errorf("chaos: no cluster %q in the topology", name)
	}
	if !m.HaveNFT {
		return fmt.Errorf("%w: a cut needs nftables", ErrUnsupported)
	}
	m.mu.Lock()
	for _, o := range m.Clusters {
		if o == c {
			continue
		}
		for _, p := range [][2]int{{c.Index, o.Index}, {o.Index, c.Index}} {
			f := m.faults[p]
			f.Blackhole = on
			if f == (PairFault{}) {
				delete(m.faults, p)
			} else {
				m.faults[p] = f
			}
		}
	}
	m.mu.Unlock()
	return m.writeFaults(ctx) // one nft transaction: every pair at once
}

// pairCounter names the nftables counters of a pair: p_ packets that
// entered the WAN for it, d_ packets its faults dropped.
func pairCounter(kind string, p [2]int) string { return fmt.Sprintf("%s_%d_%d", kind, p[0], p[1]) }

// writeNFT creates the WAN's table: per-pair counters, a chain counting
// each packet once (where it enters the WAN from its cluster's router;
// with the TUN in the path it crosses the forward hook twice) and the
// faults chain that Apply fills.
func (m *MultiTopology) writeNFT(ctx context.Context) error {
	var b strings.Builder
	b.WriteString("table inet wdmulti {\n")
	var count []string
	for _, from := range m.Clusters {
		for _, to := range m.Clusters {
			if from == to {
				continue
			}
			p := [2]int{from.Index, to.Index}
			fmt.Fprintf(&b, "\tcounter %s { }\n\tcounter %s { }\n", pairCounter("p", p), pairCounter("d", p))
			count = append(count, fmt.Sprintf("\t\tiifname %q ip daddr %s counter name %q\n", from.wanIf, to.LAN, pairCounter("p", p)))
		}
	}
	b.WriteString("\tchain faults {\n\t}\n\tchain fw {\n\t\ttype filter hook forward priority 0; policy accept;\n")
	b.WriteString(strings.Join(count, ""))
	b.WriteString("\t\tjump faults\n\t}\n}\n")
	return runStdin(ctx, b.String(), "ip", "netns", "exec", m.WAN, "nft", "-f", "-")
}

// writeFaults renders every pair's loss and blackhole into the faults
// chain, replacing what was there.
func (m *MultiTopology) writeFaults(ctx context.Context) error {
	script := "flush chain inet wdmulti faults\n"
	m.mu.Lock()
	for _, from := range m.Clusters {
		for _, to := range m.Clusters {
			p := [2]int{from.Index, to.Index}
			f, ok := m.faults[p]
			if from == to || !ok || !f.nft() {
				continue
			}
			match := fmt.Sprintf("iifname %q ip daddr %s", from.wanIf, to.LAN)
			if !f.Blackhole {
				match += fmt.Sprintf(" numgen random mod 10000 < %d", int(f.Loss*10000+0.5))
			}
			script += fmt.Sprintf("add rule inet wdmulti faults %s counter name %q drop\n", match, pairCounter("d", p))
		}
	}
	m.mu.Unlock()
	return runStdin(ctx, script, "ip", "netns", "exec", m.WAN, "nft", "-f", "-")
}

// PairCounters is what the fault paths counted for one ordered pair of
// clusters.
type PairCounters struct {
	Packets, Dropped uint64       // nftables: entered the WAN for the pair, dropped by its faults
	Fwd              impair.Stats // the pair's TUN forwarder
}

// Counters reads every pair's counters, keyed "from->to".
func (m *MultiTopology) Counters(ctx context.Context) (map[string]PairCounters, error) {
	out := map[string]PairCounters{}
	nft := map[string]uint64{}
	if m.HaveNFT {
		raw, err := runIn(ctx, m.WAN, "nft", "-j", "list", "counters", "table", "inet", "wdmulti")
		if err != nil {
			return nil, err
		}
		var doc struct {
			Nftables []struct {
				Counter *struct {
					Name    string `json:"name"`
					Packets uint64 `json:"packets"`
				} `json:"counter"`
			} `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(raw), &doc); err != nil {
			return nil, fmt.Errorf("chaos: nft counters: %w", err)
		}
		for _, e := range doc.Nftables {
			if e.Counter != nil {
				nft[e.Counter.Name] = e.Counter.Packets
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, from := range m.Clusters {
		for _, to := range m.Clusters {
			p := [2]int{from.Index, to.Index}
			if f := m.fwd[p]; f != nil {
				out[from.Name+"->"+to.Name] = PairCounters{Packets: nft[pairCounter("p", p)], Dropped: nft[pairCounter("d", p)], Fwd: f.Stats(impair.Both)}
			}
		}
	}
	return out, nil
}
