//go:build linux

package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrCommand is wrapped by the errors of external commands (ip, nft, tc).
var ErrCommand = errors.New("chaos: command failed")

// run runs a command and returns its standard output; the error says the
// command, its exit status and its standard error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%w: %s %s: %v: %s", ErrCommand, name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// runIn runs a command inside network namespace ns.
func runIn(ctx context.Context, ns, name string, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// runStdin runs a command with the given standard input.
func runStdin(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s %s: %v: %s", ErrCommand, name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return nil
}

// nsPath is where `ip netns add` puts a namespace.
func nsPath(ns string) string {
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		p := filepath.Join(dir, ns)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join("/run/netns", ns)
}

// inNS runs fn on an OS thread that entered network namespace ns, so that
// the sockets and devices fn creates belong to ns. Goroutines fn starts run
// elsewhere (in the root namespace); sockets keep their namespace.
func inNS(ns string, fn func() error) error {
	res := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked (and so discarded when this goroutine
		// ends) unless it is back in its own namespace.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			res <- fmt.Errorf("chaos: open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(nsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			res <- fmt.Errorf("chaos: open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			res <- fmt.Errorf("chaos: enter netns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		res <- ferr
	}()
	return <-res
}

// nsDialer dials TCP inside network namespace ns (for the daemons' admin
// endpoints, which listen on 127.0.0.1 there).
func nsDialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNS(ns, func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// lookPath finds a tool in PATH or in the sbin directories (root's PATH
// may lack them under sudo or CI runners).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p, err := exec.LookPath(dir + "/" + name); err == nil {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// InNS runs fn on an OS thread inside network namespace ns: the sockets
// and devices fn creates belong to ns (for harnesses such as the WAN
// benchmark that put their own endpoints in a topology's namespaces).
func InNS(ns string, fn func() error) error { return inNS(ns, fn) }

// NSDialer returns a dial function whose connections start inside network
// namespace ns.
func NSDialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return nsDialer(ns)
}
