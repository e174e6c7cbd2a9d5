package suite

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/bench/harness"
	"github.com/wandist/wandist/bench/report"
)

// TestQuickRun builds the servers and runs a small version of every
// workload on the raw relay chain and wandist over both transports (NATS,
// and Erlang when installed, unless -short), then checks the accounting:
// reliable systems deliver everything once, and a cut loses nothing.
func TestQuickRun(t *testing.T) {
	systems := []string{"raw-relay", "wandist-quic", "wandist-tcp"}
	if !testing.Short() {
		systems = append(systems, "nats")
		if _, err := exec.LookPath("erl"); err == nil {
			systems = append(systems, "erlang")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var log bytes.Buffer
	res, err := Run(ctx, Options{
		Quick: true, Systems: systems, Workloads: harness.AllWorkloads, Log: &log, Command: "go test",
		Tune: func(c *harness.Config) {
			c.OneWayFor = 200 * time.Millisecond
			c.RRTime = 300 * time.Millisecond
			c.MaxRates, c.MaxStep = []int{500, 1000}, 300*time.Millisecond
			c.P99Bound = time.Second // only the mechanics are checked here, not the speed
			c.IdleLinks, c.Members, c.Groups = 2, 1_000, 100
		},
	})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete {
		t.Error("a quick run must not count as complete (it would overwrite BENCHMARKS.md)")
	}
	seen := map[string]bool{}
	for _, r := range res.Records {
		seen[r.System+" "+strings.Split(r.Workload, "/")[0]] = true
		if r.Err != "" {
			t.Errorf("%s %s: %s", r.System, r.Workload, r.Err)
			continue
		}
		switch {
		case r.OneWay != nil:
			if c := r.OneWay.Counts; !c.Clean() || c.Delivered == 0 || r.OneWay.MsgsPerSec() <= 0 {
				t.Errorf("%s %s: %+v, want every message delivered once", r.System, r.Workload, c)
			}
		case r.Latency != nil:
			if l := r.Latency; l.OK != l.Sent || l.Sent == 0 || l.Latency.P50 <= 0 {
				t.Errorf("%s %s: %d of %d answered, p50 %v", r.System, r.Workload, l.OK, l.Sent, l.Latency.P50)
			}
		case r.Restore != nil:
			x := r.Restore
			if strings.HasPrefix(r.System, "wandist-") && (x.LostDuring != 0 || x.Counts.Duplicates != 0 || x.SentDuring == 0 || x.FirstCutMsg < 0) {
				t.Errorf("%s restore: %+v, want nothing lost or duplicated across the cut", r.System, x)
			}
		case r.IdleLink != nil:
			if x := r.IdleLink; x.Links != 2 || x.BaseRSS <= 0 || x.LinkedRSS <= 0 {
				t.Errorf("%s idle links: %+v", r.System, x)
			}
		case r.Groups != nil:
			if x := r.Groups; x.Members != 1_000 || x.RemoteAfter <= 0 || x.Propagate <= 0 {
				t.Errorf("%s group members: %+v", r.System, x)
			}
		}
		for _, c := range r.Costs {
			if c.PeakRSS <= 0 {
				t.Errorf("%s %s: process %s has no peak RSS", r.System, r.Workload, c.Proc)
			}
		}
	}
	for _, want := range []string{"raw-relay oneway", "raw-relay latency", "wandist-quic restore", "wandist-tcp idlelink", "wandist-quic groups", "wandist-tcp maxrate"} {
		if !seen[want] {
			t.Errorf("no record of %s", want)
		}
	}
	var out bytes.Buffer
	report.Write(&out, res.Meta, res.Records)
	for _, want := range []string{"## One-way throughput", "| wandist-quic | 128 B |", "| raw-relay | 4096 B |", "## Link restore", "## Memory per idle link"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunRejectsUnknownNames(t *testing.T) {
	ctx := context.Background()
	if _, err := Run(ctx, Options{Systems: []string{"kafka"}}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown system: %v", err)
	}
	if _, err := Run(ctx, Options{Systems: []string{"nats"}, Workloads: []string{"speed"}}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown workload: %v", err)
	}
}
