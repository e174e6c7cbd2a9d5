//go:build !linux

package transport

import "net"

// withGRO returns c: receive offload, and the filter of floods of Initial
// packets, are used on Linux only.
func withGRO(c *net.UDPConn, _ *initialFilter) net.PacketConn { return c }
