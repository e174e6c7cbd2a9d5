package wan

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// ccControl sets a socket's TCP congestion control (TCP_CONGESTION).
func ccControl(cc string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
		}); err != nil {
			return err
		}
		return serr
	}
}
