//go:build linux

package chaos

import (
	"strings"
	"testing"
	"time"
)

// A run that judge must pass: every flow sent 100 and delivered them, once
// and in order, and delivered again after the heal; memory within bounds.
func cleanResult() *Result {
	res := &Result{PeakKB: map[string]int64{"east": 100 << 10, "west": 100 << 10}, BoundKB: 200 << 10, LimitKB: 300 << 10,
		Windows: []Window{{Start: time.Unix(10, 0), End: time.Unix(20, 0)}}}
	for _, f := range Flows {
		res.Flows = append(res.Flows, FlowResult{Flow: f.Name, Attempted: 100, Sent: 100, Delivered: 100, SentAfterHeal: 10, DeliveredAfterHeal: 10})
	}
	return res
}

func flowIndex(t *testing.T, tag string) int {
	t.Helper()
	i := flowByTag(tag)
	if i < 0 {
		t.Fatalf("no flow %q", tag)
	}
	return i
}

// Each case breaks one rule of judge; it fails if that rule is removed.
func TestJudgeRules(t *testing.T) {
	network := Scenario{Name: "loss"}
	kill := Scenario{Name: "kill", Kills: true}
	killSender := Scenario{Name: "kill9-sender", Kills: true, KillsSender: true}
	stuck := Scenario{Name: "stuck", Stuck: true}
	stable := Scenario{Name: "baseline", StableLink: true}
	cases := []struct {
		name   string
		sc     Scenario
		bad    []string
		m      map[string]float64
		breaks func(t *testing.T, r *Result)
		want   string // in a failure; "" : the run passes
	}{
		{name: "clean run passes", sc: network, breaks: func(*testing.T, *Result) {}},
		{name: "corrupt payload", sc: network, bad: []string{"garbage"}, breaks: func(*testing.T, *Result) {}, want: "corrupted or foreign"},
		{name: "unexpected delivery", sc: network, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].Unexpected = 1 }, want: "refused or never sent"},
		{name: "at-most-once duplicate", sc: network, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "amo")].Duplicated = 1 }, want: "at-most-once: 1 duplicates"},
		{name: "reliable lost in a network fault", sc: network, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].Lost = 1 }, want: "reliable: 1 accepted and lost"},
		{name: "reliable duplicate in a network fault", sc: network, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "relh")].Duplicated = 1 }, want: "reliable-high: 1 duplicates"},
		{name: "reliable out of order in a network fault", sc: network, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].OutOfOrder = 1 }, want: "reliable: 1 out of order"},
		{name: "durable lost through a kill", sc: kill, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "dur")].Lost = 1 }, want: "durable: 1 accepted and lost"},
		{name: "durable duplicate through a kill", sc: kill, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "dur")].Duplicated = 1 }, want: "durable: 1 duplicates"},
		{name: "durable out of order in a network fault", sc: network, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "dur")].OutOfOrder = 1 }, want: "durable: 1 out of order"},
		{name: "reliable duplicate at a stuck consumer", sc: stuck, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].Duplicated = 1 }, want: "reliable: 1 duplicates"},
		{name: "reliable lost at a stuck consumer", sc: stuck, m: map[string]float64{"west:" + mInboxFull: 5},
			breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].Lost = 2 }, want: "reliable: 2 accepted and lost"},
		{name: "durable lost at a stuck consumer", sc: stuck, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "dur")].Lost = 1 }, want: "durable: 1 accepted and lost"},
		{name: "reliable out of order at a stuck consumer", sc: stuck, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "relh")].OutOfOrder = 1 }, want: "reliable-high: 1 out of order"},
		{name: "reliable lost through a kill of the receiver", sc: kill, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "relh")].Lost = 1 }, want: "reliable-high: 1 accepted and lost"},
		{name: "reliable duplicate through a kill of the receiver", sc: kill, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].Duplicated = 1 }, want: "reliable: 1 duplicates"},
		{name: "reliable lost with the killed sender passes", sc: killSender, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].Lost = 3 }},
		{name: "reliable duplicate through a kill of the sender", sc: killSender, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].Duplicated = 1 }, want: "reliable: 1 duplicates"},
		{name: "reliable out of order through a kill of the sender", sc: killSender, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].OutOfOrder = 1 }, want: "reliable: 1 out of order"},
		{name: "durable lost with the killed sender", sc: killSender, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "dur")].Lost = 1 }, want: "durable: 1 accepted and lost"},
		{name: "TTL flow: more undelivered than the nodes expired", sc: network, m: map[string]float64{"east:" + mExpired: 1},
			breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "ttl")].Expired = 2 }, want: "2 undelivered, but the nodes counted only 1 expired"},
		{name: "TTL flow: expired in the hold count", sc: kill, m: map[string]float64{"east:" + mExpired: 1, "west:" + mExpiredHeld: 1},
			breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "ttl")].Expired = 2 }},
		{name: "TTL flow: undelivered beyond the count through a kill", sc: kill, m: map[string]float64{"east:" + mExpired: 1},
			breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "ttl")].Expired = 2 }, want: "2 undelivered, but the nodes counted only 1 expired"},
		{name: "no send accepted after the heal", sc: network, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "rel")].SentAfterHeal = 0 }, want: "no send accepted after the heal"},
		{name: "nothing delivered after the heal", sc: network, breaks: func(t *testing.T, r *Result) { r.Flows[flowIndex(t, "dur")].DeliveredAfterHeal = 0 }, want: "nothing sent after the heal was delivered"},
		{name: "reconnect without a fault", sc: stable, breaks: func(_ *testing.T, r *Result) { r.Reconnects = 1 }, want: "reconnected 1 times"},
		{name: "memory over the limit", sc: network, breaks: func(_ *testing.T, r *Result) { r.PeakKB["west"] = 301 << 10 }, want: "west: peak RSS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := cleanResult()
			c.breaks(t, res)
			judge(&c.sc, c.bad, res, c.m)
			got := strings.Join(res.Failures, "; ")
			switch {
			case c.want == "" && got != "":
				t.Fatalf("failed: %s", got)
			case c.want != "" && !strings.Contains(got, c.want):
				t.Fatalf("failures %q, want one with %q", got, c.want)
			}
		})
	}
}
