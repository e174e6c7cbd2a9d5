//go:build linux

package chaos

import (
	"context"
	"errors"
	"flag"
	"testing"
	"time"
)

var quicConns = flag.Int("chaos.quic_connections", 0, "TestQUICLossBlackouts: link.quic_connections (default: the scenario's, 4)")

// latencySlack is added to twice TCP's figures before QUIC's are judged:
// the figures of a run with few deliveries are coarse (the sampling of
// the consumer's output, the 50 ms RTT), and 2 × a small figure would
// otherwise fail on noise.
const latencySlack = 100 * time.Millisecond

// TestQUICLossBlackouts runs the loss-blackouts scenario (5 % loss each
// way, 50 ms RTT, a 1 s blackout every 5 s) over a QUIC link and a TCP
// link in one run, checks that both lose, duplicate and reorder nothing
// (the checker's verdict), and that QUIC delivers within 2× of TCP: the
// send→delivery mean, p50 and p99 of the must-arrive messages sent during
// the faults, and the time from the end of the faults until all of them
// arrived.
// Both profiles run it (docs/chaos.md, "QUIC against TCP under loss and
// blackouts").
func TestQUICLossBlackouts(t *testing.T) {
	preflight(t)
	ctx := context.Background()
	sc := LossBlackoutsScenario(*profile)
	if *quicConns > 0 {
		sc.QUICConns = *quicConns
	}
	env, err := NewEnv(ctx, Options{Profile: *profile, Transports: []string{"quic", "tcp"}, Keep: *keep, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	got := map[string]Latency{}
	for _, tr := range env.Opts.Transports {
		res, err := env.Run(ctx, sc, tr)
		if errors.Is(err, ErrSkipped) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s/%s: %s; %d link reconnects", sc.Name, tr, res.Latency, res.Reconnects)
		if !res.Passed() {
			t.Errorf("%s/%s: %v\nnotes: %v", sc.Name, tr, res.Failures, res.Notes)
		}
		if res.Latency.Messages == 0 {
			t.Fatalf("%s/%s: no must-arrive message sent during the faults was delivered", sc.Name, tr)
		}
		got[tr] = res.Latency
	}
	q, c := got["quic"], got["tcp"]
	for _, m := range []struct {
		what      string
		quic, tcp time.Duration
	}{
		{"send→delivery mean", q.Mean, c.Mean},
		{"send→delivery p50", q.P50, c.P50},
		{"send→delivery p99", q.P99, c.P99},
		{"faults end→all delivered", q.Drained, c.Drained},
	} {
		if limit := 2*m.tcp + latencySlack; m.quic > limit {
			t.Errorf("%s: QUIC %v, TCP %v: QUIC over 2× TCP + %v (%v)", m.what, m.quic, m.tcp, latencySlack, limit)
		}
	}
}
