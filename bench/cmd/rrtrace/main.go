// Command rrtrace shows where the time of a wandist request-reply round trip
// goes: it starts east and west daemons (as wbench does), records the system
// calls of both daemons and of this process (the requesting and the replying
// SDK clients) with `perf trace` while requests are offered at a fixed rate,
// and prints each stage of the trip (see analyse.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/suite"
	"github.com/wandist/wandist/bench/sys/nats"
	"github.com/wandist/wandist/bench/sys/wandist"
	"github.com/wandist/wandist/bench/workload"
	"github.com/wandist/wandist/client"
)

var (
	events string
	stat   bool
	keep   bool
)

func main() {
	system := flag.String("system", "wandist-tcp", "wandist-tcp, wandist-quic or nats")
	rate := flag.Int("rate", 1000, "requests per second")
	dur := flag.Duration("duration", 3*time.Second, "how long requests are offered")
	raw := flag.String("raw", "", "keep perf trace's output in this file")
	noPerf := flag.Bool("noperf", false, "without perf trace")
	flag.BoolVar(&keep, "keep", false, "keep the work directory (the daemons' logs: run with GODEBUG=gctrace=1 to see their collections)")
	flag.BoolVar(&stat, "stat", false, "count system calls with perf stat (with -noperf: perf trace's records slow every call)")
	flag.StringVar(&events, "events", "read,write,writev,readv,sendmsg,recvmsg,sendmmsg,recvmmsg", "the system calls perf traces (add futex,epoll_pwait,nanosleep to count wake-ups; each traced call slows the trip)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *system, *rate, *dur, *raw, *noPerf); err != nil {
		fmt.Fprintln(os.Stderr, "rrtrace:", err)
		os.Exit(1)
	}
}

// rpcSystem is a system of the bench that serves request-reply.
type rpcSystem interface {
	Start(ctx context.Context) error
	Stop() error
	Procs() []*proc.Process
	OpenRPC(ctx context.Context) (workload.Caller, error)
}

// newSystem builds the binary the system needs into dir and returns it; its
// Procs are the east (or A) and west (or B) servers, in that order.
func newSystem(ctx context.Context, name, benchDir, dir string) (rpcSystem, error) {
	switch name {
	case "wandist-tcp", "wandist-quic":
		bin := filepath.Join(dir, "wandistd")
		if err := proc.Build(ctx, filepath.Dir(benchDir), bin, "./cmd/wandistd"); err != nil {
			return nil, err
		}
		return &wandist.System{Wandistd: bin, Dir: dir, Transport: strings.TrimPrefix(name, "wandist-"), Mode: client.Reliable}, nil
	case "nats":
		bin := filepath.Join(dir, "natsd")
		if err := proc.Build(ctx, benchDir, bin, "./cmd/natsd"); err != nil {
			return nil, err
		}
		return &nats.System{Natsd: bin, Dir: dir}, nil
	}
	return nil, fmt.Errorf("system %q: want wandist-tcp, wandist-quic or nats", name)
}

func run(ctx context.Context, system string, rate int, dur time.Duration, raw string, noPerf bool) error {
	benchDir, err := suite.BenchDir()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "rrtrace")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	s, err := newSystem(ctx, system, benchDir, dir)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	defer s.Stop()
	c, err := s.OpenRPC(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := workload.Warm(ctx, c, 128, 200); err != nil {
		return err
	}
	pids := []int{s.Procs()[0].PID(), s.Procs()[1].PID(), os.Getpid()}
	if raw == "" {
		raw = filepath.Join(dir, "perf.txt")
	}
	var perf *exec.Cmd
	if !noPerf {
		if perf, err = startPerf(ctx, pids, raw); err != nil {
			return err
		}
	}
	var st *stats
	if stat {
		if st, err = startStats(ctx, pids, dir); err != nil {
			return err
		}
	}
	rc := &recCaller{c: c, t0: time.Now()}
	cost0, err := costsOf(pids)
	if err != nil {
		return err
	}
	res, err := workload.Latency(ctx, rc, workload.LatencyOptions{Size: 128, Rate: rate, Duration: dur})
	cost1, cerr := costsOf(pids)
	if st != nil {
		st.stop()
	}
	if perf != nil {
		_ = perf.Process.Signal(syscall.SIGINT)
		_ = perf.Wait()
	}
	if err = errors.Join(err, cerr); err != nil {
		return err
	}
	fmt.Printf("%s %d/s: p50 %v p99 %v p99.9 %v max %v errors %d\n", system, rate,
		res.Latency.P50, res.Latency.P99, res.Latency.P999, res.Latency.Max, res.Errors)
	printCosts(os.Stdout, cost0, cost1, res.Sent)
	rc.slowest(os.Stdout, 10)
	if st != nil {
		if err := st.print(os.Stdout, res.Sent); err != nil {
			return err
		}
	}
	if perf == nil {
		return nil
	}
	return analyse(raw, pids, res.Sent)
}

