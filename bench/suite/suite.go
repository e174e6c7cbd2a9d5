// Package suite assembles the side-by-side benchmark: it finds the
// repository, builds the server binaries, makes every system, picks the
// workloads' sizes (full or quick), runs the harness and describes the
// machine for the report.
package suite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wandist/wandist/bench/harness"
	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/report"
	"github.com/wandist/wandist/bench/sys/erlang"
	"github.com/wandist/wandist/bench/sys/nats"
	"github.com/wandist/wandist/bench/sys/raw"
	"github.com/wandist/wandist/bench/sys/wandist"
	"github.com/wandist/wandist/bench/workload"
	"github.com/wandist/wandist/client"
)

// SystemNames lists every system, in the order of the report.
var SystemNames = []string{"wandist-quic", "wandist-tcp", "wandist-quic-amo", "wandist-tcp-amo", "nats", "raw-relay", "erlang"}

// ErrUnknown is returned for an unknown system or workload name.
var ErrUnknown = errors.New("unknown name")

// ErrNoBenchDir is returned when the bench module cannot be found.
var ErrNoBenchDir = errors.New("bench module not found")

const benchModule = "module github.com/wandist/wandist/bench"

// Options choose what to run.
type Options struct {
	Quick         bool
	Systems       []string
	Workloads     []string
	Repeat        int // 0: the default (3, or 1 when Quick)
	InstallErlang bool
	Keep          bool // keep the work directory
	Log           io.Writer
	Command       string // the command line, for the report
	WorkDir       string // default: a new temporary directory
	// Tune, when set, adjusts the harness settings before the run (tests
	// use it to make runs smaller).
	Tune func(*harness.Config)
}

// Result is a finished run.
type Result struct {
	Meta       report.Meta
	Records    []harness.Record
	Complete   bool   // a full run of every system and workload (a system skipped for want of its runtime says so in the report)
	DefaultOut string // BENCHMARKS.md at the repository root
}

// BenchDir returns the bench module's directory, found from the working
// directory upwards.
func BenchDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte(benchModule+"\n")) {
			return dir, nil
		}
		if _, err := os.Stat(filepath.Join(dir, "bench", "go.mod")); err == nil {
			return filepath.Join(dir, "bench"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w from the working directory: run from the repository or its bench folder", ErrNoBenchDir)
		}
		dir = parent
	}
}

// oneWayCap bounds a fixed-time one-way run, per payload size, within the
// room the benchmark gives wandist's buffer (2 GiB, 20M messages: a
// sender faster than the link fills it, and a full buffer refuses sends).
var oneWayCap = map[int]int{128: 12_000_000, 4096: 400_000}

// Config returns the harness settings of a full or a quick run.
func Config(quick bool) harness.Config {
	if quick {
		return harness.Config{
			Repeat: 1, Sizes: []int{128, 4096}, OneWayFor: time.Second, Count: oneWayCap,
			RRSize: 128, Rates: []int{1000, 10000}, RRTime: time.Second,
			MaxRates: []int{1000, 5000}, MaxStep: 500 * time.Millisecond, P99Bound: 10 * time.Millisecond,
			Restore:   workload.RestoreOptions{Size: 128, Rate: 1000, Before: 500 * time.Millisecond, Cut: 1500 * time.Millisecond, After: time.Second, Idle: 3 * time.Second},
			IdleLinks: 4, Members: 5_000, Groups: 500,
		}
	}
	return harness.Config{
		Repeat: 3, Sizes: []int{128, 4096}, OneWayFor: 4 * time.Second, Count: oneWayCap,
		RRSize: 128, Rates: []int{1000, 10000}, RRTime: 5 * time.Second,
		MaxRates: []int{1000, 2000, 5000, 10000, 20000, 30000, 50000, 75000, 100000, 150000, 200000}, MaxStep: 2 * time.Second, P99Bound: 10 * time.Millisecond,
		Restore:   workload.RestoreOptions{Size: 128, Rate: 1000, Before: 2 * time.Second, Cut: 7 * time.Second, After: 3 * time.Second, Idle: 5 * time.Second},
		IdleLinks: 50, Members: 100_000, Groups: 10_000,
		QuietWait: 8 * time.Second, QuietCores: 0.3,
	}
}

// binaries are the built server programs.
type binaries struct{ wandistd, natsd, relay string }

func build(ctx context.Context, benchDir, out string) (binaries, error) {
	b := binaries{filepath.Join(out, "wandistd"), filepath.Join(out, "natsd"), filepath.Join(out, "relay")}
	for _, x := range []struct{ dir, out, pkg string }{
		{filepath.Dir(benchDir), b.wandistd, "./cmd/wandistd"},
		{benchDir, b.natsd, "./cmd/natsd"},
		{benchDir, b.relay, "./cmd/relay"},
	} {
		if err := proc.Build(ctx, x.dir, x.out, x.pkg); err != nil {
			return b, err
		}
	}
	return b, nil
}

