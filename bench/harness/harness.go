// Package harness runs every system of the side-by-side benchmark on the
// same workloads in one run: systems alternate within each repeat, every
// server is a separate OS process, and each workload records what each
// process cost (CPU seconds from /proc, peak resident memory).
package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/workload"
)

// System is one system under test: its servers run as processes.
type System interface {
	Name() string
	Start(ctx context.Context) error
	Stop() error
	Procs() []*proc.Process
}

// OneWayRunner is a system that runs one-way streams itself (Erlang);
// others offer workload.Piper.
type OneWayRunner interface {
	OneWay(ctx context.Context, o workload.OneWayOptions) (workload.OneWayResult, error)
}

// LatencyRunner is a system that runs fixed-rate request-reply itself;
// others offer workload.RPCer.
type LatencyRunner interface {
	Latency(ctx context.Context, o workload.LatencyOptions) (workload.LatencyResult, error)
}

// IdleLinker measures a daemon's memory per idle link.
type IdleLinker interface {
	IdleLinks(ctx context.Context, n int) (workload.IdleLinkResult, error)
}

// GroupMemberer measures the memory of group members, local and remote.
type GroupMemberer interface {
	GroupMembers(ctx context.Context, members, groups int) (workload.GroupMemResult, error)
}

// Entry makes one system.
type Entry struct {
	Name string
	// New makes the system with its files under dir; proxied puts a
	// cut-able proxy between its servers (for the restore workload).
	New     func(dir string, proxied bool) System
	RR      bool // takes part in request-reply
	Restore bool // supports the restore workload (proxied systems are workload.Cutter)
	Memory  bool // runs the memory workloads (when it implements them)
}

// Workload names.
const (
	WOneWay   = "oneway"
	WLatency  = "latency"
	WMaxRate  = "maxrate"
	WRestore  = "restore"
	WIdleLink = "idlelink"
	WGroups   = "groups"
)

// AllWorkloads lists every workload in run order.
var AllWorkloads = []string{WOneWay, WLatency, WMaxRate, WRestore, WIdleLink, WGroups}

// Config is one run of the benchmark.
type Config struct {
	Systems   []Entry
	Workloads []string
	Repeat    int
	Sizes     []int       // one-way payload sizes
	Count     map[int]int // one-way messages per size: the count, or with OneWayFor the most
	// OneWayFor is how long each one-way run sends (0: Count messages).
	OneWayFor time.Duration
	RRSize    int   // request payload size
	Rates     []int // fixed request rates
	RRTime    time.Duration
	MaxRates  []int // the steps of the highest-sustainable-rate search
	MaxStep   time.Duration
	P99Bound  time.Duration
	Restore   workload.RestoreOptions
	IdleLinks int
	Members   int
	Groups    int
	WorkDir   string
	Log       io.Writer // progress lines
	// QuietWait is the longest wait before each workload for the machine
	// to be quiet (other processes using under QuietCores); 0: no wait.
	QuietWait  time.Duration
	QuietCores float64
}

// Cost is what one process spent during one workload.
type Cost struct {
	Proc    string
	CPU     time.Duration
	PeakRSS int64
}

// MaxRateResult is the highest sustainable request rate and the steps tried.
type MaxRateResult struct {
	Best  int
	Steps []workload.LatencyResult
}

// Record is one workload run on one system.
type Record struct {
	System   string
	Workload string // WOneWay..., with the size or rate: "oneway/128", "latency/1000"
	Repeat   int
	OneWay   *workload.OneWayResult
	Latency  *workload.LatencyResult
	MaxRate  *MaxRateResult
	Restore  *workload.RestoreResult
	IdleLink *workload.IdleLinkResult
	Groups   *workload.GroupMemResult
	Units    float64 // messages or requests handled, for CPU per million
	Costs    []Cost
	// Others is how many cores, on average, processes outside this run
	// kept busy during it: the machine is shared, and a high figure marks
	// a disturbed measurement.
	Others float64
	Err    string
}

