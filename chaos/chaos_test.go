//go:build linux

package chaos

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The suite runs wandistd built from source in a subprocess, which
	// go test's result cache does not see: linking the daemon package in
	// makes a change to it run the suite again instead of reusing a
	// cached pass.
	_ "github.com/wandist/wandist/daemon"
)

var (
	profile    = flag.String("chaos.profile", "short", "scenario matrix: short (a few scenarios, < 5 min) or full")
	only       = flag.String("chaos.only", "", "comma-separated scenario names to run (default: the whole profile)")
	transports = flag.String("chaos.transports", "quic,tcp", "comma-separated transports")
	out        = flag.String("chaos.out", "", "write the Markdown report here (default: ../docs/chaos.md for the full profile, none otherwise)")
	keep       = flag.Bool("chaos.keep", false, "keep the run directory (configs, daemon logs)")
)

func TestChaos(t *testing.T) {
	preflight(t)
	ctx := context.Background()
	scs := Scenarios(*profile)
	if *only != "" {
		want := map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			want[n] = true
		}
		var sel []Scenario
		for _, s := range Scenarios("full") {
			if want[s.Name] {
				sel = append(sel, s)
			}
		}
		scs = sel
	}
	if len(scs) == 0 {
		t.Fatalf("no scenario selected (profile %q, only %q)", *profile, *only)
	}
	env, err := NewEnv(ctx, Options{Profile: *profile, Transports: strings.Split(*transports, ","), Keep: *keep, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	t.Logf("run directory %s; fault paths: %s", env.Dir, env.Topo.Path())
	var results []*Result
	start := time.Now()
	for _, sc := range scs {
		for _, tr := range env.Opts.Transports {
			t.Run(sc.Name+"/"+tr, func(t *testing.T) {
				res, err := env.Run(ctx, sc, tr)
				if errors.Is(err, ErrSkipped) {
					t.Skip(err)
				}
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, res)
				if !res.Passed() {
					t.Errorf("%s\nnotes:\n%s", strings.Join(res.Failures, "\n"), strings.Join(res.Notes, "\n"))
				}
			})
		}
	}
	rep := Report{Profile: *profile, Results: results, Machine: DescribeMachine(ctx, env), Paths: env.Topo.Path(), Took: time.Since(start)}
	t.Logf("\n%s", rep.Table())
	path := *out
	if path == "" && *profile == "full" && *only == "" {
		path = filepath.Join("..", "docs", "chaos.md")
	}
	if path != "" {
		if err := rep.WriteMarkdown(path); err != nil {
			t.Fatal(err)
		}
		t.Logf("report written to %s", path)
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(m.Run())
}