// entries makes the harness's system entries.
func entries(bin binaries) map[string]harness.Entry {
	wd := func(tr string, mode client.Mode) func(string, bool) harness.System {
		return func(dir string, proxied bool) harness.System {
			return &wandist.System{Wandistd: bin.wandistd, Dir: dir, Transport: tr, Mode: mode, Proxied: proxied}
		}
	}
	return map[string]harness.Entry{
		"wandist-quic":     {Name: "wandist-quic", New: wd("quic", client.Reliable), RR: true, Restore: true, Memory: true},
		"wandist-tcp":      {Name: "wandist-tcp", New: wd("tcp", client.Reliable), RR: true, Restore: true, Memory: true},
		"wandist-quic-amo": {Name: "wandist-quic-amo", New: wd("quic", client.AtMostOnce), Restore: true},
		"wandist-tcp-amo":  {Name: "wandist-tcp-amo", New: wd("tcp", client.AtMostOnce), Restore: true},
		"nats": {Name: "nats", RR: true, Restore: true, Memory: true, New: func(dir string, proxied bool) harness.System {
			return &nats.System{Natsd: bin.natsd, Dir: dir, Proxied: proxied}
		}},
		"raw-relay": {Name: "raw-relay", RR: true, New: func(dir string, _ bool) harness.System {
			return &raw.System{Relay: bin.relay, LogDir: dir}
		}},
		"erlang": {Name: "erlang", RR: true, New: func(dir string, _ bool) harness.System {
			return &erlang.System{Dir: dir}
		}},
	}
}

// Run builds, runs and returns the records and the report's metadata.
func Run(ctx context.Context, o Options) (Result, error) {
	begin := time.Now()
	benchDir, err := BenchDir()
	if err != nil {
		return Result{}, err
	}
	for _, w := range o.Workloads {
		if !slices.Contains(harness.AllWorkloads, w) {
			return Result{}, fmt.Errorf("workload %q: %w (have %s)", w, ErrUnknown, strings.Join(harness.AllWorkloads, ", "))
		}
	}
	for _, s := range o.Systems {
		if !slices.Contains(SystemNames, s) {
			return Result{}, fmt.Errorf("system %q: %w (have %s)", s, ErrUnknown, strings.Join(SystemNames, ", "))
		}
	}
	work := o.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "wbench-"); err != nil {
			return Result{}, err
		}
		if !o.Keep {
			defer os.RemoveAll(work)
		}
	}
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	logf("building into %s", work)
	bin, err := build(ctx, benchDir, filepath.Join(work, "bin"))
	if err != nil {
		return Result{}, err
	}
	cfg := Config(o.Quick)
	if o.Repeat > 0 {
		cfg.Repeat = o.Repeat
	}
	cfg.Workloads, cfg.WorkDir, cfg.Log = o.Workloads, work, o.Log
	if o.Tune != nil {
		o.Tune(&cfg)
	}
	meta := report.Meta{Command: o.Command, Date: begin}
	all := entries(bin)
	for _, name := range o.Systems {
		if name == "erlang" {
			if err := erlang.Ensure(ctx, o.InstallErlang); err != nil {
				meta.Skipped = append(meta.Skipped, fmt.Sprintf("erlang: %v", err))
				logf("Erlang skipped: %v", err)
				continue
			}
		}
		cfg.Systems = append(cfg.Systems, all[name])
	}
	meta.Machine = Machine(filepath.Dir(benchDir))
	meta.Settings = settings(cfg)
	recs := harness.Run(ctx, cfg)
	meta.Elapsed = time.Since(begin)
	complete := !o.Quick && len(o.Systems) == len(SystemNames) && len(o.Workloads) == len(harness.AllWorkloads) && ctx.Err() == nil
	return Result{Meta: meta, Records: recs, Complete: complete, DefaultOut: filepath.Join(filepath.Dir(benchDir), "BENCHMARKS.md")}, ctx.Err()
}

