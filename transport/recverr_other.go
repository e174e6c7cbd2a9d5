//go:build !linux

package transport

import "net"

// setRecvErr is a no-op where IP_RECVERR does not exist: a dial to a closed
// port then fails at the handshake timeout or the dial context's deadline.
func setRecvErr(*net.UDPConn, *net.UDPAddr, bool) {}
