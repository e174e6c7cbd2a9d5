// Package proc builds and runs the benchmark's server processes and reads
// what each one cost from /proc: CPU seconds (user + system) and resident
// memory (current and peak).
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrExited is returned when a process ended while it was waited for.
var ErrExited = errors.New("process exited")

// Build runs `go build -o out pkg` in dir.
func Build(ctx context.Context, dir, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, b)
	}
	return nil
}

// Process is a started server process. Its stderr (and stdout, unless
// read with Lines) goes to a log file.
type Process struct {
	Name string
	Log  string // path of the log file
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // set before done is closed

	lines chan string // stdout lines, when captured
	stdin io.WriteCloser
	mu    sync.Mutex
}

// Spec describes a process to start.
type Spec struct {
	Name    string   // a label for reports and the log file's name
	Path    string   // the executable
	Args    []string // its arguments
	Env     []string // added to the environment
	Dir     string   // working directory (default: the current one)
	LogDir  string   // where NAME.log goes
	Capture bool     // read stdout line by line (Lines) instead of logging it
	Stdin   bool     // keep a pipe to stdin (WriteLine)
}

// Start starts a process in its own process group.
func Start(s Spec) (*Process, error) {
	logPath := filepath.Join(s.LogDir, s.Name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: log file: %w", s.Name, err)
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Name: s.Name, Log: logPath, cmd: cmd, log: lf, done: make(chan struct{})}
	var out io.ReadCloser
	if s.Capture {
		if out, err = cmd.StdoutPipe(); err != nil {
			lf.Close()
			return nil, fmt.Errorf("start %s: %w", s.Name, err)
		}
		p.lines = make(chan string, 1024)
	} else {
		cmd.Stdout = lf
	}
	if s.Stdin {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			lf.Close()
			return nil, fmt.Errorf("start %s: %w", s.Name, err)
		}
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", s.Name, s.Path, err)
	}
	var readers sync.WaitGroup
	if out != nil {
		readers.Go(func() {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				fmt.Fprintln(lf, sc.Text())
				p.lines <- sc.Text()
			}
			close(p.lines)
		})
	}
	go func() {
		readers.Wait()
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// WaitLine waits for a stdout line (Capture) containing substr and returns it.
func (p *Process) WaitLine(ctx context.Context, substr string) (string, error) {
	if p.lines == nil {
		return "", fmt.Errorf("%s: stdout is not captured", p.Name)
	}
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				return "", fmt.Errorf("%s: waiting for %q: %w (%v); see %s", p.Name, substr, ErrExited, p.err, p.Log)
			}
			if strings.Contains(l, substr) {
				return l, nil
			}
		case <-ctx.Done():
			return "", fmt.Errorf("%s: waiting for %q: %w; see %s", p.Name, substr, ctx.Err(), p.Log)
		}
	}
}

// WriteLine writes one line to the process's stdin (Stdin).
func (p *Process) WriteLine(s string) error {
	if p.stdin == nil {
		return fmt.Errorf("%s: no stdin pipe", p.Name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := io.WriteString(p.stdin, s+"\n")
	return err
}

// Stop sends SIGTERM to the process group, waits up to grace, then kills it.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s did not stop within %v: killed", p.Name, grace)
}

// Sample is one reading of a process's costs.
type Sample struct {
	CPU     time.Duration // user + system time so far
	RSS     int64         // resident bytes now
	PeakRSS int64         // highest resident bytes so far (VmHWM)
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on Linux.
const clockTick = 100

// Read reads pid's CPU time and memory from /proc.
func Read(pid int) (Sample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("read cpu of pid %d: %w", pid, err)
	}
	cpu, err := parseStat(string(b))
	if err != nil {
		return Sample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	s := Sample{CPU: cpu}
	if s.RSS, err = statusKiB(string(st), "VmRSS"); err != nil {
		return Sample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	if s.PeakRSS, err = statusKiB(string(st), "VmHWM"); err != nil {
		return Sample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return s, nil
}

// Read reads the process's costs.
func (p *Process) Read() (Sample, error) { return Read(p.PID()) }

// parseStat returns utime+stime from the text of /proc/PID/stat. The command
// name (field 2) is in parentheses and may hold spaces: fields are counted
// after its closing parenthesis.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: utime/stime: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// statusKiB returns the value of a "Key:   123 kB" line of /proc/PID/status in bytes.
func statusKiB(s, key string) (int64, error) {
	for line := range strings.Lines(s) {
		rest, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: %s: unexpected %q", key, strings.TrimSpace(rest))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: %s: %w", key, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("/proc status: no %s line", key)
}

// SystemBusy returns the CPU time all processors spent busy since boot (user,
// nice, system, irq, softirq, steal; not idle or iowait), from /proc/stat.
func SystemBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseSystemBusy(string(b))
}

func parseSystemBusy(s string) (time.Duration, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: field %d: %w", i, err)
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick, nil
}