func settings(c harness.Config) []string {
	var sizes, caps []string
	for _, s := range c.Sizes {
		if c.OneWayFor > 0 {
			sizes = append(sizes, fmt.Sprintf("%d B", s))
			if c.Count[s] > 0 {
				caps = append(caps, fmt.Sprintf("%d of %d B", c.Count[s], s))
			}
		} else {
			sizes = append(sizes, fmt.Sprintf("%d B × %d", s, c.Count[s]))
		}
	}
	length := "messages per run"
	if c.OneWayFor > 0 {
		length = fmt.Sprintf("sent for %v per run (whole 8 MiB windows, at most %s; Erlang: a count scaled to its rate in a 100,000-message probe), then every message awaited", c.OneWayFor, strings.Join(caps, ", "))
	}
	return []string{
		fmt.Sprintf("one-way: %s %s, %d repeats, systems alternating; senders wait for their first hop every 8 MiB (wandist `Flush`, NATS `Flush`, raw: buffered TCP)", strings.Join(sizes, ", "), length, c.Repeat),
		fmt.Sprintf("request-reply: %d B echoed, open loop at %v/s for %v each, %d repeats; highest sustainable rate: steps of %v, p99 ≤ %v and no failed request", c.RRSize, c.Rates, c.RRTime, c.Repeat, c.MaxStep, c.P99Bound),
		fmt.Sprintf("restore: %d msgs/s of %d B; cut after %v for %v, then %v more", c.Restore.Rate, c.Restore.Size, c.Restore.Before, c.Restore.Cut, c.Restore.After),
		fmt.Sprintf("memory: %d idle peers on one daemon; %d group members over %d groups", c.IdleLinks, c.Members, c.Groups),
		fmt.Sprintf("before each workload the harness waits up to %v for the machine to be quiet (under %.1f cores busy); \"others busy\" says how busy other processes kept it during the run", c.QuietWait, c.QuietCores),
		"wandist: default config except `buffer.max_bytes: 2GiB`, `buffer.max_messages: 20000000` (room for a whole one-way run), `log.level: warn`; reliable mode also `local.inbox_full: hold` and the receiving client's `HoldWhenFull` (a slow receiver holds messages in the sender's buffer: nothing dropped end to end); at-most-once keeps `drop`; SDK defaults otherwise (64 MiB inbox)",
		"NATS: nats-server defaults, one server per cluster, gateway between them; nats.go defaults (subscriber pending limits 512k msgs / 64 MiB)",
		"Erlang: `receive after` has millisecond resolution, so its generator may wake late and then sends what fell due: its requests are timed from the intended time or that wake-up, whichever is later (time spent in a send is counted); the Go generator sleeps with nanosleep and times from the intended time",
		"CPU s per 1M: user+system seconds from /proc/PID/stat per million delivered messages (requests); driver = this harness process (publisher, subscriber, checker); for Erlang the nodes drive themselves (erl-a sends, erl-b receives)",
	}
}

// Machine describes the machine and the versions for the report; root is
// the repository (its go.mod names wandist's transport libraries).
func Machine(root string) []string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			mem = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	lines := []string{
		fmt.Sprintf("%d cores (nproc), %s, %s memory", runtime.NumCPU(), cpu, mem),
		fmt.Sprintf("Linux %s, %s/%s", kernel, runtime.GOOS, runtime.GOARCH),
		"Go " + runtime.Version(),
	}
	var mods []string
	for _, gomod := range []string{filepath.Join(root, "go.mod"), filepath.Join(root, "bench", "go.mod")} {
		b, err := os.ReadFile(gomod)
		if err != nil {
			continue
		}
		for l := range strings.Lines(string(b)) {
			f := strings.Fields(l)
			if len(f) >= 2 && slices.Contains([]string{"github.com/nats-io/nats-server/v2", "github.com/nats-io/nats.go", "github.com/quic-go/quic-go", "github.com/hashicorp/yamux"}, f[0]) {
				mods = append(mods, f[0]+" "+f[1])
			}
		}
	}
	if len(mods) > 0 {
		lines = append(lines, strings.Join(mods, ", "))
	}
	if out, err := exec.Command("erl", "-noshell", "-eval", `io:format("~s", [erlang:system_info(otp_release)]), halt().`).Output(); err == nil {
		lines = append(lines, "Erlang/OTP "+strings.TrimSpace(string(out)))
	}
	return lines
}

// WriteMarkdown writes the report as BENCHMARKS.md.
func WriteMarkdown(path string, r Result) error {
	var b bytes.Buffer
	b.WriteString("# Benchmarks\n\nSide-by-side measurements of wandist against NATS (two clusters joined by a gateway), Erlang distribution and a raw TCP relay chain with the same hops, all on one machine in one run (`bench/`, issue 7). Judge by the ratios within a run, never by absolute numbers; re-measure with the command below.\n\n")
	report.Write(&b, r.Meta, r.Records)
	// The WAN bench's section (go run ./cmd/wbench -wan) is kept.
	if old, err := os.ReadFile(path); err == nil {
		if sec := report.Section(string(old), report.WANSection); sec != "" {
			b.WriteString("\n" + sec)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
