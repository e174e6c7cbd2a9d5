// Package sockio writes to a socket without ever blocking: the fast path of
// a goroutine that queued bytes for a connection's writer goroutine and,
// finding that writer idle, hands them to the kernel itself, leaving to the
// writer whatever the socket does not take at once.
package sockio

import (
	"net"
	"syscall"
)

// Raw returns conn's syscall.RawConn, or nil if conn has none (a net.Pipe,
// say): then every write goes through the writer.
func Raw(conn net.Conn) syscall.RawConn {
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return rc
		}
	}
	return nil
}

// TryWrite writes b to the socket behind raw as far as it goes without
// blocking: one write system call, no wait. It returns how much went: 0
// when the socket buffer is full, and 0 on any error too (the writer
// goroutine then meets the error itself, and handles it).
func TryWrite(raw syscall.RawConn, b []byte) int {
	var n int
	err := raw.Write(func(fd uintptr) bool {
		n, _ = syscall.Write(int(fd), b)
		return true // never wait for writability
	})
	if err != nil || n < 0 {
		return 0
	}
	return n
}
