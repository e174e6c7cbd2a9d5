package wan

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Write renders r as Markdown: the path and its ceiling, then a table per
// workload, the targets and the errors.
func Write(w io.Writer, r *Result) {
	link := float64(r.Rate)
	fmt.Fprintf(w, "Command: `%s`\n\n", r.Command)
	for _, m := range r.Machine {
		fmt.Fprintf(w, "- %s\n", m)
	}
	fmt.Fprintf(w, "\n**Path.** east and west network namespaces joined through a WAN namespace (chaos.NewTopology): %s. RTT %s (%s each way), loss each way.\n\n", r.Path, RTT, RTT/2)
	writeCeiling(w, r)
	fmt.Fprintf(w, "\n**Systems** (servers in east and west, clients beside their server):\n\n")
	for _, s := range SystemNames {
		if d, ok := describe[s]; ok && r.has(s) {
			fmt.Fprintf(w, "- %s: %s\n", s, d[0])
		}
	}
	writeBulk(w, r, link)
	writeRR(w, r)
	writeHeal(w, r, link)
	writeHP(w, r)
	fmt.Fprintf(w, "\n### Targets (issue 19, item 2), judged within this run\n\n| target | met | figures |\n|---|---|---|\n")
	for _, t := range Judge(r) {
		v := "not met"
		switch {
		case !t.Judged:
			v = "not judged"
		case t.Met:
			v = "**met**"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Name, v, t.Figures)
	}
	var errs []string
	for _, x := range r.Rows {
		if x.Err != "" {
			errs = append(errs, fmt.Sprintf("- %s %s %s %s: %s", x.System, x.Setting, x.Workload, sizeName(x.Size), x.Err))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "\n### Errors\n\n%s\n", strings.Join(errs, "\n"))
	}
}

func (r *Result) has(system string) bool {
	for _, x := range r.Rows {
		if x.System == system {
			return true
		}
	}
	return false
}

