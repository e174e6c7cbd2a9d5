package transport

import (
	"net"
	"syscall"
)

// setRecvErr turns IP_RECVERR (IPV6_RECVERR) on or off: with it, ICMP errors
// such as port unreachable fail the next read on an unconnected UDP socket.
func setRecvErr(c *net.UDPConn, raddr *net.UDPAddr, on bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	_ = rc.Control(func(fd uintptr) {
		if raddr.IP.To4() != nil {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, v)
		} else {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR, v)
		}
	})
}
