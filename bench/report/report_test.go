package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/bench/harness"
	"github.com/wandist/wandist/bench/latency"
	"github.com/wandist/wandist/bench/payload"
	"github.com/wandist/wandist/bench/workload"
)

func oneWay(system string, rep int, msgs int, el time.Duration) harness.Record {
	r := workload.OneWayResult{Size: 128, Counts: payload.Counts{Expected: msgs, Delivered: msgs}, Elapsed: el}
	return harness.Record{System: system, Workload: "oneway/128", Repeat: rep, OneWay: &r, Units: float64(msgs),
		Costs: []harness.Cost{{Proc: "server", CPU: time.Second, PeakRSS: 10 << 20}}}
}

func rr(system string, p99 time.Duration) harness.Record {
	r := workload.LatencyResult{Rate: 1000, Sent: 10, OK: 10, Latency: latency.Summary{N: 10, P50: p99 / 2, P99: p99, P999: p99, Max: p99}}
	return harness.Record{System: system, Workload: "latency/1000", Latency: &r, Units: 10}
}

func TestRatiosMediansAndTargets(t *testing.T) {
	recs := []harness.Record{
		// wandist-quic: 250k, 300k, 200k msgs/s over three repeats: median 250k.
		oneWay("wandist-quic", 0, 250_000, time.Second), oneWay("wandist-quic", 1, 300_000, time.Second), oneWay("wandist-quic", 2, 200_000, time.Second),
		oneWay("nats", 0, 100_000, time.Second),
		oneWay("wandist-tcp", 0, 150_000, time.Second),
		oneWay("raw-relay", 0, 1_000_000, time.Second),
		rr("wandist-quic", 900*time.Microsecond), rr("nats", 600*time.Microsecond),
		{System: "wandist-quic", Workload: harness.WIdleLink, IdleLink: &workload.IdleLinkResult{
			// The first two links cost 500 KiB each, the next eight 100 KiB.
			Links: 10, WarmLinks: 2, BaseRSS: 10 << 20, WarmRSS: 10<<20 + 2*500<<10, LinkedRSS: 10<<20 + 2*500<<10 + 8*100<<10}},
		{System: "nats", Workload: "oneway/4096", Err: "boom"},
		{System: "wandist-tcp", Workload: harness.WMaxRate, MaxRate: &harness.MaxRateResult{Best: 1000}, Units: 500_000,
			Costs: []harness.Cost{{Proc: "east-1", CPU: time.Second}}},
		{System: "wandist-tcp", Workload: harness.WRestore, Restore: &workload.RestoreResult{CutKind: "fake", FirstCutMsg: -1, FirstAny: -1, Drained: -1},
			Units: 250_000, Costs: []harness.Cost{{Proc: "east-1", CPU: time.Second}}},
	}
	var b bytes.Buffer
	Write(&b, Meta{Command: "test", Date: time.Unix(0, 0)}, recs)
	out := b.String()
	for _, want := range []string{
		"| wandist-quic | 128 B | 250k | server 4.00 | 32.0 | 2.50x | 0.25x | 0 | 0 | 0 | 0 | 3 | 0.00 |",
		"wandist-quic reliable one-way 128 B (issue 7): 250k msgs/s = 2.50x NATS (target ≥ 2.0x): met",
		"wandist-quic reliable one-way 128 B (issue 19): 250k msgs/s = 2.50x NATS (target ≥ 1.5x over QUIC): met",
		"wandist-quic daemons' CPU s per 1M msgs, one-way 128 B (issue 19): server 4.00 vs server 10.00 (0.40x) (target ≤ 1.0x each): met",
		"wandist-tcp reliable one-way 128 B (issue 19): 150k msgs/s = 1.50x NATS (target ≥ 2.0x over TCP): **not met**",
		"wandist-tcp daemons' CPU s per 1M msgs, one-way 128 B (issue 19): server 6.67 vs server 10.00 (0.67x) (target ≤ 0.6x each): **not met**",
		"wandist-quic reliable one-way 128 B: 25 % of the raw relay (target ≥ 40 %): **not met**",
		"wandist-quic request-reply p99 at 1,000/s: 900 µs vs NATS 600 µs (target ≤ NATS): **not met**",
		"wandist-quic idle link: 100.0 KiB of daemon memory per link from 2 to 10 links (180.0 KiB averaged from none) (target < 200 KiB): met",
		"| wandist-quic | 10 | 10 MiB | 11 MiB (2) | 12 MiB | 100.0 KiB | 180.0 KiB |",
		"| wandist-quic | 1000/s | 450 µs | 900 µs |",
		"- nats oneway/4096 (repeat 1): boom",
		"| wandist-tcp | 1k/s | — | east-1 2.00 |",
		"| 0 | 0 | east-1 4.00 |",
		"server 4.00", // CPU s per 1M: 1 s for 250k messages, median over repeats
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q\n%s", want, out)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{rate(1_234_567), "1.23M"}, {rate(45_600), "46k"}, {rate(999), "999"},
		{dur(-1), "—"}, {dur(250 * time.Microsecond), "250 µs"}, {dur(1500 * time.Microsecond), "1.50 ms"}, {dur(2 * time.Second), "2.00 s"},
		{ratio(3, 0), "—"}, {ratio(3, 2), "1.50x"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if m := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("median %v, want 2.5", m)
	}
}
