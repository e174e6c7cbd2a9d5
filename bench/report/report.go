// Package report turns the harness's records into the benchmark's tables:
// medians over repeats, ratios against NATS and the raw relay chain, the
// targets of issue 7, each process's CPU per million messages and peak
// memory; as Markdown, for the terminal and BENCHMARKS.md alike.
package report

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wandist/wandist/bench/harness"
	"github.com/wandist/wandist/bench/workload"
)

// Reference systems for ratios.
const (
	NATS = "nats"
	Raw  = "raw-relay"
)

// Meta describes the run.
type Meta struct {
	Command  string
	Date     time.Time
	Machine  []string // lines: CPU, cores, kernel, Go
	Settings []string // lines: counts, rates, durations
	Skipped  []string // systems skipped, and why
	Elapsed  time.Duration
}

// Write writes the whole report.
func Write(w io.Writer, m Meta, recs []harness.Record) {
	fmt.Fprintf(w, "Run %s, %s, took %s.\n\n", m.Date.UTC().Format("2006-01-02 15:04 MST"), "`"+m.Command+"`", m.Elapsed.Round(time.Second))
	fmt.Fprintln(w, "Machine:")
	for _, l := range m.Machine {
		fmt.Fprintf(w, "- %s\n", l)
	}
	fmt.Fprintln(w, "\nSettings:")
	for _, l := range m.Settings {
		fmt.Fprintf(w, "- %s\n", l)
	}
	for _, l := range m.Skipped {
		fmt.Fprintf(w, "- skipped: %s\n", l)
	}
	t := newTables(recs)
	t.targets(w)
	t.oneWay(w)
	t.latency(w)
	t.maxRate(w)
	t.restore(w)
	t.memory(w)
	t.errors(w)
}

type tables struct {
	recs    []harness.Record
	systems []string // in first-seen order
}

func newTables(recs []harness.Record) *tables {
	t := &tables{recs: recs}
	for _, r := range recs {
		if !slices.Contains(t.systems, r.System) {
			t.systems = append(t.systems, r.System)
		}
	}
	return t
}

