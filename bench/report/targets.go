package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/wandist/wandist/bench/harness"
)

// Target limits of issue 7, judged within one run.
const (
	TargetVsNATS     = 2.0  // reliable one-way 128 B: at least 2x NATS's delivered rate
	TargetVsRaw      = 0.40 // and at least 40 % of the raw relay's
	TargetIdleLinkKB = 200  // an idle link under 200 KiB of daemon memory
)

// Target limits of issue 19 item 4 (CPU per message on loopback), judged
// on the one-way 128 B run: each daemon's CPU per message against the NATS
// server in the same place (sender's side, receiver's side), and the rate.
var (
	TargetCPUvsNATS  = map[string]float64{"tcp": 0.6, "quic": 1.0}
	TargetRateVsNATS = map[string]float64{"tcp": 2.0, "quic": 1.5}
)

var (
	owTarget = harness.WOneWay + "/128"   // the one-way target's workload
	rrTarget = harness.WLatency + "/1000" // p99 at 1,000/s no higher than NATS
)

// judged reports whether a system is held to the targets: wandist in
// reliable mode (not its at-most-once variants).
func judged(s string) bool { return strings.HasPrefix(s, "wandist-") && !strings.HasSuffix(s, "-amo") }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// targets writes how each reliable wandist system stands against the targets.
func (t *tables) targets(w io.Writer) {
	var lines []string
	nats, raw := t.oneWayRate(NATS, owTarget), t.oneWayRate(Raw, owTarget)
	natsP99 := t.p99(NATS, rrTarget)
	for _, s := range t.systems {
		if !judged(s) {
			continue
		}
		if x := t.oneWayRate(s, owTarget); x > 0 {
			if nats > 0 {
				lines = append(lines, fmt.Sprintf("- %s reliable one-way 128 B (issue 7): %s msgs/s = %.2fx NATS (target ≥ %.1fx): %s", s, rate(x), x/nats, TargetVsNATS, met(x >= TargetVsNATS*nats)))
			}
			if raw > 0 {
				lines = append(lines, fmt.Sprintf("- %s reliable one-way 128 B: %.0f %% of the raw relay (target ≥ %.0f %%): %s", s, 100*x/raw, 100*TargetVsRaw, met(x >= TargetVsRaw*raw)))
			}
		}
		lines = append(lines, t.cpuTargets(s)...)
		if p := t.p99(s, rrTarget); p > 0 && natsP99 > 0 {
			lines = append(lines, fmt.Sprintf("- %s request-reply p99 at 1,000/s: %s vs NATS %s (target ≤ NATS): %s", s, dur(time.Duration(p)), dur(time.Duration(natsP99)), met(p <= natsP99)))
		}
		for _, r := range t.recs {
			if r.System == s && r.IdleLink != nil && r.Err == "" {
				kb := r.IdleLink.PerLink() / 1024
				lines = append(lines, fmt.Sprintf("- %s idle link: %.1f KiB of daemon memory per link from %d to %d links (%.1f KiB averaged from none) (target < %d KiB): %s",
					s, kb, r.IdleLink.WarmLinks, r.IdleLink.Links, r.IdleLink.Average()/1024, TargetIdleLinkKB, met(kb < TargetIdleLinkKB)))
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	slices.Sort(lines)
	fmt.Fprintln(w, "\n## Targets (issues 7 and 19), judged within this run")
	fmt.Fprintln(w)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// transport is "tcp" or "quic" for a wandist system, "" otherwise.
func transport(system string) string {
	for _, t := range []string{"tcp", "quic"} {
		if strings.Contains(system, "-"+t) {
			return t
		}
	}
	return ""
}

// cpuTargets judges issue 19's one-way 128 B targets for system: its rate
// against NATS's, and each daemon's CPU per message against the NATS
// server in the same place (the first against the first, the sending side).
func (t *tables) cpuTargets(system string) []string {
	tr := transport(system)
	if tr == "" {
		return nil
	}
	var lines []string
	x, nats := t.oneWayRate(system, owTarget), t.oneWayRate(NATS, owTarget)
	if x > 0 && nats > 0 {
		want := TargetRateVsNATS[tr]
		lines = append(lines, fmt.Sprintf("- %s reliable one-way 128 B (issue 19): %s msgs/s = %.2fx NATS (target ≥ %.1fx over %s): %s", system, rate(x), x/nats, want, strings.ToUpper(tr), met(x >= want*nats)))
	}
	ours, theirs := serverCPU(t.sel(system, owTarget)), serverCPU(t.sel(NATS, owTarget))
	if len(ours) == 0 || len(ours) != len(theirs) {
		return lines
	}
	want, ok := TargetCPUvsNATS[tr], true
	var cells []string
	for i, o := range ours {
		r := o.cpu / theirs[i].cpu
		ok = ok && r <= want
		cells = append(cells, fmt.Sprintf("%s %.2f vs %s %.2f (%.2fx)", o.proc, o.cpu, theirs[i].proc, theirs[i].cpu, r))
	}
	return append(lines, fmt.Sprintf("- %s daemons' CPU s per 1M msgs, one-way 128 B (issue 19): %s (target ≤ %.1fx each): %s", system, strings.Join(cells, ", "), want, met(ok)))
}

type procCPU struct {
	proc string
	cpu  float64 // CPU seconds per million units, median over the records
}

// serverCPU is the median CPU per million units of each server process
// (not the driver) of rs, in the order the processes were listed.
func serverCPU(rs []harness.Record) []procCPU {
	var out []procCPU
	for _, r := range rs {
		for _, c := range r.Costs {
			if c.Proc != "driver" && !slices.ContainsFunc(out, func(p procCPU) bool { return p.proc == c.Proc }) {
				out = append(out, procCPU{proc: c.Proc})
			}
		}
	}
	for i := range out {
		var xs []float64
		for _, r := range rs {
			for _, c := range r.Costs {
				if c.Proc == out[i].proc && r.Units > 0 {
					xs = append(xs, c.CPU.Seconds()/r.Units*1e6)
				}
			}
		}
		out[i].cpu = median(xs)
		if out[i].cpu <= 0 {
			return nil
		}
	}
	return out
}
