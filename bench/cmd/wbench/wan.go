package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wandist/wandist/bench/suite"
	"github.com/wandist/wandist/bench/wan"
)

// runWAN runs the WAN bench (-wan): it prints the tables and, on a full
// run, writes them into BENCHMARKS.md's WAN section.
func runWAN(ctx context.Context, quick bool, systems, rate, out string, keep bool) int {
	o := wan.Options{Quick: quick, Systems: split(systems), Log: os.Stderr, Keep: keep,
		Command: strings.TrimSpace("cd bench && go run ./cmd/wbench " + strings.Join(os.Args[1:], " "))}
	if rate != "" {
		mbit, err := strconv.ParseFloat(rate, 64)
		if err != nil || mbit < 1 || mbit > 100000 {
			fmt.Fprintf(os.Stderr, "wbench: -wan-rate %q: want the link rate in Mbit/s, from 1 to 100000\n", rate)
			return 2
		}
		o.Rate = int64(mbit * 1e6)
	}
	res, err := wan.Run(ctx, o)
	if errors.Is(err, wan.ErrUnsupported) {
		fmt.Fprintln(os.Stderr, "wbench -wan: skipped:", err)
		return 0
	}
	if res != nil {
		fmt.Print(wan.Section(res))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wbench -wan:", err)
		return 1
	}
	path := out
	if path == "auto" {
		path = ""
		if res.Complete {
			dir, err := suite.BenchDir()
			if err != nil {
				fmt.Fprintln(os.Stderr, "wbench -wan:", err)
				return 1
			}
			path = filepath.Join(filepath.Dir(dir), "BENCHMARKS.md")
		}
	}
	if path != "" && path != "-" {
		if err := wan.WriteMarkdown(path, res); err != nil {
			fmt.Fprintln(os.Stderr, "wbench -wan:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "wrote the WAN section of", path)
	}
	return 0
}