// startPerf starts `perf trace` on the processes, writing to out.
func startPerf(ctx context.Context, pids []int, out string) (*exec.Cmd, error) {
	list := fmt.Sprintf("%d,%d,%d", pids[0], pids[1], pids[2])
	perf := exec.CommandContext(ctx, "perf", "trace", "-T", "-o", out, "-p", list, "-e", events)
	if err := perf.Start(); err != nil {
		return nil, fmt.Errorf("perf trace: %w", err)
	}
	time.Sleep(time.Second) // perf attaches
	return perf, nil
}

// analyse reads perf's output and prints the stages and calls per request.
func analyse(raw string, pids []int, requests int) error {
	tids := map[int]string{}
	for i, pid := range pids {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				tids[tid] = labels[i]
			}
		}
	}
	f, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer f.Close()
	evs, err := parse(f, tids)
	if err != nil {
		return err
	}
	report(os.Stdout, evs, requests)
	return nil
}

// labels name the processes: the east (or A) server, the west (or B)
// server, and this one (the SDK clients that call and reply).
var labels = []string{"east", "west", "sdk"}

// costs is what a process spent: CPU time, and its threads' voluntary
// context switches (a thread that blocked and was woken again counts one).
type costs struct {
	cpu      time.Duration
	switches int64
}

// costsOf reads the costs of each process; threads that ended are not
// counted.
func costsOf(pids []int) ([]costs, error) {
	out := make([]costs, len(pids))
	for i, pid := range pids {
		s, err := proc.Read(pid)
		if err != nil {
			return nil, err
		}
		out[i].cpu = s.CPU
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					out[i].switches += n
				}
			}
		}
	}
	return out, nil
}

// printCosts prints each process's costs per request between two readings.
func printCosts(w io.Writer, a, b []costs, requests int) {
	n := float64(max(requests, 1))
	fmt.Fprint(w, "  per request: CPU µs, wake-ups (voluntary context switches):")
	for i := range a {
		fmt.Fprintf(w, " %s %.0f, %.1f;", labels[i], float64((b[i].cpu-a[i].cpu).Microseconds())/n, float64(b[i].switches-a[i].switches)/n)
	}
	fmt.Fprintln(w)
}

// recCaller records when each call started (since t0) and how long it took.
type recCaller struct {
	c  workload.Caller
	t0 time.Time
	mu sync.Mutex
	at []time.Duration
	d  []time.Duration
}

func (r *recCaller) Call(ctx context.Context, p []byte) ([]byte, error) {
	start := time.Now()
	b, err := r.c.Call(ctx, p)
	d := time.Since(start)
	r.mu.Lock()
	r.at, r.d = append(r.at, start.Sub(r.t0)), append(r.d, d)
	r.mu.Unlock()
	return b, err
}

func (r *recCaller) Close() error { return nil }

// slowest prints the n slowest calls: when they started and how long they took.
func (r *recCaller) slowest(w io.Writer, n int) {
	idx := make([]int, len(r.d))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return r.d[idx[a]] > r.d[idx[b]] })
	fmt.Fprint(w, "  slowest calls (start: duration):")
	for _, i := range idx[:min(n, len(idx))] {
		fmt.Fprintf(w, " %v: %v", r.at[i].Round(time.Millisecond), r.d[i].Round(10*time.Microsecond))
	}
	fmt.Fprintln(w)
}
