// Package erlang runs Erlang distribution in the side-by-side benchmark:
// two nodes (erl -name, on loopback, with a private epmd) where node a sends
// to processes on node b. The Erlang code (wbench.erl, compiled at start)
// runs the workloads itself; the harness reads its result lines.
package erlang

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wandist/wandist/bench/latency"
	"github.com/wandist/wandist/bench/netutil"
	"github.com/wandist/wandist/bench/payload"
	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/workload"
)

//go:embed wbench.erl
var source []byte

// ErrMissing is returned when erl or erlc is not installed (and could not be).
var ErrMissing = errors.New("erlang is not installed")

// ErrResult is returned for a result line the harness cannot read.
var ErrResult = errors.New("bad result line from the erlang driver")

// Ensure checks that erl and erlc are on PATH; when they are not and
// install is set, it installs Debian's erlang-base with apt-get.
func Ensure(ctx context.Context, install bool) error {
	have := func() bool {
		_, e1 := exec.LookPath("erl")
		_, e2 := exec.LookPath("erlc")
		return e1 == nil && e2 == nil
	}
	if have() {
		return nil
	}
	if !install {
		return fmt.Errorf("%w (erl, erlc not on PATH)", ErrMissing)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "erlang-base"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%w: apt-get %s: %v: %s", ErrMissing, strings.Join(args, " "), err, lastLine(out))
		}
	}
	if !have() {
		return fmt.Errorf("%w: erlang-base installed but erl or erlc still missing", ErrMissing)
	}
	return nil
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// System is two Erlang nodes on loopback.
type System struct {
	Dir string // work directory: compiled module and logs

	epmd, b, a *proc.Process
	mu         sync.Mutex // one command at a time
}

// Name implements harness.System.
func (s *System) Name() string { return "erlang" }

// Procs returns the two nodes (a drives, b receives and echoes) and epmd.
func (s *System) Procs() []*proc.Process {
	var ps []*proc.Process
	for _, p := range []*proc.Process{s.a, s.b} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Start compiles wbench.erl, starts a private epmd on loopback, node b
// (server) and node a (driver), and waits until a is connected to b.
func (s *System) Start(ctx context.Context) error {
	src := filepath.Join(s.Dir, "wbench.erl")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return fmt.Errorf("erlang: %w", err)
	}
	if out, err := exec.CommandContext(ctx, "erlc", "-o", s.Dir, src).CombinedOutput(); err != nil {
		return fmt.Errorf("erlc wbench.erl: %w: %s", err, out)
	}
	port, err := netutil.FreePort()
	if err != nil {
		return err
	}
	if s.epmd, err = proc.Start(proc.Spec{Name: "epmd", Path: "epmd", Args: []string{"-address", "127.0.0.1", "-port", strconv.Itoa(port)}, LogDir: s.Dir}); err != nil {
		return err
	}
	env := []string{"ERL_EPMD_PORT=" + strconv.Itoa(port), "WBENCH_PEER=wbench_b@127.0.0.1"}
	node := func(name, fun string, stdin bool) (*proc.Process, error) {
		return proc.Start(proc.Spec{Name: "erl-" + name, Path: "erl", Env: env, LogDir: s.Dir, Capture: true, Stdin: stdin,
			Args: []string{"-noshell", "-start_epmd", "false", "-name", "wbench_" + name + "@127.0.0.1", "-setcookie", "wbench",
				"-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-pa", s.Dir, "-s", "wbench", fun}})
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// epmd must be listening before a node registers: poll its port.
	if err := netutil.Poll(wctx, 10*time.Millisecond, "epmd", func() (bool, error) {
		return netutil.Listening(netutil.Addr(port)), nil
	}); err != nil {
		return err
	}
	if s.b, err = node("b", "server", false); err != nil {
		return err
	}
	if _, err := s.b.WaitLine(wctx, "ready"); err != nil {
		return err
	}
	if s.a, err = node("a", "driver", true); err != nil {
		return err
	}
	_, err = s.a.WaitLine(wctx, "ready")
	return err
}

// Stop stops both nodes and epmd.
func (s *System) Stop() error {
	var errs []error
	if s.a != nil {
		_ = s.a.WriteLine("quit")
	}
	for _, p := range []*proc.Process{s.a, s.b, s.epmd} {
		if p != nil {
			errs = append(errs, p.Stop(10*time.Second))
		}
	}
	return errors.Join(errs...)
}

// command sends one command to node a and returns its result's fields.
func (s *System) command(ctx context.Context, cmd string, timeout time.Duration) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.a.WriteLine(cmd); err != nil {
		return nil, fmt.Errorf("erlang %q: %w", cmd, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	line, err := s.a.WaitLine(ctx, "result ")
	if err != nil {
		return nil, fmt.Errorf("erlang %q: %w", cmd, err)
	}
	return parseResult(line)
}

// parseResult reads "result KIND k=v k=v ..." with integer values.
func parseResult(line string) (map[string]int64, error) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "result" || f[1] == "error" {
		return nil, fmt.Errorf("%w: %q", ErrResult, line)
	}
	out := map[string]int64{}
	for _, kv := range f[2:] {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("%w: field %q of %q", ErrResult, kv, line)
		}
		out[k] = n
	}
	return out, nil
}

