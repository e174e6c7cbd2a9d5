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

// NetFault is a network fault between east and west. Dir Forward is east
// to west (the direction of the messages), Backward west to east (their
// acks).
type NetFault struct {
	Dir       impair.Direction
	Delay     time.Duration
	Jitter    time.Duration
	Loss      float64 // share of packets
	Reorder   float64 // share of packets held back so that later ones overtake them
	Duplicate float64
	Corrupt   float64
	RateBits  int64 // bits per second, 0: no cap
	Blackhole bool  // drop silently: no FIN, no RST, no ICMP
	Reject    bool  // partition that answers: TCP RST, ICMP host unreachable
}

func (f NetFault) packetFaults() bool {
	return f.Delay > 0 || f.Jitter > 0 || f.Reorder > 0 || f.Duplicate > 0 || f.Corrupt > 0
}

// Counters are the fault paths' counters at one moment; Sub gives what
// happened between two moments.
type Counters struct {
	NFT      map[string]uint64 // packets per nftables counter: e2w, w2e (all), drop_e2w, drop_w2e
	Fwd, Bwd impair.Stats      // the TUN forwarder, per direction
	TBF      map[string]TCStats
}

// TCStats are a qdisc's counters (tc -s).
type TCStats struct {
	Bytes      uint64 `json:"bytes"`
	Packets    uint64 `json:"packets"`
	Drops      uint64 `json:"drops"`
	Overlimits uint64 `json:"overlimits"`
}

// Sub returns c minus an earlier snapshot.
func (c Counters) Sub(old Counters) Counters {
	out := Counters{NFT: map[string]uint64{}, TBF: map[string]TCStats{}}
	for k, v := range c.NFT {
		out.NFT[k] = v - old.NFT[k]
	}
	out.Fwd = subStats(c.Fwd, old.Fwd)
	out.Bwd = subStats(c.Bwd, old.Bwd)
	out.TBF = c.TBF // tbf counters start at 0 with each fault
	return out
}

// Add returns the sum of two deltas.
func (c Counters) Add(o Counters) Counters {
	out := Counters{NFT: map[string]uint64{}, TBF: map[string]TCStats{}, Fwd: c.Fwd.Add(o.Fwd), Bwd: c.Bwd.Add(o.Bwd)}
	for _, m := range []map[string]uint64{c.NFT, o.NFT} {
		for k, v := range m {
			out.NFT[k] += v
		}
	}
	for _, m := range []map[string]TCStats{c.TBF, o.TBF} {
		for k, v := range m {
			t := out.TBF[k]
			t.Bytes += v.Bytes
			t.Packets += v.Packets
			t.Drops += v.Drops
			t.Overlimits += v.Overlimits
			out.TBF[k] = t
		}
	}
	return out
}

func subStats(a, b impair.Stats) impair.Stats {
	return impair.Stats{Packets: a.Packets - b.Packets, Bytes: a.Bytes - b.Bytes, Forwarded: a.Forwarded - b.Forwarded,
		Blackholed: a.Blackholed - b.Blackholed, Lost: a.Lost - b.Lost, QueueDrops: a.QueueDrops - b.QueueDrops,
		Duplicated: a.Duplicated - b.Duplicated, Corrupted: a.Corrupted - b.Corrupted, Delayed: a.Delayed - b.Delayed,
		Reordered: a.Reordered - b.Reordered, DelayTotal: a.DelayTotal - b.DelayTotal, RateLimited: a.RateLimited - b.RateLimited}
}

// dirDevs are the WAN egress devices of a direction: east->west leaves
// the WAN on ww, west->east on we.
func dirDevs(d impair.Direction) []string {
	var devs []string
	if d&impair.Forward != 0 {
		devs = append(devs, wanWestIf)
	}
	if d&impair.Backward != 0 {
		devs = append(devs, wanEastIf)
	}
	return devs
}

// dirIfs are the WAN ingress devices of a direction (for nftables).
func dirIfs(d impair.Direction) []struct{ iif, counter string } {
	var out []struct{ iif, counter string }
	if d&impair.Forward != 0 {
		out = append(out, struct{ iif, counter string }{wanEastIf, "drop_e2w"})
	}
	if d&impair.Backward != 0 {
		out = append(out, struct{ iif, counter string }{wanWestIf, "drop_w2e"})
	}
	return out
}

