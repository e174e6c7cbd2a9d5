//go:build linux

package wan

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/suite"
	"github.com/wandist/wandist/bench/workload"
)

// Options choose what a WAN run does.
type Options struct {
	Quick   bool
	Systems []string // default: every system
	Rate    int64    // link rate in bits/s; 0: chosen from the measured ceiling
	Log     io.Writer
	Command string
	Keep    bool // keep the work directory
	// Tune, when set, adjusts the configuration (tests make runs shorter).
	Tune func(*Config)
}

type runner struct {
	o    Options
	cfg  Config
	p    *Path
	bin  binaries
	dir  string
	res  *Result
	logf func(string, ...any)
}

// Run builds the path, measures its ceiling, picks the link rate and runs
// every workload on every system at every setting. Without root or
// namespaces the error wraps chaos.ErrUnsupported.
func Run(ctx context.Context, o Options) (*Result, error) {
	if len(o.Systems) == 0 {
		o.Systems = SystemNames
	}
	for _, s := range o.Systems {
		if !slices.Contains(SystemNames, s) {
			return nil, fmt.Errorf("wan: system %q: %w (known: %v)", s, ErrUnknown, SystemNames)
		}
	}
	r := &runner{o: o, cfg: DefaultConfig(o.Quick), logf: func(f string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "%s "+f+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
		}
	}}
	if o.Tune != nil {
		o.Tune(&r.cfg)
	}
	p, err := NewPath(ctx)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	r.p = p
	benchDir, err := suite.BenchDir()
	if err != nil {
		return nil, err
	}
	if r.dir, err = os.MkdirTemp("", fmt.Sprintf("wdwan-%d-", os.Getpid())); err != nil {
		return nil, err
	}
	if !o.Keep {
		defer os.RemoveAll(r.dir)
	} else {
		r.logf("work directory %s", r.dir)
	}
	if err := r.build(ctx, benchDir); err != nil {
		return nil, err
	}
	r.res = &Result{Command: o.Command, Machine: suite.Machine(filepath.Dir(benchDir)), Path: p.Topo.Path(), Config: r.cfg,
		Complete: !o.Quick && len(o.Systems) == len(SystemNames)}
	r.res.Ceiling = measureCeiling(ctx, p, r.cfg, r.logf)
	r.res.Rate, r.res.Forced = o.Rate, o.Rate > 0
	if o.Rate <= 0 {
		c := r.res.Ceiling[0] // the first setting: no loss
		r.res.Rate = ChooseRate(max(c.TCP, c.QUIC, c.UDP))
	}
	if r.cfg.Window <= 0 {
		r.cfg.Window = WindowFor(r.res.Rate)
		r.res.Config.Window = r.cfg.Window
	}
	r.logf("link rate %.0f Mbit/s, bulk window %d MiB", float64(r.res.Rate)/1e6, r.cfg.Window>>20)
	for i, st := range r.cfg.Settings {
		if err := p.Set(ctx, st, r.res.Rate, false); err != nil {
			return r.res, err
		}
		n := len(o.Systems)
		for j := range n { // alternate: each setting starts with another system
			r.system(ctx, o.Systems[(i+j)%n], st, i == 0)
			if ctx.Err() != nil {
				return r.res, ctx.Err()
			}
		}
	}
	return r.res, nil
}

func (r *runner) build(ctx context.Context, benchDir string) error {
	r.bin = binaries{filepath.Join(r.dir, "wandistd"), filepath.Join(r.dir, "natsd")}
	if err := proc.Build(ctx, filepath.Dir(benchDir), r.bin.wandistd, "./cmd/wandistd"); err != nil {
		return err
	}
	return proc.Build(ctx, benchDir, r.bin.natsd, "./cmd/natsd")
}

func (r *runner) add(x Row) {
	if x.Err != "" {
		r.logf("  %s %s %s %s: ERROR %s", x.System, x.Setting, x.Workload, sizeName(x.Size), x.Err)
	}
	r.res.Rows = append(r.res.Rows, x)
}

