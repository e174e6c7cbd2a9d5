// Command hostile runs the hostile-load run of docs/security.md against
// real wandistd processes on loopback: a target node (east-1) with an
// established link carrying request-reply traffic at 100/s, two peers that
// are restarted during each attack (one over QUIC, one over TCP), and a
// pinned rogue peer. It measures the target at rest, then under each
// attack in turn: peak RSS and goroutines, CPU, the request-reply p50 and
// p99 over the established link, and the time a restarted peer takes to
// link again. Attack traffic comes from other loopback addresses
// (127.0.2.x to 127.0.4.x), so that it stays on this machine.
//
//	go run ./chaos/cmd/hostile [-bin wandistd] [-duration 60s] [-out report.md]
//
// Without -bin it builds cmd/wandistd. To compare with an older tree, build
// that tree's wandistd and pass it with -bin.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wandist/wandist/chaos"
)

var rogueKeyPath string

func main() {
	bin := flag.String("bin", "", "wandistd binary (default: build cmd/wandistd)")
	dur := flag.Duration("duration", time.Minute, "length of each phase")
	out := flag.String("out", "", "write the report here (default stdout)")
	only := flag.String("attacks", "", "comma-separated attacks to run (default all)")
	keep := flag.Bool("keep", false, "keep the run's folder (configs, logs)")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	report, err := run(ctx, *bin, *dur, *only, *keep)
	if err != nil {
		log.Fatal(err)
	}
	if *out == "" {
		fmt.Print(report)
		return
	}
	if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
		log.Fatal(err)
	}
}

// setup is the run's processes.
type setup struct {
	east, west, nq, nt *proc
	rr                 *reqReply
}

func run(ctx context.Context, bin string, dur time.Duration, only string, keep bool) (string, error) {
	root, err := os.MkdirTemp("", "wandist-hostile-")
	if err != nil {
		return "", err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "run folder:", root)
	} else {
		defer os.RemoveAll(root)
	}
	if bin == "" {
		if bin, err = chaos.BuildDaemon(ctx, root); err != nil {
			return "", err
		}
	}
	s, err := start(ctx, bin, root)
	if err != nil {
		return "", err
	}
	defer s.stop()
	var rows []phaseResult
	rows = append(rows, s.phase(ctx, "idle", "nothing", dur, nil))
	for _, a := range attacks {
		if only != "" && !strings.Contains(","+only+",", ","+a.name+",") {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(5 * time.Second) // let the last phase's connections die down
		rows = append(rows, s.phase(ctx, a.name, a.what, dur, a.run))
	}
	return render(bin, dur, rows), nil
}

func start(ctx context.Context, bin, root string) (*setup, error) {
	var s setup
	var err error
	mk := func(cluster, name string) *proc {
		if err != nil {
			return nil
		}
		var p *proc
		p, err = newProc(ctx, bin, root, cluster, name)
		return p
	}
	s.east, s.west = mk("east", "east-1"), mk("west", "west-1")
	s.nq, s.nt = mk("north", "nq-1"), mk("north", "nt-1")
	rogue := mk("rogue", "rogue-1")
	if err != nil {
		return nil, err
	}
	rogueKeyPath = filepath.Join(rogue.dir, "rogue-1.key")
	steps := []func() error{
		func() error {
			return s.east.writeConfig(s.west.peerEntry("") + s.nq.peerEntry("") + s.nt.peerEntry("") + rogue.peerEntry(""))
		},
		func() error { return s.west.writeConfig(s.east.peerEntry("quic")) },
		func() error { return s.nq.writeConfig(s.east.peerEntry("quic")) },
		func() error { return s.nt.writeConfig(s.east.peerEntry("tcp")) },
		func() error { return s.east.start(ctx) },
		func() error { return s.west.start(ctx) },
		func() error { return s.nq.start(ctx) },
		func() error { return s.nt.start(ctx) },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			s.stop()
			return nil, err
		}
	}
	for _, p := range []*proc{s.west, s.nq, s.nt} {
		if _, err := waitLink(ctx, p, "east-1", 15*time.Second); err != nil {
			s.stop()
			return nil, err
		}
	}
	if s.rr, err = startReqReply(ctx, s.east, s.west); err != nil {
		s.stop()
		return nil, err
	}
	return &s, nil
}

func (s *setup) stop() {
	if s.rr != nil {
		s.rr.close()
	}
	for _, p := range []*proc{s.west, s.nq, s.nt, s.east} {
		if p != nil {
			p.stop()
		}
	}
}

// waitLink waits until p's link to node is up and says how long it took.
func waitLink(ctx context.Context, p *proc, node string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for !p.linkUp(ctx, node) {
		if time.Since(start) > limit || ctx.Err() != nil {
			return 0, fmt.Errorf("%s: no link to %s after %v", p.name, node, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), nil
}

// restart stops p and starts it again, and says how long after the start
// its link to east-1 was up again.
func restart(ctx context.Context, p *proc) string {
	p.stop()
	t0 := time.Now()
	if err := p.start(ctx); err != nil {
		return "start failed: " + err.Error()
	}
	if _, err := waitLink(ctx, p, "east-1", 30*time.Second); err != nil {
		return "> 30 s"
	}
	return fmt.Sprintf("%.2f s", time.Since(t0).Seconds())
}
