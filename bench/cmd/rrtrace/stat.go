package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// statEvents are the system calls `perf stat` counts in the kernel (cheap:
// no record per call, unlike perf trace).
var statEvents = []string{"read", "write", "writev", "sendmsg", "sendmmsg", "recvmsg", "recvmmsg", "futex", "epoll_pwait", "nanosleep"}

// stats counts system calls of each process with one `perf stat` each.
type stats struct {
	cmds  []*exec.Cmd
	files []string
}

func startStats(ctx context.Context, pids []int, dir string) (*stats, error) {
	var ev []string
	for _, e := range statEvents {
		ev = append(ev, "syscalls:sys_enter_"+e)
	}
	ev = append(ev, "raw_syscalls:sys_enter")
	s := &stats{}
	for i, pid := range pids {
		out := filepath.Join(dir, "stat-"+labels[i]+".csv")
		cmd := exec.CommandContext(ctx, "perf", "stat", "-x,", "-o", out, "-e", strings.Join(ev, ","), "-p", strconv.Itoa(pid))
		if err := cmd.Start(); err != nil {
			s.stop()
			return nil, fmt.Errorf("perf stat: %w", err)
		}
		s.cmds, s.files = append(s.cmds, cmd), append(s.files, out)
	}
	time.Sleep(500 * time.Millisecond) // perf attaches
	return s, nil
}

func (s *stats) stop() {
	for _, c := range s.cmds {
		_ = c.Process.Signal(syscall.SIGINT)
	}
	for _, c := range s.cmds {
		_ = c.Wait()
	}
}

// print writes each process's system calls per request.
func (s *stats) print(w io.Writer, requests int) error {
	fmt.Fprintln(w, "  system calls per request (perf stat):")
	for i, f := range s.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "    %s:", labels[i])
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ",")
			if len(fields) < 3 {
				continue
			}
			n, err := strconv.ParseFloat(fields[0], 64)
			if err != nil {
				continue // a comment, or <not counted>
			}
			name := strings.TrimPrefix(strings.TrimPrefix(fields[2], "syscalls:sys_enter_"), "raw_syscalls:sys_enter")
			if name == "" {
				name = "all"
			}
			if n > 0 {
				fmt.Fprintf(w, " %s %.2f", name, n/float64(max(requests, 1)))
			}
		}
		fmt.Fprintln(w)
	}
	return nil
}
