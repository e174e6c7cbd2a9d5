//go:build linux

package chaos

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// namePrefix starts every namespace and temporary directory the suite
// creates: "wdc-<pid>-...", so that leftovers of a run that died can be
// told from the objects of a run in progress.
const namePrefix = "wdc-"

// exitHooks run when the process is interrupted (SIGINT, SIGTERM), so that
// an interrupted run leaves nothing behind.
var exitHooks struct {
	sync.Mutex
	next    int
	fns     map[int]func()
	handler sync.Once
}

// onInterrupt registers fn to run if the process is interrupted; the
// returned function unregisters it (call it once fn ran by other means).
func onInterrupt(fn func()) (unregister func()) {
	exitHooks.handler.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			fmt.Fprintf(os.Stderr, "chaos: %v: removing namespaces, processes and mounts\n", sig)
			exitHooks.Lock()
			fns := exitHooks.fns
			exitHooks.fns = nil
			exitHooks.Unlock()
			for _, fn := range fns {
				fn()
			}
			os.Exit(2)
		}()
	})
	exitHooks.Lock()
	defer exitHooks.Unlock()
	if exitHooks.fns == nil {
		exitHooks.fns = map[int]func(){}
	}
	id := exitHooks.next
	exitHooks.next++
	exitHooks.fns[id] = fn
	return func() {
		exitHooks.Lock()
		delete(exitHooks.fns, id)
		exitHooks.Unlock()
	}
}

// ownerAlive reports whether the run that created an object named
// "wdc-<pid>-..." still runs.
func ownerAlive(name string) bool {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return true
	}
	pidStr, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return true // not ours: leave it alone
	}
	if pid == os.Getpid() {
		return true
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	// pid reuse: a live process that is not a chaos run does not own it.
	return strings.Contains(string(cmdline), "chaos")
}

// RemoveLeftovers deletes the namespaces (and the processes in them) and
// the temporary directories (and the mounts in them) of earlier runs that
// died without cleaning up. Objects of runs still alive are kept.
func RemoveLeftovers(ctx context.Context) []string {
	var removed []string
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), namePrefix) || ownerAlive(e.Name()) {
				continue
			}
			killNamespace(ctx, e.Name())
			if _, err := run(ctx, "ip", "netns", "del", e.Name()); err == nil {
				removed = append(removed, "netns "+e.Name())
			}
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), namePrefix+"*"))
	for _, d := range dirs {
		if ownerAlive(filepath.Base(d)) {
			continue
		}
		unmountUnder(d)
		if os.RemoveAll(d) == nil {
			removed = append(removed, "dir "+d)
		}
	}
	return removed
}

// killNamespace kills every process in network namespace ns and waits a
// little for them to go.
func killNamespace(ctx context.Context, ns string) {
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// unmountUnder unmounts (lazily) every mount point below dir.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
		}
	}
}