func sizeName(n int) string {
	switch {
	case n == 0:
		return ""
	case n%1024 == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func writeCeiling(w io.Writer, r *Result) {
	fmt.Fprintf(w, "**The emulator's own ceiling** (no rate cap; one flow, %s each after a quarter of warm-up; the UDP flood is one goroutine sending 1200-byte datagrams as fast as it can):\n\n", r.Config.Ceiling)
	fmt.Fprintf(w, "| loss | raw TCP (bbr) | quic-go | UDP flood delivered (sent) |\n|---|---|---|---|\n")
	for _, c := range r.Ceiling {
		if c.Err != "" {
			fmt.Fprintf(w, "| %s | error: %s | | |\n", c.Setting, c.Err)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s (%s) |\n", c.Setting, mbit(c.TCP), mbit(c.QUIC), mbit(c.UDP), mbit(c.UDPOffered))
	}
	how := "the highest of 1000, 500, 200, 100 Mbit/s at most half the highest rate the emulator carried at 0 % loss (it shares the CPUs with the systems under test), at least 100"
	if r.Forced {
		how = "given with -wan-rate"
	}
	fmt.Fprintf(w, "\n**Link rate: %s each way** (tbf; %s).\n", mbit(float64(r.Rate)), how)
}

func cpuPerM(x Row, units float64) string {
	if len(x.Costs) == 0 {
		return "in-process"
	}
	var parts []string
	for _, c := range x.Costs {
		parts = append(parts, fmt.Sprintf("%s %.2f", c.Proc, c.CPU.Seconds()/units*1e6))
	}
	return strings.Join(parts, ", ")
}

func ratio(x, ref float64) string {
	if x < 0 || ref <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x/ref)
}

func writeBulk(w io.Writer, r *Result, link float64) {
	fmt.Fprintf(w, "\n### Bulk one-way goodput (%s per run, the first %s not counted; payload bytes delivered at the receiver; at most %d MiB in flight end to end)\n\n", r.Config.Bulk, r.Config.Warm, r.Config.Window>>20)
	fmt.Fprintf(w, "| system | size | loss | goodput | of link | vs NATS | vs raw TCP bbr | delivered / lost / dup / out of order | CPU s per 1M msgs |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range SystemNames {
		for _, size := range r.Config.BulkSizes {
			for _, st := range r.Config.Settings {
				x := r.find(s, st.Name, WBulk, size)
				if x == nil || x.Bulk == nil {
					continue
				}
				b := x.Bulk
				c := b.Counts
				note := ""
				if b.Note != "" {
					note = " (" + b.Note + ")"
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %.0f %% | %s | %s | %d / %d / %d / %d%s | %s |\n", s, sizeName(size), st.Name, mbit(b.Goodput), 100*b.Goodput/link,
					ratio(b.Goodput, r.goodput("nats", st.Name, size)), ratio(b.Goodput, r.goodput("raw-tcp-bbr", st.Name, size)),
					c.Delivered, c.Lost(), c.Duplicates, c.OutOfOrder, note, cpuPerM(*x, float64(max(1, c.Delivered))))
			}
		}
	}
}

func writeRR(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\n### Request-reply at %d/s (128 B, open loop, from intended send times, %s per run; RTT %s)\n\n", r.Config.RRRate, r.Config.RRTime, RTT)
	fmt.Fprintf(w, "| system | loss | p50 | p99 | p99.9 | max | errors | p99 vs NATS | p99 vs raw TCP bbr |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range SystemNames {
		for _, st := range r.Config.Settings {
			x := r.find(s, st.Name, WRR, 0)
			if x == nil || x.RR == nil {
				continue
			}
			l := x.RR.Latency
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d of %d | %s | %s |\n", s, st.Name, ms1(l.P50), ms1(l.P99), ms1(l.P999), ms1(l.Max), x.RR.Errors, x.RR.Sent,
				ratio(float64(l.P99), float64(r.rrP99("nats", st.Name))), ratio(float64(l.P99), float64(r.rrP99("raw-tcp-bbr", st.Name))))
		}
	}
}

func ms1(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func writeHeal(w io.Writer, r *Result, link float64) {
	c := r.Config
	fmt.Fprintf(w, "\n### Heal → backlog drained (%s loss; %s messages offered at %.0f %% of the link rate, open loop; the path blackholed both ways for %s after %s, then healed)\n\n", Settings[0].Name, sizeName(c.HealSize), 100*c.HealShare, c.Blackout, c.HealBefore)
	fmt.Fprintf(w, "Backlog B: payload bytes of the messages due during the blackout. *first*: heal → first delivery. *backlog*: heal → every message due during the blackout delivered; ideal B / link rate. *caught up*: the backlog delivered and a message due after the heal delivered within its steady one-way latency + %s (the queue is empty again); ideal B / (link rate − offered rate); the target is caught up ≤ 1.2 × that ideal.\n\n", CatchSlack)
	fmt.Fprintf(w, "| system | B | first | backlog (ideal) | caught up (ideal) | caught up / ideal | lost / dup / out of order |\n|---|---|---|---|---|---|---|\n")
	for _, s := range SystemNames {
		x := r.find(s, Settings[0].Name, WHeal, 0)
		if x == nil || x.Heal == nil {
			continue
		}
		h := x.Heal
		id := h.IdealDrain(link)
		fmt.Fprintf(w, "| %s | %.1f MB | %s | %s (%s) | %s (%s) | %s | %d / %d / %d |\n", s, float64(h.Backlog)/1e6, ms(h.First), ms(h.Backlogged), ms(h.IdealBacklog(link)),
			ms(h.CaughtUp), ms(id), ratio(float64(h.CaughtUp), float64(id)), h.Counts.Lost(), h.Counts.Duplicates, h.Counts.OutOfOrder)
	}
}

func writeHP(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\n### High-priority request-reply under a saturating bulk flow (%s loss; %d/s, 128 B, for %s while %s bulk messages fill the link the same way)\n\n", Settings[0].Name, r.Config.RRRate, r.Config.HPTime, sizeName(BulkSize))
	fmt.Fprintf(w, "| system | high-priority path | p50 | p99 | max | errors | p99 vs NATS | bulk goodput meanwhile |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range SystemNames {
		x := r.find(s, Settings[0].Name, WHP, 0)
		if x == nil || x.HP == nil {
			continue
		}
		l := x.HP.RR.Latency
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d of %d | %s | %s |\n", s, describe[s][1], ms1(l.P50), ms1(l.P99), ms1(l.Max), x.HP.RR.Errors, x.HP.RR.Sent,
			ratio(float64(l.P99), float64(r.hpP99("nats"))), mbit(x.HP.Bulk.Goodput))
	}
}
