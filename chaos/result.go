//go:build linux

package chaos

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/wandist/wandist/client"
)

// Metric keys (see Node.Metrics).
const (
	mInboxFull   = "wandist_messages_dropped_total{reason=inbox_full}"
	mNoMailbox   = "wandist_messages_dropped_total{reason=no_mailbox}"
	mExpired     = "wandist_buffer_discards_total{reason=ttl}"
	mExpiredHeld = "wandist_messages_dropped_total{reason=expired_held}"
)

// Result is one scenario run over one transport, judged.
type Result struct {
	Scenario, Transport, Fault string
	Via                        []string // the paths that applied the fault
	Effect                     string   // the fault's measured effect
	Flows                      []FlowResult
	PeakKB                     map[string]int64 // per node: highest VmHWM
	BoundKB                    int64            // configured memory bound of a node
	LimitKB                    int64            // bound + slack: the verdict's limit
	Failures                   []string         // why it failed; empty: passed
	Reconnects                 int              // link reconnects counted by the daemons during the run
	Notes                      []string
	Began                      time.Time
	Windows                    []Window
	Samples                    []Sample
	Deliveries                 []Delivery // kept for the plot only
	// Latency of the must-arrive flows' messages sent from the first fault
	// to the heal (zero without a fault window).
	Latency Latency
}

// Passed reports whether every verdict held.
func (r *Result) Passed() bool { return len(r.Failures) == 0 }

// Summary is a one-line account of the run.
func (r *Result) Summary() string {
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL: " + strings.Join(r.Failures, "; ")
	}
	var flows []string
	for _, f := range r.Flows {
		flows = append(flows, fmt.Sprintf("%s %d/%d lost %d dup %d", f.Flow, f.Delivered, f.Sent, f.Lost, f.Duplicated))
	}
	return fmt.Sprintf("%s/%s: %s | %s | %s", r.Scenario, r.Transport, r.Effect, strings.Join(flows, ", "), verdict)
}

func (r *runState) result(ctx context.Context, mBefore map[string]float64) *Result {
	e := r.env
	recs := make([][]SendRecord, len(r.producers))
	for i, p := range r.producers {
		recs[i] = p.Records()
	}
	got := r.consumer.Deliveries()
	r.mu.Lock()
	windows := append([]Window(nil), r.windows...)
	samples := append([]Sample(nil), r.samples...)
	via := append([]string(nil), r.via...)
	notes := append([]string(nil), r.notes...)
	acts := append([]string(nil), r.acts...)
	delta := r.delta
	r.mu.Unlock()
	var heal time.Time
	if len(windows) > 0 {
		heal = windows[len(windows)-1].End
	}
	mAfter := r.metrics(ctx)
	res := &Result{Scenario: r.sc.Name, Transport: r.transport, Fault: r.sc.Fault, Via: via, Flows: Check(recs, got, heal),
		PeakKB: map[string]int64{"east": r.east.PeakKB(), "west": r.west.PeakKB()}, Notes: notes, Windows: windows, Samples: samples}
	bound := r.bound()
	res.BoundKB = bound >> 10
	res.LimitKB = (bound + e.Opts.MemSlack) >> 10
	if r.sc.Plot {
		res.Deliveries = got
	}
	if len(windows) > 0 {
		res.Latency = Latencies(Flows, recs, got, windows[0].Start, heal)
	}
	res.Effect = r.effect(delta, samples, windows, mBefore, mAfter)
	if len(acts) > 0 {
		res.Effect = strings.Join(acts, "; ") + "; " + res.Effect
	}
	res.Reconnects = int(metricKeys(mAfter, ":wandist_link_reconnects_total") - metricKeys(mBefore, ":wandist_link_reconnects_total"))
	if c := daemonCounters(mAfter); c != "" {
		res.Notes = append(res.Notes, "daemon counters at the end: "+c)
	}
	judge(&r.sc, r.consumer.Bad(), res, mAfter)
	return res
}