func (c *Config) has(w string) bool { return slices.Contains(c.Workloads, w) }

func (c *Config) logf(format string, a ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
}

// Run runs the configured workloads on every system and returns the records.
func Run(ctx context.Context, cfg Config) []Record {
	var recs []Record
	add := func(r Record) {
		if r.Err != "" {
			cfg.logf("  %s %s: ERROR %s", r.System, r.Workload, r.Err)
		}
		recs = append(recs, r)
	}
	if cfg.has(WOneWay) || cfg.has(WLatency) {
		for rep := range cfg.Repeat {
			n := len(cfg.Systems)
			for i := range n { // alternate: each repeat starts with another system
				e := cfg.Systems[(i+rep)%n]
				for _, r := range runRepeat(ctx, &cfg, e, rep) {
					add(r)
				}
				if ctx.Err() != nil {
					return recs
				}
			}
		}
	}
	for _, e := range cfg.Systems {
		if cfg.has(WMaxRate) && e.RR {
			add(runMaxRate(ctx, &cfg, e))
		}
		if cfg.has(WRestore) && e.Restore {
			add(runRestore(ctx, &cfg, e))
		}
		if cfg.has(WIdleLink) && e.Memory {
			if r, ok := runIdleLinks(ctx, &cfg, e); ok {
				add(r)
			}
		}
		if cfg.has(WGroups) && e.Memory {
			if r, ok := runGroups(ctx, &cfg, e); ok {
				add(r)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return recs
}

// dir makes a fresh work directory for one system start.
func (c *Config) dir(name string) (string, error) {
	return os.MkdirTemp(c.WorkDir, name+"-")
}

// start makes and starts a system; on failure it is stopped again.
func start(ctx context.Context, cfg *Config, e Entry, proxied bool) (System, error) {
	dir, err := cfg.dir(e.Name)
	if err != nil {
		return nil, err
	}
	s := e.New(dir, proxied)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.Start(sctx); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("start %s: %w (logs in %s)", e.Name, err, dir)
	}
	return s, nil
}

// waitQuiet waits, up to cfg.QuietWait, until the machine's busy CPU over
// half a second is under cfg.QuietCores: the machine is shared, and a
// workload started during someone else's build measures both.
func waitQuiet(ctx context.Context, cfg *Config) {
	if cfg.QuietWait <= 0 {
		return
	}
	deadline := time.Now().Add(cfg.QuietWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		b0, err := proc.SystemBusy()
		if err != nil {
			return
		}
		t0 := time.Now()
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return
		}
		b1, err := proc.SystemBusy()
		if err != nil {
			return
		}
		if (b1-b0).Seconds()/time.Since(t0).Seconds() < cfg.QuietCores {
			return
		}
	}
}

// measure runs f and records the CPU each of s's processes (and this
// driver process) spent, and their peak memory.
func measure(ctx context.Context, cfg *Config, s System, rec *Record, f func() error) {
	waitQuiet(ctx, cfg)
	type who struct {
		name string
		pid  int
	}
	var ws []who
	for _, p := range s.Procs() {
		ws = append(ws, who{p.Name, p.PID()})
	}
	ws = append(ws, who{"driver", os.Getpid()})
	before := make([]proc.Sample, len(ws))
	for i, w := range ws {
		before[i], _ = proc.Read(w.pid)
	}
	busy0, berr := proc.SystemBusy()
	t0 := time.Now()
	if err := f(); err != nil {
		rec.Err = err.Error()
	}
	el := time.Since(t0)
	busy1, berr1 := proc.SystemBusy()
	var ours time.Duration
	for i, w := range ws {
		after, err := proc.Read(w.pid)
		if err != nil {
			continue
		}
		rec.Costs = append(rec.Costs, Cost{Proc: w.name, CPU: after.CPU - before[i].CPU, PeakRSS: after.PeakRSS})
		ours += after.CPU - before[i].CPU
	}
	if berr == nil && berr1 == nil && el > 0 {
		rec.Others = max(0, (busy1-busy0-ours).Seconds()/el.Seconds())
	}
}

// runRepeat starts a system once and runs the one-way and fixed-rate
// workloads on it.
func runRepeat(ctx context.Context, cfg *Config, e Entry, rep int) []Record {
	cfg.logf("repeat %d: %s", rep+1, e.Name)
	s, err := start(ctx, cfg, e, false)
	if err != nil {
		return []Record{{System: e.Name, Workload: "start", Repeat: rep, Err: err.Error()}}
	}
	defer func() {
		if err := s.Stop(); err != nil {
			cfg.logf("  stop %s: %v", e.Name, err)
		}
	}()
	var recs []Record
	if cfg.has(WOneWay) {
		for _, size := range cfg.Sizes {
			rec := Record{System: e.Name, Workload: fmt.Sprintf("%s/%d", WOneWay, size), Repeat: rep}
			measure(ctx, cfg, s, &rec, func() error {
				r, err := oneWay(ctx, s, workload.OneWayOptions{Size: size, N: cfg.Count[size], Duration: cfg.OneWayFor})
				rec.OneWay, rec.Units = &r, float64(r.Counts.Delivered)
				return err
			})
			if rec.OneWay != nil {
				cfg.logf("  %s one-way %d B: %.0f msgs/s delivered %d/%d (others busy %.2f cores) %s", e.Name, size, rec.OneWay.MsgsPerSec(), rec.OneWay.Counts.Delivered, rec.OneWay.Counts.Expected, rec.Others, rec.OneWay.Note)
			}
			recs = append(recs, rec)
		}
	}
	if cfg.has(WLatency) && e.RR {
		run, closeRR, err := latencyRunner(ctx, s, cfg.RRSize)
		if err != nil {
			return append(recs, Record{System: e.Name, Workload: WLatency, Repeat: rep, Err: err.Error()})
		}
		defer closeRR()
		for _, rate := range cfg.Rates {
			rec := Record{System: e.Name, Workload: fmt.Sprintf("%s/%d", WLatency, rate), Repeat: rep}
			measure(ctx, cfg, s, &rec, func() error {
				r, err := run(ctx, rate, cfg.RRTime)
				rec.Latency, rec.Units = &r, float64(r.OK)
				return err
			})
			if l := rec.Latency; l != nil {
				cfg.logf("  %s rr %d/s: p50 %v p99 %v p99.9 %v errors %d (others busy %.2f cores)", e.Name, rate, l.Latency.P50, l.Latency.P99, l.Latency.P999, l.Errors, rec.Others)
			}
			recs = append(recs, rec)
		}
	}
	return recs
}

func oneWay(ctx context.Context, s System, o workload.OneWayOptions) (workload.OneWayResult, error) {
	switch x := s.(type) {
	case OneWayRunner:
		return x.OneWay(ctx, o)
	case workload.Piper:
		return workload.OneWay(ctx, x, o)
	}
	return workload.OneWayResult{}, fmt.Errorf("%s offers no one-way stream", s.Name())
}

// latencyRunner returns a function running one fixed-rate step on s.
func latencyRunner(ctx context.Context, s System, size int) (func(ctx context.Context, rate int, d time.Duration) (workload.LatencyResult, error), func(), error) {
	switch x := s.(type) {
	case LatencyRunner:
		return func(ctx context.Context, rate int, d time.Duration) (workload.LatencyResult, error) {
			return x.Latency(ctx, workload.LatencyOptions{Size: size, Rate: rate, Duration: d})
		}, func() {}, nil
	case workload.RPCer:
		c, err := x.OpenRPC(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("open request-reply: %w", err)
		}
		if err := workload.Warm(ctx, c, size, 200); err != nil {
			c.Close()
			return nil, nil, err
		}
		return func(ctx context.Context, rate int, d time.Duration) (workload.LatencyResult, error) {
			return workload.Latency(ctx, c, workload.LatencyOptions{Size: size, Rate: rate, Duration: d})
		}, func() { c.Close() }, nil
	}
	return nil, nil, fmt.Errorf("%s offers no request-reply", s.Name())
}

func runMaxRate(ctx context.Context, cfg *Config, e Entry) Record {
	cfg.logf("max rate: %s", e.Name)
	rec := Record{System: e.Name, Workload: WMaxRate}
	s, err := start(ctx, cfg, e, false)
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	defer s.Stop()
	run, closeRR, err := latencyRunner(ctx, s, cfg.RRSize)
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	defer closeRR()
	measure(ctx, cfg, s, &rec, func() error {
		best, steps, err := workload.MaxRate(ctx, cfg.MaxRates, cfg.P99Bound, func(ctx context.Context, rate int) (workload.LatencyResult, error) {
			r, err := run(ctx, rate, cfg.MaxStep)
			cfg.logf("  %s %d/s: p99 %v ok %d/%d", e.Name, rate, r.Latency.P99, r.OK, r.Sent)
			return r, err
		})
		rec.MaxRate = &MaxRateResult{Best: best, Steps: steps}
		for _, st := range steps {
			rec.Units += float64(st.OK)
		}
		return err
	})
	return rec
}

func runRestore(ctx context.Context, cfg *Config, e Entry) Record {
	cfg.logf("restore: %s", e.Name)
	rec := Record{System: e.Name, Workload: WRestore}
	s, err := start(ctx, cfg, e, true)
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	defer s.Stop()
	p, ok1 := s.(workload.Piper)
	c, ok2 := s.(workload.Cutter)
	if !ok1 || !ok2 {
		rec.Err = "no stream or no cut-able path"
		return rec
	}
	measure(ctx, cfg, s, &rec, func() error {
		r, err := workload.Restore(ctx, p, c, cfg.Restore)
		rec.Restore, rec.Units = &r, float64(r.Counts.Delivered)
		if err == nil {
			cfg.logf("  %s: heal→first cut msg %v, lost during cut %d/%d %s", e.Name, r.FirstCutMsg, r.LostDuring, r.SentDuring, r.Note)
		}
		return err
	})
	return rec
}

func runIdleLinks(ctx context.Context, cfg *Config, e Entry) (Record, bool) {
	dir, err := cfg.dir(e.Name + "-idle")
	if err != nil {
		return Record{System: e.Name, Workload: WIdleLink, Err: err.Error()}, true
	}
	il, ok := e.New(dir, false).(IdleLinker)
	if !ok {
		os.RemoveAll(dir)
		return Record{}, false
	}
	cfg.logf("idle links: %s (%d peers)", e.Name, cfg.IdleLinks)
	rec := Record{System: e.Name, Workload: WIdleLink}
	r, err := il.IdleLinks(ctx, cfg.IdleLinks)
	rec.IdleLink = &r
	if err != nil {
		rec.Err = fmt.Sprintf("%v (logs in %s)", err, dir)
	} else {
		cfg.logf("  %s: %.1f KiB per idle link (%.1f KiB averaged from none)", e.Name, r.PerLink()/1024, r.Average()/1024)
	}
	return rec, true
}

func runGroups(ctx context.Context, cfg *Config, e Entry) (Record, bool) {
	probe := e.New(filepath.Join(cfg.WorkDir, "probe"), false)
	if _, ok := probe.(GroupMemberer); !ok {
		return Record{}, false
	}
	cfg.logf("group members: %s (%d)", e.Name, cfg.Members)
	rec := Record{System: e.Name, Workload: WGroups}
	s, err := start(ctx, cfg, e, false)
	if err != nil {
		rec.Err = err.Error()
		return rec, true
	}
	defer s.Stop()
	measure(ctx, cfg, s, &rec, func() error {
		r, err := s.(GroupMemberer).GroupMembers(ctx, cfg.Members, cfg.Groups)
		rec.Groups = &r
		if err == nil {
			cfg.logf("  %s: remote %.0f B/member, local %.0f B/member, known remotely after %v", e.Name, r.RemotePerMember(), r.LocalPerMember(), r.Propagate)
		}
		return err
	})
	return rec, true
}
