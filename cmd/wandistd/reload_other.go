//go:build !linux

package main

import (
	"errors"
	"net"
)

// peerPID needs SO_PEERCRED, which only Linux has.
func peerPID(*net.UnixConn) (int, error) {
	return 0, errors.New("finding the daemon through its socket works on Linux only; send it SIGHUP yourself (kill -HUP PID), or set admin.token")
}

func hangUp(int) error { return errors.New("not supported") }