// Apply sets f, replacing any earlier fault with no healed moment between
// them (nftables' rules are replaced in one transaction, the TUN
// forwarder's faults are set before what f does not use is removed), and
// returns how each part of it is applied on this machine.
func (t *Topology) Apply(ctx context.Context, f NetFault) (via []string, err error) {
	if f.Dir == 0 {
		f.Dir = impair.Both
	}
	var rules []string
	tun := impair.Faults{}
	netem := f.packetFaults() && t.Netem
	switch {
	case f.Reject && !t.HaveNFT:
		return nil, fmt.Errorf("%w: a rejecting partition needs nftables", ErrUnsupported)
	case (f.Blackhole || f.Reject || f.Loss > 0) && t.HaveNFT:
		for _, d := range dirIfs(f.Dir) {
			switch {
			case f.Reject:
				rules = append(rules,
					fmt.Sprintf(`iifname %q meta l4proto tcp counter name %q reject with tcp reset`, d.iif, d.counter),
					fmt.Sprintf(`iifname %q counter name %q reject with icmpx type host-unreachable`, d.iif, d.counter))
			case f.Blackhole:
				rules = append(rules, fmt.Sprintf(`iifname %q counter name %q drop`, d.iif, d.counter))
			default:
				rules = append(rules, fmt.Sprintf(`iifname %q numgen random mod 10000 < %d counter name %q drop`, d.iif, int(f.Loss*10000+0.5), d.counter))
			}
		}
		via = append(via, "nftables")
	case f.Blackhole || f.Loss > 0:
		if t.Netem && !f.Blackhole {
			netem = true
		} else {
			tun.Blackhole, tun.Loss = f.Blackhole, f.Loss
			via = append(via, "tun")
		}
	}
	if t.HaveNFT {
		script := "flush chain inet wdchaos faults\n"
		for _, r := range rules {
			script += "add rule inet wdchaos faults " + r + "\n"
		}
		if err := runStdin(ctx, script, "ip", "netns", "exec", t.WAN, "nft", "-f", "-"); err != nil {
			return nil, err
		}
	}
	if netem {
		args := netemArgs(f, !t.HaveNFT)
		for _, dev := range dirDevs(f.Dir) {
			if _, err := run(ctx, "tc", append([]string{"-n", t.WAN, "qdisc", "replace", "dev", dev, "root", "netem"}, args...)...); err != nil {
				return nil, err
			}
		}
		via = append(via, "netem")
	} else if f.packetFaults() {
		tun.Delay, tun.Jitter, tun.Reorder, tun.Duplicate, tun.Corrupt = f.Delay, f.Jitter, f.Reorder, f.Duplicate, f.Corrupt
		if f.Reorder > 0 {
			tun.ReorderGap = max(10*time.Millisecond, f.Delay)
		}
		via = append(via, "tun")
	}
	if f.RateBits > 0 && !netem {
		for _, dev := range dirDevs(f.Dir) {
			// burst: 10 ms of traffic, at least 2 full packets; queue: 300 ms.
			burst := max(f.RateBits/8/100, 3200)
			if _, err := run(ctx, "tc", "-n", t.WAN, "qdisc", "replace", "dev", dev, "root", "tbf",
				"rate", fmt.Sprintf("%dbit", f.RateBits), "burst", fmt.Sprint(burst), "latency", "300ms"); err != nil {
				return nil, err
			}
		}
		via = append(via, "tbf")
	}
	if err := t.clearQdiscs(ctx, netem, f.RateBits > 0 && !netem, f.Dir); err != nil {
		return nil, err
	}
	if t.fwd != nil {
		if err := t.fwd.SetFaults(f.Dir, tun); err != nil {
			return nil, err
		}
		if rest := impair.Both &^ f.Dir; rest != 0 {
			if err := t.fwd.SetFaults(rest, impair.Faults{}); err != nil {
				return nil, err
			}
		}
	}
	return dedupe(via), nil
}