// select returns the error-free records of system and workload.
func (t *tables) sel(system, wl string) []harness.Record {
	var out []harness.Record
	for _, r := range t.recs {
		if r.System == system && r.Workload == wl && r.Err == "" {
			out = append(out, r)
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOf(rs []harness.Record, f func(harness.Record) float64) float64 {
	var xs []float64
	for _, r := range rs {
		xs = append(xs, f(r))
	}
	return median(xs)
}

// workloadsOf returns the distinct workload names with prefix, in first-seen order.
func (t *tables) workloadsOf(prefix string) []string {
	var out []string
	for _, r := range t.recs {
		if strings.HasPrefix(r.Workload, prefix+"/") && !slices.Contains(out, r.Workload) {
			out = append(out, r.Workload)
		}
	}
	return out
}

func rate(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.0fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

func dur(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }

func ratio(x, ref float64) string {
	if ref <= 0 || x <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2fx", x/ref)
}

// costs summarises the per-process CPU per million units (median over
// records) and peak RSS (max) as "proc cpu/peak" cells.
func costs(rs []harness.Record) (cpu, peak string) {
	type acc struct {
		cpu  []float64
		peak int64
	}
	m := map[string]*acc{}
	var order []string
	for _, r := range rs {
		for _, c := range r.Costs {
			a := m[c.Proc]
			if a == nil {
				a = &acc{}
				m[c.Proc] = a
				order = append(order, c.Proc)
			}
			if r.Units > 0 {
				a.cpu = append(a.cpu, c.CPU.Seconds()/r.Units*1e6)
			}
			a.peak = max(a.peak, c.PeakRSS)
		}
	}
	var cs, ps []string
	for _, p := range order {
		cs = append(cs, fmt.Sprintf("%s %.2f", p, median(m[p].cpu)))
		if p != "driver" {
			ps = append(ps, fmt.Sprintf("%s %s", p, mib(float64(m[p].peak))))
		}
	}
	return strings.Join(cs, ", "), strings.Join(ps, ", ")
}

// others is the highest "others busy" of the records, in cores.
func others(rs []harness.Record) string {
	m := 0.0
	for _, r := range rs {
		m = max(m, r.Others)
	}
	return fmt.Sprintf("%.2f", m)
}

func (t *tables) oneWayRate(system, wl string) float64 {
	return medianOf(t.sel(system, wl), func(r harness.Record) float64 { return r.OneWay.MsgsPerSec() })
}

func (t *tables) p99(system, wl string) float64 {
	return medianOf(t.sel(system, wl), func(r harness.Record) float64 { return float64(r.Latency.Latency.P99) })
}

func (t *tables) oneWay(w io.Writer) {
	wls := t.workloadsOf(harness.WOneWay)
	if len(wls) == 0 {
		return
	}
	fmt.Fprintln(w, "\n## One-way throughput (delivered messages only; median of repeats)")
	fmt.Fprintln(w, "\n| system | payload | msgs/s | CPU s per 1M msgs | MB/s | vs NATS | vs raw relay | lost | dup | out of order | corrupt | runs | others busy | peak RSS | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, wl := range wls {
		size := strings.TrimPrefix(wl, harness.WOneWay+"/")
		nats, raw := t.oneWayRate(NATS, wl), t.oneWayRate(Raw, wl)
		for _, s := range t.systems {
			rs := t.sel(s, wl)
			if len(rs) == 0 {
				continue
			}
			x := t.oneWayRate(s, wl)
			mb := medianOf(rs, func(r harness.Record) float64 { return r.OneWay.MBPerSec() })
			var lost, dup, ooo, bad int
			var notes []string
			for _, r := range rs {
				c := r.OneWay.Counts
				lost, dup, ooo, bad = lost+c.Lost(), dup+c.Duplicates, ooo+c.OutOfOrder, bad+c.Corrupted+c.Unexpected
				if r.OneWay.Refused > 0 || r.OneWay.SyncErr > 0 {
					notes = append(notes, fmt.Sprintf("refused %d, sync errors %d", r.OneWay.Refused, r.OneWay.SyncErr))
				}
				if r.OneWay.Note != "" && !slices.Contains(notes, r.OneWay.Note) {
					notes = append(notes, r.OneWay.Note)
				}
			}
			cpu, peak := costs(rs)
			fmt.Fprintf(w, "| %s | %s B | %s | %s | %.1f | %s | %s | %d | %d | %d | %d | %d | %s | %s | %s |\n",
				s, size, rate(x), cpu, mb, ratio(x, nats), ratio(x, raw), lost, dup, ooo, bad, len(rs), others(rs), peak, strings.Join(notes, "; "))
		}
	}
	fmt.Fprintln(w, "\nlost, dup, out of order and corrupt are summed over the runs; msgs/s counts from the first send to the last delivery.")
	fmt.Fprintln(w, "\"others busy\" is the most CPU (in cores, of the runs) that processes outside the benchmark used during a run: the machine is shared, and above about 0.3 the figures are disturbed.")
}

func (t *tables) latency(w io.Writer) {
	wls := t.workloadsOf(harness.WLatency)
	if len(wls) == 0 {
		return
	}
	fmt.Fprintln(w, "\n## Request-reply latency at a fixed offered rate (from each request's intended send time; median of repeats)")
	fmt.Fprintln(w, "\n| system | rate | p50 | p99 | p99.9 | max | p99 vs NATS | errors | runs | others busy | generator late p99 | CPU s per 1M requests | peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, wl := range wls {
		rt := strings.TrimPrefix(wl, harness.WLatency+"/")
		nats := t.p99(NATS, wl)
		for _, s := range t.systems {
			rs := t.sel(s, wl)
			if len(rs) == 0 {
				continue
			}
			med := func(f func(workload.LatencyResult) time.Duration) time.Duration {
				return time.Duration(medianOf(rs, func(r harness.Record) float64 { return float64(f(*r.Latency)) }))
			}
			p99 := t.p99(s, wl)
			errs := 0
			for _, r := range rs {
				errs += r.Latency.Errors
			}
			cpu, peak := costs(rs)
			fmt.Fprintf(w, "| %s | %s/s | %s | %s | %s | %s | %s | %d | %d | %s | %s | %s | %s |\n", s, rt,
				dur(med(func(l workload.LatencyResult) time.Duration { return l.Latency.P50 })), dur(time.Duration(p99)),
				dur(med(func(l workload.LatencyResult) time.Duration { return l.Latency.P999 })),
				dur(med(func(l workload.LatencyResult) time.Duration { return l.Latency.Max })),
				ratio(p99, nats), errs, len(rs), others(rs), dur(med(func(l workload.LatencyResult) time.Duration { return l.SendLate })), cpu, peak)
		}
	}
	fmt.Fprintln(w, "\n\"generator late p99\" is how late the load generator itself started requests (its precision); latencies include it.")
}

func (t *tables) maxRate(w io.Writer) {
	var rs []harness.Record
	for _, r := range t.recs {
		if r.Workload == harness.WMaxRate && r.MaxRate != nil {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\n## Highest sustainable request rate (every request answered, p99 within the bound)")
	fmt.Fprintln(w, "\n| system | highest rate | vs NATS | CPU s per 1M requests (all steps) | steps: rate → p99 (ok/sent) |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	natsBest := 0
	for _, r := range rs {
		if r.System == NATS {
			natsBest = r.MaxRate.Best
		}
	}
	for _, r := range rs {
		var steps []string
		for _, s := range r.MaxRate.Steps {
			steps = append(steps, fmt.Sprintf("%s → %s (%d/%d)", rate(float64(s.Rate)), dur(s.Latency.P99), s.OK, s.Sent))
		}
		cpu, _ := costs([]harness.Record{r})
		fmt.Fprintf(w, "| %s | %s/s | %s | %s | %s |\n", r.System, rate(float64(r.MaxRate.Best)), ratio(float64(r.MaxRate.Best), float64(natsBest)), cpu, strings.Join(steps, "; "))
	}
}

func (t *tables) restore(w io.Writer) {
	var rs []harness.Record
	for _, r := range t.recs {
		if r.Workload == harness.WRestore && r.Restore != nil && r.Err == "" {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\n## Link restore (steady stream, path between the servers cut, then healed)")
	fmt.Fprintln(w, "\n| system | cut | cut for | sent during cut | lost of those | heal → first of those delivered | heal → all of those delivered | heal → first delivery | total lost | dup | CPU s per 1M msgs | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		x := r.Restore
		cpu, _ := costs([]harness.Record{r})
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s | %s | %s | %d | %d | %s | %s |\n", r.System, x.CutKind, dur(x.Cut), x.SentDuring, x.LostDuring,
			dur(x.FirstCutMsg), dur(x.Drained), dur(x.FirstAny), x.Counts.Lost(), x.Counts.Duplicates, cpu, x.Note)
	}
	fmt.Fprintln(w, "\nCPU s per 1M msgs here is over the whole run at a steady 1,000 msgs/s, cut and reconnection included: mostly idle and timer costs, not comparable with the one-way table.")
}

func (t *tables) memory(w io.Writer) {
	var il, gm []harness.Record
	for _, r := range t.recs {
		if r.Err != "" {
			continue
		}
		if r.IdleLink != nil {
			il = append(il, r)
		}
		if r.Groups != nil {
			gm = append(gm, r)
		}
	}
	if len(il) > 0 {
		fmt.Fprintln(w, "\n## Memory per idle link (one daemon's resident memory with its N peers configured: none linked, a fifth linked, all linked and idle)")
		fmt.Fprintln(w, "\nPer idle link is the growth from a fifth to all N links, per link: what one more idle link costs. The average from no link to N also carries one-time costs of the first links: the handshake and transport code paged in, the heap grown from its start-up size.")
		fmt.Fprintln(w, "\n| system | peers | RSS unlinked | RSS at a fifth | RSS linked | per idle link | average from none | notes |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, r := range il {
			x := r.IdleLink
			warm := "–"
			if x.WarmLinks > 0 {
				warm = fmt.Sprintf("%s (%d)", mib(float64(x.WarmRSS)), x.WarmLinks)
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %.1f KiB | %.1f KiB | %s |\n", r.System, x.Links, mib(float64(x.BaseRSS)), warm, mib(float64(x.LinkedRSS)), x.PerLink()/1024, x.Average()/1024, x.Note)
		}
	}
	if len(gm) > 0 {
		fmt.Fprintln(w, "\n## Memory per group member (members joined on one side; resident growth of both servers)")
		fmt.Fprintln(w, "\n| system | members | groups/subjects | remote server growth | per member (remote) | local server growth | per member (local) | known remotely after | notes |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
		for _, r := range gm {
			x := r.Groups
			fmt.Fprintf(w, "| %s | %d | %d | %s | %.0f B | %s | %.0f B | %s | %s |\n", r.System, x.Members, x.Groups,
				mib(float64(x.RemoteAfter-x.RemoteBase)), x.RemotePerMember(), mib(float64(x.LocalAfter-x.LocalBase)), x.LocalPerMember(), dur(x.Propagate), x.Note)
		}
	}
}

func (t *tables) errors(w io.Writer) {
	var lines []string
	for _, r := range t.recs {
		if r.Err != "" {
			where := r.Workload
			if strings.Contains(r.Workload, "/") || r.Workload == "start" || r.Workload == harness.WLatency {
				where = fmt.Sprintf("%s (repeat %d)", r.Workload, r.Repeat+1)
			}
			lines = append(lines, fmt.Sprintf("- %s %s: %s", r.System, where, r.Err))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\n## Failed runs")
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
}
