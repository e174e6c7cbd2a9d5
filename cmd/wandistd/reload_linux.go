package main

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerPID returns the process id of the other end of a Unix socket
// connection, as the kernel recorded it (SO_PEERCRED).
func peerPID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("reading the daemon's process id (SO_PEERCRED): %w", cerr)
	}
	return int(cred.Pid), nil
}

func hangUp(pid int) error { return syscall.Kill(pid, syscall.SIGHUP) }