// clearQdiscs removes the tbf or netem qdiscs that a fault does not keep:
// all of them, or (keep) those of the devices outside dir.
func (t *Topology) clearQdiscs(ctx context.Context, netem, tbf bool, dir impair.Direction) error {
	kept := map[string]bool{}
	if netem || tbf {
		for _, dev := range dirDevs(dir) {
			kept[dev] = true
		}
	}
	for _, dev := range []string{wanEastIf, wanWestIf} {
		if kept[dev] {
			continue
		}
		if out, _ := run(ctx, "tc", "-n", t.WAN, "qdisc", "show", "dev", dev); strings.Contains(out, "tbf") || strings.Contains(out, "netem") {
			if _, err := run(ctx, "tc", "-n", t.WAN, "qdisc", "del", "dev", dev, "root"); err != nil {
				return err
			}
		}
	}
	return nil
}

func dedupe(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// netemArgs renders f for `tc qdisc ... netem`.
func netemArgs(f NetFault, withLoss bool) []string {
	var a []string
	if f.Delay > 0 || f.Jitter > 0 || f.Reorder > 0 {
		d := max(f.Delay, time.Millisecond)
		a = append(a, "delay", fmt.Sprintf("%dus", d.Microseconds()))
		if f.Jitter > 0 {
			a = append(a, fmt.Sprintf("%dus", f.Jitter.Microseconds()))
		}
	}
	pct := func(p float64) string { return fmt.Sprintf("%.3f%%", p*100) }
	if withLoss && f.Loss > 0 {
		a = append(a, "loss", pct(f.Loss))
	}
	if f.Duplicate > 0 {
		a = append(a, "duplicate", pct(f.Duplicate))
	}
	if f.Corrupt > 0 {
		a = append(a, "corrupt", pct(f.Corrupt))
	}
	if f.Reorder > 0 {
		a = append(a, "reorder", pct(1-f.Reorder)) // netem sends this share at once, delays the rest
	}
	if f.RateBits > 0 {
		a = append(a, "rate", fmt.Sprintf("%dbit", f.RateBits))
	}
	return a
}

// Clear removes every fault.
func (t *Topology) Clear(ctx context.Context) error {
	if t.HaveNFT {
		if err := runStdin(ctx, "flush chain inet wdchaos faults\n", "ip", "netns", "exec", t.WAN, "nft", "-f", "-"); err != nil {
			return err
		}
	}
	if err := t.clearQdiscs(ctx, false, false, 0); err != nil {
		return err
	}
	if t.fwd != nil {
		return t.fwd.SetFaults(impair.Both, impair.Faults{})
	}
	return nil
}

// Counters reads every fault path's counters.
func (t *Topology) Counters(ctx context.Context) (Counters, error) {
	c := Counters{NFT: map[string]uint64{}, TBF: map[string]TCStats{}}
	if t.fwd != nil {
		c.Fwd, c.Bwd = t.fwd.Stats(impair.Forward), t.fwd.Stats(impair.Backward)
	}
	if t.HaveNFT {
		out, err := runIn(ctx, t.WAN, "nft", "-j", "list", "counters", "table", "inet", "wdchaos")
		if err != nil {
			return c, err
		}
		var doc struct {
			Nftables []struct {
				Counter *struct {
					Name    string `json:"name"`
					Packets uint64 `json:"packets"`
				} `json:"counter"`
			} `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			return c, fmt.Errorf("chaos: nft counters: %w", err)
		}
		for _, e := range doc.Nftables {
			if e.Counter != nil {
				c.NFT[e.Counter.Name] = e.Counter.Packets
			}
		}
	}
	for _, dev := range []string{wanEastIf, wanWestIf} {
		out, err := run(ctx, "tc", "-n", t.WAN, "-s", "-j", "qdisc", "show", "dev", dev)
		if err != nil {
			return c, err
		}
		var qs []struct {
			Kind string `json:"kind"`
			TCStats
		}
		if err := json.Unmarshal([]byte(out), &qs); err != nil {
			return c, fmt.Errorf("chaos: tc stats of %s: %w", dev, err)
		}
		for _, q := range qs {
			if q.Kind == "tbf" || q.Kind == "netem" {
				c.TBF[dev] = q.TCStats
			}
		}
	}
	return c, nil
}