// effect describes what the fault measurably did.
func (r *runState) effect(d Counters, samples []Sample, windows []Window, mBefore, mAfter map[string]float64) string {
	var parts []string
	var hold time.Duration
	inFault := func(t time.Time) bool {
		for _, w := range windows {
			if !t.Before(w.Start) && !t.After(w.End) {
				return true
			}
		}
		return false
	}
	for _, w := range windows {
		hold += w.End.Sub(w.Start)
	}
	if n := d.NFT["drop_e2w"] + d.NFT["drop_w2e"]; n > 0 {
		parts = append(parts, fmt.Sprintf("nftables dropped %s of %d pkts east→west, %s of %d west→east",
			share(d.NFT["drop_e2w"], d.NFT["e2w"]), d.NFT["e2w"], share(d.NFT["drop_w2e"], d.NFT["w2e"]), d.NFT["w2e"]))
	}
	fwd := d.Fwd.Add(d.Bwd)
	if fwd.Lost+fwd.Blackholed > 0 {
		parts = append(parts, fmt.Sprintf("TUN dropped %s of %d pkts", share(fwd.Lost+fwd.Blackholed, fwd.Packets), fwd.Packets))
	}
	if fwd.Reordered > 0 {
		parts = append(parts, fmt.Sprintf("TUN held back (reordered) %s of %d pkts", share(fwd.Reordered, fwd.Packets), fwd.Packets))
	}
	if fwd.Duplicated > 0 {
		parts = append(parts, fmt.Sprintf("TUN duplicated %s of %d pkts", share(fwd.Duplicated, fwd.Packets), fwd.Packets))
	}
	if fwd.Corrupted > 0 {
		parts = append(parts, fmt.Sprintf("TUN corrupted %d of %d pkts", fwd.Corrupted, fwd.Packets))
	}
	if fwd.Delayed > 0 && fwd.MeanDelay() >= time.Millisecond && fwd.Reordered == 0 {
		parts = append(parts, fmt.Sprintf("TUN delayed %d pkts by %v on average", fwd.Delayed, fwd.MeanDelay().Round(100*time.Microsecond)))
	}
	for _, dev := range []string{wanWestIf, wanEastIf} {
		if q, ok := d.TBF[dev]; ok && q.Bytes > 0 && hold > 0 {
			dir := map[string]string{wanWestIf: "east→west", wanEastIf: "west→east"}[dev]
			parts = append(parts, fmt.Sprintf("tbf %s: %.2f Mbit/s over the fault, %d drops", dir, float64(q.Bytes)*8/hold.Seconds()/1e6, q.Drops))
		}
	}
	// RTT and link state from the samples.
	var rttBefore, rttDuring []float64
	var down time.Duration
	var prev *Sample
	for i := range samples {
		s := &samples[i]
		if s.RTTMillis > 0 && s.State == "up" {
			if len(windows) > 0 && s.T.Before(windows[0].Start) {
				rttBefore = append(rttBefore, s.RTTMillis)
			} else if inFault(s.T) {
				rttDuring = append(rttDuring, s.RTTMillis)
			}
		}
		if prev != nil && prev.State != "up" && prev.State != "" {
			down += s.T.Sub(prev.T)
		}
		prev = s
	}
	if len(rttDuring) > 0 && len(rttBefore) > 0 {
		parts = append(parts, fmt.Sprintf("keepalive RTT %.1f ms (before %.1f ms)", median(rttDuring), median(rttBefore)))
	}
	if down > 0 {
		parts = append(parts, fmt.Sprintf("link not up %.1f s", down.Seconds()))
	}
	reconnects := metricKeys(mAfter, ":wandist_link_reconnects_total") - metricKeys(mBefore, ":wandist_link_reconnects_total")
	if reconnects > 0 {
		parts = append(parts, fmt.Sprintf("%.0f link reconnects", reconnects))
	}
	if r.sc.Stuck {
		parts = append(parts, fmt.Sprintf("%.0f deliveries dropped at the stopped consumer (inbox_full)", metricKeys(mAfter, mInboxFull)))
	}
	if n := metricKeys(mAfter, mNoMailbox); n > 0 {
		parts = append(parts, fmt.Sprintf("receiver dropped %.0f for want of a mailbox (no_mailbox)", n))
	}
	if r.sc.SpoolFull {
		for i, f := range Flows {
			if f.Mode == client.Durable {
				fr := r.flowSnapshot(i)
				parts = append(parts, fmt.Sprintf("%d durable sends refused (busy %d, unavailable %d)", fr.Busy+fr.Uncertain+fr.Refused, fr.Busy, fr.Uncertain))
			}
		}
	}
	if len(windows) > 1 {
		parts = append(parts, fmt.Sprintf("%d fault windows, %.1f s in all", len(windows), hold.Seconds()))
	}
	if len(parts) == 0 {
		return "no fault applied"
	}
	return strings.Join(parts, "; ")
}