// OneWay runs a one-way stream from a process on node a to one on node b.
// Erlang's payloads carry the sequence number; their bodies are not
// checksummed (distribution is checked by TCP). Erlang's sender counts
// messages, so a run of o.Duration is a count scaled to its rate: a probe
// of 100,000 messages, then as many as its rate fills the rest of the
// duration with; the result sums both.
func (s *System) OneWay(ctx context.Context, o workload.OneWayOptions) (workload.OneWayResult, error) {
	if o.Size < 8 {
		return workload.OneWayResult{}, fmt.Errorf("erlang one-way: size %d: %w", o.Size, payload.ErrTooSmall)
	}
	if o.Duration <= 0 {
		return s.oneWayN(ctx, o.Size, o.N)
	}
	const probe = 100_000
	res, err := s.oneWayN(ctx, o.Size, probe)
	if err != nil || res.Elapsed <= 0 || res.Elapsed >= o.Duration {
		return res, err
	}
	n := int(res.MsgsPerSec() * (o.Duration - res.Elapsed).Seconds())
	if n <= 0 {
		return res, nil
	}
	r, err := s.oneWayN(ctx, o.Size, n)
	if err != nil {
		return res, err
	}
	c, d := res.Counts, r.Counts
	res.Counts = payload.Counts{Expected: c.Expected + d.Expected, Delivered: c.Delivered + d.Delivered, OutOfOrder: c.OutOfOrder + d.OutOfOrder, Corrupted: c.Corrupted + d.Corrupted}
	res.Elapsed += r.Elapsed
	return res, nil
}

func (s *System) oneWayN(ctx context.Context, size, n int) (workload.OneWayResult, error) {
	r, err := s.command(ctx, fmt.Sprintf("oneway %d %d", size, n), 4*time.Minute)
	if err != nil {
		return workload.OneWayResult{}, err
	}
	res := workload.OneWayResult{Size: size, Elapsed: time.Duration(r["ns"])}
	res.Counts = payload.Counts{Expected: n, Delivered: int(r["got"]), OutOfOrder: int(r["ooo"]), Corrupted: int(r["bad"])}
	res.Note = "one sender process"
	return res, nil
}

// Latency runs request-reply at a fixed rate from node a to an echo process on node b.
func (s *System) Latency(ctx context.Context, o workload.LatencyOptions) (workload.LatencyResult, error) {
	r, err := s.command(ctx, fmt.Sprintf("rr %d %d %d", o.Size, o.Rate, o.Duration.Milliseconds()), o.Duration+2*time.Minute)
	if err != nil {
		return workload.LatencyResult{}, err
	}
	res := workload.LatencyResult{Rate: o.Rate, Duration: o.Duration, Sent: int(r["sent"]), OK: int(r["ok"])}
	res.Errors = res.Sent - res.OK
	res.Latency = latency.Summary{N: res.OK, P50: time.Duration(r["p50"]), P99: time.Duration(r["p99"]), P999: time.Duration(r["p999"]), Max: time.Duration(r["max"])}
	res.SendLate = time.Duration(r["late"])
	return res, nil
}
