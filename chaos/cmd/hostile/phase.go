package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wandist/wandist/client"
)

// phaseResult is one row of the report.
type phaseResult struct {
	name, what       string
	peakRSS          float64 // bytes
	peakGoroutines   float64
	cpu              float64 // share of one core
	selfCPU          float64 // this process's (the attacker's and the clients'), likewise
	p50, p99         time.Duration
	calls, failed    int
	relinkQ, relinkT string
	attackSent       string
	refusals         []string // counters that moved, "name: delta"
}

// phase runs attack (nil: none) against s.east for dur and measures.
func (s *setup) phase(ctx context.Context, name, what string, dur time.Duration, run func(context.Context, *proc, *atomic.Int64) string) phaseResult {
	r := phaseResult{name: name, what: what}
	before, _ := s.east.metrics(ctx)
	selfBefore := selfCPUSeconds()
	pctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	s.rr.reset()
	var wg sync.WaitGroup
	wg.Go(func() { // sampler
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if m, err := s.east.metrics(ctx); err == nil {
				r.peakRSS = max(r.peakRSS, m["process_resident_memory_bytes"])
				r.peakGoroutines = max(r.peakGoroutines, m["go_goroutines"])
			}
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	var volume atomic.Int64
	if run != nil {
		wg.Go(func() { r.attackSent = run(pctx, s.east, &volume) })
	}
	wg.Go(func() { // restart the two peers a third of the way in
		select {
		case <-pctx.Done():
			return
		case <-time.After(dur / 3):
		}
		var rw sync.WaitGroup
		rw.Go(func() { r.relinkQ = restart(ctx, s.nq) })
		rw.Go(func() { r.relinkT = restart(ctx, s.nt) })
		rw.Wait()
	})
	<-pctx.Done()
	wg.Wait()
	after, _ := s.east.metrics(ctx)
	r.cpu = (after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]) / dur.Seconds()
	r.selfCPU = (selfCPUSeconds() - selfBefore) / dur.Seconds()
	r.p50, r.p99, r.calls, r.failed = s.rr.stats()
	r.refusals = movedCounters(before, after)
	return r
}

// movedCounters lists the refusal and drop counters that moved.
func movedCounters(before, after map[string]float64) []string {
	var out []string
	for k, v := range after {
		if !strings.Contains(k, "rejections") && !strings.Contains(k, "refused") && !strings.Contains(k, "retries") &&
			!strings.Contains(k, "protocol_errors") && !strings.Contains(k, "dropped") && !strings.Contains(k, "membership") {
			continue
		}
		if d := v - before[k]; d > 0 {
			out = append(out, fmt.Sprintf("`%s` +%.0f", strings.TrimPrefix(k, "wandist_"), d))
		}
	}
	slices.Sort(out)
	return out
}

// reqReply calls the echo group on east from west at 100/s.
type reqReply struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	srv    *client.Client
	cli    *client.Client

	mu     sync.Mutex
	lat    []time.Duration // guarded by mu
	failed int             // guarded by mu
}

func startReqReply(ctx context.Context, east, west *proc) (*reqReply, error) {
	srv, err := client.Connect(ctx, client.Options{Socket: east.socket, Name: "hostile echo"})
	if err != nil {
		return nil, err
	}
	cli, err := client.Connect(ctx, client.Options{Socket: west.socket, Name: "hostile caller"})
	if err != nil {
		srv.Close()
		return nil, err
	}
	mb, err := srv.NewMailbox(ctx)
	if err == nil {
		err = mb.Join(ctx, "echo")
	}
	if err != nil {
		srv.Close()
		cli.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	rr := &reqReply{cancel: cancel, srv: srv, cli: cli}
	rr.wg.Go(func() {
		mb.Serve(rctx, 8, func(ctx context.Context, m *client.Message) { m.Reply(ctx, m.Payload) })
	})
	// Wait until west sees the member.
	for deadline := time.Now().Add(15 * time.Second); ; {
		cctx, c := context.WithTimeout(ctx, time.Second)
		_, err := cli.CallGroup(cctx, "echo", []byte("x"))
		c()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			rr.close()
			return nil, fmt.Errorf("echo not reachable from west: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rr.wg.Go(func() { rr.loop(rctx) })
	return rr, nil
}

func (rr *reqReply) loop(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		inflight.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			t0 := time.Now()
			_, err := rr.cli.CallGroup(cctx, "echo", []byte("ping"))
			d := time.Since(t0)
			rr.mu.Lock()
			if err != nil {
				rr.failed++
			} else {
				rr.lat = append(rr.lat, d)
			}
			rr.mu.Unlock()
		})
	}
}

func (rr *reqReply) reset() {
	rr.mu.Lock()
	rr.lat, rr.failed = nil, 0
	rr.mu.Unlock()
}

func (rr *reqReply) stats() (p50, p99 time.Duration, calls, failed int) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	l := slices.Clone(rr.lat)
	slices.Sort(l)
	if len(l) > 0 {
		p50, p99 = l[len(l)/2], l[len(l)*99/100]
	}
	return p50, p99, len(l) + rr.failed, rr.failed
}

func (rr *reqReply) close() {
	rr.cancel()
	rr.wg.Wait()
	rr.cli.Close()
	rr.srv.Close()
}

func render(bin string, dur time.Duration, rows []phaseResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Hostile-load run, %s per phase, %s, binary %s\n\n", dur, time.Now().UTC().Format("2006-01-02 15:04 UTC"), bin)
	b.WriteString("| phase | target RSS peak | goroutines peak | target CPU | attacker CPU | req-reply p50 / p99 (calls, failed) | re-link QUIC / TCP after restart | attack sent |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %.0f MiB | %.0f | %.0f %% | %.0f %% | %.1f / %.1f ms (%d, %d) | %s / %s | %s |\n",
			r.name, r.peakRSS/(1<<20), r.peakGoroutines, 100*r.cpu, 100*r.selfCPU,
			float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000, r.calls, r.failed,
			r.relinkQ, r.relinkT, r.attackSent)
	}
	b.WriteString("\nCounters that moved on the target, by phase:\n\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "- %s (%s): %s\n", r.name, r.what, strings.Join(r.refusals, ", "))
	}
	return b.String()
}

// selfCPUSeconds is the CPU time this process used so far.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
