// Command wbench is the side-by-side benchmark: it builds wandistd, a
// gateway-linked nats-server and a raw relay, starts every system as
// separate processes on loopback, runs the same workloads on each (one-way
// throughput, request-reply latency at fixed rates and the highest
// sustainable rate, time from link restore to redelivery, memory per idle
// link and per group member), alternating systems over repeats, and prints
// a Markdown table with ratios against NATS and the raw relay chain. A full
// run writes it to BENCHMARKS.md at the repository root.
//
//	cd bench && go run ./cmd/wbench            # full run, writes ../BENCHMARKS.md
//	cd bench && go run ./cmd/wbench -quick     # short smoke run, prints only
//	cd bench && go run ./cmd/wbench -wan       # the WAN bench (root), writes its section of ../BENCHMARKS.md
//	cd bench && go run ./cmd/wbench -wan -quick
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/wandist/wandist/bench/harness"
	"github.com/wandist/wandist/bench/report"
	"github.com/wandist/wandist/bench/suite"
	"github.com/wandist/wandist/bench/wan"
)

func main() {
	os.Exit(run())
}

func run() int {
	quick := flag.Bool("quick", false, "a short smoke run: one repeat, small counts, short steps")
	systems := flag.String("systems", strings.Join(suite.SystemNames, ","), "systems to run, comma-separated")
	workloads := flag.String("workloads", strings.Join(harness.AllWorkloads, ","), "workloads to run, comma-separated")
	repeat := flag.Int("repeat", 0, "repeats of the one-way and fixed-rate workloads (default 3, 1 with -quick)")
	out := flag.String("out", "auto", `Markdown file to write the report to ("auto": ../BENCHMARKS.md on a full run of every system and workload, nothing otherwise; "-": nowhere)`)
	installErlang := flag.Bool("install-erlang", true, "install Debian's erlang-base with apt-get when erl is missing")
	keep := flag.Bool("keep", false, "keep the work directory (configs, logs)")
	sizes := flag.String("sizes", "", "one-way payload sizes in bytes, comma-separated (default 128,4096)")
	count := flag.Int("count", 0, "messages per one-way run, for every size, instead of a fixed sending time (default: each run sends for 4 s, 1 s with -quick)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this harness process (publisher, subscriber, checker) to the file")
	wanMode := flag.Bool("wan", false, "run the WAN bench instead (root: network namespaces; -systems from "+strings.Join(wan.SystemNames, ",")+"); a full run writes BENCHMARKS.md's WAN section")
	wanRate := flag.String("wan-rate", "", "with -wan: the link rate in Mbit/s (default: chosen from the emulator's measured ceiling)")
	flag.Parse()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wbench: -cpuprofile:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "wbench: -cpuprofile:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	if *wanMode {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		sys := *systems
		if sys == strings.Join(suite.SystemNames, ",") {
			sys = ""
		}
		return runWAN(ctx, *quick, sys, *wanRate, *out, *keep)
	}

	tune, err := oneWayTune(*sizes, *count)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wbench:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := suite.Options{
		Quick:         *quick,
		Systems:       split(*systems),
		Workloads:     split(*workloads),
		Repeat:        *repeat,
		InstallErlang: *installErlang,
		Keep:          *keep,
		Tune:          tune,
		Log:           os.Stderr,
		Command:       strings.TrimSpace("cd bench && go run ./cmd/wbench " + strings.Join(os.Args[1:], " ")),
	}
	res, err := suite.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wbench:", err)
		return 1
	}
	report.Write(os.Stdout, res.Meta, res.Records)
	path := *out
	if path == "auto" {
		path = ""
		if res.Complete {
			path = res.DefaultOut
		}
	}
	if path != "" && path != "-" {
		if err := suite.WriteMarkdown(path, res); err != nil {
			fmt.Fprintln(os.Stderr, "wbench:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "wrote", path)
	}
	return 0
}

// oneWayTune returns the harness adjustment for the -sizes and -count
// flags, or nil when neither is set.
func oneWayTune(sizes string, count int) (func(*harness.Config), error) {
	if count < 0 {
		return nil, fmt.Errorf("-count %d: must be positive", count)
	}
	var list []int
	for _, f := range split(sizes) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 16 || n > 1<<20 {
			return nil, fmt.Errorf("-sizes: %q is not a payload size in bytes from 16 to 1048576", f)
		}
		list = append(list, n)
	}
	if len(list) == 0 && count == 0 {
		return nil, nil
	}
	return func(c *harness.Config) {
		if len(list) > 0 {
			c.Sizes = list
		}
		if count > 0 {
			c.OneWayFor = 0
			c.Count = map[int]int{}
			for _, s := range c.Sizes {
				c.Count[s] = count
			}
		}
	}, nil
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
