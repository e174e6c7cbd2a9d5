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
				lines = append(lines, fmt.Sprintf("- %s reliable one-way 128 B: %s msgs/s = %.2fx NATS (target ≥ %.1fx): %s", s, rate(x), x/nats, TargetVsNATS, met(x >= TargetVsNATS*nats)))
			}
			if raw > 0 {
				lines = append(lines, fmt.Sprintf("- %s reliable one-way 128 B: %.0f %% of the raw relay (target ≥ %.0f %%): %s", s, 100*x/raw, 100*TargetVsRaw, met(x >= TargetVsRaw*raw)))
			}
		}
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
	fmt.Fprintln(w, "\n## Targets (issue 7), judged within this run")
	fmt.Fprintln(w)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}