func (r *runState) flowSnapshot(i int) FlowResult {
	recs := make([][]SendRecord, len(r.producers))
	for j, p := range r.producers {
		recs[j] = p.Records()
	}
	return Check(recs, r.consumer.Deliveries(), time.Time{})[i]
}

func share(n, of uint64) string {
	if of == 0 {
		return fmt.Sprintf("%d", n)
	}
	return fmt.Sprintf("%d (%.1f %%)", n, 100*float64(n)/float64(of))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// judge applies the verdicts of scenario sc to res, with m the daemons'
// counters and bad the consumer's corrupted or foreign payloads: reliable
// and durable lose, duplicate and reorder nothing in every scenario (but
// reliable may lose what a sending daemon killed -9 held unacknowledged),
// a TTL-flow message missing is one the nodes counted as expired,
// at-most-once never duplicates (its losses are reported), nothing refused
// or corrupted is delivered, every flow delivers again after the heal, and
// memory stays within the bound plus the slack. judge_test.go has a case
// per rule.
func judge(sc *Scenario, bad []string, res *Result, m map[string]float64) {
	fail := func(format string, args ...any) { res.Failures = append(res.Failures, fmt.Sprintf(format, args...)) }
	if len(bad) > 0 {
		fail("%d corrupted or foreign payloads delivered (first %.60q)", len(bad), bad[0])
	}
	// Every discard the nodes counted of a TTL-flow message: expired in
	// the sender's buffer or in the receiver's hold.
	expired := int(metricKeys(m, mExpired) + metricKeys(m, mExpiredHeld))
	for i, fr := range res.Flows {
		f := Flows[i]
		if fr.Unexpected > 0 {
			fail("%s: %d delivered that were refused or never sent", f.Name, fr.Unexpected)
		}
		if fr.Duplicated > 0 {
			fail("%s: %d duplicates", f.Name, fr.Duplicated)
		}
		if f.Mode == client.AtMostOnce {
			continue
		}
		// Reliable and durable: nothing lost, duplicated or reordered,
		// whatever the fault. A kill -9 of the sending daemon may lose the
		// reliable messages it held unacknowledged (README), and only
		// those: it never duplicates or reorders.
		mayLose := f.Mode == client.Reliable && sc.KillsSender
		if fr.Lost > 0 && !mayLose {
			fail("%s: %d accepted and lost (seqs %v)", f.Name, fr.Lost, fr.LostSeqs)
		}
		if fr.OutOfOrder > 0 {
			fail("%s: %d out of order", f.Name, fr.OutOfOrder)
		}
		if f.TTL > 0 && !mayLose && fr.Expired > expired {
			fail("%s: %d undelivered, but the nodes counted only %d expired", f.Name, fr.Expired, expired)
		}
		if len(res.Windows) > 0 {
			if fr.SentAfterHeal == 0 {
				fail("%s: no send accepted after the heal", f.Name)
			} else if fr.DeliveredAfterHeal == 0 && f.TTL == 0 {
				fail("%s: nothing sent after the heal was delivered", f.Name)
			}
		}
	}
	if sc.StableLink && res.Reconnects > 0 {
		fail("the link reconnected %d times without a network fault", res.Reconnects)
	}
	for node, kb := range res.PeakKB {
		if kb > res.LimitKB {
			fail("%s: peak RSS %d MiB over the limit %d MiB (bound %d MiB + slack)", node, kb>>10, res.LimitKB>>10, res.BoundKB>>10)
		}
	}
}

// daemonCounters lists the nonzero drop, discard, duplicate and protocol
// error counters of both daemons (of their last process).
func daemonCounters(m map[string]float64) string {
	var parts []string
	for k, v := range m {
		if v == 0 {
			continue
		}
		_, name, _ := strings.Cut(k, ":")
		for _, p := range []string{"wandist_messages_dropped_total{", "wandist_buffer_discards_total{", "wandist_protocol_errors_total{", "wandist_duplicates_dropped_total", "wandist_spool_errors_total", "wandist_buffer_redelivered_total"} {
			if strings.HasPrefix(name, p) {
				parts = append(parts, fmt.Sprintf("%s %.0f", k, v))
			}
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