// system runs every workload on one system at one setting; first: the
// setting where the blackout and the high-priority runs happen.
func (r *runner) system(ctx context.Context, name string, st Setting, first bool) {
	r.logf("%s at %s loss", name, st.Name)
	dir := filepath.Join(r.dir, fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	s, err := newSystem(name, r.p, r.bin, dir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		r.add(Row{System: name, Setting: st.Name, Workload: "start", Err: err.Error()})
		return
	}
	if err := s.Start(ctx); err != nil {
		r.add(Row{System: name, Setting: st.Name, Workload: "start", Err: err.Error()})
		_ = s.Stop()
		return
	}
	defer func() {
		if err := s.Stop(); err != nil {
			r.logf("  %s stop: %v", name, err)
		}
	}()
	for _, size := range r.cfg.BulkSizes {
		x := Row{System: name, Setting: st.Name, Workload: WBulk, Size: size}
		r.costed(s, &x, func() error {
			b, err := Bulk(ctx, s, BulkOptions{Size: size, Duration: r.cfg.Bulk, Warm: r.cfg.Warm, Window: r.cfg.Window})
			x.Bulk = &b
			return err
		})
		if x.Bulk != nil {
			r.logf("  bulk %s: %.1f Mbit/s, %d sent, %d lost", sizeName(size), x.Bulk.Goodput/1e6, x.Bulk.Sent, x.Bulk.Counts.Lost())
		}
		r.add(x)
	}
	x := Row{System: name, Setting: st.Name, Workload: WRR}
	x.RR, err = r.latency(ctx, s.OpenRPC, r.cfg.RRTime)
	r.add(withErr(x, err))
	if !first {
		return
	}
	x = Row{System: name, Setting: st.Name, Workload: WHP}
	x.HP, err = r.highPriority(ctx, s)
	r.add(withErr(x, err))
	x = Row{System: name, Setting: st.Name, Workload: WHeal}
	h, err := Heal(ctx, s, HealOptions{Size: r.cfg.HealSize, Offered: r.cfg.HealShare * float64(r.res.Rate), Link: float64(r.res.Rate),
		Before: r.cfg.HealBefore, Blackout: r.cfg.Blackout, After: r.cfg.HealAfter,
		Cut: func(on bool) error { return r.p.Set(context.Background(), st, r.res.Rate, on) }})
	if err != nil {
		_ = r.p.Set(ctx, st, r.res.Rate, false)
	} else {
		x.Heal = &h
		r.logf("  heal: first %v, backlog %v, caught up %v (ideal %v)", h.First, h.Backlogged, h.CaughtUp, h.IdealDrain(float64(r.res.Rate)))
	}
	r.add(withErr(x, err))
}

func withErr(x Row, err error) Row {
	if err != nil {
		x.Err = err.Error()
	}
	return x
}

// costed runs f and records each server process's CPU time during it.
func (r *runner) costed(s System, x *Row, f func() error) {
	procs := s.Procs()
	before := make([]time.Duration, len(procs))
	for i, p := range procs {
		if smp, err := p.Read(); err == nil {
			before[i] = smp.CPU
		}
	}
	if err := f(); err != nil {
		x.Err = err.Error()
	}
	for i, p := range procs {
		if smp, err := p.Read(); err == nil {
			x.Costs = append(x.Costs, Cost{Proc: p.Name, CPU: smp.CPU - before[i]})
		}
	}
}

// latency warms a request-reply path and runs it at the configured rate.
func (r *runner) latency(ctx context.Context, open func(context.Context) (workload.Caller, error), d time.Duration) (*workload.LatencyResult, error) {
	c, err := open(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := workload.Warm(ctx, c, 128, 5); err != nil {
		return nil, err
	}
	l, err := workload.Latency(ctx, c, workload.LatencyOptions{Size: 128, Rate: r.cfg.RRRate, Duration: d})
	if err != nil {
		return nil, err
	}
	r.logf("  request-reply: p50 %v p99 %v errors %d", l.Latency.P50, l.Latency.P99, l.Errors)
	return &l, nil
}

// highPriority runs request-reply on the high-priority path once a bulk
// flow of BulkSize messages has warmed up, until it is done.
func (r *runner) highPriority(ctx context.Context, s System) (*HPResult, error) {
	c, err := s.OpenHighRPC(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := workload.Warm(ctx, c, 128, 5); err != nil {
		return nil, err
	}
	var hp HPResult
	var lerr error
	b, err := Bulk(ctx, s, BulkOptions{Size: BulkSize, Duration: r.cfg.Warm, Warm: r.cfg.Warm / 2, Window: r.cfg.Window,
		During: func(ctx context.Context) {
			hp.RR, lerr = workload.Latency(ctx, c, workload.LatencyOptions{Size: 128, Rate: r.cfg.RRRate, Duration: r.cfg.HPTime})
		}})
	if err != nil {
		return nil, err
	}
	if lerr != nil {
		return nil, lerr
	}
	hp.Bulk = b
	r.logf("  high priority under bulk: p50 %v p99 %v errors %d; bulk %.1f Mbit/s", hp.RR.Latency.P50, hp.RR.Latency.P99, hp.RR.Errors, b.Goodput/1e6)
	return &hp, nil
}
