package wan

import (
	"fmt"
	"strings"
	"time"
)

// Target is one goal of issue 19 (item 2), judged on a run.
type Target struct {
	Name    string
	Met     bool
	Judged  bool // the run had the figures
	Figures string
}

// BulkSize is the message size the goodput targets are judged at.
const BulkSize = 64 << 10

var wandists = []string{"wandist-quic", "wandist-tcp"}

func mbit(b float64) string { return fmt.Sprintf("%.1f Mbit/s", b/1e6) }

func ms(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// Judge judges every target on r.
func Judge(r *Result) []Target {
	link := float64(r.Rate)
	var ts []Target
	for _, st := range []string{Settings[0].Name, Settings[1].Name} {
		t := Target{Name: fmt.Sprintf("goodput ≥ 90 %% of the link rate at %s loss, QUIC and TCP (%d KiB messages)", st, BulkSize>>10), Met: true, Judged: true}
		var figs []string
		for _, s := range wandists {
			g := r.goodput(s, st, BulkSize)
			if g < 0 {
				t.Judged = false
				figs = append(figs, s+": not measured")
				continue
			}
			t.Met = t.Met && g >= 0.9*link
			figs = append(figs, fmt.Sprintf("%s %s = %.0f %%", s, mbit(g), 100*g/link))
		}
		t.Figures = strings.Join(figs, "; ") + fmt.Sprintf(" of %s", mbit(link))
		ts = append(ts, t)
	}
	lossy := Settings[2].Name
	t := Target{Name: fmt.Sprintf("goodput at %s loss ≥ raw TCP's (bbr, the kernel's default)", lossy), Met: true, Judged: true}
	ref := r.goodput("raw-tcp-bbr", lossy, BulkSize)
	figs := []string{"raw TCP bbr not measured"}
	if ref >= 0 {
		figs[0] = "raw TCP bbr " + mbit(ref)
	}
	if c := r.goodput("raw-tcp-cubic", lossy, BulkSize); c >= 0 {
		figs = append(figs, "cubic "+mbit(c))
	}
	for _, s := range wandists {
		g := r.goodput(s, lossy, BulkSize)
		if g < 0 || ref < 0 {
			t.Judged = false
			continue
		}
		t.Met = t.Met && g >= ref
		figs = append(figs, fmt.Sprintf("%s %s", s, mbit(g)))
	}
	t.Figures = strings.Join(figs, "; ")
	ts = append(ts, t)

	t = Target{Name: "heal → backlog drained within 1.2 × the ideal (backlog / (link − offered))", Met: true, Judged: true}
	figs = nil
	for _, s := range wandists {
		h := r.heal(s)
		if h == nil {
			t.Judged = false
			continue
		}
		ideal := h.IdealDrain(link)
		t.Met = t.Met && h.CaughtUp >= 0 && float64(h.CaughtUp) <= 1.2*float64(ideal)
		figs = append(figs, fmt.Sprintf("%s %s vs ideal %s", s, ms(h.CaughtUp), ms(ideal)))
	}
	t.Figures = strings.Join(figs, "; ")
	ts = append(ts, t)

	bound := RTT + 20*time.Millisecond
	t = Target{Name: fmt.Sprintf("high-priority p99 ≤ RTT + 20 ms (%s) under saturating bulk", ms(bound)), Met: true, Judged: true}
	figs = nil
	for _, s := range wandists {
		p := r.hpP99(s)
		if p < 0 {
			t.Judged = false
			continue
		}
		t.Met = t.Met && p <= bound
		figs = append(figs, fmt.Sprintf("%s p99 %s", s, ms(p)))
	}
	t.Figures = strings.Join(figs, "; ")
	ts = append(ts, t)
	ts = append(ts, aheadOfNATS(r))
	for i := range ts {
		ts[i].Met = ts[i].Met && ts[i].Judged // a target without its figures is not met
	}
	return ts
}

// aheadOfNATS judges "wandist ahead of NATS on every row": higher
// goodput, lower request-reply and high-priority p99, a faster drain.
func aheadOfNATS(r *Result) Target {
	t := Target{Name: "wandist ahead of NATS on every row", Met: true, Judged: true}
	var behind []string
	rows := 0
	cmp := func(s, what string, ok bool) {
		rows++
		if !ok {
			t.Met = false
			behind = append(behind, s+" "+what)
		}
	}
	for _, s := range wandists {
		for _, st := range r.Config.Settings {
			for _, size := range r.Config.BulkSizes {
				if g, n := r.goodput(s, st.Name, size), r.goodput("nats", st.Name, size); g >= 0 && n >= 0 {
					cmp(s, fmt.Sprintf("bulk %d B at %s (%s vs %s)", size, st.Name, mbit(g), mbit(n)), g > n)
				}
			}
			if p, n := r.rrP99(s, st.Name), r.rrP99("nats", st.Name); p >= 0 && n >= 0 {
				cmp(s, fmt.Sprintf("request-reply p99 at %s (%s vs %s)", st.Name, ms(p), ms(n)), p < n)
			}
		}
		if p, n := r.hpP99(s), r.hpP99("nats"); p >= 0 && n >= 0 {
			cmp(s, fmt.Sprintf("high-priority p99 (%s vs %s)", ms(p), ms(n)), p < n)
		}
		if h, n := r.heal(s), r.heal("nats"); h != nil && n != nil {
			cmp(s, fmt.Sprintf("caught up after heal (%s vs %s)", ms(h.CaughtUp), ms(n.CaughtUp)), h.CaughtUp >= 0 && (n.CaughtUp < 0 || h.CaughtUp < n.CaughtUp))
		}
	}
	switch {
	case rows == 0:
		t.Judged, t.Met, t.Figures = false, false, "no row with both"
	case t.Met:
		t.Figures = fmt.Sprintf("ahead on all %d rows", rows)
	default:
		t.Figures = fmt.Sprintf("behind on %d of %d rows: %s", len(behind), rows, strings.Join(behind, "; "))
	}
	return t
}
